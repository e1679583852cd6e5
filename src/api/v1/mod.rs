//! The OpenAI-compatible data plane. Each handler: parse the body (400/413) → the model must
//! exist (404) → the tenant must be allowed it (403) → route → respond, metering the outcome.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::error::{ApiError, ErrorKind};
use crate::routing::Model;
use crate::state::AppState;

mod chat;
mod embeddings;
mod sse;

pub use chat::chat_completions;
pub use embeddings::embeddings;

/// `GET /v1/models`: the configured models the caller's tenant may use.
pub async fn models(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Json<Value> {
    let data: Vec<Value> = state
        .config
        .models
        .iter()
        .filter(|model| may_use(&principal, &model.name))
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

/// Body fields that some SDKs and proxies read as "send this request elsewhere / with these
/// credentials / headers". tollgate never interprets them, and removes them so an
/// OpenAI-compatible upstream does not either.
const STEERING_FIELDS: [&str; 12] = [
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "api_type",
    "organization",
    "extra_headers",
    "headers",
    "custom_llm_provider",
    "deployment_id",
    "azure_ad_token",
    "aws_secret_access_key",
];

pub(crate) fn strip_steering(extra: &mut Map<String, Value>) {
    if extra.is_empty() {
        return;
    }
    for field in STEERING_FIELDS {
        extra.remove(field);
    }
}

/// Whether the caller's tenant may use the model called `name`.
pub(crate) fn may_use(principal: &Principal, name: &str) -> bool {
    principal
        .tenant
        .allowed_models
        .as_deref()
        .is_none_or(|list| list.iter().any(|allowed| allowed == name))
}

/// The model the request names: an unknown name is 404 (a URL is just an unknown name), then
/// one the tenant may not use is 403, in the contract's order.
pub(crate) fn resolve<'a>(
    state: &'a AppState,
    principal: &Principal,
    name: &str,
) -> Result<&'a Model, ApiError> {
    let model = state.routes.model(name).ok_or_else(|| {
        ApiError::new(
            ErrorKind::ModelNotFound,
            format!("The model `{}` does not exist.", shorten(name)),
        )
    })?;
    if !may_use(principal, name) {
        return Err(ApiError::new(
            ErrorKind::ModelNotAllowed,
            format!("Your organisation may not use the model `{}`.", model.name),
        ));
    }
    Ok(model)
}

/// The request id the middleware put on the request.
pub(crate) fn request_id(headers: &HeaderMap) -> Arc<str> {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .into()
}

/// Echoing a client's string back is fine; echoing a megabyte of it is not.
fn shorten(text: &str) -> &str {
    match text.char_indices().nth(100) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}
