//! The router, the middleware stack, and the listener with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::routing::{get, post};
use http::{HeaderName, HeaderValue};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tracing::Instrument;

use crate::api;
use crate::auth::Authenticator;
use crate::busy_poll::BusyPoll;
use crate::config::{Config, Loaded};
use crate::error::ApiError;
use crate::metering::{UsageRecorder, UsageWriter, WriterError, WriterHandle};
use crate::reload::{Live, ReloadError, Source};
use crate::routing::{ProviderKeys, read_keys};
use crate::state::{AdminToken, AppState, Inner};
use crate::store::{Store, StoreError, redact_url};

/// The request id header: taken from the client when sane, set otherwise, echoed back, and
/// named in every log line and audit event of the request.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, as the server set it on the request before any route ran.
pub fn request_id(headers: &http::HeaderMap) -> Option<&str> {
    headers.get(REQUEST_ID).and_then(|id| id.to_str().ok())
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database at {url}: {source}")]
    Database { url: String, source: StoreError },
    #[error("cannot apply migrations: {0}")]
    Migrate(StoreError),
    #[error("cannot load the issuers: {0}")]
    Auth(StoreError),
    #[error("cannot rebuild the quota counters: {0}")]
    Quota(StoreError),
    #[error("cannot connect to Redis for the shared quota counters: {0}")]
    Redis(crate::quota::redis::RedisLedgerError),
    #[error("cannot start the webhook worker: {0}")]
    Webhooks(reqwest::Error),
    #[error("cannot start the usage writer: {0}")]
    Metering(#[from] WriterError),
    #[error("invalid configuration: {0}")]
    Config(#[from] ReloadError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the database named in the config and brings its schema up to date.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    let url = &config.database.url;
    let store = Store::connect(url, config.database.max_connections)
        .await
        .map_err(|source| StartError::Database {
            url: redact_url(url),
            source,
        })?;
    store.migrate().await.map_err(StartError::Migrate)?;
    Ok(store)
}

/// A gateway that is listening. Dropping it does not stop it; call [`Gateway::shutdown`].
pub struct Gateway {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    store: Store,
    usage: UsageRecorder,
    usage_writer: WriterHandle,
    webhooks: crate::webhooks::WorkerHandle,
    live: Arc<Live>,
}

impl Gateway {
    /// Opens the store, binds the listener and starts serving in the background, with a
    /// configuration built in code (a reload has nothing to read: see [`Gateway::start_from`]).
    /// Provider API keys are read from the variables and files the config names.
    pub async fn start(config: Config, admin_token: Option<String>) -> Result<Self, StartError> {
        let keys = read_keys(&config.providers).map_err(ReloadError::from)?;
        Self::start_with_keys(config, admin_token, keys).await
    }

    /// Like [`Gateway::start`], with the provider API keys (by provider name) given.
    pub async fn start_with_keys(
        config: Config,
        admin_token: Option<String>,
        keys: ProviderKeys,
    ) -> Result<Self, StartError> {
        let loaded = Loaded {
            config,
            written: serde_json::Value::Null,
        };
        Self::launch(loaded, Source::Code { keys }, admin_token).await
    }

    /// Like [`Gateway::start`], with a configuration read by [`Config::load_written`] from
    /// `path` (and the environment), which SIGHUP, `tollgate reload` and the admin API read
    /// again.
    pub async fn start_from(
        loaded: Loaded,
        path: Option<std::path::PathBuf>,
        admin_token: Option<String>,
    ) -> Result<Self, StartError> {
        Self::launch(loaded, Source::Files { path }, admin_token).await
    }

    async fn launch(
        loaded: Loaded,
        source: Source,
        admin_token: Option<String>,
    ) -> Result<Self, StartError> {
        // Install the metrics recorder before anything counts, not at the first scrape.
        let _ = crate::telemetry::metrics();
        let live = Arc::new(Live::start(loaded, source)?);
        // The sections that do not reload, as they are for the gateway's whole life.
        let config = live.current().config.clone();
        let store = open_store(&config).await?;
        let admin_token = admin_token.as_deref().and_then(AdminToken::new);
        if admin_token.is_none() {
            tracing::warn!(
                "admin API disabled: set the environment variable {} to a secret token to enable \
                 /admin/v1 (the variable's name is [admin] token_env in the config)",
                config.admin.token_env
            );
        }
        let auth = Arc::new(
            Authenticator::from_config(store.clone(), &config.auth)
                .await
                .map_err(StartError::Auth)?,
        );
        // Replays whatever an earlier run spilled, before new events are written.
        let (usage, usage_writer) = UsageWriter::start(store.clone(), config.metering.clone())?;
        let mut quotas = crate::quota::Quotas::new(
            store.clone(),
            config.auth.cache_ttl,
            auth.directory().stale().clone(),
        );
        if let Some(redis) = &config.redis {
            quotas = quotas.with_redis(redis).await.map_err(StartError::Redis)?;
        }
        let quotas = Arc::new(quotas);
        // A restart must not reset anyone's quota: the day's and month's counters start from the
        // usage already recorded.
        quotas
            .rebuild_from_store()
            .await
            .map_err(StartError::Quota)?;
        let changes = Arc::new(crate::changes::Changes::new(auth.clone(), quotas.clone()));
        // Told to the streams still open when the shutdown grace period is over.
        let (cut, streams_cut) = watch::channel(false);
        let state = AppState::new(Inner {
            store: store.clone(),
            live: live.clone(),
            admin_token,
            auth: auth.clone(),
            quotas,
            admin: crate::admin::Admin::new(store.clone(), changes.clone()),
            usage: usage.clone(),
            streams_cut,
            console: crate::console::Console::new(),
        });
        let app = router(state);

        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Listen { addr, source })?;
        tracing::info!(%addr, database = %redact_url(&config.database.url), "tollgate listening");

        let (stop, _) = watch::channel(false);
        tokio::spawn(refresh_auth(auth, config.clone(), stop.subscribe()));
        if let Some(pool) = store.postgres() {
            tokio::spawn(crate::changes::listen(
                changes,
                pool.clone(),
                stop.subscribe(),
            ));
        }
        let webhooks = crate::webhooks::DeliveryWorker::start(
            store.clone(),
            config.webhooks.clone(),
            stop.subscribe(),
        )
        .map_err(StartError::Webhooks)?;
        let serving = stop.subscribe();
        let task = tokio::spawn(async move {
            crate::listener::serve(listener, app, &config.server, serving, cut).await;
            Ok(())
        });
        Ok(Self {
            addr,
            stop,
            task,
            store,
            usage,
            usage_writer,
            webhooks,
            live,
        })
    }

    /// The recorder handlers use, for tests and tools that record usage directly.
    pub fn usage(&self) -> UsageRecorder {
        self.usage.clone()
    }

    /// Stops accepting, lets in-flight requests finish, writes out their usage, closes the
    /// database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        let result = match self.task.await {
            Ok(result) => result,
            Err(error) => Err(std::io::Error::other(error)),
        };
        // After the server: the requests that just finished have recorded their usage.
        self.usage_writer.shutdown().await;
        // Attempts in flight are recorded; what is still due waits in the outbox.
        self.webhooks.finished().await;
        self.store.close().await;
        result
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully. SIGHUP reloads the
    /// configuration (an invalid one is logged and changes nothing).
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        let stop = shutdown_signal();
        tokio::pin!(stop);
        let mut hangups = hangups();
        loop {
            tokio::select! {
                () = &mut stop => break,
                Some(()) = hangups.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    // The outcome is logged and counted by the reload itself.
                    let _ = self.live.reload().await;
                }
            }
        }
        tracing::info!("shutting down: finishing in-flight requests");
        self.shutdown().await
    }
}

/// Keeps the auth stage's view of issuers and JWKS fresh, until the gateway stops.
async fn refresh_auth(
    auth: Arc<Authenticator>,
    config: Arc<Config>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut issuers = tokio::time::interval(config.auth.issuer_refresh_interval);
    let mut jwks = tokio::time::interval(config.auth.jwks_refresh_interval);
    issuers.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    jwks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Both fire at once on the first tick; the issuers were just loaded and keys are fetched on
    // first use, so skip it.
    issuers.tick().await;
    jwks.tick().await;
    loop {
        tokio::select! {
            // Any change means stop; so does the gateway having been dropped.
            _ = stopped.changed() => return,
            _ = issuers.tick() => {
                if let Err(error) = auth.reload_issuers().await {
                    tracing::warn!(%error, "could not re-read the issuers; keeping the ones loaded");
                }
            }
            _ = jwks.tick() => auth.directory().refresh_jwks().await,
        }
    }
}

/// The whole HTTP surface with its middleware.
pub fn router(state: AppState) -> Router {
    let server = state.running().config.server.clone();
    let max_body = server.max_body_bytes;
    let door = FrontDoor {
        busy_poll: BusyPoll::start(server.busy_poll),
        body_timeout: server.request_body_timeout,
    };
    let v1 = Router::new()
        .route("/v1/models", get(api::v1::models))
        .route("/v1/models/{*id}", get(api::v1::model))
        .route("/v1/chat/completions", post(api::v1::chat_completions))
        .route("/v1/embeddings", post(api::v1::embeddings))
        .route("/v1/responses", post(api::v1::responses))
        .route("/v1/completions", post(api::v1::completions))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::authn::require_principal,
        ));
    // Anthropic's dialect: its SDK's `x-api-key` as well as a bearer, and its error envelope.
    let anthropic = Router::new()
        .route("/v1/messages", post(api::v1::messages))
        .route("/v1/messages/count_tokens", post(api::v1::count_tokens))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::authn::require_principal_or_api_key,
        ))
        .route_layer(axum::middleware::from_fn(api::v1::anthropic_envelope));
    let mut app = Router::new()
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(api::openapi::serve))
        .merge(v1)
        .merge(anthropic)
        .merge(crate::scim::router(state.clone()));
    if state.admin_token.is_some() {
        app = app
            .merge(api::admin::router(state.clone()))
            .merge(crate::console::router());
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(door, front_door))
                .layer(SetSensitiveRequestHeadersLayer::new([
                    http::header::AUTHORIZATION,
                    http::HeaderName::from_static("x-api-key"),
                    // The console's session token and CSRF token.
                    http::header::COOKIE,
                    http::HeaderName::from_static("x-csrf-token"),
                ]))
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("a handler panicked");
                    axum::response::IntoResponse::into_response(ApiError::internal())
                }))
                .layer(DefaultBodyLimit::max(max_body)),
        )
}

/// What the front door needs: the busy poller, if on, and the body deadline.
#[derive(Clone)]
struct FrontDoor {
    busy_poll: Option<Arc<BusyPoll>>,
    body_timeout: Duration,
}

/// When a request arrived, before any stage ran (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub tokio::time::Instant);

/// The first stage of every request, in one middleware: notes when it [`Arrived`] (and tells
/// the [`BusyPoll`], when there is one, that a request started and ended), gives it a
/// request id (the client's `x-request-id`, or a new UUIDv7) that the response echoes and every
/// log line inside carries, and counts the answer in
/// `tollgate_http_requests_total{route, status}` by a fixed set of route names and the status
/// class, 401s and 404s included.
async fn front_door(
    State(door): State<FrontDoor>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let arrived = tokio::time::Instant::now();
    let (parts, body) = request.into_parts();
    // A body that is already complete (none, for a GET) needs no deadline.
    let body = if http_body::Body::is_end_stream(&body) {
        body
    } else {
        crate::listener::DeadlineBody::wrap(body, arrived, door.body_timeout)
    };
    let mut request = axum::extract::Request::from_parts(parts, body);
    request.extensions_mut().insert(Arrived(arrived));
    let busy_poll = door.busy_poll;
    let route = route_label(request.uri().path());
    let id = match request.headers().get(REQUEST_ID) {
        Some(id) if is_sane_request_id(id) => id.clone(),
        // None, or one we will not echo or log: a new one replaces it for every stage.
        _ => {
            let id = new_request_id();
            request.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default());
    let touch = || busy_poll.as_deref().map(BusyPoll::touch);
    touch();
    let mut response = next.run(request).instrument(span).await;
    touch();
    let status = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    response.headers_mut().entry(REQUEST_ID).or_insert(id);
    metrics::counter!("tollgate_http_requests_total", "route" => route, "status" => status)
        .increment(1);
    response
}

/// A bounded label for a path: the routes by name, the admin API as one, anything else `other`.
fn route_label(path: &str) -> &'static str {
    match path {
        "/v1/chat/completions" => "/v1/chat/completions",
        "/v1/embeddings" => "/v1/embeddings",
        "/v1/messages" => "/v1/messages",
        "/v1/messages/count_tokens" => "/v1/messages/count_tokens",
        "/v1/responses" => "/v1/responses",
        "/v1/completions" => "/v1/completions",
        "/v1/models" => "/v1/models",
        "/metrics" => "/metrics",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        _ if path.starts_with("/v1/models/") => "/v1/models/{id}",
        _ if path.starts_with("/admin/") => "/admin",
        _ if path.starts_with("/scim/") => "/scim",
        _ if path == "/console" || path.starts_with("/console/") => "/console",
        _ => "other",
    }
}

/// Prometheus text format.
async fn metrics() -> Result<String, ApiError> {
    let handle = crate::telemetry::metrics().ok_or_else(ApiError::internal)?;
    handle.run_upkeep();
    Ok(handle.render())
}

async fn not_found() -> ApiError {
    ApiError::not_found("No such route.")
}

/// A known route with the wrong method; axum adds the route's `Allow` header.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        crate::error::ErrorKind::MethodNotAllowed,
        "Method not allowed on this route.",
    )
}

/// Longest client request id echoed; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// A client's request id is kept if it is 1 to 128 visible ASCII characters: it goes into
/// every log line and back to the client, so no spaces, control bytes or kilobytes.
fn is_sane_request_id(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID && bytes.iter().all(u8::is_ascii_graphic)
}

/// Request ids are UUIDv7: unique, and sortable by time in a log search.
fn new_request_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("unknown"))
}

/// SIGHUPs as they arrive; none where there are no signals, or if the handler cannot be set.
fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut signal) => {
            tokio::spawn(async move {
                while signal.recv().await.is_some() {
                    // Several SIGHUPs during one reload make one more reload, not a queue.
                    let _ = tx.try_send(());
                }
            });
        }
        Err(error) => tracing::warn!(%error, "cannot listen for SIGHUP; reload with the admin API"),
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
