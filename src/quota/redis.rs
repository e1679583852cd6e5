//! Shared counters in Redis, for several replicas: the same reserve-then-settle as the
//! in-process [`Ledger`](super::ledger::Ledger), done atomically by Lua scripts on the Redis
//! server, with periods taken from the Redis server's clock so replicas with skewed clocks agree.
//!
//! Keys are `tollgate:v1:q:{tenant}:{subject or empty}:{window}:{period start}` hashes with the
//! used (`ur`, `ut`, `uc`) and reserved (`rr`, `rt`, `rc`) requests, tokens and micro-dollars,
//! expiring a day after their period. The scripts derive key names from the clock, so this needs
//! a single Redis node (or a primary with replicas), not a cluster.
//!
//! When Redis comes back empty (a restart without persistence, a failover), the first admission
//! finds the `ready` marker missing and the counters are rebuilt from the usage table first.

use std::sync::Arc;

use redis::Script;
use redis::aio::ConnectionManager;

use super::ledger::{Amount, Exceeded, LimitKind, Scope};
use crate::clock::Timestamp;
use crate::store::{Limits, Store, StoreError, UsageTotal};

/// Everything under this prefix belongs to this version of the scripts and key layout.
const PREFIX: &str = "tollgate:v1:";

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
/// Returns {1, keys...} when reserved, {0, scope index, limit index, limit, used, reset secs}
/// when a limit refuses, {-1} when the counters need a rebuild.
const RESERVE_BODY: &str = r#"
local prefix = ARGV[1]
if redis.call('EXISTS', prefix .. 'ready') == 0 then return {-1} end
local now = tonumber(redis.call('TIME')[1])
local p = periods(now)
local windows = { {'m', p[1], 60}, {'d', p[2], 86400}, {'mo', p[3], 0} }
local n = tonumber(ARGV[2])
local est_r, est_t, est_c = tonumber(ARGV[3 + n * 6]), tonumber(ARGV[4 + n * 6]), tonumber(ARGV[5 + n * 6])
local keys = {}
for s = 0, n - 1 do
  local base = 3 + s * 6
  local scope = ARGV[base]
  local limits = { tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]),
                   tonumber(ARGV[base + 4]), tonumber(ARGV[base + 5]) }
  -- limit index → window, field pair, estimate
  local checks = { {1, 'r', est_r}, {1, 't', est_t}, {2, 't', est_t}, {3, 't', est_t}, {3, 'c', est_c} }
  for w = 1, 3 do
    keys[#keys + 1] = prefix .. 'q:' .. scope .. ':' .. windows[w][1] .. ':' .. windows[w][2]
  end
  for i = 1, 5 do
    local limit = limits[i]
    if limit >= 0 then
      local w = checks[i][1]
      local key = keys[#keys - 3 + w]
      local field = checks[i][2]
      local taken = tonumber(redis.call('HGET', key, 'u' .. field) or '0') + tonumber(redis.call('HGET', key, 'r' .. field) or '0')
      if taken + checks[i][3] > limit then
        local reset
        if w == 1 then reset = 60 - now % 60 elseif w == 2 then reset = 86400 - now % 86400 else reset = -1 end
        return {0, s, i, limit, taken, reset}
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
local out = {1}
for _, key in ipairs(keys) do out[#out + 1] = key end
return out
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
}

#[derive(Debug, thiserror::Error)]
pub enum RedisLedgerError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("rebuilding the counters from the usage table: {0}")]
    Store(#[from] StoreError),
    #[error("unexpected answer from a quota script")]
    Protocol,
}

pub struct RedisLedger {
    connection: ConnectionManager,
    store: Store,
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
        Ok(Self {
            connection,
            store,
            reserve: Script::new(&format!(
                "-- tollgate_reserve_v1\n{PERIODS_LUA}{RESERVE_BODY}"
            )),
            settle: Script::new(SETTLE),
            rebuild: Script::new(&format!(
                "-- tollgate_rebuild_v1\n{PERIODS_LUA}{REBUILD_BODY}"
            )),
        })
    }

    /// Reserves `estimate` on every scope's counters if every limit holds.
    pub async fn reserve(
        &self,
        scopes: &[(Scope, Limits)],
        estimate: Amount,
    ) -> Result<Result<RedisReservation, Exceeded>, RedisLedgerError> {
        for _ in 0..3 {
            let mut invocation = self.reserve.prepare_invoke();
            invocation.arg(PREFIX).arg(scopes.len());
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
            match first {
                1 => {
                    let keys = answer[1..]
                        .iter()
                        .filter_map(|value| redis::from_redis_value::<String>(value.clone()).ok())
                        .collect();
                    return Ok(Ok(RedisReservation { keys, estimate }));
                }
                0 => {
                    let number = |i: usize| answer.get(i).and_then(int).unwrap_or(0);
                    let scope = scopes
                        .get(usize::try_from(number(1)).unwrap_or(0))
                        .map(|(scope, _)| scope.clone())
                        .ok_or(RedisLedgerError::Protocol)?;
                    let kind = LimitKind::ALL
                        .get(usize::try_from(number(2) - 1).unwrap_or(0))
                        .copied()
                        .ok_or(RedisLedgerError::Protocol)?;
                    let now = Timestamp::now();
                    let reset = number(5);
                    let resets_at = if reset >= 0 {
                        Timestamp(now.millis() + reset * 1000)
                    } else {
                        kind.window().end(now)
                    };
                    return Ok(Err(Exceeded {
                        kind,
                        scope,
                        limit: number(3),
                        used: number(4),
                        resets_at,
                    }));
                }
                _ => self.rebuild_counters().await?,
            }
        }
        Err(RedisLedgerError::Protocol)
    }

    /// The counter of one scope and window now (by this host's clock).
    pub async fn snapshot(
        &self,
        scope: &Scope,
        window: super::Window,
    ) -> Result<super::ledger::Counter, RedisLedgerError> {
        let now = Timestamp::now();
        let (name, start) = match window {
            super::Window::Minute => ("m", window.start(now)),
            super::Window::Day => ("d", window.start(now)),
            super::Window::Month => ("mo", window.start(now)),
        };
        let key = format!(
            "{PREFIX}q:{}:{name}:{}",
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
        let _: i64 = invocation.invoke_async(&mut connection).await?;
        Ok(())
    }

    /// Refills an empty Redis from the usage table. One replica does it (a short lock); the
    /// others wait for the `ready` marker.
    async fn rebuild_counters(&self) -> Result<(), RedisLedgerError> {
        let mut connection = self.connection.clone();
        let lock = format!("{PREFIX}rebuilding");
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
        let now = Timestamp::now();
        let day = self
            .store
            .usage_totals_since(super::Window::Day.start(now))
            .await?;
        let month = self
            .store
            .usage_totals_since(super::Window::Month.start(now))
            .await?;
        let mut invocation = self.rebuild.prepare_invoke();
        invocation.arg(PREFIX);
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

/// Per-user totals, and their sums per tenant, as (scope key, amount).
fn by_scope(totals: &[UsageTotal]) -> Vec<(String, Amount)> {
    let mut tenants: std::collections::BTreeMap<String, Amount> = Default::default();
    let mut out = Vec::with_capacity(totals.len() * 2);
    for total in totals {
        let amount = Amount {
            requests: total.requests,
            tokens: total.total_tokens,
            cost_micro_usd: total.cost_micro_usd,
        };
        let tenant = tenants.entry(total.tenant_id.clone()).or_default();
        tenant.requests += amount.requests;
        tenant.tokens += amount.tokens;
        tenant.cost_micro_usd += amount.cost_micro_usd;
        let user = Scope {
            tenant: Arc::from(total.tenant_id.as_str()),
            subject: Some(Arc::from(total.subject.as_str())),
        };
        out.push((scope_key(&user), amount));
    }
    for (tenant, amount) in tenants {
        let scope = Scope {
            tenant: Arc::from(tenant.as_str()),
            subject: None,
        };
        out.push((scope_key(&scope), amount));
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
