//! A tenant's SCIM provisioning: the bearer tokens its identity provider uses (shown once,
//! stored hashed) and which SCIM attribute becomes a provisioned user's subject.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::json::ApiJson;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{ScimToken, SubjectAttribute};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    name: String,
}

/// The answer to a create: the one time the token itself is shown.
#[derive(Serialize)]
pub struct CreatedToken {
    token: String,
    #[serde(flatten)]
    details: ScimToken,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    subject_attribute: SubjectAttribute,
}

/// `PUT …/scim`: applies to users provisioned or changed from now on.
pub async fn put_settings(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> Result<Json<Value>, ApiError> {
    state
        .admin
        .set_scim_subject_attribute(&by, &tenant, body.subject_attribute)
        .await?;
    get_settings(State(state), Path(tenant)).await
}

pub async fn get_settings(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.store.live_tenant(&tenant).await?;
    let attribute = state.store.scim_subject_attribute(&tenant).await?;
    Ok(Json(json!({
        "subject_attribute": attribute,
        "base_url": format!("/scim/v2/{tenant}"),
    })))
}
