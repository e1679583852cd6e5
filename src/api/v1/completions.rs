//! OpenAI's legacy completions, `POST /v1/completions`, as JSON or as a server-sent event
//! stream framed as chat's. An OpenAI or Azure target gets the request as sent; any other gets
//! the prompt as a chat message (`tollgate_providers::completions`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use tollgate_providers::completions::CompletionsRequest;

use super::call::{Call, Caller};
use super::sse::Dialect;
use super::{output, strip_steering};
use crate::api::json::ApiJson;
use crate::error::ApiError;
use crate::metering::{Endpoint, Prompt};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/v1/completions",
    operation_id = "completions",
    tag = "data plane",
    request_body = crate::api::openapi::CompletionRequest,
    responses(
        (status = 200, description = "The completion, or with `stream: true` its chunks as server-sent events.", content(
            (crate::api::openapi::UpstreamAnswer = "application/json"),
            (crate::api::openapi::StreamEvent = "text/event-stream"),
        )),
        crate::api::openapi::RoutedFailures,
    ),
    security(("bearer" = []))
)]
pub async fn completions(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut req): ApiJson<CompletionsRequest>,
) -> Result<Response, ApiError> {
    strip_steering(&mut req.extra);
    let output = output(&state, &[("max_tokens", req.max_tokens)], req.n)?;
    let streaming = req.stream == Some(true);
    let endpoint = if streaming {
        Endpoint::CompletionsStream
    } else {
        Endpoint::Completions
    };
    let req = Arc::new(req);
    let prompt = Prompt::Completions(req.clone());
    let call = Call::begin(&state, caller, endpoint, &req.model, output, prompt).await?;
    let req = &*req;
    if streaming {
        let dialect = Dialect::chunks(req.stream_options.as_ref());
        call.stream(&state, dialect, |target| async move {
            let client = &target.provider.client;
            client.completions_stream(req, &target.upstream_model).await
        })
        .await
    } else {
        call.json(|target| async move {
            let client = &target.provider.client;
            client.completions(req, &target.upstream_model).await
        })
        .await
    }
}
