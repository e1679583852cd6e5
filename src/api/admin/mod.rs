//! The admin API under `/admin/v1`: tenants, issuers, users, credentials, allow-lists, groups.
//!
//! Who may call what is decided here, structurally: platform-only routes and tenant-scoped
//! routes sit behind different guards, so a handler cannot forget the check.

pub(crate) mod audit;
pub(crate) mod config;
pub(crate) mod explain;
pub(crate) mod failures;
pub(crate) mod groups;
pub(crate) mod issuers;
pub(crate) mod keys;
pub(crate) mod models;
pub(crate) mod quotas;
pub(crate) mod scim;
mod streamed;
pub(crate) mod tenants;
pub(crate) mod usage;
pub(crate) mod users;
pub(crate) mod webhooks;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use http::request::Parts;
use serde::Deserialize;

use crate::audit::Actor;
use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::UserRole;

/// Who is calling the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Holds the platform admin token: may do anything.
    Platform,
    /// A user with role `admin`: may call their own tenant's routes only.
    TenantAdmin { tenant_id: String, subject: String },
}

impl Caller {
    /// The caller as the audit log names them, with the request that made the change.
    pub fn actor(&self, request_id: Option<String>) -> Actor {
        match self {
            Self::Platform => Actor::platform(request_id),
            Self::TenantAdmin { subject, .. } => Actor::tenant_admin(subject, request_id),
        }
    }
}

/// The author of an admin write, for the audit log: the authenticated [`Caller`] and the
/// request's id (set on every request by the server before any route runs).
impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .ok_or_else(ApiError::invalid_credentials)?;
        let request_id = crate::server::request_id(&parts.headers).map(str::to_owned);
        Ok(caller.actor(request_id))
    }
}

/// The admin routes. Mounted only when an admin token is configured.
pub fn router(state: AppState) -> Router<AppState> {
    let platform_only = Router::new()
        .route("/tenants", post(tenants::create).get(tenants::list))
        .route(
            "/tenants/{tenant}",
            axum::routing::patch(tenants::update).delete(tenants::delete),
        )
        .route("/issuers", post(issuers::create).get(issuers::list))
        .route("/issuers/discover", post(issuers::discover))
        .route("/issuers/{id}", get(issuers::get).delete(issuers::delete))
        .route("/tenants/{tenant}/models", put(tenants::set_models))
        .route("/auth/explain", post(explain::explain))
        .route("/auth/failures", get(failures::all))
        .route("/tenants/{tenant}/quota", put(quotas::put_tenant))
        .route("/config/reload", post(config::reload))
        .route_layer(middleware::from_fn(platform_guard));

    let tenant_scoped = Router::new()
        .route("/tenants/{tenant}", get(tenants::get))
        .route("/tenants/{tenant}/models", get(tenants::models))
        .route("/tenants/{tenant}/quota", get(quotas::get_tenant))
        .route(
            "/tenants/{tenant}/default-user-quota",
            put(quotas::put_default).get(quotas::get_default),
        )
        .route(
            "/tenants/{tenant}/users/{subject}/quota",
            put(quotas::put_user).get(quotas::get_user),
        )
        .route("/tenants/{tenant}/users", get(users::list))
        .route(
            "/tenants/{tenant}/users/{subject}",
            put(users::upsert).get(users::get).delete(users::delete),
        )
        .route(
            "/tenants/{tenant}/users/{subject}/revoke-tokens",
            post(users::revoke_tokens),
        )
        .route(
            "/tenants/{tenant}/users/{subject}/keys",
            post(keys::create).get(keys::list),
        )
        .route(
            "/tenants/{tenant}/users/{subject}/keys/{id}",
            axum::routing::delete(keys::revoke),
        )
        .route(
            "/tenants/{tenant}/revoked-tokens",
            post(users::revoke_token).get(users::revoked_tokens),
        )
        .route("/tenants/{tenant}/usage", get(usage::tenant_report))
        .route("/tenants/{tenant}/auth-failures", get(failures::tenant))
        .route(
            "/tenants/{tenant}/scim-tokens",
            post(scim::create_token).get(scim::list_tokens),
        )
        .route(
            "/tenants/{tenant}/scim-tokens/{id}",
            axum::routing::delete(scim::revoke_token),
        )
        .route(
            "/tenants/{tenant}/scim",
            put(scim::put_settings).get(scim::get_settings),
        )
        .route(
            "/tenants/{tenant}/webhooks",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/tenants/{tenant}/webhooks/{id}",
            get(webhooks::get).delete(webhooks::delete),
        )
        .route(
            "/tenants/{tenant}/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route("/tenants/{tenant}/groups", get(groups::list))
        .route(
            "/tenants/{tenant}/groups/{group}",
            put(groups::put).get(groups::get).delete(groups::delete),
        )
        .route_layer(middleware::from_fn(tenant_guard));

    // The tenant is a query parameter here, so this route has its own guard.
    let export = Router::new()
        .route("/usage/export", get(usage::export))
        .route_layer(middleware::from_fn(export_guard));

    // Tenant-scoped too, with the tenant a query parameter (or the tenant admin's own).
    let audit = Router::new()
        .route("/audit", get(audit::events))
        .route_layer(middleware::from_fn(audit_guard));

    // What every admin may read, whoever they are.
    let any_admin = Router::new().route("/models", get(models::catalogue));

    Router::new()
        .nest(
            "/admin/v1",
            platform_only
                .merge(tenant_scoped)
                .merge(export)
                .merge(audit)
                .merge(any_admin),
        )
        .layer(middleware::from_fn_with_state(state, authenticate))
}

/// Resolves the bearer to a [`Caller`]: the platform token, or a user whose role is `admin`.
/// A member gets 403; anything that does not authenticate, the one generic 401.
async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // A console session is a credential too, when no bearer is sent (a bearer wins: browsers
    // never send one on their own, so it needs no CSRF token).
    if auth::bearer(request.headers()).is_none()
        && let Some(live) = crate::console::session::caller(&state, request.headers()).await?
    {
        live.check_csrf(request.method(), request.headers())?;
        request.extensions_mut().insert(live.caller);
        return Ok(next.run(request).await);
    }
    let platform = match (auth::bearer(request.headers()), &state.admin_token) {
        (Some(token), Some(admin)) => admin.matches(token),
        _ => false,
    };
    let caller = if platform {
        Caller::Platform
    } else {
        let headers = request.headers();
        let principal =
            crate::api::authn::authenticate(&state, headers, auth::bearer(headers)).await?;
        if principal.role != UserRole::Admin {
            tracing::info!(tenant = principal.tenant_id(), subject = %principal.subject,
                "admin API refused: the user's role is not admin");
            return Err(ApiError::forbidden());
        }
        Caller::TenantAdmin {
            tenant_id: principal.tenant_id().to_owned(),
            subject: principal.subject.to_string(),
        }
    };
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

fn caller(request: &Request) -> Result<&Caller, ApiError> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(ApiError::invalid_credentials)
}

async fn platform_guard(request: Request, next: Next) -> Result<Response, ApiError> {
    match caller(&request)? {
        Caller::Platform => Ok(next.run(request).await),
        Caller::TenantAdmin { .. } => Err(ApiError::forbidden()),
    }
}

#[derive(Deserialize)]
struct TenantPath {
    tenant: String,
}

async fn tenant_guard(
    Path(path): Path<TenantPath>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match caller(&request)? {
        Caller::Platform => Ok(next.run(request).await),
        Caller::TenantAdmin { tenant_id, .. } if *tenant_id == path.tenant => {
            Ok(next.run(request).await)
        }
        Caller::TenantAdmin { .. } => Err(ApiError::forbidden()),
    }
}

#[derive(Deserialize)]
struct ExportTenant {
    tenant: Option<String>,
}

/// The platform admin may export every tenant or one; a tenant admin only their own tenant,
/// and must say so with `tenant=`, so an export never silently means "everything I can see".
async fn export_guard(
    query: Result<Query<ExportTenant>, QueryRejection>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match caller(&request)? {
        Caller::Platform => Ok(next.run(request).await),
        Caller::TenantAdmin { tenant_id, .. }
            if query.is_ok_and(|Query(q)| q.tenant.as_deref() == Some(tenant_id.as_str())) =>
        {
            Ok(next.run(request).await)
        }
        Caller::TenantAdmin { .. } => Err(ApiError::forbidden()),
    }
}

/// The platform admin reads every tenant's audit events (or one's, with `tenant=`); a tenant
/// admin only their own tenant's, whether or not they say so, and `tenant=` naming another is
/// refused. The handler reads the outcome ([`audit::Visible`]), so it cannot widen it.
async fn audit_guard(
    query: Result<Query<ExportTenant>, QueryRejection>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let visible = match caller(&request)? {
        Caller::Platform => None,
        Caller::TenantAdmin { tenant_id, .. } => {
            let asked = query.ok().and_then(|Query(q)| q.tenant);
            if asked.is_some_and(|asked| asked != *tenant_id) {
                return Err(ApiError::forbidden());
            }
            Some(tenant_id.clone())
        }
    };
    request.extensions_mut().insert(audit::Visible(visible));
    Ok(next.run(request).await)
}
