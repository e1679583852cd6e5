//! One data-plane request's lifecycle, the same for every route: who is calling, the model they
//! asked for (404, then 403), the quota reservation (429), the plan of targets, and the meter
//! that records how the request ends. A handler parses its body, begins a [`Call`], calls the
//! upstream through `state.routes`, and renders the answer in its own shape.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;
use tokio::time::Instant;

use super::{admit, books, may_use, resolve, with_rate_headers};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::metering::{Endpoint, Meter, Prompt};
use crate::quota::{MinuteLimits, Output};
use crate::routing::Target;
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

/// A request that was admitted and planned; its meter is running.
pub struct Call {
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
        let resolved = resolve(state, &principal, model)?;
        let admitted = admit(state, &principal, &resolved.name, output, || {
            prompt.estimate(model)
        })
        .await?;
        let limits = admitted.limits;
        let plan = state
            .routes
            .plan(resolved, |name| may_use(&principal, name));
        let mut meter = Meter::start(
            books(state),
            request_id,
            principal,
            endpoint,
            resolved.name.clone(),
            arrived,
        );
        meter.admitted(admitted);
        meter.prompt(prompt);
        Ok(Self {
            plan,
            meter,
            limits,
        })
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
