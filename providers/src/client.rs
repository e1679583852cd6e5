//! The HTTP client the adapters send with: hyper's pooled client over rustls, and nothing in
//! between. reqwest wraps the same client in a redirect layer, a retry layer and its own
//! request and response types; on a non-streamed request those cost about 30,000 instructions
//! (a sixth of the gateway's whole request), 13,000 of them parsing the URL twice. An adapter
//! needs none of it: retries are the router's, the URL is known at start, and a redirect is an
//! upstream error, never followed (a key sent as `x-api-key`, `api-key` or `x-goog-api-key`
//! would go wherever it points).
//!
//! A proxy named in the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, less `NO_PROXY`,
//! as curl reads them) is honoured, decided once per upstream since its address is fixed: the
//! client reaches the upstream through a `CONNECT` tunnel, for `http://` upstreams too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_platform_verifier::ConfigVerifierExt;
use tokio::net::TcpStream;
use tower::Service;

use crate::ProviderError;

/// A response whose headers have arrived; its body is read as it comes.
pub(crate) type Response = http::Response<Incoming>;

/// How long an idle pooled connection is kept (reqwest's default).
const POOL_IDLE: Duration = Duration::from_secs(90);

/// One upstream's connection pool. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<Route>, Full<Bytes>>,
}

/// Where an [`HttpClient`]'s connections go.
#[derive(Debug, Clone)]
pub enum Proxy {
    /// Straight to the upstream, whatever the environment says.
    None,
    /// As the environment's `*_PROXY` variables say for the upstream's address.
    FromEnv,
    /// Through the proxy at this URL (`http://[user:password@]host:port`), for tests.
    Url(String),
}

impl HttpClient {
    /// A client for the upstream at `base_url`: TCP connects within `connect_timeout`, Nagle's
    /// algorithm off (small SSE chunks must not wait on the way in), HTTP/2 where the upstream's
    /// TLS offers it, the system's trusted roots.
    pub fn new(
        base_url: &str,
        connect_timeout: Duration,
        proxy: &Proxy,
    ) -> Result<Self, ProviderError> {
        let config = |message: String| ProviderError::Config(message);
        let target: Uri = base_url
            .parse()
            .map_err(|e| config(format!("base_url: {e}")))?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let matcher = match proxy {
            Proxy::None => None,
            Proxy::FromEnv => Some(Matcher::from_env()),
            Proxy::Url(url) => Some(Matcher::builder().all(url.clone()).build()),
        };
        let intercept = matcher.and_then(|matcher| matcher.intercept(&target));
        let route = match intercept {
            None => Route::Direct(tcp),
            Some(intercept) => {
                let mut tunnel = Tunnel::new(intercept.uri().clone(), tcp);
                if let Some(auth) = intercept.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                Route::Tunnel(tunnel)
            }
        };
        let tls = rustls::ClientConfig::with_platform_verifier()
            .map_err(|e| config(format!("cannot load the system's TLS roots: {e}")))?;
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(route);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        Ok(Self { client })
    }

    /// POSTs `body` to `uri` with `headers`; resolves once the response's headers arrived.
    pub(crate) async fn post(
        &self,
        uri: Uri,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Response, hyper_util::client::legacy::Error> {
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        self.client.request(request).await
    }
}

/// How a connection reaches the upstream: straight, or through a proxy's `CONNECT` tunnel.
#[derive(Debug, Clone)]
enum Route {
    Direct(HttpConnector),
    Tunnel(Tunnel<HttpConnector>),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Uri> for Route {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    // Boxed: a connection is made once and then pooled, so this is not per request.
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Self::Direct(tcp) => tcp.poll_ready(cx).map_err(Into::into),
            Self::Tunnel(tunnel) => tunnel.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match self {
            Self::Direct(tcp) => {
                let connect = tcp.call(dst);
                Box::pin(async move { connect.await.map_err(Into::into) })
            }
            Self::Tunnel(tunnel) => {
                let connect = tunnel.call(dst);
                Box::pin(async move { connect.await.map_err(Into::into) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unparseable_base_url_is_a_configuration_error() {
        let err = HttpClient::new("not a url", Duration::from_secs(1), &Proxy::None).unwrap_err();
        assert!(matches!(err, ProviderError::Config(_)), "{err:?}");
    }
}
