//! Quotas and rate limits: admission before a request reaches a provider.
//!
//! Limits come from SQL (tenant-wide, per user, or the tenant's default for users without their
//! own), cached like the auth stage's state. Counters live in the [`Ledger`]: every request
//! reserves its estimate (prompt estimate + `max_tokens`, or the configured default) on each
//! applicable window at once, and settles to the provider's count afterwards. Per-minute
//! limits are fixed UTC minutes counted the same way, so requests and tokens per minute are
//! exact (at most N in any calendar minute), not a token bucket's approximation.

pub mod estimate;
pub mod ledger;
pub mod redis;
pub mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;

pub use estimate::{Output, OutputError};
pub use ledger::{Amount, Exceeded, Ledger, LimitKind, Reservation, Scope};
pub use window::Window;

use crate::auth::Principal;
use crate::clock::Timestamp;
use crate::config::{RedisConfig, RedisFallback};
use crate::metering::Tally;
use crate::stale::{SqlCache, StaleIfError};
use crate::store::{Limits, QuotaScope, Store, StoreError, UsageTotal};

/// Where the user's per-minute limits stand after an admission: what OpenAI's
/// `x-ratelimit-*` headers report (the API layer writes them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteLimits {
    pub requests: Option<Standing>,
    pub tokens: Option<Standing>,
    /// Whole seconds until the current minute ends.
    pub reset_seconds: i64,
}

/// One per-minute limit and what is left of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub limit: i64,
    /// `None` when the counter is not at hand (it lives in Redis).
    pub remaining: Option<i64>,
}

impl MinuteLimits {
    /// The user's per-minute limits, where set; what remains only when `counter` (this
    /// process's) is given.
    fn of(limits: &Limits, counter: Option<&ledger::Counter>, now: Timestamp) -> Self {
        let standing = |kind: LimitKind| {
            let limit = kind.limit(limits)?;
            let remaining = counter.map(|counter| {
                let taken = kind
                    .of(&counter.used)
                    .saturating_add(kind.of(&counter.reserved));
                limit.saturating_sub(taken).max(0)
            });
            Some(Standing { limit, remaining })
        };
        Self {
            requests: standing(LimitKind::RequestsPerMinute),
            tokens: standing(LimitKind::TokensPerMinute),
            reset_seconds: (Window::Minute.end(now).millis() - now.millis() + 999) / 1000,
        }
    }
}

/// Per-user usage recorded since the start of the current UTC day, and of the current month.
pub(crate) async fn recorded_usage(
    store: &Store,
) -> Result<(Vec<UsageTotal>, Vec<UsageTotal>), StoreError> {
    let now = Timestamp::now();
    let day = store.usage_totals_since(Window::Day.start(now)).await?;
    let month = store.usage_totals_since(Window::Month.start(now)).await?;
    Ok((day, month))
}

/// Whether any limit counts tokens or money (then the request's estimate matters).
fn counts_tokens(limits: &Limits) -> bool {
    limits.tokens_per_minute.is_some()
        || limits.tokens_per_day.is_some()
        || limits.tokens_per_month.is_some()
        || limits.cost_microusd_per_month.is_some()
}

/// The limits that apply to one user: the tenant's, and the user's own or the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Applicable {
    pub tenant: Limits,
    pub user: Limits,
    /// Whether `user` came from the user's own row (else the default, or none).
    pub user_has_own: bool,
}

/// A request admitted: its reservation, and where its per-minute limits stand.
#[derive(Debug)]
pub struct Admitted {
    held: Held,
    pub limits: MinuteLimits,
}

/// Where a reservation is held.
#[derive(Debug)]
enum Held {
    Local(Reservation),
    Redis(redis::RedisReservation),
}

#[derive(Debug)]
pub enum AdmitError {
    Exceeded(Exceeded),
    /// Limits or counters could not be read; the request is refused (fail closed).
    Unavailable(String),
}

/// Shared counters in Redis, and what to do while Redis is away.
struct Shared {
    ledger: Arc<redis::RedisLedger>,
    fallback: RedisFallback,
}

pub struct Quotas {
    store: Store,
    ledger: Ledger,
    shared: Option<Shared>,
    /// The Redis outage (by [`redis::RedisLedger::outages`]) the local counters last caught up
    /// with the recorded usage for.
    caught_up: AtomicU64,
    /// Both count as `cache="quota_limits"` in the metrics.
    tenant_limits: SqlCache<Arc<str>, (Limits, Option<Limits>)>,
    user_limits: SqlCache<(Arc<str>, Arc<str>), Option<Limits>>,
}

impl Quotas {
    /// `stale` is the auth stage's ([`crate::auth::directory::Directory::stale`]): one outage,
    /// one state.
    pub fn new(store: Store, cache_ttl: Duration, stale: Arc<StaleIfError>) -> Self {
        const CAPACITY: u64 = 100_000;
        fn fresh<K, V>(ttl: Duration) -> Cache<K, V>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build()
        }
        // Every answer is kept for an outage, "no limit of its own" included: only callers
        // who passed authentication reach these caches.
        Self {
            store,
            ledger: Ledger::default(),
            shared: None,
            caught_up: AtomicU64::new(0),
            tenant_limits: SqlCache::new(
                fresh(cache_ttl),
                CAPACITY,
                |_| true,
                stale.clone(),
                "quota_limits",
            ),
            user_limits: SqlCache::new(fresh(cache_ttl), CAPACITY, |_| true, stale, "quota_limits"),
        }
    }

    /// Counts in Redis, shared by every replica, instead of in this process.
    pub async fn with_redis(
        mut self,
        config: &RedisConfig,
    ) -> Result<Self, redis::RedisLedgerError> {
        let ledger = redis::RedisLedger::connect(&config.url, self.store.clone()).await?;
        self.shared = Some(Shared {
            ledger: Arc::new(ledger),
            fallback: config.on_unavailable,
        });
        Ok(self)
    }

    /// The counter of one scope and window now: Redis's when configured, else this process's.
    pub async fn snapshot(&self, scope: &Scope, window: Window) -> ledger::Counter {
        if let Some(shared) = &self.shared
            && let Ok(counter) = shared.ledger.snapshot(scope, window).await
        {
            return counter;
        }
        self.ledger.snapshot(scope, window, Timestamp::now())
    }

    /// The limits that apply to `subject` of `tenant`.
    pub async fn applicable(
        &self,
        tenant: &Arc<str>,
        subject: &Arc<str>,
    ) -> Result<Applicable, Arc<StoreError>> {
        let (tenant_limits, default_user) = self
            .tenant_limits
            .get(tenant, || async {
                let own = self.store.quota(tenant, QuotaScope::Tenant, "").await?;
                let default = self
                    .store
                    .quota(tenant, QuotaScope::DefaultUser, "")
                    .await?;
                Ok((own.unwrap_or_default(), default))
            })
            .await?;
        let key = (tenant.clone(), subject.clone());
        let own = self
            .user_limits
            .get(&key, || self.store.quota(tenant, QuotaScope::User, subject))
            .await?;
        Ok(Applicable {
            tenant: tenant_limits,
            user: own.or(default_user).unwrap_or_default(),
            user_has_own: own.is_some(),
        })
    }

    /// Reserves the request's estimate for the principal on its user's and its tenant's
    /// counters, or says which limit refuses it. `estimate` (tokens and cost) runs only when a
    /// token or cost limit applies: otherwise only the request itself is reserved.
    pub async fn admit(
        &self,
        principal: &Principal,
        estimate: impl FnOnce() -> Amount,
    ) -> Result<Admitted, AdmitError> {
        let tenant: Arc<str> = Arc::from(principal.tenant_id());
        let limits = self
            .applicable(&tenant, &principal.subject)
            .await
            .map_err(|error| AdmitError::Unavailable(error.to_string()))?;
        let user_scope = Scope {
            tenant: tenant.clone(),
            subject: Some(principal.subject.clone()),
        };
        let tenant_scope = Scope {
            tenant,
            subject: None,
        };
        let now = Timestamp::now();
        let estimate = if counts_tokens(&limits.user) || counts_tokens(&limits.tenant) {
            estimate()
        } else {
            Amount {
                requests: 1,
                ..Amount::default()
            }
        };
        let scopes = [
            (user_scope.clone(), limits.user),
            (tenant_scope, limits.tenant),
        ];
        if let Some(shared) = &self.shared {
            match shared.ledger.reserve(&scopes, estimate).await {
                Ok(answer) => {
                    // Kept for counting alone should Redis go away: this replica then starts
                    // from the shared numbers it last saw, not from its own share of them.
                    for seen in &answer.seen {
                        self.ledger
                            .raise_used(&seen.scope, seen.window, seen.period, seen.taken);
                    }
                    let reservation = answer.outcome.map_err(AdmitError::Exceeded)?;
                    return Ok(Admitted {
                        held: Held::Redis(reservation),
                        limits: MinuteLimits::of(&limits.user, None, now),
                    });
                }
                Err(error) => {
                    // An outage is logged once by the breaker, not once per request.
                    if !error.is_outage() {
                        tracing::warn!(%error, "quota counters in Redis unavailable");
                    }
                    if shared.fallback == RedisFallback::FailClosed {
                        return Err(AdmitError::Unavailable(error.to_string()));
                    }
                    // Degraded: limits hold per replica until Redis is back.
                    self.catch_up(shared.ledger.outages()).await;
                }
            }
        }
        let reservation = self
            .ledger
            .reserve(&scopes, estimate, now)
            .map_err(AdmitError::Exceeded)?;
        let counter = self.ledger.snapshot(&user_scope, Window::Minute, now);
        Ok(Admitted {
            held: Held::Local(reservation),
            limits: MinuteLimits::of(&limits.user, Some(&counter), now),
        })
    }

    /// Settles a reservation to what the request actually used. Redis is written in the
    /// background: the answer does not wait for it.
    pub fn settle(&self, admitted: Admitted, used: Tally) {
        let actual = Amount::from(used);
        match admitted.held {
            Held::Local(reservation) => self.ledger.settle(reservation, actual),
            Held::Redis(reservation) => {
                // Counted here too, so that counting alone (Redis gone) knows what this replica
                // served since it last read the shared counters.
                let now = Timestamp::now();
                for scope in &reservation.scopes {
                    for window in Window::ALL {
                        self.ledger.add_used(scope, window, now, actual);
                    }
                }
                if let Some(shared) = &self.shared {
                    let ledger = shared.ledger.clone();
                    tokio::spawn(async move {
                        if let Err(error) = ledger.settle(reservation, actual).await {
                            tracing::warn!(%error, "could not settle a quota reservation in Redis");
                        }
                    });
                }
            }
        }
    }

    /// Raises this process's day and month counters to the usage recorded in the database.
    pub async fn rebuild_from_store(&self) -> Result<(), StoreError> {
        let (day, month) = recorded_usage(&self.store).await?;
        self.rebuild(&day, &month);
        Ok(())
    }

    /// Raises the day's and the month's counters to the usage already recorded, so a restart
    /// resets nothing. `day` and `month` are per-user totals since each period's start.
    pub fn rebuild(&self, day: &[UsageTotal], month: &[UsageTotal]) {
        let now = Timestamp::now();
        for (window, totals) in [(Window::Day, day), (Window::Month, month)] {
            let period = window.start(now).millis();
            let mut tenants: std::collections::HashMap<Arc<str>, Tally> = Default::default();
            for total in totals {
                let tenant: Arc<str> = Arc::from(total.tenant_id.as_str());
                let user = Scope {
                    tenant: tenant.clone(),
                    subject: Some(Arc::from(total.subject.as_str())),
                };
                self.ledger
                    .raise_used(&user, window, period, total.tally.into());
                *tenants.entry(tenant).or_default() += total.tally;
            }
            for (tenant, tally) in tenants {
                let whole = Scope {
                    tenant,
                    subject: None,
                };
                self.ledger.raise_used(&whole, window, period, tally.into());
            }
        }
    }

    /// Once per Redis outage, before counting alone: raises the local counters to the usage
    /// every replica has recorded in the database, which covers users this replica has not
    /// served lately. One query, paid by the first request that counts alone.
    async fn catch_up(&self, outage: u64) {
        if self.caught_up.swap(outage, Ordering::AcqRel) == outage {
            return;
        }
        match self.rebuild_from_store().await {
            Ok(()) => {}
            Err(error) => tracing::warn!(
                %error,
                "counting quotas alone from the usage this replica saw: the recorded usage is unreadable"
            ),
        }
    }

    /// Drops every fresh limit; the last good copies stay for an outage.
    pub fn forget_all(&self) {
        self.tenant_limits.invalidate_all();
        self.user_limits.invalidate_all();
    }

    /// Drops cached limits after an admin write.
    pub async fn forget_limits(&self, tenant: &str, subject: Option<&str>) {
        let tenant: Arc<str> = Arc::from(tenant);
        match subject {
            Some(subject) => {
                self.user_limits
                    .invalidate(&(tenant, Arc::from(subject)))
                    .await
            }
            None => self.tenant_limits.invalidate(&tenant).await,
        }
    }
}
