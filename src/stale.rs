//! Serving the last known state while the database is unreachable (`auth.stale_if_error`).
//!
//! While the database is down nobody can change users, keys, tenants or quotas, so what this
//! process last read is the truth. Each SQL-backed cache of the hot path is a [`SqlCache`]: the
//! short-TTL cache it always was, plus a "last good" copy of every row it loaded, kept
//! `auth.cache_ttl + auth.stale_if_error`. The copy is read only when a reload fails with a
//! database error — a missing row is an answer, not an error — so the warm path is unchanged.
//! Nothing held there, nothing served: a caller never seen before fails closed.
//!
//! [`StaleIfError`] is the state every such cache shares: whether the database is failing, the
//! one log line per outage, and a back-off so that, while it is down, a miss does not wait for
//! the pool's connect timeout on every request.

use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use moka::future::Cache;

use crate::store::StoreError;
use crate::telemetry::CacheStats;

/// While the database is failing, at most one miss a second asks it again; the others go
/// straight to the last good copies (or fail closed).
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The policy and the database's health as the caches see it. One per process.
pub struct StaleIfError {
    /// How long past its normal TTL an entry may be served while the database fails (0 = off).
    window: Duration,
    /// The normal TTL of the caches: a last good copy lives `fresh_ttl + window`.
    fresh_ttl: Duration,
    origin: Instant,
    /// Milliseconds since `origin` (plus one, so 0 means "healthy") of the first failure of
    /// this outage.
    down_since: AtomicU64,
    /// Before this time (same clock), misses do not ask the database; 0 when it is healthy.
    retry_at: AtomicU64,
    /// Whether this outage's "serving stale" line was logged.
    announced: AtomicBool,
    /// Handed to the misses that the back-off keeps from asking the database.
    last_error: ArcSwapOption<StoreError>,
}

/// What `/readyz` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The database answers.
    Ready,
    /// The database fails, and cached state may still be served for this long.
    Degraded { left: Duration },
    /// The database fails and nothing cached may be served any more (or stale serving is off).
    Down,
}

impl StaleIfError {
    pub fn new(window: Duration, fresh_ttl: Duration) -> Self {
        Self {
            window,
            fresh_ttl,
            origin: Instant::now(),
            down_since: AtomicU64::new(0),
            retry_at: AtomicU64::new(0),
            announced: AtomicBool::new(false),
            last_error: ArcSwapOption::empty(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.window.is_zero()
    }

    /// How long a last good copy is kept after it was read.
    fn keep_for(&self) -> Duration {
        self.fresh_ttl + self.window
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// `None` if a miss may ask the database now; else the error to answer it with. While the
    /// database fails, the first miss after [`RETRY_INTERVAL`] claims the next try, so one
    /// request probes and the rest do not queue behind the pool's connect timeout.
    fn backing_off(&self) -> Option<Arc<StoreError>> {
        let retry_at = self.retry_at.load(Ordering::Acquire);
        if retry_at == 0 || !self.enabled() {
            return None;
        }
        let now = self.now();
        let claimed = now >= retry_at
            && self
                .retry_at
                .compare_exchange(
                    retry_at,
                    now + millis(RETRY_INTERVAL),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
        if claimed {
            return None;
        }
        self.last_error.load_full()
    }

    /// A cache's reload failed with a database error: the outage starts (or goes on), and
    /// misses wait [`RETRY_INTERVAL`] before asking again.
    fn failed(&self, error: Arc<StoreError>) {
        let now = self.unreachable();
        self.last_error.store(Some(error));
        self.retry_at
            .store(now + millis(RETRY_INTERVAL), Ordering::Release);
    }

    /// The database did not answer (`/readyz`'s ping, say): the outage starts or goes on.
    /// Returns the time, on [`Self::now`]'s clock.
    pub fn unreachable(&self) -> u64 {
        let now = self.now();
        let _ = self
            .down_since
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        now
    }

    /// The database answered: the outage, if there was one, is over.
    pub fn answered(&self) {
        if self.down_since.load(Ordering::Acquire) == 0 {
            return;
        }
        let since = self.down_since.swap(0, Ordering::AcqRel);
        self.retry_at.store(0, Ordering::Release);
        self.last_error.store(None);
        let served_stale = self.announced.swap(false, Ordering::AcqRel);
        if since != 0 {
            let down_for = Duration::from_millis(self.now().saturating_sub(since));
            tracing::info!(
                down_for = ?down_for,
                served_stale,
                "the database answers again; caches are read from it again"
            );
        }
    }

    /// A last good copy was served: logged once per outage.
    fn served_stale(&self, error: &StoreError) {
        if !self.announced.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                %error,
                stale_if_error = ?self.window,
                "database unreachable: serving cached users, tenants, API keys, revocations, \
                 allow-lists and quota limits as last read, each for at most auth.stale_if_error \
                 past its TTL; callers not cached get 503"
            );
        }
    }

    /// Whether this process can still serve anyone, for `/readyz`. Counted from the outage's
    /// first failure: a copy read just before it lasts longest, `auth.cache_ttl +
    /// auth.stale_if_error`.
    pub fn health(&self) -> Health {
        let since = self.down_since.load(Ordering::Acquire);
        if since == 0 {
            return Health::Ready;
        }
        let down_for = Duration::from_millis(self.now().saturating_sub(since));
        match self.keep_for().checked_sub(down_for) {
            Some(left) if self.enabled() && !left.is_zero() => Health::Degraded { left },
            _ => Health::Down,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A short-TTL cache of SQL answers, with the last good copy of each for outages.
pub struct SqlCache<K, V> {
    fresh: Cache<K, V>,
    /// `None` when `auth.stale_if_error` is 0.
    last_good: Option<Cache<K, V>>,
    /// Which answers are worth keeping for an outage: "no such row" is not (a flood of unknown
    /// credentials must not evict the rows of real callers).
    keep: fn(&V) -> bool,
    stale: Arc<StaleIfError>,
    stats: CacheStats,
    /// `tollgate_stale_served_total{cache}`.
    served: metrics::Counter,
}

impl<K, V> SqlCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Wraps `fresh` (built with its TTL policy); `cache` names it in the metrics.
    pub fn new(
        fresh: Cache<K, V>,
        capacity: u64,
        keep: fn(&V) -> bool,
        stale: Arc<StaleIfError>,
        cache: &'static str,
    ) -> Self {
        let last_good = stale.enabled().then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(stale.keep_for())
                .build()
        });
        Self {
            fresh,
            last_good,
            keep,
            stale,
            stats: CacheStats::new(cache),
            served: metrics::counter!("tollgate_stale_served_total", "cache" => cache),
        }
    }

    /// The cached answer for `key`, or `load`'s. If `load` fails with a database error, the
    /// last good answer (if still kept) instead.
    ///
    /// `load` is a closure rather than a future, and a miss is boxed: the loader's query and
    /// moka's initialiser take a few KB of future state, which would otherwise be part of every
    /// caller's future (and of the authentication middleware's, moved into its box on every
    /// request) though a warm cache never runs them.
    pub async fn get<Q, F, Fut>(&self, key: &Q, load: F) -> Result<V, Arc<StoreError>>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, StoreError>>,
    {
        if let Some(value) = self.fresh.get(key).await {
            self.stats.record(true);
            return Ok(value);
        }
        Box::pin(self.load(key, load)).await
    }

    /// A miss: `load`'s answer (unless another request is loading the same key: then theirs),
    /// or the last good answer while the database fails.
    async fn load<Q, F, Fut>(&self, key: &Q, load: F) -> Result<V, Arc<StoreError>>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, StoreError>>,
    {
        let mut missed = false;
        let found = self
            .fresh
            .try_get_with_by_ref(key, async {
                missed = true;
                if let Some(error) = self.stale.backing_off() {
                    return Err(error);
                }
                match load().await {
                    Ok(value) => {
                        self.stale.answered();
                        if let Some(last_good) = &self.last_good
                            && (self.keep)(&value)
                        {
                            last_good.insert(key.to_owned(), value.clone()).await;
                        }
                        Ok(value)
                    }
                    Err(error) => {
                        let error = Arc::new(error);
                        if matches!(*error, StoreError::Database(_)) {
                            self.stale.failed(error.clone());
                        }
                        Err(error)
                    }
                }
            })
            .await;
        self.stats.record(!missed);
        // moka wraps the loader's error in an `Arc` of its own.
        let error = match found {
            Ok(value) => return Ok(value),
            Err(error) => Arc::clone(&*error),
        };
        if !matches!(*error, StoreError::Database(_)) {
            return Err(error);
        }
        let Some(last_good) = &self.last_good else {
            return Err(error);
        };
        match last_good.get(key).await {
            Some(value) => {
                self.stale.served_stale(&error);
                self.served.increment(1);
                Ok(value)
            }
            None => Err(error),
        }
    }

    /// Puts an answer this process has just written (a provisioned user, say).
    pub async fn insert(&self, key: K, value: V)
    where
        K: Clone,
    {
        if let Some(last_good) = &self.last_good
            && (self.keep)(&value)
        {
            last_good.insert(key.clone(), value.clone()).await;
        }
        self.fresh.insert(key, value).await;
    }

    /// Forgets `key` in both copies: a change this process knows of must not come back from
    /// the last good copy during an outage.
    pub async fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.fresh.invalidate(key).await;
        if let Some(last_good) = &self.last_good {
            last_good.invalidate(key).await;
        }
    }

    /// Forgets every fresh answer, so each is read again. The last good copies stay: they are
    /// only ever served while the database fails, and a change missed meanwhile is then no
    /// different from one made elsewhere just before the outage. (A change listener reconnects
    /// and flushes on a connection that may die at once, at the start of an outage: the copies
    /// must survive that.)
    pub fn invalidate_all(&self) {
        self.fresh.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    const TTL: Duration = Duration::from_millis(100);
    const WINDOW: Duration = Duration::from_millis(600);

    fn cache(stale: &Arc<StaleIfError>) -> SqlCache<String, Option<u32>> {
        let fresh = Cache::builder().time_to_live(TTL).build();
        SqlCache::new(fresh, 100, Option::is_some, stale.clone(), "test")
    }

    fn down() -> StoreError {
        StoreError::Database(sqlx::Error::PoolClosed)
    }

    #[tokio::test]
    async fn a_database_error_serves_the_last_good_answer_within_the_window() {
        let stale = Arc::new(StaleIfError::new(WINDOW, TTL));
        let cache = cache(&stale);
        assert_eq!(
            cache.get("a", || async { Ok(Some(1)) }).await.unwrap(),
            Some(1)
        );
        assert_eq!(
            cache.get("gone", || async { Ok(None) }).await.unwrap(),
            None
        );
        tokio::time::sleep(TTL * 2).await;

        assert_eq!(
            cache.get("a", || async { Err(down()) }).await.unwrap(),
            Some(1)
        );
        assert!(matches!(stale.health(), Health::Degraded { .. }));
        // Not cached, or "no such row" (an answer, not kept): fail closed.
        assert!(cache.get("b", || async { Err(down()) }).await.is_err());
        assert!(cache.get("gone", || async { Err(down()) }).await.is_err());

        tokio::time::sleep(WINDOW).await;
        assert!(cache.get("a", || async { Err(down()) }).await.is_err());
        // Health counts from the outage's start, when the oldest copy may have been fresh.
        tokio::time::sleep(TTL).await;
        assert_eq!(stale.health(), Health::Down);

        // The next miss after the back-off finds the database back.
        tokio::time::sleep(RETRY_INTERVAL).await;
        assert_eq!(
            cache.get("a", || async { Ok(Some(2)) }).await.unwrap(),
            Some(2)
        );
        assert_eq!(stale.health(), Health::Ready);
    }

    #[tokio::test]
    async fn a_warm_answer_carries_none_of_the_loader_s_state() {
        let stale = Arc::new(StaleIfError::new(WINDOW, TTL));
        let cache = cache(&stale);
        cache.get("a", || async { Ok(Some(1)) }).await.unwrap();
        let loads = AtomicUsize::new(0);
        // A loader whose future holds 16 KB across an await, as a query's can hold a few.
        let heavy = || async {
            let scratch = [1_u8; 16 * 1024];
            tokio::task::yield_now().await;
            loads.fetch_add(1, Ordering::Relaxed);
            Ok(Some(u32::from(std::hint::black_box(scratch)[0])))
        };
        let get = cache.get("a", heavy);
        // Every caller's future (the authentication middleware's among them, moved into a box
        // on every request) would otherwise grow by the loader's size.
        assert!(
            std::mem::size_of_val(&get) < 4096,
            "{} bytes",
            std::mem::size_of_val(&get)
        );
        assert_eq!(get.await.unwrap(), Some(1));
        assert_eq!(cache.get("b", heavy).await.unwrap(), Some(1));
        assert_eq!(loads.load(Ordering::Relaxed), 1, "only the miss loaded");
    }

    #[tokio::test]
    async fn other_errors_are_not_outages() {
        let stale = Arc::new(StaleIfError::new(WINDOW, TTL));
        let cache = cache(&stale);
        cache.get("a", || async { Ok(Some(1)) }).await.unwrap();
        tokio::time::sleep(TTL * 2).await;
        let other = cache.get("a", || async { Err(StoreError::NotFound("row")) });
        assert!(matches!(*other.await.unwrap_err(), StoreError::NotFound(_)));
        assert_eq!(stale.health(), Health::Ready);
    }

    #[tokio::test]
    async fn while_the_database_fails_misses_ask_it_once_a_second() {
        let stale = Arc::new(StaleIfError::new(WINDOW, TTL));
        let cache = cache(&stale);
        let asked = AtomicUsize::new(0);
        let failing = || async {
            asked.fetch_add(1, Ordering::Relaxed);
            Err(down())
        };
        for key in ["a", "b", "c"] {
            assert!(cache.get(key, failing).await.is_err());
        }
        assert_eq!(asked.load(Ordering::Relaxed), 1);
        tokio::time::sleep(RETRY_INTERVAL).await;
        for key in ["a", "b", "c"] {
            assert!(cache.get(key, failing).await.is_err());
        }
        assert_eq!(asked.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_forgotten_entry_does_not_come_back_in_an_outage() {
        let stale = Arc::new(StaleIfError::new(WINDOW, TTL));
        let cache = cache(&stale);
        cache.get("a", || async { Ok(Some(1)) }).await.unwrap();
        cache.invalidate("a").await;
        assert!(cache.get("a", || async { Err(down()) }).await.is_err());
    }

    #[tokio::test]
    async fn zero_turns_it_off() {
        let stale = Arc::new(StaleIfError::new(Duration::ZERO, TTL));
        let cache = cache(&stale);
        cache.get("a", || async { Ok(Some(1)) }).await.unwrap();
        tokio::time::sleep(TTL * 2).await;
        assert!(cache.get("a", || async { Err(down()) }).await.is_err());
        assert_eq!(stale.health(), Health::Down);
        // No back-off either: every miss asks, as before.
        assert_eq!(
            cache.get("a", || async { Ok(Some(2)) }).await.unwrap(),
            Some(2)
        );
    }
}
