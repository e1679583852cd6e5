//! `GET /admin/v1/audit`: the audit log, filtered, as one JSON page or streamed as JSON Lines.

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http::{HeaderValue, header};
use serde::{Deserialize, Serialize};

use crate::api::query::ApiQuery;
use crate::audit::query::{self, Action, ActorFilter, Event, Filter};
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::state::AppState;

/// Events in one JSON answer unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 1_000;
const MAX_LIMIT: u32 = 10_000;

/// The tenant whose events the caller may read: `None` for the platform admin (every tenant,
/// or the one `tenant=` names), their own for a tenant admin. Set by the route's guard.
#[derive(Debug, Clone)]
pub struct Visible(pub Option<String>);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// One tenant's events (a tenant admin only ever sees their own).
    tenant: Option<String>,
    /// A date (`2026-11-01`) or an RFC 3339 time.
    from: Option<String>,
    to: Option<String>,
    /// An action (`user.created`), or a prefix ending in `.` or `*`.
    action: Option<String>,
    /// `platform`, `tenant_admin`, `scim` or `system`, optionally `:` and an id.
    actor: Option<String>,
    /// Only events after this id: the last id of the previous page.
    after: Option<String>,
    /// 1 to 10000; default 1000 (JSON only).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
    /// `json` (default) or `jsonl` (streamed).
    format: Option<String>,
}

/// One page of the audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    events: Vec<Event>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    operation_id = "audit_events",
    tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "The events, oldest first: one JSON page, or JSON Lines with `format=jsonl`.", content(
            (AuditPage = "application/json"),
            (Event = "application/x-ndjson"),
        )),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    Extension(Visible(visible)): Extension<Visible>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Response, ApiError> {
    let jsonl = match params.format.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "format",
                "`format` must be `json` or `jsonl`",
            ));
        }
    };
    let mut filter = filter(params)?;
    filter.tenant = visible.or(filter.tenant);
    if jsonl {
        let lines = query::jsonl(state.store.clone(), filter);
        let mut response = super::streamed::body(lines).await?.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        return Ok(response);
    }
    filter.limit = filter.limit.or(Some(DEFAULT_LIMIT));
    let events: Vec<Event> = state.store.audit_events(&filter).try_collect().await?;
    Ok(Json(AuditPage { events }).into_response())
}

/// The query as a [`Filter`]; each error names the parameter at fault.
fn filter(params: AuditParams) -> Result<Filter, ApiError> {
    let at = |name: &'static str, text: Option<String>| {
        text.map(|text| {
            Timestamp::parse_date_or_rfc3339(text.trim()).ok_or_else(|| {
                ApiError::invalid_field(
                    name,
                    format!("`{name}` must be a date (2026-11-01) or an RFC 3339 time"),
                )
            })
        })
        .transpose()
    };
    let actor = params
        .actor
        .map(|text| {
            ActorFilter::parse(&text).ok_or_else(|| {
                ApiError::invalid_field(
                    "actor",
                    "`actor` must be platform, tenant_admin, scim or system, optionally followed \
                     by `:` and an id (tenant_admin:<subject>, scim:<token id>, system:jit)",
                )
            })
        })
        .transpose()?;
    if params
        .limit
        .is_some_and(|limit| limit == 0 || limit > MAX_LIMIT)
    {
        return Err(ApiError::invalid_field(
            "limit",
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let nonempty = |text: Option<String>| text.filter(|text| !text.is_empty());
    Ok(Filter {
        tenant: nonempty(params.tenant),
        from: at("from", params.from)?,
        to: at("to", params.to)?,
        action: nonempty(params.action).map(|text| Action::parse(&text)),
        actor,
        after: nonempty(params.after),
        limit: params.limit,
    })
}
