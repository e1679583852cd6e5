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
use serde_json::{Value, json};

use crate::error::{ApiError, ErrorKind};
use crate::stale::Health;
use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: the database answers within two seconds, or cached state is still
/// within its stale window.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
        Health::Ready => Ok(Json(json!({ "status": "ready" }))),
        Health::Degraded { left } => Ok(Json(json!({
            "status": "degraded",
            "down": ["database"],
            "detail": "serving cached identity, allow-lists and quota limits; callers not cached get 503",
            "stale_for_at_most_seconds": left.as_secs(),
        }))),
        Health::Down => Err(
            ApiError::new(ErrorKind::Unavailable, "The database is unreachable.")
                .with_retry_after(1),
        ),
    }
}
