//! `POST /admin/v1/auth/explain`: why a token is accepted or refused, step by step.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use crate::api::json::ApiJson;
use crate::auth::explain::Explanation;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainBody {
    token: String,
}

pub async fn explain(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ExplainBody>,
) -> Result<Json<Explanation>, ApiError> {
    let token = body.token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let explanation =
        state.auth.explain(token).await.map_err(|error| {
            ApiError::from(crate::store::StoreError::Invalid(error.to_string()))
        })?;
    Ok(Json(explanation))
}
