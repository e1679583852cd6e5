//! The one place that sends a request upstream: auth header, first-byte deadline, error statuses.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::parse_retry_after;
use crate::{ProviderError, ProviderSettings, TimeoutPhase};

/// At most this much of an error body is read: only its start ends up in the error anyway.
const MAX_ERROR_BODY: usize = 4096;

/// A reqwest client bound to one upstream's settings.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    client: reqwest::Client,
    settings: ProviderSettings,
}

/// The header that carries the credential, and its value.
pub(crate) type Auth = Option<(&'static str, String)>;

// === impl Upstream ===

impl Upstream {
    pub(crate) fn new(settings: ProviderSettings, client: reqwest::Client) -> Self {
        Self { client, settings }
    }

    pub(crate) fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    /// `{base_url}{path}`; `path` starts with `/`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base())
    }

    /// The same, parsed once (at start) so a request does not parse its URL again.
    pub(crate) fn parsed_url(&self, path: &str) -> Option<reqwest::Url> {
        reqwest::Url::parse(&self.url(path)).ok()
    }

    /// `Authorization: Bearer <key>`, or nothing when no key is configured.
    pub(crate) fn bearer(&self) -> Auth {
        self.key_header("authorization", "Bearer ")
    }

    /// The key under a provider-specific header name (`x-api-key`, `api-key`, …).
    pub(crate) fn key_header(&self, name: &'static str, prefix: &str) -> Auth {
        self.settings
            .api_key
            .as_ref()
            .map(|key| (name, format!("{prefix}{key}")))
    }

    /// POSTs `body` as JSON and returns the response once its headers arrived with a 2xx status.
    pub(crate) async fn post_json<T: Serialize + ?Sized, U: reqwest::IntoUrl>(
        &self,
        url: U,
        auth: Auth,
        extra_headers: &[(&'static str, &str)],
        body: &T,
    ) -> Result<reqwest::Response, ProviderError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ProviderError::unsupported(format!("cannot encode request: {e}")))?;
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some((name, value)) = auth {
            req = req.header(name, value);
        }
        for (name, value) in extra_headers {
            req = req.header(*name, *value);
        }
        let deadline = self.settings.first_byte_timeout;
        let resp = match tokio::time::timeout(deadline, req.send()).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    phase: TimeoutPhase::FirstByte,
                    after: deadline,
                });
            }
            Ok(Err(err)) => return Err(ProviderError::from_send(err, deadline)),
            Ok(Ok(resp)) => resp,
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let retry_after = parse_retry_after(resp.headers());
        let body = read_prefix(resp, self.settings.idle_timeout).await;
        Err(ProviderError::from_status(
            status,
            &body,
            self.settings.api_key.as_deref(),
            retry_after,
        ))
    }
}

/// The whole body of a successful non-streaming response.
pub(crate) async fn read_body(resp: reqwest::Response) -> Result<Bytes, ProviderError> {
    resp.bytes().await.map_err(ProviderError::from_read)
}

/// The body, and the parts of it `T` describes.
pub(crate) async fn read_json<T: DeserializeOwned>(
    resp: reqwest::Response,
    what: &str,
) -> Result<(Bytes, T), ProviderError> {
    let body = read_body(resp).await?;
    let parsed = serde_json::from_slice(&body).map_err(|e| ProviderError::decode(what, e))?;
    Ok((body, parsed))
}

/// Up to `MAX_ERROR_BODY` bytes of an error body; whatever arrived if it stalls or breaks.
async fn read_prefix(mut resp: reqwest::Response, idle: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < MAX_ERROR_BODY {
        match tokio::time::timeout(idle, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => out.extend_from_slice(&chunk),
            _ => break,
        }
    }
    out.truncate(MAX_ERROR_BODY);
    out
}
