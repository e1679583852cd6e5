//! A tenant's users: upsert, read, list, soft delete, and token revocation.

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use serde::Deserialize;

use crate::api::json::ApiJson;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role: Option<UserRole>,
    #[serde(default)]
    status: Option<UserStatus>,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(query): Query<ListQuery>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokenBody {
    jti: String,
    /// RFC 3339; after this the token has expired anyway and the entry may be dropped.
    expires_at: String,
}

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

pub async fn revoked_tokens(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<RevokedToken>>, ApiError> {
    state.store.live_tenant(&tenant).await?;
    Ok(Json(state.store.revoked_tokens(&tenant).await?))
}
