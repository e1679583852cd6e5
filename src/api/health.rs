//! Liveness and readiness.
//!
//! During a database outage every replica shares, taking them all out of the load balancer
//! would turn a partial outage (new callers refused) into a total one. So `/readyz` stays 200,
//! with `"status": "degraded"`, while cached state may still be served (`auth.stale_if_error`),
//! and answers 503 only when this replica cannot serve anyone: the database is down and the
//! stale window is over, or stale serving is off.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::{ApiError, ErrorKind};
use crate::stale::Health;
use crate::state::AppState;

/// How this replica is: `ok` (alive), `ready` or `degraded` (serving from its caches).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    status: &'static str,
    /// Degraded: what is unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    down: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
    /// Degraded: how much longer cached state may be served.
    #[serde(skip_serializing_if = "Option::is_none")]
    stale_for_at_most_seconds: Option<u64>,
}

impl Status {
    fn just(status: &'static str) -> Self {
        Self {
            status,
            down: None,
            detail: None,
            stale_for_at_most_seconds: None,
        }
    }
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "meta",
    responses((status = 200, description = "Alive.", body = Status)),
    security(())
)]
pub async fn healthz() -> Json<Status> {
    Json(Status::just("ok"))
}

/// The process can serve: the database answers within two seconds, or cached state is still
/// within its stale window.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "meta",
    responses(
        (status = 200, description = "Ready, or degraded but serving.", body = Status),
        (status = 503, response = crate::api::openapi::Unavailable),
    ),
    security(())
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    let stale = state.auth.directory().stale();
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => stale.answered(),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check: database unreachable");
            stale.unreachable();
        }
        Err(_) => {
            tracing::warn!("readiness check: database did not answer within 2 s");
            stale.unreachable();
        }
    }
    match stale.health() {
        Health::Ready => Ok(Json(Status::just("ready"))),
        Health::Degraded { left } => Ok(Json(Status {
            status: "degraded",
            down: Some(vec!["database"]),
            detail: Some(
                "serving cached identity, allow-lists and quota limits; callers not cached get 503",
            ),
            stale_for_at_most_seconds: Some(left.as_secs()),
        })),
        Health::Down => Err(
            ApiError::new(ErrorKind::Unavailable, "The database is unreachable.")
                .with_retry_after(1),
        ),
    }
}
