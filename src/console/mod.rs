//! The web console's server side under `/console`: the page, sessions (platform login with the
//! admin token, SSO for tenant admins) and the security headers every console answer carries.
//!
//! The console is a client of the admin API: a session is one more credential the admin API
//! accepts ([`session::caller`]), so no business rule lives here. Sessions are rows in SQL, so
//! any replica serves any page; the cookie carries a random token, the table only its hash.

pub mod session;
pub mod sso;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{Html, Response};
use axum::routing::get;
use http::{HeaderValue, header};

use crate::state::AppState;

/// What the console keeps in memory: identity providers' discovery documents, briefly.
pub struct Console {
    discovery: moka::future::Cache<String, Arc<sso::Discovery>>,
}

impl Console {
    pub fn new() -> Self {
        Self {
            discovery: moka::future::Cache::builder()
                .max_capacity(1024)
                .time_to_live(Duration::from_secs(300))
                .build(),
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// The console's routes. Mounted only when an admin token is configured.
pub fn router() -> Router<AppState> {
    let private = Router::new()
        .route(
            "/console/session",
            get(session::current)
                .post(session::login)
                .delete(session::logout),
        )
        .route("/console/sso/callback", get(sso::callback))
        .route("/console/sso/{tenant}", get(sso::start))
        .layer(middleware::from_fn(no_store));
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/assets/app.js", get(script))
        .route("/console/assets/app.css", get(styles))
        .merge(private)
        .layer(middleware::from_fn(security_headers))
}

// The pages: plain HTML, CSS and JavaScript embedded in the binary (no bundler, no CDN), so
// `cargo build` builds them and the console works offline. The script is the only code the
// page runs (the CSP allows no inline script or style).

async fn page() -> Html<&'static str> {
    Html(include_str!("assets/index.html"))
}

async fn script() -> ([(header::HeaderName, &'static str); 1], &'static str) {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/app.js"),
    )
}

async fn styles() -> ([(header::HeaderName, &'static str); 1], &'static str) {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/app.css"),
    )
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Session and SSO answers carry secrets or one-time redirects: never cached.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Counts a console login attempt by outcome (`success` or a fixed reason code).
fn count_login(result: &'static str) {
    metrics::counter!("tollgate_console_logins_total", "result" => result).increment(1);
}

/// 32 random bytes in base64url: session tokens, CSRF tokens, SSO state, nonce, PKCE verifier.
fn random_token() -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
}
