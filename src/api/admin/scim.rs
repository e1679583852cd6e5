//! A tenant's SCIM provisioning: the bearer tokens its identity provider uses (shown once,
//! stored hashed) and which SCIM attribute becomes a provisioned user's subject.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::api::json::ApiJson;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{ScimToken, SubjectAttribute};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    #[schema(min_length = 1, max_length = 256)]
    name: String,
}

/// The answer to a create: the one time the token itself is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token itself, shown this once; it is stored hashed.
    token: String,
    #[serde(flatten)]
    details: ScimToken,
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/scim-tokens",
    operation_id = "scim_settings_create_token",
    tag = "scim settings",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body = NewTokenBody,
    responses(
        (status = 201, description = "The token, shown this once.", body = CreatedToken),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn create_token(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    ids::text("name", &body.name, 256)?;
    let new = state
        .admin
        .create_scim_token(&by, &tenant, &body.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: new.secret,
            details: new.token,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/scim-tokens",
    operation_id = "scim_settings_list_tokens",
    tag = "scim settings",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The tenant's SCIM tokens, without the tokens themselves.", body = Vec<ScimToken>),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<ScimToken>>, ApiError> {
    state.store.live_tenant(&tenant).await?;
    Ok(Json(state.store.scim_tokens(&tenant).await?))
}

#[derive(Deserialize)]
pub struct TokenPath {
    tenant: String,
    id: String,
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/scim-tokens/{id}",
    operation_id = "scim_settings_revoke_token",
    tag = "scim settings",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The SCIM token's id.")),
    responses(
        (status = 200, description = "The token, revoked.", body = ScimToken),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<TokenPath>,
) -> Result<Json<ScimToken>, ApiError> {
    Ok(Json(
        state
            .admin
            .revoke_scim_token(&by, &path.tenant, &path.id)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    subject_attribute: SubjectAttribute,
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/scim",
    operation_id = "scim_settings_put_settings",
    tag = "scim settings",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The settings, for users provisioned or changed from now on.", body = Settings),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// `PUT …/scim`: applies to users provisioned or changed from now on.
pub async fn put_settings(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> Result<Json<Settings>, ApiError> {
    state
        .admin
        .set_scim_subject_attribute(&by, &tenant, body.subject_attribute)
        .await?;
    get_settings(State(state), Path(tenant)).await
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/scim",
    operation_id = "scim_settings_get_settings",
    tag = "scim settings",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The settings.", body = Settings),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Settings>, ApiError> {
    state.store.live_tenant(&tenant).await?;
    let attribute = state.store.scim_subject_attribute(&tenant).await?;
    Ok(Json(Settings {
        subject_attribute: attribute,
        base_url: format!("/scim/v2/{tenant}"),
    }))
}

/// A tenant's SCIM settings.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Settings {
    /// Which SCIM attribute becomes a provisioned user's subject.
    subject_attribute: SubjectAttribute,
    /// Where the tenant's identity provider sends SCIM requests, from this host.
    base_url: String,
}
