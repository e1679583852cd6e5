//! OpenAI's Responses API, `POST /v1/responses` (JSON or events), stateless. The same identity,
//! quotas and metering as chat, and OpenAI's error envelope.
//!
//! A target that serves the Responses API (OpenAI, Azure) gets the request as sent; any other
//! gets it translated to chat completions, and its answer translated back
//! (`tollgate_providers::responses`). State kept on OpenAI's side (`previous_response_id`,
//! `store: true`) therefore works on a native target only; elsewhere it is a 400 naming the field.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use tollgate_providers::responses::ResponsesRequest;

use super::call::{Call, Caller};
use super::sse::Dialect;
use super::{output, strip_steering};
use crate::api::json::ApiJson;
use crate::error::ApiError;
use crate::metering::{Endpoint, Prompt};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/v1/responses",
    operation_id = "responses",
    tag = "data plane",
    request_body = crate::api::openapi::ResponsesRequest,
    responses(
        (status = 200, description = "The response, or with `stream: true` its events (`response.created` … `response.completed`).", content(
            (crate::api::openapi::UpstreamAnswer = "application/json"),
            (crate::api::openapi::StreamEvent = "text/event-stream"),
        )),
        crate::api::openapi::RoutedFailures,
    ),
    security(("bearer" = []))
)]
pub async fn responses(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut req): ApiJson<ResponsesRequest>,
) -> Result<Response, ApiError> {
    strip_steering(&mut req.extra);
    let output = output(
        &state,
        &[("max_output_tokens", req.max_output_tokens)],
        None,
    )?;
    let streaming = req.stream == Some(true);
    let endpoint = if streaming {
        Endpoint::ResponsesStream
    } else {
        Endpoint::Responses
    };
    let req = Arc::new(req);
    let prompt = Prompt::Responses(req.clone());
    let call = Call::begin(&state, caller, endpoint, &req.model, output, prompt).await?;
    let req = &*req;
    if streaming {
        call.stream(&state, Dialect::Responses, |target| async move {
            let client = &target.provider.client;
            client.responses_stream(req, &target.upstream_model).await
        })
        .await
    } else {
        call.json(|target| async move {
            target
                .provider
                .client
                .responses(req, &target.upstream_model)
                .await
        })
        .await
    }
}
