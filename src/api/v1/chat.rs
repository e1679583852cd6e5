//! `POST /v1/chat/completions`, as JSON or as a server-sent event stream.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tollgate_providers::ChatRequest;

use super::{may_use, request_id, resolve, sse, strip_steering};
use crate::api::json::ApiJson;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::metering::{Ending, Endpoint, Meter};
use crate::routing::RouteError;
use crate::state::AppState;

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiJson(mut req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    strip_steering(&mut req.extra);
    let model = resolve(&state, &principal, &req.model)?;
    let plan = state.routes.plan(model, |name| may_use(&principal, name));
    let streaming = req.stream == Some(true);
    let endpoint = if streaming {
        Endpoint::ChatStream
    } else {
        Endpoint::Chat
    };
    let mut meter = Meter::start(
        request_id(&headers),
        principal,
        endpoint,
        model.name.clone(),
    );

    if streaming {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            == Some(true);
        let keep_alive = state.config.server.sse_keep_alive;
        return match state.routes.chat_stream(&plan, &req, keep_alive).await {
            Ok(served) => {
                let target = &served.target;
                meter.target(
                    &target.model,
                    &target.provider.name,
                    &target.upstream_model,
                    served.attempts,
                );
                Ok(sse::response(
                    served.value,
                    include_usage,
                    keep_alive,
                    meter,
                ))
            }
            Err(error) => Err(failed(&mut meter, error)),
        };
    }

    match state.routes.chat(&plan, &req).await {
        Ok(served) => {
            let target = &served.target;
            meter.target(
                &target.model,
                &target.provider.name,
                &target.upstream_model,
                served.attempts,
            );
            if let Some(usage) = served.value.usage {
                meter.usage(usage);
            }
            meter.finish(StatusCode::OK.as_u16(), Ending::Ok);
            Ok(json_response(served.value.body))
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
        meter.target(
            &target.model,
            &target.provider.name,
            &target.upstream_model,
            error.attempts(),
        );
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
