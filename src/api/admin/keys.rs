//! A user's API keys: created once (the only time the key is shown), listed, revoked.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::api::json::ApiJson;
use crate::audit::Actor;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::ApiKey;

#[derive(Deserialize)]
pub struct UserPath {
    tenant: String,
    subject: String,
}

#[derive(Deserialize)]
pub struct KeyPath {
    tenant: String,
    subject: String,
    id: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    /// RFC 3339, in the future; none: the key does not expire.
    #[serde(default)]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// The answer to a create: the one time the key itself is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key itself, shown this once; it is stored hashed.
    key: String,
    #[serde(flatten)]
    details: ApiKey,
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/users/{subject}/keys",
    operation_id = "keys_create",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id."), ("subject" = String, Path, description = "The user's subject, as the identity provider names it.")),
    request_body = NewKeyBody,
    responses(
        (status = 201, description = "The key, shown this once.", body = CreatedKey),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<UserPath>,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    ids::text("name", &body.name, 256)?;
    let expires_at = match &body.expires_at {
        None => None,
        Some(text) => {
            let at = Timestamp::parse_rfc3339(text).ok_or_else(|| {
                ApiError::invalid_request(
                    "`expires_at` must be an RFC 3339 time, e.g. 2026-12-31T00:00:00Z",
                )
            })?;
            if at <= Timestamp::now() {
                return Err(ApiError::invalid_request("`expires_at` is in the past"));
            }
            Some(at)
        }
    };
    let new = state
        .admin
        .create_api_key(&by, &path.tenant, &path.subject, &body.name, expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: new.secret,
            details: new.key,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/users/{subject}/keys",
    operation_id = "keys_list",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id."), ("subject" = String, Path, description = "The user's subject, as the identity provider names it.")),
    responses(
        (status = 200, description = "The user's keys, without the keys themselves.", body = Vec<ApiKey>),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Path(path): Path<UserPath>,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    state.store.live_tenant(&path.tenant).await?;
    Ok(Json(
        state.store.api_keys(&path.tenant, &path.subject).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/users/{subject}/keys/{id}",
    operation_id = "keys_revoke",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id."), ("subject" = String, Path, description = "The user's subject, as the identity provider names it."), ("id" = String, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "The key, revoked.", body = ApiKey),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<KeyPath>,
) -> Result<Json<ApiKey>, ApiError> {
    let key = state
        .admin
        .revoke_api_key(&by, &path.tenant, &path.subject, &path.id)
        .await?;
    Ok(Json(key))
}
