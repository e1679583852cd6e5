//! Usage routes: a tenant's report, and the streamed export across tenants.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde::Deserialize;

use crate::api::query::ApiQuery;
use crate::billing::report::{UsageReport, report};
use crate::billing::{ExportRequest, export_chunks};
use crate::error::ApiError;
use crate::state::AppState;

/// Query parameters of both routes; each handler reads the ones it knows.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// A date (`2026-11-01`) or an RFC 3339 time; inclusive.
    pub from: Option<String>,
    /// A date or an RFC 3339 time; exclusive.
    pub to: Option<String>,
    /// Comma-separated: the report's any of `user,model,provider,day,hour`; the export's
    /// also `tenant` (default `tenant,user,model,day`).
    pub group_by: Option<String>,
    /// The export only: one tenant (a tenant admin must name their own).
    pub tenant: Option<String>,
    /// The export only: `csv` (default), `jsonl` or `focus`.
    pub format: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/usage",
    operation_id = "usage_tenant_report",
    tag = "usage",
    params(("tenant" = String, Path, description = "The tenant's id."), UsageParams),
    responses(
        (status = 200, description = "The usage, aggregated.", body = UsageReport),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// `GET /admin/v1/tenants/{tenant}/usage`
pub async fn tenant_report(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    ApiQuery(p): ApiQuery<UsageParams>,
) -> Result<Json<UsageReport>, ApiError> {
    if state.store.tenant(&tenant).await?.is_none() {
        return Err(ApiError::not_found(format!("Tenant `{tenant}` not found.")));
    }
    let body = report(
        &state.store,
        &tenant,
        p.from.as_deref(),
        p.to.as_deref(),
        p.group_by.as_deref(),
    )
    .await?;
    Ok(Json(body))
}

#[utoipa::path(
    get,
    path = "/admin/v1/usage/export",
    operation_id = "usage_export",
    tag = "usage",
    params(UsageParams),
    responses(
        (status = 200, description = "The export, streamed as it is read.", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// `GET /admin/v1/usage/export`: the body streams while the database is read.
pub async fn export(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<UsageParams>,
) -> Result<Response, ApiError> {
    let request = ExportRequest::parse(
        p.from.as_deref(),
        p.to.as_deref(),
        p.tenant.as_deref(),
        p.format.as_deref(),
        p.group_by.as_deref(),
    )?;
    let content_type = request.format.content_type();
    let disposition = format!("attachment; filename=\"{}\"", request.file_name());
    let chunks = export_chunks(state.store.clone(), request);
    let mut response = super::streamed::body(chunks).await?.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
