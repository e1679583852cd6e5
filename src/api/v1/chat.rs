//! `POST /v1/chat/completions`, as JSON or as a server-sent event stream.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use tollgate_providers::{ChatRequest, Provider};

use super::call::{Call, Caller};
use super::sse::Dialect;
use super::{output, strip_steering};
use crate::api::json::ApiJson;
use crate::error::ApiError;
use crate::metering::{Endpoint, Prompt};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    operation_id = "chat_completions",
    tag = "data plane",
    request_body = crate::api::openapi::ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion, or with `stream: true` its chunks as server-sent events ending with `data: [DONE]`.", content(
            (crate::api::openapi::UpstreamAnswer = "application/json"),
            (crate::api::openapi::StreamEvent = "text/event-stream"),
        )),
        crate::api::openapi::RoutedFailures,
    ),
    security(("bearer" = []))
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    strip_steering(&mut req.extra);
    let output = output(
        &state,
        &[
            ("max_completion_tokens", req.max_completion_tokens),
            ("max_tokens", req.max_tokens),
        ],
        req.n,
    )?;
    let streaming = req.stream == Some(true);
    let endpoint = if streaming {
        Endpoint::ChatStream
    } else {
        Endpoint::Chat
    };
    let req = Arc::new(req);
    let prompt = Prompt::Chat(req.clone());
    let call = Call::begin(&state, caller, endpoint, &req.model, output, prompt).await?;
    let req = &*req;
    if streaming {
        let dialect = Dialect::chunks(req.stream_options.as_ref());
        call.stream(&state, dialect, |target| async move {
            target
                .provider
                .client
                .chat_stream(req, &target.upstream_model)
                .await
        })
        .await
    } else {
        call.json(|target| async move {
            target
                .provider
                .client
                .chat(req, &target.upstream_model)
                .await
        })
        .await
    }
}
