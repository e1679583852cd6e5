//! `POST /admin/v1/auth/explain`: why a token is accepted or refused, step by step.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use crate::api::json::ApiJson;
use crate::auth::explain::Explanation;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainBody {
    /// A JWT or API key, with or without `Bearer `.
    token: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/auth/explain",
    operation_id = "auth_explain",
    tag = "auth",
    request_body = ExplainBody,
    responses(
        (status = 200, description = "Every authentication step's verdict.", body = Explanation),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
    ),
    security(("platform_token" = []))
)]
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
