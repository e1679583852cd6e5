//! The auth stage as middleware: every data-plane request is resolved to a [`Principal`]
//! before any handler runs.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderMap;

use crate::auth::{self, AuthError, Principal, Rejection};
use crate::clock::Timestamp;
use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;

/// Puts the caller's [`Principal`] in the request's extensions, or answers the one generic 401
/// (403 `insufficient_scope` for a valid token that lacks a required scope).
pub async fn require_principal(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal =
        authenticate(&state, request.headers(), auth::bearer(request.headers())).await?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// The same for Anthropic's routes, whose SDK sends its key as `x-api-key` (and a token, with
/// `auth_token=`, as a bearer): either header, the same identity pipeline.
pub async fn require_principal_or_api_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = request.headers();
    let credential = auth::bearer(headers).or_else(|| {
        let key = headers.get("x-api-key")?.to_str().ok()?.trim();
        (!key.is_empty()).then_some(key)
    });
    let principal = authenticate(&state, headers, credential).await?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// Resolves a credential taken from the request's `headers`.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    credential: Option<&str>,
) -> Result<Principal, ApiError> {
    let Some(credential) = credential else {
        let rejection = Rejection {
            reason: auth::Reason::MalformedToken,
            detail: "no credential in the request's headers".into(),
            issuer: None,
            kid: None,
            tenant: None,
            subject: None,
        };
        return Err(refuse(state, &rejection));
    };
    let request_id = crate::server::request_id(headers);
    match state.auth.authenticate(credential, request_id).await {
        Ok(principal) => Ok(principal),
        Err(AuthError::Rejected(rejection)) => Err(refuse(state, &rejection)),
        Err(AuthError::Unavailable(error)) => {
            tracing::error!(%error, "authentication impossible: the database is unavailable");
            Err(ApiError::new(
                ErrorKind::Unavailable,
                "The service is temporarily unavailable.",
            )
            .with_retry_after(1))
        }
    }
}

/// The operator learns everything (one log line, one metric, the console's list of recent
/// refusals); the caller learns nothing — except, as OAuth 2.0 clients expect (RFC 6750 §3.1),
/// that their valid token lacks scope, so they can ask their identity provider for it.
fn refuse(state: &AppState, rejection: &Rejection) -> ApiError {
    tracing::warn!(
        reason = rejection.reason.code(),
        issuer = rejection.issuer.as_deref(),
        kid = rejection.kid.as_deref(),
        tenant = rejection.tenant.as_deref(),
        subject = rejection.subject.as_deref(),
        detail = %rejection.detail,
        "authentication refused"
    );
    metrics::counter!("tollgate_auth_failures_total", "reason" => rejection.reason.code())
        .increment(1);
    state.auth.refusals().record(rejection, Timestamp::now());
    match rejection.reason {
        auth::Reason::InsufficientScope => ApiError::insufficient_scope(),
        _ => ApiError::invalid_credentials(),
    }
}
