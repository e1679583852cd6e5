//! Anthropic's Messages API: `POST /v1/messages` (JSON or events) and
//! `POST /v1/messages/count_tokens`, for Claude Code and the anthropic SDKs. The same identity,
//! quotas and metering as chat; errors in Anthropic's envelope (see [`envelope`]).
//!
//! A target of kind `anthropic` gets the request as sent; any other gets it translated to chat
//! completions, and its answer translated back (`tollgate_providers::messages`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, header};
use tollgate_providers::AnyProvider;
use tollgate_providers::anthropic::Forwarded;
use tollgate_providers::messages::MessagesRequest;

use super::call::{Call, Caller, json_response};
use super::sse::Dialect;
use super::{output, resolve, strip_steering};
use crate::api::json::ApiJson;
use crate::error::ApiError;
use crate::metering::{Endpoint, Prompt, tokenizer};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/v1/messages",
    operation_id = "messages",
    tag = "data plane",
    request_body = crate::api::openapi::MessagesRequest,
    responses(
        (status = 200, description = "The message, or with `stream: true` its events (`message_start` … `message_stop`).", content(
            (crate::api::openapi::UpstreamAnswer = "application/json"),
            (crate::api::openapi::StreamEvent = "text/event-stream"),
        )),
        crate::api::openapi::AnthropicRoutedFailures,
    ),
    security(("bearer" = []), ("x_api_key" = []))
)]
pub async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(mut req): ApiJson<MessagesRequest>,
) -> Result<Response, ApiError> {
    strip_steering(&mut req.extra);
    let Some(max_tokens) = req.max_tokens else {
        return Err(ApiError::invalid_field(
            "max_tokens",
            "`max_tokens` is required.",
        ));
    };
    let output = output(&state, &[("max_tokens", Some(max_tokens))], None)?;
    let streaming = req.stream == Some(true);
    let endpoint = if streaming {
        Endpoint::MessagesStream
    } else {
        Endpoint::Messages
    };
    let forwarded = &forwarded(&headers);
    let req = Arc::new(req);
    let prompt = Prompt::Messages(req.clone());
    let call = Call::begin(&state, caller, endpoint, &req.model, output, prompt).await?;
    let req = &*req;
    if streaming {
        call.stream(&state, Dialect::Messages, |target| async move {
            let client = &target.provider.client;
            client
                .messages_stream(req, &target.upstream_model, forwarded)
                .await
        })
        .await
    } else {
        call.json(|target| async move {
            let client = &target.provider.client;
            client
                .messages(req, &target.upstream_model, forwarded)
                .await
        })
        .await
    }
}

#[utoipa::path(
    post,
    path = "/v1/messages/count_tokens",
    operation_id = "count_tokens",
    tag = "data plane",
    request_body = crate::api::openapi::MessagesRequest,
    responses(
        (status = 200, description = "The prompt's size in tokens.", body = crate::api::openapi::TokenCount),
        (status = 400, response = crate::api::openapi::AnthropicErrorResponse),
        (status = 401, response = crate::api::openapi::AnthropicErrorResponse),
        (status = 403, response = crate::api::openapi::AnthropicErrorResponse),
        (status = 404, response = crate::api::openapi::AnthropicErrorResponse),
    ),
    security(("bearer" = []), ("x_api_key" = []))
)]
/// `POST /v1/messages/count_tokens`: the upstream's own count when the model's first target is
/// an Anthropic one that answers, else the gateway's tokenizer estimate. Free, like
/// Anthropic's: no quota is taken and no usage recorded.
pub async fn count_tokens(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(mut req): ApiJson<MessagesRequest>,
) -> Result<Response, ApiError> {
    strip_steering(&mut req.extra);
    let principal = caller.principal();
    let running = state.running();
    let model = resolve(&running, principal, &req.model)?;
    let plan = running.routes.plan(model, |name| principal.may_use(name));
    if let Some(target) = plan.first()
        && let AnyProvider::Anthropic(anthropic) = &target.provider.client
    {
        let forwarded = forwarded(&headers);
        let counted = anthropic.count_tokens(&req, &target.upstream_model, &forwarded);
        match tokio::time::timeout(target.provider.timeout, counted).await {
            Ok(Ok(body)) => return Ok(json_response(body)),
            Ok(Err(error)) => {
                tracing::warn!(code = error.code(), %error, "count_tokens upstream failed; estimating");
            }
            Err(_) => tracing::warn!("count_tokens upstream timed out; estimating"),
        }
    }
    tokenizer::ready_for(&model.name).await;
    let tokens = Prompt::Messages(Arc::new(req)).estimate(&model.name);
    let body = serde_json::json!({ "input_tokens": tokens }).to_string();
    Ok(json_response(body.into()))
}

/// The client's `anthropic-version` and `anthropic-beta`, for an Anthropic upstream.
fn forwarded(headers: &HeaderMap) -> Forwarded {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    Forwarded {
        version: header("anthropic-version"),
        beta: header("anthropic-beta"),
    }
}

/// Middleware for Anthropic's routes: errors — the authentication stage's too — in Anthropic's
/// envelope with the same status, and the request id also as `request-id`, where the
/// anthropic SDK looks for it.
pub async fn envelope(request: Request, next: Next) -> Response {
    let id = request.headers().get("x-request-id").cloned();
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        response = Response::from_parts(parts, Body::from(error.anthropic_body()));
    }
    if let Some(id) = id {
        response.headers_mut().insert("request-id", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use tollgate_providers::messages;

    use super::*;
    use crate::metering::tokenizer;

    #[test]
    fn count_is_the_translated_prompt() {
        let req: MessagesRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "system": "be brief",
            "messages": [{"role": "user", "content": "hello there"}]
        }))
        .unwrap();
        let chat = messages::to_chat(&req).unwrap();
        assert_eq!(
            Prompt::Messages(Arc::new(req)).estimate("gpt-4o"),
            tokenizer::estimate_prompt(&chat)
        );
    }
}
