//! SCIM 2.0 (RFC 7643/7644) at `/scim/v2/{tenant}`: the door through which a tenant's identity
//! provider keeps its user store in sync. It is a third door onto the service layer
//! ([`crate::admin`]), beside the admin API and the console: every change it makes is the
//! administrator's change — announced to every replica, audited — with a SCIM token as author.

mod discovery;
pub mod filter;
pub(crate) mod groups;
pub mod patch;
pub mod resource;
pub(crate) mod users;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::AdminError;
use crate::audit::Actor;
use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;
use crate::store::StoreError;

const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const SCIM_JSON: &str = "application/scim+json";

/// A request the SCIM protocol refuses, with the `scimType` RFC 7644 §3.12 names for it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct ScimFault {
    pub scim_type: &'static str,
    pub detail: String,
}

impl ScimFault {
    fn new(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self {
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new("invalidFilter", detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new("invalidPath", detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new("invalidValue", detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new("invalidSyntax", detail)
    }

    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new("noTarget", detail)
    }
}

/// An error on its way to an identity provider: the status from the one error table
/// ([`ErrorKind::spec`]), the body in SCIM's shape.
#[derive(Debug)]
pub struct ScimError {
    error: ApiError,
    scim_type: Option<&'static str>,
}

impl From<ApiError> for ScimError {
    fn from(error: ApiError) -> Self {
        let scim_type = (error.kind == ErrorKind::Conflict).then_some("uniqueness");
        Self { error, scim_type }
    }
}

impl From<ScimFault> for ScimError {
    fn from(fault: ScimFault) -> Self {
        Self {
            error: ApiError::invalid_request(fault.detail),
            scim_type: Some(fault.scim_type),
        }
    }
}

impl From<AdminError> for ScimError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Scim(fault) => fault.into(),
            error => ApiError::from(error).into(),
        }
    }
}

impl From<StoreError> for ScimError {
    fn from(error: StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        body(&self.error, self.scim_type)
    }
}

fn body(error: &ApiError, scim_type: Option<&'static str>) -> Response {
    let status = error.kind.spec().status;
    let mut body = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.as_str(),
        "detail": error.message,
    });
    if let Some(scim_type) = scim_type {
        body["scimType"] = Value::String(scim_type.to_owned());
    }
    let mut response = scim_json(status, &body);
    let headers = response.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(seconds) = error.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A JSON answer with SCIM's media type.
fn scim_json(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))],
        value.to_string(),
    )
        .into_response()
}

/// Errors raised outside the SCIM handlers (an unknown path, a wrong method, a body too large)
/// are answered in SCIM's shape too.
async fn envelope(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    match response.extensions().get::<ApiError>() {
        Some(error) => ScimError::from(error.clone()).into_response(),
        None => response,
    }
}

/// The SCIM routes of every tenant.
pub fn router(state: AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/ServiceProviderConfig", get(discovery_config))
        .route("/ResourceTypes", get(discovery_resource_types))
        .route("/ResourceTypes/{id}", get(discovery_resource_type))
        .route("/Schemas", get(discovery_schemas))
        .route("/Schemas/{id}", get(discovery_schema))
        .route("/.search", post(search))
        .route("/Users/.search", post(search))
        .route("/Groups/.search", post(search))
        .route("/Users", get(users::list).post(users::create))
        .route(
            "/Users/{id}",
            get(users::get)
                .put(users::replace)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route("/Groups", get(groups::list).post(groups::create))
        .route(
            "/Groups/{id}",
            get(groups::get)
                .put(groups::replace)
                .patch(groups::patch)
                .delete(groups::delete),
        )
        .fallback(|| async { ScimError::from(ApiError::not_found("No such SCIM endpoint.")) })
        .route_layer(middleware::from_fn_with_state(state, authenticate))
        .layer(middleware::from_fn(envelope));
    Router::new().nest("/scim/v2/{tenant}", routes)
}

/// The SCIM token that authenticated the request.
#[derive(Debug, Clone)]
struct ScimCaller {
    tenant: String,
    token_id: String,
}

/// A SCIM token of this very tenant, not revoked, for a live tenant; anything else is the one
/// generic 401, and the reason goes to the log only.
async fn authenticate(
    State(state): State<AppState>,
    Path(path): Path<std::collections::HashMap<String, String>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ScimError> {
    let Some(tenant) = path.get("tenant").cloned() else {
        return Err(ApiError::not_found("No such SCIM endpoint.").into());
    };
    let refuse = |why: &str| {
        tracing::warn!(tenant = %tenant, reason = why, "scim request refused");
        ScimError::from(ApiError::invalid_credentials())
    };
    let Some(presented) = crate::auth::bearer(request.headers()) else {
        return Err(refuse("no bearer token"));
    };
    let hash = crate::auth::api_keys::hash(presented);
    let Some(token) = state.store.scim_token_by_hash(&hash).await? else {
        return Err(refuse("no scim token has this hash"));
    };
    if token.revoked_at.is_some() {
        return Err(refuse("the scim token is revoked"));
    }
    if token.tenant_id != tenant {
        return Err(refuse("the scim token belongs to another tenant"));
    }
    if state.store.live_tenant(&tenant).await.is_err() {
        return Err(refuse("the tenant does not exist or is deleted"));
    }
    request.extensions_mut().insert(ScimCaller {
        tenant,
        token_id: token.id,
    });
    Ok(next.run(request).await)
}

/// Who is provisioning, for the service layer and the audit log: the tenant and the token.
struct Provisioner {
    tenant: String,
    actor: Actor,
    base: String,
}

impl FromRequestParts<AppState> for Provisioner {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let caller = parts
            .extensions
            .get::<ScimCaller>()
            .cloned()
            .ok_or_else(|| ScimError::from(ApiError::invalid_credentials()))?;
        let request_id = crate::server::request_id(&parts.headers).map(str::to_owned);
        let base = base_url(state, &parts.headers, &caller.tenant);
        Ok(Self {
            actor: Actor::scim(&caller.token_id, request_id),
            tenant: caller.tenant,
            base,
        })
    }
}

/// `https://gateway/scim/v2/{tenant}`: from `console.public_url` when set (behind a proxy the
/// Host header may be an internal name), else from the request's Host.
fn base_url(state: &AppState, headers: &http::HeaderMap, tenant: &str) -> String {
    let origin = match &state.running().config.console.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    format!("{origin}/scim/v2/{tenant}")
}

/// A SCIM request body: JSON, under either media type.
fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ScimError> {
    serde_json::from_slice(body).map_err(|error| {
        ScimFault::invalid_syntax(format!("the body is not a valid request: {error}")).into()
    })
}

#[utoipa::path(
    post,
    path = "/scim/v2/{tenant}/.search",
    operation_id = "scim_search",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body(content(
        (SearchRequest = "application/scim+json"),
        (SearchRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "The matching Users and Groups.", body = crate::api::openapi::ScimListResponse, content_type = "application/scim+json"),
        (status = 400, response = crate::api::openapi::ScimErrorResponse),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
/// `POST …/.search` (RFC 7644 §3.4.3): a list whose query comes as a body, for filters too
/// long or too private for a URL. At the root it searches Users and Groups alike.
async fn search(
    State(state): State<AppState>,
    who: Provisioner,
    uri: http::Uri,
    body: Bytes,
) -> Result<Response, ScimError> {
    let request: SearchRequest = parse_body(&body)?;
    let join = |names: Option<Vec<String>>| names.map(|names| names.join(","));
    let query = ListQuery {
        filter: request.filter,
        start_index: request.start_index,
        count: request.count,
        attributes: join(request.attributes),
        excluded_attributes: join(request.excluded_attributes),
    };
    let path = uri.path();
    let mut resources = Vec::new();
    if !path.ends_with("/Groups/.search") {
        resources.extend(users::all(&state, &who).await?);
    }
    if !path.ends_with("/Users/.search") {
        resources.extend(groups::all(&state, &who).await?);
    }
    query.answer(resources)
}

/// A search (RFC 7644 §3.4.3).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ScimSearchRequest)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<Vec<String>>,
    excluded_attributes: Option<Vec<String>>,
}

/// The query of a list or a read (RFC 7644 §3.4.2, §3.9).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    /// A SCIM filter, e.g. `userName eq "jane@example.com"`.
    filter: Option<String>,
    /// 1-based; default 1.
    start_index: Option<i64>,
    /// At most 200 resources a page.
    count: Option<i64>,
    /// Comma-separated attributes to return.
    attributes: Option<String>,
    /// Comma-separated attributes to leave out.
    excluded_attributes: Option<String>,
}

impl ListQuery {
    /// Filters, pages and projects rendered resources.
    fn answer(&self, resources: Vec<Value>) -> Result<Response, ScimError> {
        let filter = self
            .filter
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .map(filter::Filter::parse)
            .transpose()?;
        let matching: Vec<Value> = resources
            .into_iter()
            .filter(|resource| filter.as_ref().is_none_or(|f| f.matches(resource)))
            .collect();
        let total = matching.len();
        let start = self.start_index.unwrap_or(1).max(1) as usize;
        let count = self
            .count
            .unwrap_or(discovery::MAX_RESULTS as i64)
            .clamp(0, discovery::MAX_RESULTS as i64) as usize;
        let page = matching
            .into_iter()
            .skip(start - 1)
            .take(count)
            .map(|resource| self.project(resource))
            .collect();
        Ok(scim_json(
            StatusCode::OK,
            &discovery::list(page, total, start),
        ))
    }

    fn project(&self, resource: Value) -> Value {
        resource::project(
            resource,
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }
}

#[utoipa::path(
    get,
    path = "/scim/v2/{tenant}/ServiceProviderConfig",
    operation_id = "scim_discovery_config",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "What this SCIM endpoint supports.", body = crate::api::openapi::ScimResource, content_type = "application/scim+json"),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
async fn discovery_config(who: Provisioner) -> Response {
    scim_json(
        StatusCode::OK,
        &discovery::service_provider_config(&who.base),
    )
}

#[utoipa::path(
    get,
    path = "/scim/v2/{tenant}/ResourceTypes",
    operation_id = "scim_discovery_resource_types",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "User and Group.", body = crate::api::openapi::ScimListResponse, content_type = "application/scim+json"),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
async fn discovery_resource_types(who: Provisioner) -> Response {
    let all = discovery::resource_types(&who.base);
    let total = all.len();
    scim_json(StatusCode::OK, &discovery::list(all, total, 1))
}

#[utoipa::path(
    get,
    path = "/scim/v2/{tenant}/ResourceTypes/{id}",
    operation_id = "scim_discovery_resource_type",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The resource's id.")),
    responses(
        (status = 200, description = "The resource type.", body = crate::api::openapi::ScimResource, content_type = "application/scim+json"),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
        (status = 404, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
async fn discovery_resource_type(
    who: Provisioner,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ScimError> {
    one_of(discovery::resource_types(&who.base), &id, "resource type")
}

#[utoipa::path(
    get,
    path = "/scim/v2/{tenant}/Schemas",
    operation_id = "scim_discovery_schemas",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The schemas of User and Group.", body = crate::api::openapi::ScimListResponse, content_type = "application/scim+json"),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
async fn discovery_schemas(who: Provisioner) -> Response {
    let all = discovery::schemas(&who.base);
    let total = all.len();
    scim_json(StatusCode::OK, &discovery::list(all, total, 1))
}

#[utoipa::path(
    get,
    path = "/scim/v2/{tenant}/Schemas/{id}",
    operation_id = "scim_discovery_schema",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The resource's id.")),
    responses(
        (status = 200, description = "The schema.", body = crate::api::openapi::ScimResource, content_type = "application/scim+json"),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
        (status = 404, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
async fn discovery_schema(
    who: Provisioner,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ScimError> {
    one_of(discovery::schemas(&who.base), &id, "schema")
}

fn one_of(all: Vec<Value>, id: &str, what: &str) -> Result<Response, ScimError> {
    all.into_iter()
        .find(|item| item["id"].as_str() == Some(id))
        .map(|item| scim_json(StatusCode::OK, &item))
        .ok_or_else(|| ApiError::not_found(format!("No {what} `{id}`.")).into())
}

/// A created resource: 201 with its `Location`.
fn created(resource: &Value) -> Response {
    let mut response = scim_json(StatusCode::CREATED, resource);
    if let Some(location) = resource["meta"]["location"].as_str()
        && let Ok(location) = HeaderValue::from_str(location)
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A resource the identity provider named that is not there.
fn not_found(kind: &str, id: &str) -> ScimError {
    ApiError::not_found(format!("{kind} `{id}` not found.")).into()
}

/// A `NotFound` from the service layer, named as the identity provider knows the resource.
fn missing(kind: &'static str, error: AdminError, id: &str) -> ScimError {
    match error {
        AdminError::Store(StoreError::NotFound(what)) if what == kind => not_found(kind, id),
        error => error.into(),
    }
}
