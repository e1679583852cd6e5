//! `POST /admin/v1/config/reload`: reads the configuration again, as SIGHUP does, and answers
//! which keys took effect and which wait for a restart — or, with 422 `invalid_config`, the key
//! at fault, the running configuration unchanged.

use axum::Json;
use axum::extract::State;

use crate::error::ApiError;
use crate::reload::Reloaded;
use crate::state::AppState;

pub async fn reload(State(state): State<AppState>) -> Result<Json<Reloaded>, ApiError> {
    Ok(Json(state.live.reload().await?))
}
