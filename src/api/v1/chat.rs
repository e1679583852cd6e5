//! `POST /v1/chat/completions`, as JSON or as a server-sent event stream.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tollgate_providers::ChatRequest;

use std::sync::Arc;

use super::{
    admit, books, may_use, output, request_id, resolve, served_by, sse, strip_steering,
    with_rate_headers,
};
use crate::api::json::ApiJson;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::metering::{Ending, Endpoint, Meter, Prompt, tokenizer};
use crate::routing::RouteError;
use crate::server::Arrived;
use crate::state::AppState;

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    arrived: Option<Extension<Arrived>>,
    headers: HeaderMap,
    ApiJson(mut req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    strip_steering(&mut req.extra);
    let model = resolve(&state, &principal, &req.model)?;
    let output = output(
        &state,
        &[
            ("max_completion_tokens", req.max_completion_tokens),
            ("max_tokens", req.max_tokens),
        ],
        req.n,
    )?;
    let mut admitted = admit(&state, &principal, &model.name, output, || {
        tokenizer::estimate_prompt(&req)
    })
    .await?;
    let rate_headers = std::mem::take(&mut admitted.headers);
    let plan = state.routes.plan(model, |name| may_use(&principal, name));
    let streaming = req.stream == Some(true);
    let endpoint = if streaming {
        Endpoint::ChatStream
    } else {
        Endpoint::Chat
    };
    let mut meter = Meter::start(
        books(&state),
        request_id(&headers),
        principal,
        endpoint,
        model.name.clone(),
        arrived.map_or_else(tokio::time::Instant::now, |Extension(Arrived(at))| at),
    );
    meter.admitted(admitted);
    let req = Arc::new(req);
    meter.prompt(Prompt::Chat(req.clone()));

    if streaming {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            == Some(true);
        let keep_alive = state.config.server.sse_keep_alive;
        meter.upstream_started();
        return match state.routes.chat_stream(&plan, &req, keep_alive).await {
            Ok(served) => {
                let target = &served.target;
                served_by(&mut meter, target, served.attempts);
                let cut = state.streams_cut.clone();
                let response = sse::response(served.value, include_usage, keep_alive, cut, meter);
                Ok(with_rate_headers(response, rate_headers))
            }
            Err(error) => Err(failed(&mut meter, error)),
        };
    }

    meter.upstream_started();
    let served = state.routes.chat(&plan, &req).await;
    meter.upstream_finished();
    match served {
        Ok(served) => {
            let target = &served.target;
            served_by(&mut meter, target, served.attempts);
            match served.value.usage {
                Some(usage) => meter.usage(usage),
                // No usage from the upstream: the answer's text is what gets counted.
                None => meter.delivered(&served.value.body),
            }
            meter.finish(StatusCode::OK.as_u16(), Ending::Ok);
            Ok(with_rate_headers(
                json_response(served.value.body),
                rate_headers,
            ))
        }
        Err(error) => Err(failed(&mut meter, error)),
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
