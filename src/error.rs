//! The one place where errors become HTTP responses.
//!
//! Every layer has its own error type; handlers turn them into an [`ApiError`], whose [`ErrorKind`]
//! maps to a status, an OpenAI error `type` and a `code` in a single table ([`ErrorKind::spec`]).
//! The body is always OpenAI's envelope, so an unchanged OpenAI SDK understands it.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tollgate_providers::ProviderError;

use crate::admin::AdminError;
use crate::reload::ReloadError;
use crate::routing::RouteError;
use crate::store::StoreError;

/// What went wrong, as the caller may know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    InvalidCredentials,
    /// A valid token without a scope its issuer requires (RFC 6750 §3.1).
    InsufficientScope,
    Forbidden,
    /// A console session's write without its `X-CSRF-Token`.
    CsrfFailed,
    ModelNotAllowed,
    NotFound,
    MethodNotAllowed,
    ModelNotFound,
    Conflict,
    /// A configuration reload found the file invalid; the running configuration stays.
    InvalidConfig,
    PayloadTooLarge,
    RequestTimeout,
    RateLimited,
    QuotaExceeded,
    Internal,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
}

/// Status, OpenAI error `type`, and our `code` for one kind.
pub struct ErrorSpec {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub code: &'static str,
}

impl ErrorKind {
    /// The table. Keep it the only place a status code is chosen for an error.
    pub const fn spec(self) -> ErrorSpec {
        use ErrorKind::*;
        let (status, error_type, code) = match self {
            InvalidRequest => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
            ),
            InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid_credentials",
            ),
            InsufficientScope => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "insufficient_scope",
            ),
            Forbidden => (StatusCode::FORBIDDEN, "permission_error", "forbidden"),
            CsrfFailed => (StatusCode::FORBIDDEN, "permission_error", "csrf_failed"),
            ModelNotAllowed => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "model_not_allowed",
            ),
            NotFound => (StatusCode::NOT_FOUND, "not_found_error", "not_found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method_not_allowed",
            ),
            ModelNotFound => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
            ),
            Conflict => (StatusCode::CONFLICT, "invalid_request_error", "conflict"),
            InvalidConfig => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                "invalid_config",
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
            ),
            RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "request_timeout",
            ),
            RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limited",
            ),
            QuotaExceeded => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "quota_exceeded",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "internal_error",
            ),
            Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "api_error", "unavailable"),
            UpstreamError => (StatusCode::BAD_GATEWAY, "api_error", "upstream_error"),
            UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "api_error", "upstream_timeout"),
        };
        ErrorSpec {
            status,
            error_type,
            code,
        }
    }
}

/// An error on its way to the caller. The message is for the caller: never put a secret,
/// a token or the reason an authentication failed in it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// Seconds the caller should wait, for 429 and 503.
    pub retry_after: Option<u64>,
    /// The request field at fault (OpenAI's `param`), for a 400 that names one.
    pub param: Option<String>,
}

/// The one message every authentication failure gets, byte for byte.
pub const INVALID_CREDENTIALS_MESSAGE: &str = "Invalid credentials.";

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
            param: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub fn forbidden() -> Self {
        Self::new(ErrorKind::Forbidden, "You may not call this route.")
    }

    pub fn invalid_credentials() -> Self {
        Self::new(ErrorKind::InvalidCredentials, INVALID_CREDENTIALS_MESSAGE)
    }

    /// The token is valid but lacks a scope its issuer requires; which one is for the log.
    pub fn insufficient_scope() -> Self {
        Self::new(
            ErrorKind::InsufficientScope,
            "The token does not carry the scopes this gateway requires.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorKind::Internal,
            "Internal error; the gateway's log has the details.",
        )
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Names the request field at fault in the body's `param`.
    pub fn with_param(mut self, field: impl Into<String>) -> Self {
        self.param = Some(field.into());
        self
    }

    /// A 400 about one field: the message names it, and so does `param`.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid_request(message).with_param(field)
    }
}

/// OpenAI's error envelope: every error of the admin API and of the OpenAI-style data plane.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
struct Body<'a> {
    /// For the caller to read; never a secret or why an authentication failed.
    message: &'a str,
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `rate_limit_error`, `insufficient_quota` or `api_error`.
    #[serde(rename = "type")]
    error_type: &'static str,
    /// The request field at fault, for a 400 that names one.
    param: Option<&'a str>,
    /// tollgate's code for the error, e.g. `invalid_request`, `invalid_credentials`,
    /// `model_not_found`, `quota_exceeded`.
    code: &'static str,
}

impl ApiError {
    fn envelope(&self) -> Envelope<'_> {
        let spec = self.kind.spec();
        Envelope {
            error: Body {
                message: &self.message,
                error_type: spec.error_type,
                param: self.param.as_deref(),
                code: spec.code,
            },
        }
    }

    /// The error as a server-sent event (`data: {"error": …}` and a blank line), for a stream
    /// that fails after its first byte, when the status can no longer change.
    pub fn sse_event(&self) -> bytes::Bytes {
        let json = serde_json::to_string(&self.envelope()).unwrap_or_default();
        bytes::Bytes::from(format!("data: {json}\n\n"))
    }

    /// The error as the Responses API's `error` event, for a stream that fails after its first
    /// byte: `sequence_number` follows the events already sent.
    pub fn responses_event(&self, sequence_number: u64) -> bytes::Bytes {
        let body = serde_json::json!({
            "type": "error",
            "code": self.kind.spec().code,
            "message": self.message,
            "param": self.param,
            "sequence_number": sequence_number,
        });
        tollgate_providers::named_event("error", body.to_string().as_bytes())
    }

    /// Anthropic's error `type` for this error, by status as Anthropic's table has it. A 503 (no
    /// upstream free) reads as `overloaded_error`, which the anthropic SDK retries.
    pub fn anthropic_type(&self) -> &'static str {
        match self.kind.spec().status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        }
    }

    /// The body in Anthropic's envelope: `{"type":"error","error":{"type","message"}}`.
    pub fn anthropic_body(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "type": "error",
            "error": { "type": self.anthropic_type(), "message": self.message },
        });
        body.to_string().into_bytes()
    }

    /// The same as Anthropic's `error` event, for a stream that fails after its first byte.
    pub fn anthropic_event(&self) -> bytes::Bytes {
        tollgate_providers::named_event("error", &self.anthropic_body())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.spec().status;
        let mut response = (status, Json(self.envelope())).into_response();
        // For the layers that speak another dialect's envelope (`/v1/messages`).
        response.extensions_mut().insert(self.clone());
        let headers = response.headers_mut();
        match self.kind {
            ErrorKind::InvalidCredentials => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ErrorKind::InsufficientScope => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer error="insufficient_scope""#),
                );
            }
            _ => {}
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.kind == ErrorKind::RequestTimeout {
            // The rest of a stalled body may never come: do not wait for it on this connection.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Only the platform admin can reload, and the configuration is theirs: the message says which
/// key is at fault.
impl From<ReloadError> for ApiError {
    fn from(error: ReloadError) -> Self {
        match error {
            ReloadError::Config(_) | ReloadError::Routes(_) => ApiError::new(
                ErrorKind::InvalidConfig,
                format!("The configuration was not reloaded: {error}"),
            ),
            ReloadError::NoSource => ApiError::conflict(error.to_string()),
            ReloadError::Task(_) => ApiError::internal(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found.")),
            StoreError::Conflict(what) => ApiError::conflict(format!("{what} already exists.")),
            StoreError::Invalid(message) => ApiError::invalid_request(message),
            StoreError::Database(ref source) => {
                // The one place a store failure is logged: the caller only learns it was ours.
                tracing::error!(error = %source, "database error");
                if matches!(
                    source,
                    sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
                ) {
                    ApiError::new(ErrorKind::Unavailable, "The database is unavailable.")
                        .with_retry_after(1)
                } else {
                    ApiError::internal()
                }
            }
            StoreError::Migrate(source) => {
                tracing::error!(error = %source, "migration error");
                ApiError::internal()
            }
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Store(error) => error.into(),
            AdminError::UserNotFound => ApiError::not_found("User not found."),
            AdminError::UserDeleted => {
                ApiError::invalid_request("The user is deleted; a key would never work.")
            }
            AdminError::IssuerTenantNotFound(tenant) => {
                ApiError::not_found(format!("Tenant `{tenant}` (field `tenant`) not found."))
            }
            AdminError::Scim(fault) => ApiError::invalid_request(fault.detail),
            AdminError::Webhook(field, message) => {
                ApiError::invalid_field(field, format!("`{field}`: {message}"))
            }
            AdminError::WebhookNotFound => ApiError::not_found("Webhook endpoint not found."),
            AdminError::NoRandomness(error) => {
                tracing::error!(%error, "no randomness for a new api key");
                ApiError::internal()
            }
        }
    }
}

impl From<RouteError> for ApiError {
    fn from(error: RouteError) -> Self {
        match &error {
            // The upstream's own words help the caller fix the request; the provider crate has
            // cut them short and removed our key.
            RouteError::Rejected(ProviderError::Unsupported { message, param }) => {
                let error = ApiError::invalid_request(format!(
                    "This model's upstream cannot take the request: {message}"
                ));
                match param {
                    Some(param) => error.with_param(param.as_str()),
                    None => error,
                }
            }
            RouteError::Rejected(source) => {
                ApiError::invalid_request(format!("The upstream rejected the request: {source}"))
            }
            RouteError::Exhausted {
                busy_for: Some(wait),
                ..
            } => ApiError::new(
                ErrorKind::Unavailable,
                "Every upstream for this model is rate-limited or cooling down; retry later.",
            )
            .with_retry_after((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)),
            RouteError::Exhausted { .. } if error.is_timeout() => ApiError::new(
                ErrorKind::UpstreamTimeout,
                "The upstream did not answer in time.",
            ),
            RouteError::Exhausted { last: None, .. } => ApiError::new(
                ErrorKind::UpstreamError,
                "No upstream is available for this model right now.",
            ),
            RouteError::Exhausted { .. } => ApiError::new(
                ErrorKind::UpstreamError,
                "The upstream failed to answer; every target and fallback was tried.",
            ),
        }
    }
}

impl From<crate::billing::BillingError> for ApiError {
    fn from(error: crate::billing::BillingError) -> Self {
        use crate::billing::BillingError;
        match error {
            BillingError::InvalidParameter { .. } => ApiError::invalid_request(error.to_string()),
            BillingError::Store(error) => error.into(),
        }
    }
}
