//! `POST /v1/chat/completions`, as JSON or as a server-sent event stream.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tollgate_providers::ChatRequest;

use std::sync::Arc;

use super::call::{Call, Caller};
use super::{output, served_by, sse, strip_steering};
use crate::api::json::ApiJson;
use crate::error::ApiError;
use crate::metering::{Ending, Endpoint, Meter, Prompt};
use crate::routing::RouteError;
use crate::state::AppState;

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
    let model = req.model.clone();
    let prompt = Prompt::Chat(req.clone());
    let mut call = Call::begin(&state, caller, endpoint, &model, output, prompt).await?;

    if streaming {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            == Some(true);
        let keep_alive = state.config.server.sse_keep_alive;
        call.meter.upstream_started();
        return match state.routes.chat_stream(&call.plan, &req, keep_alive).await {
            Ok(served) => {
                served_by(&mut call.meter, &served.target, served.attempts);
                let cut = state.streams_cut.clone();
                Ok(call.respond_with(|meter| {
                    sse::response(served.value, include_usage, keep_alive, cut, meter)
                }))
            }
            Err(error) => Err(failed(&mut call.meter, error)),
        };
    }

    call.meter.upstream_started();
    let served = state.routes.chat(&call.plan, &req).await;
    call.meter.upstream_finished();
    match served {
        Ok(served) => {
            let meter = &mut call.meter;
            served_by(meter, &served.target, served.attempts);
            match served.value.usage {
                Some(usage) => meter.usage(usage),
                // No usage from the upstream: the answer's text is what gets counted.
                None => meter.delivered(&served.value.body),
            }
            meter.finish(StatusCode::OK.as_u16(), Ending::Ok);
            Ok(call.respond(json_response(served.value.body)))
        }
        Err(error) => Err(failed(&mut call.meter, error)),
    }
}

/// The upstream's bytes, unchanged.
pub(super) fn json_response(body: bytes::Bytes) -> Response {
    let mut response = Body::from(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Meters a request no target served and turns the failure into the caller's error.
pub(super) fn failed(meter: &mut Meter, error: RouteError) -> ApiError {
    if let RouteError::Exhausted {
        last_target: Some(target),
        ..
    } = &error
    {
        served_by(meter, target, error.attempts());
    } else {
        meter.attempts(error.attempts());
    }
    let api = ApiError::from(error);
    let ending = match api.kind {
        crate::error::ErrorKind::UpstreamTimeout => Ending::UpstreamTimeout,
        crate::error::ErrorKind::InvalidRequest => Ending::Rejected,
        _ => Ending::UpstreamError,
    };
    meter.finish(api.kind.spec().status.as_u16(), ending);
    api
}
