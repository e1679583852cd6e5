//! `POST /admin/v1/config/reload`: reads the configuration again, as SIGHUP does, and answers
//! which keys took effect and which wait for a restart — or, with 422 `invalid_config`, the key
//! at fault, the running configuration unchanged.

use axum::Json;
use axum::extract::State;

use crate::error::ApiError;
use crate::reload::Reloaded;
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/admin/v1/config/reload",
    operation_id = "config_reload",
    tag = "config",
    responses(
        (status = 200, description = "Read again: the keys now in force and those that wait for a restart.", body = Reloaded),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 409, description = "The gateway's configuration was built in code: there is no file to read again.", body = crate::error::Envelope),
        (status = 422, description = "`invalid_config`: the file is invalid (the message names the key); nothing changed.", body = crate::error::Envelope),
    ),
    security(("platform_token" = []))
)]
pub async fn reload(State(state): State<AppState>) -> Result<Json<Reloaded>, ApiError> {
    Ok(Json(state.live.reload().await?))
}
