//! A user's API keys: created once (the only time the key is shown), listed, revoked.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::api::json::ApiJson;
use crate::auth::api_keys::GeneratedKey;
use crate::changes::Change;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{ApiKey, NewApiKey, UserStatus};

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
    state.store.live_tenant(&path.tenant).await?;
    let user = state
        .store
        .user(&path.tenant, &path.subject)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found."))?;
    if user.status == UserStatus::Deleted {
        return Err(ApiError::invalid_request(
            "The user is deleted; a key would never work.",
        ));
    }
    let generated = GeneratedKey::new().map_err(|error| {
        tracing::error!(%error, "no randomness for a new api key");
        ApiError::internal()
    })?;
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = state.store.begin().await?;
    let key = tx
        .create_api_key(&NewApiKey {
            id: &id,
            tenant_id: &path.tenant,
            subject: &path.subject,
            name: &body.name,
            key_hash: &generated.hash,
            key_prefix: generated.prefix(),
            expires_at,
        })
        .await?;
    tx.commit().await?;
    tracing::info!(tenant = %key.tenant_id, subject = %key.subject, key_id = %key.id, "api key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: generated.key,
            details: key,
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
    Path(path): Path<KeyPath>,
) -> Result<Json<ApiKey>, ApiError> {
    state.store.live_tenant(&path.tenant).await?;
    let mut tx = state.store.begin().await?;
    let key = tx
        .revoke_api_key(&path.tenant, &path.subject, &path.id)
        .await?;
    tx.commit().await?;
    state
        .changes
        .publish(Change::ApiKey {
            hash: key.key_hash.clone(),
        })
        .await;
    tracing::info!(tenant = %key.tenant_id, subject = %key.subject, key_id = %key.id, "api key revoked");
    Ok(Json(key))
}
