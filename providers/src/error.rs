//! What went wrong with an upstream call, where, and whether trying again is safe.

use std::time::Duration;

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// No response headers within `first_byte_timeout`: nothing reached the client, retry is safe.
    FirstByte,
    /// No stream chunk within `idle_timeout`.
    Idle,
}

/// An error from a provider adapter. Its `Display` never contains an API key.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot reach upstream: {0}")]
    Connect(String),
    #[error("upstream sent no {phase} within {after:?}", phase = .phase.describe())]
    Timeout {
        phase: TimeoutPhase,
        after: Duration,
    },
    #[error("upstream returned {status}: {body}")]
    Status {
        status: u16,
        /// The start of the upstream's error body, API key redacted.
        body: String,
        retry_after: Option<Duration>,
    },
    #[error("upstream reported an error mid-stream: {0}")]
    StreamError(String),
    #[error("upstream connection failed while reading: {0}")]
    Transport(String),
    #[error("invalid upstream response: {0}")]
    InvalidResponse(String),
    /// The request cannot be expressed in this upstream's wire format. Another target may still
    /// take it; when none can, the caller is told what to change (a 400).
    #[error("request not supported by this upstream: {message}")]
    Unsupported {
        message: String,
        /// The request field at fault, when there is one (OpenAI's `param`).
        param: Option<String>,
    },
    #[error("invalid provider settings: {0}")]
    Config(String),
}

/// Upstream error bodies are kept to this many characters.
const MAX_BODY_CHARS: usize = 300;

// === impl ProviderError ===

impl ProviderError {
    /// True when nothing reached the client and another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Timeout { phase, .. } => *phase == TimeoutPhase::FirstByte,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The upstream's HTTP status, when it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How long the upstream asked us to wait (`Retry-After` or `retry-after-ms`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// A low-cardinality label for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Timeout { .. } => "timeout",
            Self::Status { status: 429, .. } => "status_429",
            Self::Status { status, .. } if *status >= 500 => "status_5xx",
            Self::Status { .. } => "status_4xx",
            Self::StreamError(_) | Self::Transport(_) => "stream",
            Self::InvalidResponse(_) => "decode",
            Self::Unsupported { .. } => "unsupported",
            Self::Config(_) => "config",
        }
    }

    pub fn unsupported(message: String) -> Self {
        Self::Unsupported {
            message,
            param: None,
        }
    }

    /// A field this upstream cannot be sent: `message` says why, `param` names it.
    pub fn unsupported_field(param: &str, message: String) -> Self {
        Self::Unsupported {
            message: format!("`{param}`: {message}"),
            param: Some(param.to_owned()),
        }
    }

    /// An error status from the upstream. The body is shortened and any occurrence of the key
    /// removed: some upstreams echo part of a rejected key, and this message ends up in logs.
    pub(crate) fn from_status(
        status: u16,
        body: &[u8],
        api_key: Option<&str>,
        retry_after: Option<Duration>,
    ) -> Self {
        let mut text = String::from_utf8_lossy(body).into_owned();
        if let Some(key) = api_key.filter(|k| !k.is_empty()) {
            text = text.replace(key, "[redacted]");
        }
        Self::Status {
            status,
            body: truncate(text.trim(), MAX_BODY_CHARS),
            retry_after,
        }
    }

    /// The client's error before response headers arrived: a connect that timed out counts as
    /// the first byte's timeout (the upstream never answered); anything else is a connect error.
    pub(crate) fn from_send(err: hyper_util::client::legacy::Error, first_byte: Duration) -> Self {
        if timed_out(&err) {
            return Self::Timeout {
                phase: TimeoutPhase::FirstByte,
                after: first_byte,
            };
        }
        Self::Connect(error_chain(&err))
    }

    /// A failure while reading a body.
    pub(crate) fn from_read(err: impl std::error::Error) -> Self {
        Self::Transport(error_chain(&err))
    }

    pub(crate) fn decode(what: &str, err: serde_json::Error) -> Self {
        Self::InvalidResponse(format!("{what}: {err}"))
    }
}

impl TimeoutPhase {
    fn describe(self) -> &'static str {
        match self {
            Self::FirstByte => "response headers",
            Self::Idle => "stream chunk",
        }
    }
}

/// Whether an I/O timeout is among `err`'s causes.
fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The client's top-level message is often just "client error (Connect)"; the causes say why.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    truncate(&out, MAX_BODY_CHARS)
}

/// At most `max` characters, cut on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_owned(),
    }
}

/// `retry-after-ms` (OpenAI, Azure) wins over `Retry-After` in seconds; HTTP dates are ignored.
pub(crate) fn parse_retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0));
    }
    let secs = header("retry-after")?.parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderMap, HeaderValue};

    #[test]
    fn retry_policy_follows_status() {
        let e = |s| ProviderError::from_status(s, b"", None, None);
        assert!(e(429).retryable());
        assert!(e(503).retryable());
        assert!(!e(400).retryable());
        assert!(!e(401).retryable());
        assert_eq!(e(429).code(), "status_429");
        assert_eq!(e(502).code(), "status_5xx");
        assert_eq!(e(404).code(), "status_4xx");
    }

    #[test]
    fn timeouts_are_retryable_only_before_the_first_byte() {
        let t = |phase| ProviderError::Timeout {
            phase,
            after: Duration::from_secs(1),
        };
        assert!(t(TimeoutPhase::FirstByte).retryable());
        assert!(!t(TimeoutPhase::Idle).retryable());
        assert!(t(TimeoutPhase::Idle).is_timeout());
    }

    #[test]
    fn status_body_is_short_and_has_no_key() {
        let body = format!("bad key sk-secret-123 {}", "x".repeat(1000));
        let e = ProviderError::from_status(401, body.as_bytes(), Some("sk-secret-123"), None);
        let shown = e.to_string();
        assert!(!shown.contains("sk-secret-123"));
        assert!(shown.contains("[redacted]"));
        assert!(shown.len() < 400, "{}", shown.len());
    }

    #[test]
    fn retry_after_prefers_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(1500)));
        let mut dated = HeaderMap::new();
        dated.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&dated), None);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
