//! An issuer's JWK set, fetched from its URL and cached.
//!
//! Fetches have a timeout and a size limit and never follow redirects. An unknown `kid` may
//! trigger a refetch, but at most one per cooldown per issuer, so a flood of made-up `kid`s
//! cannot turn into a flood of fetches. A failed fetch keeps the keys already held, so a warm
//! issuer keeps working through an outage of its JWKS endpoint; a cold one fails closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::StreamExt;

use super::keys::KeySet;

/// How JWK sets are fetched.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    pub timeout: Duration,
    pub cooldown: Duration,
    pub max_bytes: usize,
}

/// The cached key set of one JWKS URL.
pub struct JwksSource {
    url: String,
    client: reqwest::Client,
    settings: JwksSettings,
    keys: ArcSwapOption<KeySet>,
    /// When the last fetch started; guards the cooldown.
    last_attempt: std::sync::Mutex<Option<Instant>>,
    /// One fetch at a time per source.
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

/// What a refresh did.
#[derive(Debug)]
pub enum Refresh {
    Fetched,
    /// Within the cooldown: nothing was fetched.
    CoolingDown,
    Failed(String),
}

impl JwksSource {
    pub fn new(url: String, client: reqwest::Client, settings: JwksSettings) -> Self {
        Self {
            url,
            client,
            settings,
            keys: ArcSwapOption::empty(),
            last_attempt: std::sync::Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The keys held now, if any fetch ever succeeded.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// How many fetches were attempted (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Fetches again unless a fetch started less than a cooldown ago.
    pub async fn refresh_if_allowed(&self) -> Refresh {
        let _one_at_a_time = self.fetching.lock().await;
        if !self.claim_attempt(self.settings.cooldown) {
            return Refresh::CoolingDown;
        }
        self.fetch_and_store().await
    }

    /// The periodic refresh: fetches whatever the cooldown says (it never blocks on one).
    pub async fn refresh_now(&self) -> Refresh {
        let _one_at_a_time = self.fetching.lock().await;
        self.claim_attempt(Duration::ZERO);
        self.fetch_and_store().await
    }

    /// Records an attempt now, unless the last one is younger than `cooldown`.
    fn claim_attempt(&self, cooldown: Duration) -> bool {
        let Ok(mut last) = self.last_attempt.lock() else {
            return false;
        };
        let now = Instant::now();
        if let Some(at) = *last
            && !cooldown.is_zero()
            && now.duration_since(at) < cooldown
        {
            return false;
        }
        *last = Some(now);
        true
    }

    async fn fetch_and_store(&self) -> Refresh {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch().await {
            Ok((keys, skipped)) => {
                for note in &skipped {
                    tracing::warn!(jwks_url = %self.url, "JWKS key ignored: {note}");
                }
                tracing::debug!(jwks_url = %self.url, keys = ?keys.kids(), "JWKS fetched");
                metrics::counter!("tollgate_jwks_fetches_total", "result" => "ok").increment(1);
                self.keys.store(Some(Arc::new(keys)));
                Refresh::Fetched
            }
            Err(error) => {
                tracing::warn!(jwks_url = %self.url, %error, "JWKS fetch failed; keeping the keys already held");
                metrics::counter!("tollgate_jwks_fetches_total", "result" => "error").increment(1);
                Refresh::Failed(error)
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, Vec<String>), String> {
        let response = self
            .client
            .get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .timeout(self.settings.timeout)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the endpoint answered {status}"));
        }
        let limit = self.settings.max_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(format!("the document is larger than {limit} bytes"));
        }
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| format!("reading the body failed: {e}"))?;
            if body.len() + chunk.len() > limit {
                return Err(format!("the document is larger than {limit} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::from_jwks(&body)
    }
}

/// The HTTP client for JWKS fetches: no redirects (a redirect is a way to point tollgate at
/// keys the issuer never published), bounded connect time.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .build()
}
