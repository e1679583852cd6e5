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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    name: String,
    #[serde(default)]
    expires_at: Option<String>,
}

/// The answer to a create: the one time the key itself is shown.
#[derive(Serialize)]
pub struct CreatedKey {
    key: String,
    #[serde(flatten)]
    details: ApiKey,
}

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

pub async fn list(
    State(state): State<AppState>,
    Path(path): Path<UserPath>,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    state.store.live_tenant(&path.tenant).await?;
    Ok(Json(
        state.store.api_keys(&path.tenant, &path.subject).await?,
    ))
}

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
