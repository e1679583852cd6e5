//! SSO for tenant admins: OIDC authorization code with PKCE (S256) against the issuer
//! registered for their tenant with a `console_client_id` (a public client: no secret).
//!
//! The ID token that comes back goes through the same identity pipeline as every bearer
//! (issuer, signature, audience, subject lookup, status), then must carry our nonce and belong
//! to an `admin` of that tenant. Every failure sends the browser to `/console#login-failed`;
//! why is in one warn line and in `tollgate_console_logins_total{result}`, never on the page.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use serde::Deserialize;

use crate::auth::{AuthError, Credential};
use crate::clock::Timestamp;
use crate::state::AppState;
use crate::store::{Issuer, PendingLogin, SessionOwner};

/// How long a login may stay at the identity provider.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Largest discovery document or token response read.
const MAX_BODY: usize = 256 * 1024;
const FAILED: &str = "/console#login-failed";
/// Ties a login to the browser that started it: the callback must bring the same `state` in
/// this cookie, so a callback link an attacker started and sent to someone else signs nobody
/// in (login CSRF). `SameSite=Lax` still sends it on the provider's top-level redirect back.
const STATE_COOKIE: &str = "tg_sso";

/// The parts of an OpenID Provider's discovery document the console uses.
#[derive(Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

/// Why a login failed, as logged and counted (a fixed set of codes).
struct Failure {
    reason: &'static str,
    issuer: Option<String>,
    tenant: Option<String>,
    subject: Option<String>,
}

impl Failure {
    fn new(reason: &'static str) -> Self {
        Self {
            reason,
            issuer: None,
            tenant: None,
            subject: None,
        }
    }

    fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }

    fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    fn subject(mut self, subject: Option<&str>) -> Self {
        self.subject = subject.map(str::to_owned);
        self
    }

    fn into_redirect(self) -> Response {
        tracing::warn!(
            reason = self.reason,
            issuer = self.issuer.as_deref(),
            tenant = self.tenant.as_deref(),
            subject = self.subject.as_deref(),
            "console SSO login refused"
        );
        super::count_login(self.reason);
        found(FAILED)
    }
}

// === GET /console/sso/{tenant} ===

pub async fn start(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    match begin(&state, &tenant, &headers).await {
        Ok((location, login_state)) => {
            let mut response = found(&location);
            let secure = super::session::is_https(&state, &headers);
            set_state_cookie(&mut response, &login_state, LOGIN_TTL.as_secs(), secure);
            response
        }
        Err(failure) => failure.into_redirect(),
    }
}

/// `Set-Cookie` for [`STATE_COOKIE`], scoped to the SSO routes; `max_age` 0 clears it.
fn set_state_cookie(response: &mut Response, value: &str, max_age: u64, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{STATE_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/console/sso; Max-Age={max_age}{secure}"
    );
    if let Ok(cookie) = http::HeaderValue::from_str(&cookie) {
        response
            .headers_mut()
            .append(http::header::SET_COOKIE, cookie);
    }
}

/// The provider's authorization URL, and the login's `state`.
async fn begin(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
) -> Result<(String, String), Failure> {
    let fail = |reason| Failure::new(reason).tenant(tenant);
    let issuers = state
        .store
        .issuers()
        .await
        .map_err(|_| fail("database_unavailable"))?;
    let (issuer, client_id) = issuers
        .into_iter()
        .filter(|i| i.tenant_id.as_deref() == Some(tenant))
        .find_map(|i| {
            let client = i.console_client_id.clone()?;
            Some((i, client))
        })
        .ok_or_else(|| fail("no_console_issuer"))?;
    let discovery = discover(state, &issuer)
        .await
        .map_err(|reason| fail(reason).issuer(&issuer.issuer))?;
    let redirect_uri = format!(
        "{}/console/sso/callback",
        external_base(state, headers).ok_or_else(|| fail("no_host"))?
    );
    let random = || super::random_token().map_err(|_| fail("no_randomness"));
    let login = PendingLogin {
        state: random()?,
        nonce: random()?,
        code_verifier: random()?,
        tenant_id: tenant.to_owned(),
        issuer_id: issuer.id.clone(),
        redirect_uri,
        created_at: Timestamp::now(),
    };
    let challenge = URL_SAFE_NO_PAD.encode(crate::auth::sha256(login.code_verifier.as_bytes()));
    let mut location = reqwest::Url::parse(&discovery.authorization_endpoint)
        .map_err(|_| fail("bad_discovery").issuer(&issuer.issuer))?;
    location
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &login.redirect_uri)
        .append_pair("scope", "openid email profile")
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let _ = state
        .store
        .delete_expired_console_logins(Timestamp(
            login.created_at.millis() - LOGIN_TTL.as_millis() as i64,
        ))
        .await;
    state
        .store
        .insert_console_login(&login)
        .await
        .map_err(|_| fail("database_unavailable"))?;
    tracing::info!(tenant = %tenant, issuer = %issuer.issuer, "console SSO login started");
    Ok((location.into(), login.state))
}

// === GET /console/sso/callback ===

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let secure = super::session::is_https(&state, &headers);
    let mut response = match query {
        Err(_) => Failure::new("bad_callback").into_redirect(),
        Ok(Query(query))
            if query.state.is_none()
                || super::session::cookie(&headers, STATE_COOKIE) != query.state.as_deref() =>
        {
            Failure::new("state_not_from_this_browser").into_redirect()
        }
        Ok(Query(query)) => {
            match finish(&state, query, crate::server::request_id(&headers)).await {
                Ok(token) => {
                    super::count_login("success");
                    let mut response = found("/console");
                    super::session::set_cookie(&state, &headers, &mut response, &token);
                    response
                }
                Err(failure) => failure.into_redirect(),
            }
        }
    };
    set_state_cookie(&mut response, "", 0, secure);
    response
}

/// Returns the new session's token.
async fn finish(
    state: &AppState,
    query: CallbackQuery,
    request_id: Option<&str>,
) -> Result<String, Failure> {
    let login_state = query.state.ok_or_else(|| Failure::new("bad_callback"))?;
    let login = state
        .store
        .take_console_login(&login_state)
        .await
        .map_err(|_| Failure::new("database_unavailable"))?
        .ok_or_else(|| Failure::new("unknown_state"))?;
    let tenant = login.tenant_id.as_str();
    let fail = |reason| Failure::new(reason).tenant(tenant);
    if Timestamp::now().millis() - login.created_at.millis() > LOGIN_TTL.as_millis() as i64 {
        return Err(fail("login_expired"));
    }
    if query.error.is_some() {
        return Err(fail("provider_error"));
    }
    let code = query.code.ok_or_else(|| fail("bad_callback"))?;
    let issuer = state
        .store
        .issuers()
        .await
        .map_err(|_| fail("database_unavailable"))?
        .into_iter()
        .find(|i| i.id == login.issuer_id)
        .ok_or_else(|| fail("issuer_gone"))?;
    let fail = |reason| fail(reason).issuer(&issuer.issuer);
    let client_id = issuer
        .console_client_id
        .clone()
        .ok_or_else(|| fail("issuer_gone"))?;
    let discovery = discover(state, &issuer).await.map_err(fail)?;
    let id_token = exchange(state, &discovery, &login, &client_id, &code)
        .await
        .map_err(fail)?;

    let principal = match state.auth.authenticate(&id_token, request_id).await {
        Ok(principal) => principal,
        Err(AuthError::Rejected(rejection)) => {
            return Err(fail(rejection.reason.code()).subject(rejection.subject.as_deref()));
        }
        Err(AuthError::Unavailable(_)) => return Err(fail("database_unavailable")),
    };
    let subject = principal.subject.to_string();
    let fail = |reason| fail(reason).subject(Some(&subject));
    let same_issuer = matches!(&principal.credential,
        Credential::Jwt { issuer_id } if **issuer_id == *issuer.id);
    if !same_issuer || principal.tenant_id() != tenant {
        return Err(fail("wrong_issuer"));
    }
    let claims = claims(&id_token).ok_or_else(|| fail("malformed_token"))?;
    if claims.get("nonce").and_then(|n| n.as_str()) != Some(login.nonce.as_str()) {
        return Err(fail("nonce_mismatch"));
    }
    let audience_ok = match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => *aud == client_id,
        Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(fail("wrong_audience"));
    }
    // The session checks this on every request, so a login that it would refuse at once is
    // refused here (a group named only in the ID token's claim does not last a session).
    let admin = super::session::still_admin(state, tenant, &subject)
        .await
        .map_err(|_| fail("database_unavailable"))?;
    if !admin {
        return Err(fail("not_admin"));
    }
    let owner = SessionOwner::TenantAdmin {
        tenant_id: tenant.to_owned(),
        subject: subject.clone(),
    };
    let (token, _) = super::session::create(state, owner, request_id)
        .await
        .map_err(|_| fail("database_unavailable"))?;
    tracing::info!(kind = "tenant_admin", tenant = %tenant, subject = %subject,
        issuer = %issuer.issuer, "console session started");
    Ok(token)
}

/// The code for an ID token at the token endpoint: a public client proves itself with the
/// PKCE verifier.
async fn exchange(
    state: &AppState,
    discovery: &Discovery,
    login: &PendingLogin,
    client_id: &str,
    code: &str,
) -> Result<String, &'static str> {
    let mut form =
        reqwest::Url::parse("http://form.invalid/").map_err(|_| "token_exchange_failed")?;
    form.query_pairs_mut()
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &login.redirect_uri)
        .append_pair("client_id", client_id)
        .append_pair("code_verifier", &login.code_verifier);
    let body = form.query().unwrap_or_default().to_owned();
    let response = state
        .auth
        .directory()
        .http_client()
        .post(&discovery.token_endpoint)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|_| "token_endpoint_unreachable")?;
    if !response.status().is_success() {
        return Err("token_exchange_failed");
    }
    let body = read_bounded(response)
        .await
        .ok_or("token_exchange_failed")?;
    #[derive(Deserialize)]
    struct TokenResponse {
        id_token: Option<String>,
    }
    let parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|_| "token_exchange_failed")?;
    parsed.id_token.ok_or("no_id_token")
}

/// The issuer's discovery document, fetched with the JWKS client's settings (no redirects,
/// bounded time and size) and kept for a few minutes.
async fn discover(state: &AppState, issuer: &Issuer) -> Result<Arc<Discovery>, &'static str> {
    discovery(state, &issuer.issuer).await
}

/// `{issuer}/.well-known/openid-configuration`, fetched (bounded, cached briefly) and checked to
/// name `issuer` exactly, as OpenID Connect Discovery requires.
pub async fn discovery(state: &AppState, issuer: &str) -> Result<Arc<Discovery>, &'static str> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    if let Some(found) = state.console.discovery.get(&url).await {
        return Ok(found);
    }
    let response = state
        .auth
        .directory()
        .http_client()
        .get(&url)
        .send()
        .await
        .map_err(|_| "discovery_unreachable")?;
    if !response.status().is_success() {
        return Err("discovery_failed");
    }
    let body = read_bounded(response).await.ok_or("discovery_failed")?;
    let discovery: Discovery = serde_json::from_slice(&body).map_err(|_| "discovery_failed")?;
    if discovery.issuer != issuer {
        return Err("discovery_issuer_mismatch");
    }
    let discovery = Arc::new(discovery);
    state.console.discovery.insert(url, discovery.clone()).await;
    Ok(discovery)
}

async fn read_bounded(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_BODY {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// A `302 Found` to `location` (what OIDC redirects conventionally are).
fn found(location: &str) -> Response {
    match http::HeaderValue::from_str(location) {
        Ok(value) => (http::StatusCode::FOUND, [(http::header::LOCATION, value)]).into_response(),
        Err(_) => http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The payload of a JWT the identity pipeline has already verified.
fn claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where browsers reach the console: `console.public_url`, else the request's scheme and Host.
fn external_base(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if let Some(url) = &state.running().config.console.public_url {
        return Some(url.trim_end_matches('/').to_owned());
    }
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !valid {
        return None;
    }
    let scheme = if super::session::is_https(state, headers) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}
