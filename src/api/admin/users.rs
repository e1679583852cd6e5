//! A tenant's users: upsert, read, list, soft delete, and token revocation.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;

use crate::api::json::ApiJson;
use crate::api::query::ApiQuery;
use crate::audit::Actor;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{RevokedToken, Upserted, User, UserPatch, UserRole, UserStatus};

const MAX_EMAIL: usize = 254;

#[derive(Deserialize)]
pub struct UserPath {
    tenant: String,
    subject: String,
}

/// What to set; a field left out keeps its value (or its default, for a new user).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role: Option<UserRole>,
    /// `active` or `suspended`; delete a user with DELETE.
    #[serde(default)]
    status: Option<UserStatus>,
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/users/{subject}",
    operation_id = "users_upsert",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id."), ("subject" = String, Path, description = "The user's subject, as the identity provider names it.")),
    request_body = UpsertBody,
    responses(
        (status = 200, description = "The user, updated.", body = User),
        (status = 201, description = "The user, created.", body = User),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// `PUT …/users/{subject}`: 201 when created, 200 when updated.
pub async fn upsert(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<UserPath>,
    ApiJson(body): ApiJson<UpsertBody>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    ids::subject("subject", &path.subject)?;
    if let Some(email) = &body.email {
        ids::text("email", email, MAX_EMAIL)?;
        if !email.contains('@') {
            return Err(ApiError::invalid_request(
                "`email` is not an e-mail address",
            ));
        }
    }
    if let Some(name) = &body.display_name {
        ids::text("display_name", name, ids::MAX_TEXT)?;
    }
    if body.status == Some(UserStatus::Deleted) {
        return Err(ApiError::invalid_request(
            "`status` may be `active` or `suspended`; delete a user with DELETE.",
        ));
    }
    let patch = UserPatch {
        email: body.email,
        display_name: body.display_name,
        role: body.role,
        status: body.status,
    };
    let (user, upserted) = state
        .admin
        .upsert_user(&by, &path.tenant, &path.subject, &patch)
        .await?;
    let status = match upserted {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok((status, Json(user)))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/users/{subject}",
    operation_id = "users_get",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id."), ("subject" = String, Path, description = "The user's subject, as the identity provider names it.")),
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Path(path): Path<UserPath>,
) -> Result<Json<User>, ApiError> {
    state.store.live_tenant(&path.tenant).await?;
    let user = state
        .store
        .user(&path.tenant, &path.subject)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found."))?;
    Ok(Json(user))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only users in this status: `active`, `suspended` or `deleted`.
    #[serde(default)]
    status: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/users",
    operation_id = "users_list",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id."), ListQuery),
    responses(
        (status = 200, description = "The tenant's users.", body = Vec<User>),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<User>>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(UserStatus::parse(text).ok_or_else(|| {
            ApiError::invalid_request("`status` must be `active`, `suspended` or `deleted`")
        })?),
    };
    state.store.live_tenant(&tenant).await?;
    Ok(Json(state.store.users(&tenant, status).await?))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/users/{subject}",
    operation_id = "users_delete",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id."), ("subject" = String, Path, description = "The user's subject, as the identity provider names it.")),
    responses(
        (status = 200, description = "The user, now `deleted`.", body = User),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// Soft delete: the user's status becomes `deleted`; the row and usage history stay, and the
/// user's tokens and API keys end for good (a later restore does not bring them back).
pub async fn delete(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<UserPath>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(
        state
            .admin
            .delete_user(&by, &path.tenant, &path.subject)
            .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/users/{subject}/revoke-tokens",
    operation_id = "users_revoke_tokens",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id."), ("subject" = String, Path, description = "The user's subject, as the identity provider names it.")),
    responses(
        (status = 200, description = "The user, with `tokens_valid_after` now.", body = User),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// Every token issued to the user before now is rejected from now on.
pub async fn revoke_tokens(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<UserPath>,
) -> Result<Json<User>, ApiError> {
    let user = state
        .admin
        .revoke_user_tokens(&by, &path.tenant, &path.subject)
        .await?;
    Ok(Json(user))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokenBody {
    jti: String,
    /// RFC 3339; after this the token has expired anyway and the entry may be dropped.
    #[schema(format = DateTime)]
    expires_at: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/revoked-tokens",
    operation_id = "users_revoke_token",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body = RevokeTokenBody,
    responses(
        (status = 201, description = "The token is revoked.", body = RevokedToken),
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
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<RevokeTokenBody>,
) -> Result<(StatusCode, Json<RevokedToken>), ApiError> {
    ids::text("jti", &body.jti, ids::MAX_TEXT)?;
    let expires_at = Timestamp::parse_rfc3339(&body.expires_at).ok_or_else(|| {
        ApiError::invalid_request(
            "`expires_at` must be an RFC 3339 time, e.g. 2026-12-31T00:00:00Z",
        )
    })?;
    let revoked = state
        .admin
        .revoke_token(&by, &tenant, &body.jti, expires_at)
        .await?;
    Ok((StatusCode::CREATED, Json(revoked)))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/revoked-tokens",
    operation_id = "users_revoked_tokens",
    tag = "users",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The tokens revoked one by one, until they expire.", body = Vec<RevokedToken>),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn revoked_tokens(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<RevokedToken>>, ApiError> {
    state.store.live_tenant(&tenant).await?;
    Ok(Json(state.store.revoked_tokens(&tenant).await?))
}
