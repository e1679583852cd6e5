//! Calling targets in plan order: retries with backoff and jitter, `Retry-After`, circuit
//! breakers, a bound on attempts, and per-attempt deadlines.
//!
//! A target's failure moves on to the next target; a *retryable* one (connect error, 429, 5xx,
//! no response headers in time) first tries the same target again. Nothing here runs after a
//! byte reached the client: a stream is handed over only once it produced its first chunk (or
//! stayed silent for a keep-alive interval), and from then on failures are the caller's.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::{Instant, timeout, timeout_at};
use tollgate_providers::{ChatStream, ProviderError, StreamEvent};

use super::{Routes, Target, random};

/// A successful call and who served it.
#[derive(Debug)]
pub struct Served<T> {
    pub value: T,
    pub target: Arc<Target>,
    /// Upstream calls made, this one included.
    pub attempts: u32,
}

/// A stream that has been accepted by its upstream, with its first chunk if one came within
/// the keep-alive interval.
pub struct Prefetched {
    pub first: Option<StreamEvent>,
    pub rest: ChatStream,
    /// The end of this attempt's whole-stream allowance (the provider's `timeout`).
    pub deadline: Instant,
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("upstream did not finish within {0:?}")]
    Deadline(Duration),
    #[error("upstream stream ended without a single chunk")]
    EmptyStream,
}

/// Why a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The upstream said the request itself is wrong (400, 413, 422): another target would say
    /// the same, so nothing else is tried. Also the request no target could be sent
    /// ([`ProviderError::Unsupported`]: a field its wire format cannot carry).
    #[error("the upstream refused the request: {0}")]
    Rejected(ProviderError),
    /// Every target and fallback failed, or was kept out by its circuit breaker.
    #[error("no upstream served the request after {attempts} attempts")]
    Exhausted {
        attempts: u32,
        last: Option<AttemptError>,
        last_target: Option<Arc<Target>>,
        /// When every target was rate-limited (429) or kept out by its breaker: how soon the
        /// first of them may be tried again. The caller is told to come back then (503).
        busy_for: Option<Duration>,
    },
}

// === impl AttemptError ===

impl AttemptError {
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Provider(error) => error.is_timeout(),
            Self::Deadline(_) => true,
            Self::EmptyStream => false,
        }
    }

    /// A low-cardinality label for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Provider(error) => error.code(),
            Self::Deadline(_) => "deadline",
            Self::EmptyStream => "empty_stream",
        }
    }

    fn retryable(&self) -> bool {
        matches!(self, Self::Provider(error) if error.retryable())
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Provider(error) => error.retry_after(),
            _ => None,
        }
    }

    /// For a 429: how long the upstream asked us to wait (a second if it did not say).
    fn rate_limited_for(&self) -> Option<Duration> {
        match self {
            Self::Provider(error) if error.status() == Some(429) => {
                Some(error.retry_after().unwrap_or(Duration::from_secs(1)))
            }
            _ => None,
        }
    }

    /// Says nothing about the target's health: the request cannot be expressed for it.
    fn is_unsupported(&self) -> bool {
        matches!(self, Self::Provider(ProviderError::Unsupported { .. }))
    }
}

fn is_client_error(error: &AttemptError) -> bool {
    matches!(error, AttemptError::Provider(e) if matches!(e.status(), Some(400 | 413 | 422)))
}

/// Counts the targets a request found busy (rate-limited or breaker-open) rather than broken.
#[derive(Default)]
struct Busy {
    targets: usize,
    soonest: Option<Duration>,
}

impl Busy {
    /// One target is done with: busy for `wait`, or (`None`) failed some other way.
    fn note(&mut self, wait: Option<Duration>) {
        if let Some(wait) = wait {
            self.targets += 1;
            self.soonest = Some(self.soonest.map_or(wait, |soonest| soonest.min(wait)));
        }
    }

    /// The soonest wait, if every one of `planned` targets was busy.
    fn all_of(&self, planned: usize) -> Option<Duration> {
        (planned > 0 && self.targets == planned)
            .then_some(self.soonest)
            .flatten()
    }
}

// === impl RouteError ===

impl RouteError {
    /// True when the last failure was a deadline: the caller gets 504 rather than 502.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Rejected(_)
            | Self::Exhausted {
                busy_for: Some(_), ..
            } => false,
            Self::Exhausted { last, .. } => last.as_ref().is_some_and(AttemptError::is_timeout),
        }
    }

    pub fn attempts(&self) -> u32 {
        match self {
            Self::Rejected(_) => 1,
            Self::Exhausted { attempts, .. } => *attempts,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "rejected",
            Self::Exhausted {
                busy_for: Some(_), ..
            } => "busy",
            Self::Exhausted { last: Some(e), .. } => e.code(),
            Self::Exhausted { last: None, .. } => "circuit_open",
        }
    }
}

// === impl Routes ===

impl Routes {
    /// A whole answer from the first target of `plan` that gives one. `call` asks one target
    /// (its adapter, by the upstream's name for the model): chat, embeddings, or a dialect's
    /// request, which the adapter serves natively or translates.
    pub async fn call<T, F, Fut>(
        &self,
        plan: &[Arc<Target>],
        call: F,
    ) -> Result<Served<T>, RouteError>
    where
        F: Fn(Arc<Target>) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        self.run(plan, |target| {
            let limit = target.provider.timeout;
            let answer = call(target);
            async move { within(limit, answer).await }
        })
        .await
    }

    /// A stream from the first target of `plan` that starts one, handed over once it produced
    /// its first event or stayed silent for `first_chunk_wait` (see [`prefetch`]).
    pub async fn stream<F, Fut>(
        &self,
        plan: &[Arc<Target>],
        first_chunk_wait: Duration,
        call: F,
    ) -> Result<Served<Prefetched>, RouteError>
    where
        F: Fn(Arc<Target>) -> Fut,
        Fut: Future<Output = Result<ChatStream, ProviderError>>,
    {
        self.run(plan, |target| {
            let limit = target.provider.timeout;
            let stream = call(target);
            async move { prefetch(limit, first_chunk_wait, stream).await }
        })
        .await
    }

    /// Tries `plan` in order within the policy's bounds.
    async fn run<T, F, Fut>(
        &self,
        plan: &[Arc<Target>],
        mut call: F,
    ) -> Result<Served<T>, RouteError>
    where
        F: FnMut(Arc<Target>) -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let policy = &self.policy;
        let mut attempts = 0;
        let mut last = None;
        let mut last_target = None;
        // Targets that are busy rather than broken, and the soonest any of them frees up.
        let mut busy = Busy::default();
        // Whether every target was tried and none could take the request as it is written.
        let mut unsupported_by_all = !plan.is_empty();
        'targets: for target in plan {
            let mut tries = 0;
            // This target's last answer, if it was a 429: how long it asked us to wait.
            let mut limited_for = None;
            loop {
                if attempts >= policy.max_attempts {
                    busy.note(limited_for);
                    unsupported_by_all = false;
                    break 'targets;
                }
                if !target.breaker.try_acquire() {
                    unsupported_by_all = false;
                    tracing::debug!(provider = %target.provider.name, upstream_model = %target.upstream_model, "circuit open; skipping target");
                    busy.note(Some(
                        limited_for.map_or(target.breaker.retry_in(), |wait| {
                            wait.min(target.breaker.retry_in())
                        }),
                    ));
                    continue 'targets;
                }
                attempts += 1;
                tries += 1;
                let error = match call(target.clone()).await {
                    Ok(value) => {
                        target.breaker.record_success();
                        return Ok(Served {
                            value,
                            target: target.clone(),
                            attempts,
                        });
                    }
                    Err(error) => error,
                };
                if is_client_error(&error) {
                    // The target is healthy; it answered.
                    target.breaker.record_success();
                    if let AttemptError::Provider(error) = error {
                        return Err(RouteError::Rejected(error));
                    }
                    break 'targets;
                }
                if !error.is_unsupported() {
                    target.breaker.record_failure();
                    unsupported_by_all = false;
                }
                tracing::warn!(
                    provider = %target.provider.name,
                    upstream_model = %target.upstream_model,
                    attempt = attempts,
                    code = error.code(),
                    %error,
                    "upstream attempt failed"
                );
                let wait = (error.retryable()
                    && tries < policy.attempts_per_target
                    && attempts < policy.max_attempts)
                    .then(|| self.retry_wait(&error, tries))
                    .flatten();
                limited_for = error.rate_limited_for();
                last = Some(error);
                last_target = Some(target.clone());
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => {
                        busy.note(limited_for);
                        continue 'targets;
                    }
                }
            }
        }
        // The request asks for what no target's wire format carries: the caller's to change.
        if unsupported_by_all && let Some(AttemptError::Provider(error)) = last {
            return Err(RouteError::Rejected(error));
        }
        Err(RouteError::Exhausted {
            attempts,
            last,
            last_target,
            busy_for: busy.all_of(plan.len()),
        })
    }

    /// How long to wait before trying the same target again, or `None` to move on: the
    /// upstream's `Retry-After` if it is short enough, else exponential backoff with full
    /// jitter (a random wait up to the doubled base), so that retries from many requests do
    /// not arrive together.
    fn retry_wait(&self, error: &AttemptError, tries: u32) -> Option<Duration> {
        let policy = &self.policy;
        if let Some(after) = error.retry_after() {
            return (after <= policy.max_retry_after).then_some(after);
        }
        let factor = 1u32 << (tries.saturating_sub(1)).min(16);
        let ceiling = policy
            .backoff_base
            .saturating_mul(factor)
            .min(policy.backoff_max);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Some(Duration::from_millis(random::below(
            millis.saturating_add(1),
        )))
    }
}

/// One non-streaming attempt, bounded by the target's whole-attempt `limit`.
async fn within<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, AttemptError> {
    match timeout(limit, call).await {
        Err(_) => Err(AttemptError::Deadline(limit)),
        Ok(result) => result.map_err(AttemptError::from),
    }
}

/// One streaming attempt: the stream is handed over once the upstream produced its first chunk
/// or stayed silent for `first_chunk_wait`. Until then a broken stream is just a failed
/// attempt: nothing has reached the client, so the next target may still serve it.
async fn prefetch(
    limit: Duration,
    first_chunk_wait: Duration,
    call: impl Future<Output = Result<ChatStream, ProviderError>>,
) -> Result<Prefetched, AttemptError> {
    let deadline = Instant::now() + limit;
    let mut rest = match timeout_at(deadline, call).await {
        Err(_) => return Err(AttemptError::Deadline(limit)),
        Ok(result) => result?,
    };
    let wait_until = deadline.min(Instant::now() + first_chunk_wait);
    match timeout_at(wait_until, rest.next()).await {
        Ok(Some(Ok(first))) => Ok(Prefetched {
            first: Some(first),
            rest,
            deadline,
        }),
        Ok(Some(Err(error))) => Err(error.into()),
        Ok(None) => Err(AttemptError::EmptyStream),
        Err(_) if Instant::now() >= deadline => Err(AttemptError::Deadline(limit)),
        // Still thinking: commit now, so keep-alives can flow to the client.
        Err(_) => Ok(Prefetched {
            first: None,
            rest,
            deadline,
        }),
    }
}
