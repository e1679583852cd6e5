//! Console sessions: the platform admin's login with the admin token, the session JSON, logout,
//! and the one function the admin API calls to turn a session cookie into a [`Caller`].
//!
//! Rules: the cookie `tg_session` (`HttpOnly; SameSite=Lax; Path=/`, `Secure` behind TLS)
//! holds a random token whose SHA-256 keys the row. A session ends after
//! `console.session_idle_timeout` unused or `console.session_max_age` after login. Every
//! request with a session other than GET/HEAD must carry `X-CSRF-Token` equal to the session's
//! CSRF token. A tenant admin's session is re-checked on every request against the identity
//! directory: once the user is not an active admin of an active tenant, the row is deleted.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::api::admin::Caller;
use crate::api::json::ApiJson;
use crate::audit::Actor;
use crate::clock::Timestamp;
use crate::error::{ApiError, ErrorKind};
use crate::state::{AdminToken, AppState};
use crate::store::{ConsoleSession, SessionOwner, TenantStatus, UserRole, UserStatus};

pub const COOKIE: &str = "tg_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// `POST /console/session`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    token: String,
}

/// What the page learns of its session: the CSRF token to send back, and who it is.
#[derive(Serialize)]
pub struct SessionView {
    csrf: String,
    who: Who,
}

#[derive(Serialize)]
struct Who {
    kind: &'static str,
    tenant: Option<String>,
    subject: Option<String>,
}

impl From<&ConsoleSession> for SessionView {
    fn from(session: &ConsoleSession) -> Self {
        let who = match &session.owner {
            SessionOwner::Platform { .. } => Who {
                kind: "platform",
                tenant: None,
                subject: None,
            },
            SessionOwner::TenantAdmin { tenant_id, subject } => Who {
                kind: "tenant_admin",
                tenant: Some(tenant_id.clone()),
                subject: Some(subject.clone()),
            },
        };
        Self {
            csrf: session.csrf.clone(),
            who,
        }
    }
}

/// A session that is live and whose owner may still use it.
pub struct LiveSession {
    pub session: ConsoleSession,
    pub caller: Caller,
}

impl LiveSession {
    /// A write (any method but GET/HEAD) must carry the session's CSRF token.
    pub fn check_csrf(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        if matches!(*method, Method::GET | Method::HEAD) {
            return Ok(());
        }
        use subtle::ConstantTimeEq;
        let sent = headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if bool::from(sent.ct_eq(self.session.csrf.as_bytes())) {
            Ok(())
        } else {
            tracing::info!(method = %method, "console write refused: no or wrong X-CSRF-Token");
            Err(ApiError::new(
                ErrorKind::CsrfFailed,
                "csrf_failed: send the session's CSRF token in X-CSRF-Token.",
            ))
        }
    }
}

// === handlers ===

/// The platform admin exchanges the admin token for a session.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let Some(admin) = &state.admin_token else {
        return Err(ApiError::invalid_credentials());
    };
    if !admin.matches(&body.token) {
        tracing::warn!(reason = "invalid_admin_token", "console login refused");
        super::count_login("invalid_admin_token");
        return Err(ApiError::invalid_credentials());
    }
    let owner = SessionOwner::Platform {
        admin_key: admin.session_key(),
    };
    let (token, session) = create(&state, owner, crate::server::request_id(&headers)).await?;
    super::count_login("success");
    tracing::info!(kind = "platform", "console session started");
    let mut response = Json(SessionView::from(&session)).into_response();
    set_cookie(&state, &headers, &mut response, &token);
    Ok(response)
}

/// The session the cookie names, as JSON; 401 when there is none (or it ended).
pub async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionView>, ApiError> {
    let live = caller(&state, &headers)
        .await?
        .ok_or_else(ApiError::invalid_credentials)?;
    Ok(Json(SessionView::from(&live.session)))
}

/// Ends the session: the row is deleted and the cookie cleared.
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let live = caller(&state, &headers)
        .await?
        .ok_or_else(ApiError::invalid_credentials)?;
    live.check_csrf(&method, &headers)?;
    state
        .store
        .delete_console_session(&live.session.token_hash)
        .await?;
    tracing::info!("console session ended by logout");
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tg_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    );
    Ok(response)
}

// === the session as a credential ===

/// The live session the request's `tg_session` cookie names: `None` without the cookie, the
/// generic 401 when the cookie names no live session (unknown, expired, or its tenant admin no
/// longer an active admin, in which case the row is deleted). Refreshes `last_seen_at`.
pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<LiveSession>, ApiError> {
    let Some(token) = cookie(headers, COOKIE) else {
        return Ok(None);
    };
    let hash = crate::auth::api_keys::hash(token);
    let Some(session) = state.store.console_session(&hash).await? else {
        return Err(ApiError::invalid_credentials());
    };
    let now = Timestamp::now();
    let running = state.running();
    let config = &running.config.console;
    let idle = now.millis() - session.last_seen_at.millis();
    let age = now.millis() - session.created_at.millis();
    if idle > millis(config.session_idle_timeout) || age > millis(config.session_max_age) {
        state.store.delete_console_session(&hash).await?;
        tracing::info!("console session expired");
        return Err(ApiError::invalid_credentials());
    }
    let caller = match &session.owner {
        SessionOwner::Platform { admin_key } => {
            let current = state.admin_token.as_ref().map(AdminToken::session_key);
            if current.as_deref() != Some(admin_key.as_str()) {
                state.store.delete_console_session(&hash).await?;
                tracing::info!("console session ended: the admin token has changed since it began");
                return Err(ApiError::invalid_credentials());
            }
            Caller::Platform
        }
        SessionOwner::TenantAdmin { tenant_id, subject } => {
            if !still_admin(state, tenant_id, subject).await? {
                state.store.delete_console_session(&hash).await?;
                tracing::info!(tenant = %tenant_id, subject = %subject,
                    "console session ended: the user is no longer an active admin of the tenant");
                return Err(ApiError::invalid_credentials());
            }
            Caller::TenantAdmin {
                tenant_id: tenant_id.clone(),
                subject: subject.clone(),
            }
        }
    };
    state.store.touch_console_session(&hash, now).await?;
    Ok(Some(LiveSession { session, caller }))
}

/// Through the identity directory's caches, which every admin write (on any replica)
/// invalidates: is this user still an active admin of an active tenant — by their own role, or
/// through a group the identity provider put them in over SCIM? A group named only in a
/// token's groups claim cannot count: a session outlives the token that opened it.
pub(super) async fn still_admin(
    state: &AppState,
    tenant: &str,
    subject: &str,
) -> Result<bool, ApiError> {
    let directory = state.auth.directory();
    let tenant: Arc<str> = Arc::from(tenant);
    let live_tenant = directory
        .tenant(&tenant)
        .await
        .map_err(unavailable)?
        .is_some_and(|t| t.status == TenantStatus::Active);
    if !live_tenant {
        return Ok(false);
    }
    let user = directory
        .user(&(tenant.clone(), Arc::from(subject)))
        .await
        .map_err(unavailable)?;
    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
        return Ok(false);
    };
    if user.role == UserRole::Admin {
        return Ok(true);
    }
    let groups = directory.groups(&tenant).await.map_err(unavailable)?;
    Ok(groups.access(subject, &[]).admin)
}

fn unavailable(error: Arc<crate::store::StoreError>) -> ApiError {
    tracing::error!(%error, "console session check impossible: the database is unavailable");
    ApiError::new(
        ErrorKind::Unavailable,
        "The service is temporarily unavailable.",
    )
    .with_retry_after(1)
}

/// Starts a session: a new random token (returned, for the cookie) and its row, audited as a
/// sign-in by its owner during request `request_id`.
pub(super) async fn create(
    state: &AppState,
    owner: SessionOwner,
    request_id: Option<&str>,
) -> Result<(String, ConsoleSession), ApiError> {
    let now = Timestamp::now();
    let running = state.running();
    let config = &running.config.console;
    // Expired rows go whenever someone logs in: no background task needed.
    let removed = state
        .store
        .delete_expired_console_sessions(
            Timestamp(now.millis() - millis(config.session_idle_timeout)),
            Timestamp(now.millis() - millis(config.session_max_age)),
        )
        .await?;
    if removed > 0 {
        tracing::debug!(removed, "expired console sessions removed");
    }
    let token = super::random_token().map_err(no_randomness)?;
    let session = ConsoleSession {
        token_hash: crate::auth::api_keys::hash(&token),
        owner,
        csrf: super::random_token().map_err(no_randomness)?,
        created_at: now,
        last_seen_at: now,
    };
    let request_id = request_id.map(str::to_owned);
    let by = match &session.owner {
        SessionOwner::Platform { .. } => Actor::platform(request_id),
        SessionOwner::TenantAdmin { subject, .. } => Actor::tenant_admin(subject, request_id),
    };
    state.admin.open_console_session(&by, &session).await?;
    Ok((token, session))
}

fn no_randomness(error: getrandom::Error) -> ApiError {
    tracing::error!(%error, "no randomness for a console session");
    ApiError::internal()
}

/// `Set-Cookie` for a new session; `Secure` when the browser reached us over HTTPS.
pub(super) fn set_cookie(
    state: &AppState,
    headers: &HeaderMap,
    response: &mut Response,
    token: &str,
) {
    let max_age = state.running().config.console.session_max_age.as_secs();
    let secure = if is_https(state, headers) {
        "; Secure"
    } else {
        ""
    };
    let value =
        format!("{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}");
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Whether the browser's side of the connection is HTTPS: `X-Forwarded-Proto: https` from a
/// proxy, or a configured `console.public_url` that is `https://`.
pub(super) fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    forwarded
        || state
            .running()
            .config
            .console
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
}

/// The value of one cookie in the request's `Cookie` headers.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_one_cookie_among_many() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; tg_session=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, "tg_session"), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "tg"), None);
    }
}
