//! The one place that sends a request upstream: auth header, first-byte deadline, error statuses.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::uri::Scheme;
use http::{HeaderMap, Uri};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{HttpClient, Response};
use crate::error::parse_retry_after;
use crate::{ProviderError, ProviderSettings, TimeoutPhase};

/// At most this much of an error body is read: only its start ends up in the error anyway.
const MAX_ERROR_BODY: usize = 4096;

/// The client bound to one upstream's settings.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    client: HttpClient,
    settings: ProviderSettings,
    /// Built once: the header that carries the key.
    auth: Auth,
    /// Built once for a plain-HTTP upstream (always HTTP/1.1, and never redirected): the client
    /// would otherwise format `host:port` for every request. Over TLS the upstream may choose
    /// HTTP/2, which names the host in `:authority` instead, so the client adds it then.
    host: Option<HeaderValue>,
}

/// How an upstream takes its key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credential {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key alone, under the provider's own header (`x-api-key`, `api-key`, …).
    Header(&'static str),
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    /// Marked sensitive: kept out of HTTP/2's header compression table, and out of `Debug`.
    Header(HeaderName, HeaderValue),
    /// The configured key cannot be a header's value (a line break in it): every call says so
    /// rather than go without it. The gateway refuses such a key at start.
    Invalid(&'static str),
}

// === impl Upstream ===

impl Upstream {
    pub(crate) fn new(settings: ProviderSettings, client: HttpClient, key: Credential) -> Self {
        let auth = match (&settings.api_key, key) {
            (None, _) => Auth::None,
            (Some(key), Credential::Bearer) => header("authorization", &format!("Bearer {key}")),
            (Some(key), Credential::Header(name)) => header(name, key),
        };
        let host = settings
            .base()
            .parse::<Uri>()
            .ok()
            .filter(|uri| uri.scheme() == Some(&Scheme::HTTP))
            .and_then(|uri| {
                let host = uri.host()?;
                match uri.port_u16().filter(|port| *port != 80) {
                    Some(port) => HeaderValue::try_from(format!("{host}:{port}")).ok(),
                    None => HeaderValue::from_str(host).ok(),
                }
            });
        Self {
            client,
            settings,
            auth,
            host,
        }
    }

    pub(crate) fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    /// `{base_url}{path}`; `path` starts with `/`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base())
    }

    /// The same, parsed once (at start) so a request does not parse its URL again.
    pub(crate) fn parsed_url(&self, path: &str) -> Option<Uri> {
        self.url(path).parse().ok()
    }

    /// POSTs `body` as JSON and returns the response once its headers arrived with a 2xx status.
    pub(crate) async fn post_json<T: Serialize + ?Sized>(
        &self,
        url: impl IntoUri,
        extra_headers: &[(&'static str, &str)],
        body: &T,
    ) -> Result<Response, ProviderError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ProviderError::unsupported(format!("cannot encode request: {e}")))?;
        let uri = url.into_uri()?;
        let mut headers = HeaderMap::with_capacity(3 + extra_headers.len());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match &self.auth {
            Auth::None => {}
            Auth::Header(name, value) => {
                headers.insert(name.clone(), value.clone());
            }
            Auth::Invalid(name) => return Err(invalid_value(name)),
        }
        if let Some(host) = &self.host {
            headers.insert(HOST, host.clone());
        }
        for (name, value) in extra_headers {
            let value = HeaderValue::from_str(value).map_err(|_| invalid_value(name))?;
            headers.insert(HeaderName::from_static(name), value);
        }
        let deadline = self.settings.first_byte_timeout;
        let resp = match tokio::time::timeout(deadline, self.client.post(uri, headers, body)).await
        {
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

/// The key's header, built once.
fn header(name: &'static str, value: &str) -> Auth {
    match HeaderValue::from_str(value) {
        Ok(mut value) => {
            value.set_sensitive(true);
            Auth::Header(HeaderName::from_static(name), value)
        }
        Err(_) => Auth::Invalid(name),
    }
}

/// Never the value in the message: it may be the key.
fn invalid_value(name: &str) -> ProviderError {
    ProviderError::Connect(format!("the `{name}` header's value is not valid"))
}

/// An upstream URL: one parsed at start, or one made for the call.
pub(crate) trait IntoUri {
    fn into_uri(self) -> Result<Uri, ProviderError>;
}

impl IntoUri for &Uri {
    fn into_uri(self) -> Result<Uri, ProviderError> {
        Ok(self.clone())
    }
}

impl IntoUri for &str {
    fn into_uri(self) -> Result<Uri, ProviderError> {
        self.parse()
            .map_err(|e| ProviderError::Connect(format!("invalid upstream URL: {e}")))
    }
}

impl IntoUri for &String {
    fn into_uri(self) -> Result<Uri, ProviderError> {
        self.as_str().into_uri()
    }
}

impl IntoUri for String {
    fn into_uri(self) -> Result<Uri, ProviderError> {
        self.as_str().into_uri()
    }
}

/// The whole body of a successful non-streaming response.
pub(crate) async fn read_body(resp: Response) -> Result<Bytes, ProviderError> {
    let collected = resp
        .into_body()
        .collect()
        .await
        .map_err(ProviderError::from_read)?;
    Ok(collected.to_bytes())
}

/// The body, and the parts of it `T` describes.
pub(crate) async fn read_json<T: DeserializeOwned>(
    resp: Response,
    what: &str,
) -> Result<(Bytes, T), ProviderError> {
    let body = read_body(resp).await?;
    let parsed = serde_json::from_slice(&body).map_err(|e| ProviderError::decode(what, e))?;
    Ok((body, parsed))
}

/// Up to `MAX_ERROR_BODY` bytes of an error body; whatever arrived if it stalls or breaks.
async fn read_prefix(resp: Response, idle: Duration) -> Vec<u8> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while out.len() < MAX_ERROR_BODY {
        match tokio::time::timeout(idle, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    out.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    out.truncate(MAX_ERROR_BODY);
    out
}
