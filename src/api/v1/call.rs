//! One data-plane request's lifecycle, the same for every route: who is calling, the model they
//! asked for (404, then 403), the quota reservation (429), the plan of targets, and the meter
//! that records how the request ends. A handler parses its dialect, begins a [`Call`], and hands
//! it the upstream call: [`Call::json`] for a whole answer, [`Call::stream`] for events.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use tokio::time::Instant;
use tollgate_providers::{ChatResponse, ChatStream, ProviderError};

use super::sse::{self, Dialect};
use super::{admit, books, resolve, served_by, with_rate_headers};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorKind};
use crate::metering::{Ending, Endpoint, Meter, Prompt, tokenizer};
use crate::quota::{MinuteLimits, Output};
use crate::reload::Running;
use crate::routing::{RouteError, Routes, Target};
use crate::server::Arrived;
use crate::state::AppState;

/// Who is calling, as the stages before the handler found out: the principal (authentication),
/// the request id and the arrival time (the front door).
pub struct Caller {
    principal: Principal,
    request_id: Arc<str>,
    arrived: Instant,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // The data-plane routes sit behind the authentication layer; without its principal
        // something is miswired, and nobody is let through.
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(ApiError::invalid_credentials)?;
        let arrived = parts
            .extensions
            .get::<Arrived>()
            .map_or_else(Instant::now, |Arrived(at)| *at);
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .into();
        Ok(Self {
            principal,
            request_id,
            arrived,
        })
    }
}

// === impl Caller ===

impl Caller {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// A request that was admitted and planned; its meter is running.
pub struct Call {
    /// The configuration the request began under, kept to its end (a reload does not change a
    /// request half-way).
    running: Arc<Running>,
    /// The targets to try, in order.
    pub plan: Vec<Arc<Target>>,
    /// Records the request's outcome exactly once (when finished, or when dropped).
    pub meter: Meter,
    /// Where the caller's per-minute limits stand, for the answer's `x-ratelimit-*` headers.
    limits: MinuteLimits,
}

impl Call {
    /// Resolves `model` for the caller, reserves `output` plus the prompt's estimate against
    /// their quotas, plans the targets and starts the meter.
    pub async fn begin(
        state: &AppState,
        caller: Caller,
        endpoint: Endpoint,
        model: &str,
        output: Output,
        prompt: Prompt,
    ) -> Result<Self, ApiError> {
        let Caller {
            principal,
            request_id,
            arrived,
        } = caller;
        let running = state.running();
        let resolved = resolve(&running, &principal, model)?;
        // Immediate, but for the first request that needs a vocabulary (a few hundred ms).
        tokenizer::ready_for(model).await;
        let admitted = admit(state, &running, &principal, &resolved.name, output, || {
            prompt.estimate(model)
        })
        .await?;
        let limits = admitted.limits;
        let plan = running
            .routes
            .plan(resolved, |name| principal.may_use(name));
        let mut meter = Meter::start(
            books(state, &running),
            request_id,
            principal,
            endpoint,
            resolved.name.clone(),
            arrived,
        );
        meter.admitted(admitted);
        meter.prompt(prompt);
        Ok(Self {
            running,
            plan,
            meter,
            limits,
        })
    }

    /// The routes the request began with.
    pub fn routes(&self) -> &Routes {
        &self.running.routes
    }

    /// Asks the plan's targets for a whole answer (`call` asks one target: see
    /// [`Routes::call`]) and sends its body as the adapter made it, metered by the usage it
    /// reported or else by its text.
    pub async fn json<F, Fut>(mut self, call: F) -> Result<Response, ApiError>
    where
        F: Fn(Arc<Target>) -> Fut,
        Fut: Future<Output = Result<ChatResponse, ProviderError>>,
    {
        let plan = std::mem::take(&mut self.plan);
        self.meter.upstream_started();
        let served = self.running.routes.call(&plan, call).await;
        self.meter.upstream_finished();
        let served = served.map_err(|error| failed(&mut self.meter, error))?;
        let meter = &mut self.meter;
        served_by(meter, &served.target, served.attempts);
        match served.value.usage {
            Some(usage) => meter.usage(usage),
            // No usage from the upstream: the answer's text is what gets counted.
            None => meter.delivered(&served.value.body),
        }
        meter.finish(StatusCode::OK.as_u16(), Ending::Ok);
        Ok(self.respond(json_response(served.value.body)))
    }

    /// Asks the plan's targets for a stream (`call` as for [`Call::json`]) and relays it in
    /// `dialect`; the meter rides in the body and records when it ends, or when the client
    /// leaves.
    pub async fn stream<F, Fut>(
        mut self,
        state: &AppState,
        dialect: Dialect,
        call: F,
    ) -> Result<Response, ApiError>
    where
        F: Fn(Arc<Target>) -> Fut,
        Fut: Future<Output = Result<ChatStream, ProviderError>>,
    {
        let keep_alive = self.running.config.server.sse_keep_alive;
        let plan = std::mem::take(&mut self.plan);
        self.meter.upstream_started();
        let served = self
            .running
            .routes
            .stream(&plan, keep_alive, call)
            .await
            .map_err(|error| failed(&mut self.meter, error))?;
        served_by(&mut self.meter, &served.target, served.attempts);
        let cut = state.streams_cut.clone();
        Ok(self.respond_with(|meter| sse::response(served.value, dialect, keep_alive, cut, meter)))
    }

    /// The answer, with the admission's rate-limit headers.
    pub fn respond(self, response: Response) -> Response {
        with_rate_headers(response, &self.limits)
    }

    /// An answer that carries the meter on (a stream records when its body ends), with the
    /// admission's rate-limit headers.
    pub fn respond_with(self, build: impl FnOnce(Meter) -> Response) -> Response {
        with_rate_headers(build(self.meter), &self.limits)
    }
}

/// The upstream's (or the translation's) bytes, unchanged.
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
        ErrorKind::UpstreamTimeout => Ending::UpstreamTimeout,
        ErrorKind::InvalidRequest => Ending::Rejected,
        _ => Ending::UpstreamError,
    };
    meter.finish(api.kind.spec().status.as_u16(), ending);
    api
}
