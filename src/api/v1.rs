//! The OpenAI-compatible data plane.

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::state::AppState;

/// `GET /v1/models`: the configured models the caller's tenant may use.
pub async fn models(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Json<Value> {
    let allowed = principal.tenant.allowed_models.as_deref();
    let data: Vec<Value> = state
        .config
        .models
        .iter()
        .filter(|model| allowed.is_none_or(|list| list.contains(&model.name)))
        .map(|model| {
            json!({
                "id": model.name,
                "object": "model",
                "created": 0,
                "owned_by": "tollgate",
            })
        })
        .collect();
    Json(json!({ "object": "list", "data": data }))
}
