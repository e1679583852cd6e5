//! Shared counters in Redis, for several replicas: the same reserve-then-settle as the
//! in-process [`Ledger`](super::ledger::Ledger), done atomically by Lua scripts on the Redis
//! server, with periods taken from the Redis server's clock so replicas with skewed clocks agree.
//!
//! Keys are `tollgate:v1:{deployment}:q:{tenant}:{subject or empty}:{window}:{period start}`
//! hashes with the used (`ur`, `ut`, `uc`) and reserved (`rr`, `rt`, `rc`) requests, tokens and
//! micro-dollars, expiring a day after their period. `{deployment}` is the database's own id, so
//! deployments sharing one Redis (staging and production, two test databases) never count each
//! other's usage and each rebuilds its own counters. The scripts derive key names from the clock,
//! so this needs a single Redis node (or a primary with replicas), not a cluster.
//!
//! When Redis comes back empty (a restart without persistence, a failover), the first admission
//! finds the `ready` marker missing and the counters are rebuilt from the usage table first.
//!
//! When Redis cannot be reached, the first call that finds out opens a breaker: admission then
//! skips Redis at the cost of one atomic load, and a background probe closes the breaker once
//! Redis answers again. So an outage costs one timeout, not one per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

use super::Window;
use super::ledger::{Amount, Exceeded, LimitKind, Scope};
use crate::clock::Timestamp;
use crate::metering::Tally;
use crate::store::{Limits, Store, StoreError, UsageTotal};

/// Everything under this prefix belongs to this version of the scripts and key layout; the
/// deployment's id follows it.
const PREFIX: &str = "tollgate:v1:";

/// How long the breaker waits between probes of a Redis that failed.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// How long a probe may wait for Redis's answer: a probe that hangs would keep the breaker open.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The UTC period starts of `now` (seconds) for the minute, the day and the month.
const PERIODS_LUA: &str = r#"
local function periods(now)
  local day = now - now % 86400
  local days = math.floor(now / 86400)
  -- civil-from-days (H. Hinnant): the day of the month, to step back to the 1st.
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local dom = doy - math.floor((153 * mp + 2) / 5) + 1
  return { now - now % 60, day, day - (dom - 1) * 86400 }
end
"#;

/// `tollgate_reserve_v1`: ARGV = prefix, n scopes, then per scope: scope key, rpm, tpm, tpd,
/// tpmo, cpmo (-1 = none); then the estimate (requests, tokens, cost).
/// Returns {1, keys, taken, periods} when reserved, {0, keys, taken, periods, {scope index,
/// limit index, limit, used, reset secs}} when a limit refuses, {-1} when the counters need a
/// rebuild. `keys` are the scopes' minute, day and month keys in order, `taken` their used +
/// reserved (requests, tokens, cost) before this request, `periods` the three period starts:
/// the answer the replica keeps for counting alone should Redis go away.
const RESERVE_BODY: &str = r#"
local prefix = ARGV[1]
if redis.call('EXISTS', prefix .. 'ready') == 0 then return {-1} end
local now = tonumber(redis.call('TIME')[1])
local p = periods(now)
local windows = { {'m', p[1], 60}, {'d', p[2], 86400}, {'mo', p[3], 0} }
local n = tonumber(ARGV[2])
local est_r, est_t, est_c = tonumber(ARGV[3 + n * 6]), tonumber(ARGV[4 + n * 6]), tonumber(ARGV[5 + n * 6])
local keys, taken = {}, {}
for s = 0, n - 1 do
  for w = 1, 3 do
    local key = prefix .. 'q:' .. ARGV[3 + s * 6] .. ':' .. windows[w][1] .. ':' .. windows[w][2]
    keys[#keys + 1] = key
    local v = redis.call('HMGET', key, 'ur', 'ut', 'uc', 'rr', 'rt', 'rc')
    for f = 1, 3 do
      taken[#taken + 1] = tonumber(v[f] or '0') + tonumber(v[f + 3] or '0')
    end
  end
end
-- limit index → window, field (1 requests, 2 tokens, 3 cost), estimate
local checks = { {1, 1, est_r}, {1, 2, est_t}, {2, 2, est_t}, {3, 2, est_t}, {3, 3, est_c} }
for s = 0, n - 1 do
  local base = 3 + s * 6
  for i = 1, 5 do
    local limit = tonumber(ARGV[base + i])
    if limit >= 0 then
      local w = checks[i][1]
      local had = taken[(s * 3 + w - 1) * 3 + checks[i][2]]
      if had + checks[i][3] > limit then
        local reset
        if w == 1 then reset = 60 - now % 60 elseif w == 2 then reset = 86400 - now % 86400 else reset = -1 end
        return {0, keys, taken, p, {s, i, limit, had, reset}}
      end
    end
  end
end
for _, key in ipairs(keys) do
  redis.call('HINCRBY', key, 'rr', est_r)
  redis.call('HINCRBY', key, 'rt', est_t)
  redis.call('HINCRBY', key, 'rc', est_c)
  redis.call('EXPIRE', key, 32 * 86400)
end
return {1, keys, taken, p}
"#;

/// `tollgate_settle_v1`: KEYS = the reservation's keys; ARGV = estimate (r, t, c) then actual
/// (r, t, c). A key that is gone (Redis was emptied meanwhile) is left alone: the rebuild from
/// the usage table counts this request once it is written.
const SETTLE: &str = r#"
-- tollgate_settle_v1
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    -- `0 - x`, not `-x`: Lua's -0 reaches Redis as "-0", which HINCRBY refuses.
    redis.call('HINCRBY', key, 'rr', 0 - tonumber(ARGV[1]))
    redis.call('HINCRBY', key, 'rt', 0 - tonumber(ARGV[2]))
    redis.call('HINCRBY', key, 'rc', 0 - tonumber(ARGV[3]))
    redis.call('HINCRBY', key, 'ur', tonumber(ARGV[4]))
    redis.call('HINCRBY', key, 'ut', tonumber(ARGV[5]))
    redis.call('HINCRBY', key, 'uc', tonumber(ARGV[6]))
  end
end
return 1
"#;

/// `tollgate_rebuild_v1`: ARGV = prefix, then groups of (scope key, day/month flag, requests,
/// tokens, cost). Adds the recorded usage to the current day's or month's counters and marks
/// Redis ready. Runs once: the caller holds the rebuild lock.
const REBUILD_BODY: &str = r#"
local prefix = ARGV[1]
if redis.call('EXISTS', prefix .. 'ready') == 1 then return 0 end
local now = tonumber(redis.call('TIME')[1])
local p = periods(now)
local i = 2
while i <= #ARGV do
  local window, start = 'd', p[2]
  if ARGV[i + 1] == 'mo' then window, start = 'mo', p[3] end
  local key = prefix .. 'q:' .. ARGV[i] .. ':' .. window .. ':' .. start
  redis.call('HINCRBY', key, 'ur', tonumber(ARGV[i + 2]))
  redis.call('HINCRBY', key, 'ut', tonumber(ARGV[i + 3]))
  redis.call('HINCRBY', key, 'uc', tonumber(ARGV[i + 4]))
  redis.call('EXPIRE', key, 32 * 86400)
  i = i + 5
end
redis.call('SET', prefix .. 'ready', now)
return 1
"#;

/// A reservation held in Redis.
#[derive(Debug)]
pub struct RedisReservation {
    keys: Vec<String>,
    estimate: Amount,
    /// The scopes reserved on, so settling can count the usage locally too.
    pub(super) scopes: Vec<Scope>,
}

/// What Redis held on one of the request's counters before the request: used plus reserved,
/// and the period (start, in milliseconds) it belongs to.
#[derive(Debug, Clone)]
pub struct Seen {
    pub scope: Scope,
    pub window: Window,
    pub period: i64,
    pub taken: Amount,
}

/// Redis's answer to an admission: the reservation or the refusal, and what the counters held.
#[derive(Debug)]
pub struct Answer {
    pub outcome: Result<RedisReservation, Exceeded>,
    pub seen: Vec<Seen>,
}

#[derive(Debug, thiserror::Error)]
pub enum RedisLedgerError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis is unreachable; waiting for a probe to reach it again")]
    Down,
    #[error("rebuilding the counters from the usage table: {0}")]
    Store(#[from] StoreError),
    #[error("unexpected answer from a quota script")]
    Protocol,
}

impl RedisLedgerError {
    /// Whether Redis itself failed (the breaker has logged it), rather than the rebuild's
    /// database or a script's answer.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Redis(_) | Self::Down)
    }
}

pub struct RedisLedger {
    connection: ConnectionManager,
    store: Store,
    /// `tollgate:v1:{deployment}:`.
    prefix: String,
    /// Open (true) while Redis is known to be unreachable; see [`RedisLedger::trip`].
    down: Arc<AtomicBool>,
    /// How many times the breaker has opened.
    outages: AtomicU64,
    reserve: Script,
    settle: Script,
    rebuild: Script,
}

impl RedisLedger {
    pub async fn connect(url: &str, store: Store) -> Result<Self, RedisLedgerError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        let prefix = format!("{PREFIX}{}:", store.deployment_id().await?);
        tracing::info!(%prefix, "quota counters are shared in Redis");
        metrics::gauge!("tollgate_quota_degraded").set(0.0);
        Ok(Self {
            connection,
            store,
            prefix,
            down: Arc::new(AtomicBool::new(false)),
            outages: AtomicU64::new(0),
            reserve: Script::new(&format!(
                "-- tollgate_reserve_v1\n{PERIODS_LUA}{RESERVE_BODY}"
            )),
            settle: Script::new(SETTLE),
            rebuild: Script::new(&format!(
                "-- tollgate_rebuild_v1\n{PERIODS_LUA}{REBUILD_BODY}"
            )),
        })
    }

    /// Runs `call` unless the breaker is open; a Redis failure opens it.
    async fn guarded<T>(
        &self,
        call: impl Future<Output = Result<T, RedisLedgerError>>,
    ) -> Result<T, RedisLedgerError> {
        if self.down.load(Ordering::Acquire) {
            return Err(RedisLedgerError::Down);
        }
        let result = call.await;
        if let Err(RedisLedgerError::Redis(error)) = &result {
            self.trip(error);
        }
        result
    }

    /// Opens the breaker after Redis failed: logs once, raises `tollgate_quota_degraded`, and
    /// probes Redis in the background until it answers, so no request waits for it meanwhile.
    fn trip(&self, error: &redis::RedisError) {
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.outages.fetch_add(1, Ordering::AcqRel);
        tracing::warn!(%error, "Redis unreachable: quota admission skips it until it answers again");
        metrics::gauge!("tollgate_quota_degraded").set(1.0);
        let down = self.down.clone();
        let connection = self.connection.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let mut connection = connection.clone();
                let ping = redis::cmd("PING");
                let answer = ping.query_async::<String>(&mut connection);
                if let Ok(Ok(_)) = tokio::time::timeout(PROBE_TIMEOUT, answer).await {
                    break;
                }
            }
            down.store(false, Ordering::Release);
            metrics::gauge!("tollgate_quota_degraded").set(0.0);
            tracing::info!("Redis answers again: quota admission counts there");
        });
    }

    /// How many times Redis was found unreachable since start: an outage's number.
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Acquire)
    }

    /// Reserves `estimate` on every scope's counters if every limit holds. Fails at once with
    /// [`RedisLedgerError::Down`] while the breaker is open.
    pub async fn reserve(
        &self,
        scopes: &[(Scope, Limits)],
        estimate: Amount,
    ) -> Result<Answer, RedisLedgerError> {
        self.guarded(self.try_reserve(scopes, estimate)).await
    }

    async fn try_reserve(
        &self,
        scopes: &[(Scope, Limits)],
        estimate: Amount,
    ) -> Result<Answer, RedisLedgerError> {
        for _ in 0..3 {
            let mut invocation = self.reserve.prepare_invoke();
            invocation.arg(&self.prefix).arg(scopes.len());
            for (scope, limits) in scopes {
                invocation.arg(scope_key(scope));
                for kind in LimitKind::ALL {
                    invocation.arg(kind.limit(limits).unwrap_or(-1));
                }
            }
            invocation
                .arg(estimate.requests)
                .arg(estimate.tokens)
                .arg(estimate.cost_micro_usd);
            let answer = self.invoke_retrying(&invocation).await?;
            let first = answer
                .first()
                .and_then(int)
                .ok_or(RedisLedgerError::Protocol)?;
            if first == -1 {
                self.rebuild_counters().await?;
                continue;
            }
            let list = |i: usize| answer.get(i).cloned().ok_or(RedisLedgerError::Protocol);
            let keys: Vec<String> =
                redis::from_redis_value(list(1)?).map_err(|_| RedisLedgerError::Protocol)?;
            let taken: Vec<i64> =
                redis::from_redis_value(list(2)?).map_err(|_| RedisLedgerError::Protocol)?;
            let periods: Vec<i64> =
                redis::from_redis_value(list(3)?).map_err(|_| RedisLedgerError::Protocol)?;
            let seen = seen(scopes, &taken, &periods).ok_or(RedisLedgerError::Protocol)?;
            if first == 1 {
                let scopes = scopes.iter().map(|(scope, _)| scope.clone()).collect();
                let reservation = RedisReservation {
                    keys,
                    estimate,
                    scopes,
                };
                return Ok(Answer {
                    outcome: Ok(reservation),
                    seen,
                });
            }
            if first != 0 {
                return Err(RedisLedgerError::Protocol);
            }
            let refusal: Vec<i64> =
                redis::from_redis_value(list(4)?).map_err(|_| RedisLedgerError::Protocol)?;
            let number = |i: usize| refusal.get(i).copied().unwrap_or(0);
            let scope = scopes
                .get(usize::try_from(number(0)).unwrap_or(0))
                .map(|(scope, _)| scope.clone())
                .ok_or(RedisLedgerError::Protocol)?;
            let kind = LimitKind::ALL
                .get(usize::try_from(number(1) - 1).unwrap_or(0))
                .copied()
                .ok_or(RedisLedgerError::Protocol)?;
            let now = Timestamp::now();
            let reset = number(4);
            let resets_at = if reset >= 0 {
                Timestamp(now.millis() + reset * 1000)
            } else {
                kind.window().end(now)
            };
            let exceeded = Exceeded {
                kind,
                scope,
                limit: number(2),
                used: number(3),
                resets_at,
            };
            return Ok(Answer {
                outcome: Err(exceeded),
                seen,
            });
        }
        Err(RedisLedgerError::Protocol)
    }

    /// The counter of one scope and window now (by this host's clock).
    pub async fn snapshot(
        &self,
        scope: &Scope,
        window: Window,
    ) -> Result<super::ledger::Counter, RedisLedgerError> {
        self.guarded(self.try_snapshot(scope, window)).await
    }

    async fn try_snapshot(
        &self,
        scope: &Scope,
        window: Window,
    ) -> Result<super::ledger::Counter, RedisLedgerError> {
        let now = Timestamp::now();
        let (name, start) = match window {
            Window::Minute => ("m", window.start(now)),
            Window::Day => ("d", window.start(now)),
            Window::Month => ("mo", window.start(now)),
        };
        let key = format!(
            "{}q:{}:{name}:{}",
            self.prefix,
            scope_key(scope),
            start.millis() / 1000
        );
        let mut connection = self.connection.clone();
        let values: Vec<Option<i64>> = redis::cmd("HMGET")
            .arg(&key)
            .arg(&["ur", "ut", "uc", "rr", "rt", "rc"])
            .query_async(&mut connection)
            .await?;
        let at = |i: usize| values.get(i).copied().flatten().unwrap_or(0);
        Ok(super::ledger::Counter {
            period: start.millis(),
            used: Amount {
                requests: at(0),
                tokens: at(1),
                cost_micro_usd: at(2),
            },
            reserved: Amount {
                requests: at(3),
                tokens: at(4),
                cost_micro_usd: at(5),
            },
        })
    }

    /// Runs a script, retrying twice after a dropped connection: the connection manager
    /// reconnects in the background, and a Redis restart should cost a pause, not a 503.
    async fn invoke_retrying(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<Vec<redis::Value>, redis::RedisError> {
        let mut attempt = 0;
        loop {
            let mut connection = self.connection.clone();
            match invocation.invoke_async(&mut connection).await {
                Err(error)
                    if attempt < 2 && (error.is_io_error() || error.is_connection_dropped()) =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                result => return result,
            }
        }
    }

    pub async fn settle(
        &self,
        reservation: RedisReservation,
        actual: Amount,
    ) -> Result<(), RedisLedgerError> {
        let mut invocation = self.settle.prepare_invoke();
        for key in &reservation.keys {
            invocation.key(key);
        }
        let estimate = reservation.estimate;
        invocation
            .arg(estimate.requests)
            .arg(estimate.tokens)
            .arg(estimate.cost_micro_usd)
            .arg(actual.requests)
            .arg(actual.tokens)
            .arg(actual.cost_micro_usd);
        let mut connection = self.connection.clone();
        // Tried even while the breaker is open: after a short blip this still gives the
        // reservation back, and settling runs in the background, where waiting costs nobody.
        let settled: Result<i64, _> = invocation.invoke_async(&mut connection).await;
        if let Err(error) = &settled {
            self.trip(error);
        }
        settled?;
        Ok(())
    }

    /// Refills an empty Redis from the usage table. One replica does it (a short lock); the
    /// others wait for the `ready` marker.
    async fn rebuild_counters(&self) -> Result<(), RedisLedgerError> {
        let mut connection = self.connection.clone();
        let lock = format!("{}rebuilding", self.prefix);
        let got: Option<String> = redis::cmd("SET")
            .arg(&lock)
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(10_000)
            .query_async(&mut connection)
            .await?;
        if got.is_none() {
            // Someone else rebuilds; give them a moment, then the caller retries.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            return Ok(());
        }
        tracing::warn!("quota counters missing in Redis; rebuilding them from the usage table");
        metrics::counter!("tollgate_quota_rebuilds_total").increment(1);
        let (day, month) = super::recorded_usage(&self.store).await?;
        let mut invocation = self.rebuild.prepare_invoke();
        invocation.arg(&self.prefix);
        for (window, totals) in [("d", &day), ("mo", &month)] {
            for (scope, amount) in by_scope(totals) {
                invocation
                    .arg(scope)
                    .arg(window)
                    .arg(amount.requests)
                    .arg(amount.tokens)
                    .arg(amount.cost_micro_usd);
            }
        }
        let _: i64 = invocation.invoke_async(&mut connection).await?;
        let _: i64 = redis::cmd("DEL")
            .arg(&lock)
            .query_async(&mut connection)
            .await?;
        Ok(())
    }
}

/// Reads the reserve script's `taken` (3 numbers per scope and window, windows in the order
/// minute, day, month) and `periods` (starts in seconds) as [`Seen`]s; `None` if they do not fit.
fn seen(scopes: &[(Scope, Limits)], taken: &[i64], periods: &[i64]) -> Option<Vec<Seen>> {
    if taken.len() != scopes.len() * 9 || periods.len() != 3 {
        return None;
    }
    let windows = [Window::Minute, Window::Day, Window::Month];
    let mut out = Vec::with_capacity(scopes.len() * 3);
    for (s, (scope, _)) in scopes.iter().enumerate() {
        for (w, window) in windows.into_iter().enumerate() {
            let at = (s * 3 + w) * 3;
            out.push(Seen {
                scope: scope.clone(),
                window,
                period: periods[w].saturating_mul(1000),
                taken: Amount {
                    requests: taken[at],
                    tokens: taken[at + 1],
                    cost_micro_usd: taken[at + 2],
                },
            });
        }
    }
    Some(out)
}

/// Per-user totals, and their sums per tenant, as (scope key, amount).
fn by_scope(totals: &[UsageTotal]) -> Vec<(String, Amount)> {
    let mut tenants: std::collections::BTreeMap<String, Tally> = Default::default();
    let mut out = Vec::with_capacity(totals.len() * 2);
    for total in totals {
        *tenants.entry(total.tenant_id.clone()).or_default() += total.tally;
        let user = Scope {
            tenant: Arc::from(total.tenant_id.as_str()),
            subject: Some(Arc::from(total.subject.as_str())),
        };
        out.push((scope_key(&user), total.tally.into()));
    }
    for (tenant, tally) in tenants {
        let scope = Scope {
            tenant: Arc::from(tenant.as_str()),
            subject: None,
        };
        out.push((scope_key(&scope), tally.into()));
    }
    out
}

/// `tenant:subject` with both parts escaped so no subject can reach another scope's key.
fn scope_key(scope: &Scope) -> String {
    let escape = |text: &str| text.replace('%', "%25").replace(':', "%3A");
    format!(
        "{}:{}",
        escape(&scope.tenant),
        scope.subject.as_deref().map(escape).unwrap_or_default()
    )
}

fn int(value: &redis::Value) -> Option<i64> {
    match value {
        redis::Value::Int(n) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_keys_cannot_collide() {
        let key = |t: &str, s: Option<&str>| {
            scope_key(&Scope {
                tenant: Arc::from(t),
                subject: s.map(Arc::from),
            })
        };
        assert_ne!(key("a", Some("b:c")), key("a:b", Some("c")));
        assert_eq!(
            key("a", None),
            "a:",
            "subjects are never empty, so this is the tenant's"
        );
        assert_eq!(key("acme", Some("auth0|x")), "acme:auth0|x");
    }
}
