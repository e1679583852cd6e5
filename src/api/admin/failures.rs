//! The refusals this replica made lately: `GET /admin/v1/auth/failures` (the platform: every
//! tenant's, and those no tenant could be told for) and `GET /admin/v1/tenants/{tenant}/auth-failures`
//! (one tenant's: what its admins may see).

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use crate::auth::refusals::{MinuteCount, Refused, Scope};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Failures {
    /// The latest refusals, newest first.
    recent: Vec<Refused>,
    /// Refusals per minute and reason, oldest first.
    per_minute: Vec<MinuteCount>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/auth/failures",
    operation_id = "auth_failures_all",
    tag = "auth",
    responses(
        (status = 200, description = "This replica's recent refusals, every tenant's.", body = Failures),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
    ),
    security(("platform_token" = []))
)]
pub async fn all(State(state): State<AppState>) -> Json<Failures> {
    Json(failures(&state, Scope::All))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/auth-failures",
    operation_id = "auth_failures_tenant",
    tag = "auth",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "This replica's recent refusals of the tenant's callers.", body = Failures),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn tenant(State(state): State<AppState>, Path(tenant): Path<String>) -> Json<Failures> {
    Json(failures(&state, Scope::Tenant(&tenant)))
}

fn failures(state: &AppState, scope: Scope<'_>) -> Failures {
    let refusals = state.auth.refusals();
    Failures {
        recent: refusals.recent(scope),
        per_minute: refusals.per_minute(scope),
    }
}
