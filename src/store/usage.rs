//! Usage events, their hourly rollup and the quota thresholds they cross, written together in
//! one transaction.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use super::tx::on_tx;
use super::webhooks::Touched;
use super::{Store, StoreError, on_pool};
use crate::clock::Timestamp;
use crate::metering::{Tally, UsageEvent};

/// One user's usage over a period, from the rollup: what quota counters are rebuilt from.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageTotal {
    pub tenant_id: String,
    pub subject: String,
    #[sqlx(flatten)]
    pub tally: Tally,
}

/// The key of one rollup row. Ordered, so every writer upserts rows in the same order and two
/// replicas' transactions cannot deadlock on each other's rows.
type HourKey<'a> = (&'a str, &'a str, &'a str, &'a str, Timestamp);

macro_rules! event_columns {
    () => {
        "event_id, request_id, at, tenant_id, subject, credential_id, model, provider, upstream_model, \
         prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, total_tokens, \
         cost_micro_usd, status, http_status, latency_ms, ttft_ms, streamed, estimated"
    };
}

/// Rows per `INSERT`, largest first (21 parameters a row: 2,100 at most, well below SQLite's and
/// PostgreSQL's limits). A batch is cut into these sizes, so the databases only ever see eight
/// statement texts, each parsed once per connection and then taken from its statement cache.
/// Cut at any size, every batch brought a text of its own, and SQLite spent about half a
/// million instructions parsing a 14-row statement: more than inserting its rows.
const STATEMENT_ROWS: [usize; 8] = [100, 64, 32, 16, 8, 4, 2, 1];
const EVENT_PARAMS: usize = 21;

/// `events` cut into runs of [`STATEMENT_ROWS`] sizes, in order.
fn statement_chunks<T>(mut events: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let rows = STATEMENT_ROWS
            .into_iter()
            .find(|&rows| rows <= events.len())?;
        let (chunk, rest) = events.split_at(rows);
        events = rest;
        Some(chunk)
    })
}

/// [`insert_events`] for a chunk of `rows`, built once per process for each of the
/// [`STATEMENT_ROWS`] sizes (a 100-row text is 2,100 formatted parameters).
fn insert_sql(rows: usize, numbered: bool, returning: bool) -> Cow<'static, str> {
    type Text = ((usize, bool, bool), String);
    static TEXTS: LazyLock<Vec<Text>> = LazyLock::new(|| {
        let mut texts = Vec::new();
        for rows in STATEMENT_ROWS {
            for numbered in [false, true] {
                for returning in [false, true] {
                    let key = (rows, numbered, returning);
                    texts.push((key, insert_events(rows, numbered, returning)));
                }
            }
        }
        texts
    });
    let key = (rows, numbered, returning);
    match TEXTS.iter().find(|(built, _)| *built == key) {
        Some((_, text)) => Cow::Borrowed(text),
        None => Cow::Owned(insert_events(rows, numbered, returning)),
    }
}

/// `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING` for `rows` events, with `RETURNING
/// event_id` when asked: that gives a row only for an event that was not there yet, which is
/// exactly the set the rollup must count.
///
/// PostgreSQL needs numbered parameters (`$1`); SQLite gets anonymous ones (`?`), because it
/// finds a numbered parameter's name by a linear scan, which makes binding a wide statement
/// quadratic.
fn insert_events(rows: usize, numbered: bool, returning: bool) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(200 + rows * 120);
    sql.push_str(concat!(
        "INSERT INTO usage_events (",
        event_columns!(),
        ") VALUES "
    ));
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for param in 0..EVENT_PARAMS {
            let sep = if param == 0 { "" } else { ", " };
            if numbered {
                let _ = write!(sql, "{sep}${}", row * EVENT_PARAMS + param + 1);
            } else {
                let _ = write!(sql, "{sep}?");
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (event_id) DO NOTHING");
    if returning {
        sql.push_str(" RETURNING event_id");
    }
    sql
}

/// Binds events' columns in [`event_columns!`] order, for either database.
trait BindEvents<'q>: Sized {
    fn bind_events(self, events: &'q [UsageEvent]) -> Self;
}

impl<'q, DB, O> BindEvents<'q>
    for sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Timestamp: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    fn bind_events(mut self, events: &'q [UsageEvent]) -> Self {
        for event in events {
            self = self
                .bind(event.event_id.as_str())
                .bind(event.request_id.as_str())
                .bind(event.at)
                .bind(event.tenant_id.as_str())
                .bind(event.subject.as_str())
                .bind(event.credential_id.as_str())
                .bind(event.model.as_str())
                .bind(event.provider.as_str())
                .bind(event.upstream_model.as_str())
                .bind(event.tally.prompt_tokens)
                .bind(event.tally.completion_tokens)
                .bind(event.tally.cached_tokens)
                .bind(event.reasoning_tokens)
                .bind(event.tally.total_tokens)
                .bind(event.tally.cost_micro_usd)
                .bind(event.status.as_str())
                .bind(event.http_status)
                .bind(event.latency_ms)
                .bind(event.ttft_ms)
                .bind(event.streamed)
                .bind(event.estimated);
        }
        self
    }
}

const UPSERT_HOUR: &str = "INSERT INTO usage_hourly (tenant_id, subject, model, provider, \
     hour_start, requests, prompt_tokens, completion_tokens, cached_tokens, total_tokens, \
     cost_micro_usd) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (tenant_id, subject, model, provider, hour_start) DO UPDATE SET \
     requests = usage_hourly.requests + excluded.requests, \
     prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens, \
     completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens, \
     cached_tokens = usage_hourly.cached_tokens + excluded.cached_tokens, \
     total_tokens = usage_hourly.total_tokens + excluded.total_tokens, \
     cost_micro_usd = usage_hourly.cost_micro_usd + excluded.cost_micro_usd";

// PostgreSQL's SUM of a BIGINT is NUMERIC; the casts make both engines return a 64-bit integer.
macro_rules! sums {
    () => {
        "COALESCE(CAST(SUM(prompt_tokens) AS BIGINT), 0) AS prompt_tokens, \
         COALESCE(CAST(SUM(completion_tokens) AS BIGINT), 0) AS completion_tokens, \
         COALESCE(CAST(SUM(cached_tokens) AS BIGINT), 0) AS cached_tokens, \
         COALESCE(CAST(SUM(total_tokens) AS BIGINT), 0) AS total_tokens, \
         COALESCE(CAST(SUM(cost_micro_usd) AS BIGINT), 0) AS cost_micro_usd"
    };
}

impl Store {
    /// Inserts a batch of events and their rollup in one transaction; returns how many were new.
    /// An event whose id is already stored is skipped and not counted again, so retrying a
    /// batch or replaying a spill file is harmless.
    pub async fn insert_usage_batch(&self, events: &[UsageEvent]) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        // Almost always every event is new, and each statement's row count says so. Only when
        // one is not (a replay) is the batch written again, learning row by row which are new:
        // `RETURNING` sends every inserted row back, one message each through SQLite's worker
        // thread, which would cost the hot path's core more than the insert itself.
        match self.insert_usage(events, false).await? {
            Some(inserted) => Ok(inserted),
            None => Ok(self.insert_usage(events, true).await?.unwrap_or(0)),
        }
    }

    /// One attempt at [`Store::insert_usage_batch`]. Without `returning`, gives up (rolling
    /// back) with `None` as soon as a statement skips a stored event.
    async fn insert_usage(
        &self,
        events: &[UsageEvent],
        returning: bool,
    ) -> Result<Option<u64>, StoreError> {
        let mut hours: BTreeMap<HourKey<'_>, Tally> = BTreeMap::new();
        let numbered = matches!(&*self.pool, super::Pool::Postgres(_));
        let mut tx = self.begin().await?;
        let inserted = on_tx!(tx, conn => {
            let mut inserted = 0u64;
            // Many rows per statement: one round trip to the database per chunk, not per event.
            for chunk in statement_chunks(events) {
                let sql = sqlx::AssertSqlSafe(insert_sql(chunk.len(), numbered, returning));
                let query = sqlx::query_as::<_, (String,)>(sql).bind_events(chunk);
                let mut new: HashSet<String> = if returning {
                    query.fetch_all(&mut *conn).await?.into_iter().map(|(id,)| id).collect()
                } else {
                    let written = sqlx::Executor::execute(&mut *conn, query).await?.rows_affected();
                    if written != chunk.len() as u64 {
                        // Dropping the transaction rolls it back.
                        return Ok(None);
                    }
                    HashSet::new()
                };
                for event in chunk {
                    // An event twice in one chunk: the first row went in, the second not.
                    if !returning || new.remove(&event.event_id) {
                        inserted += 1;
                        let key = (
                            event.tenant_id.as_str(),
                            event.subject.as_str(),
                            event.model.as_str(),
                            event.provider.as_str(),
                            event.hour_start(),
                        );
                        *hours.entry(key).or_default() += event.tally;
                    }
                }
            }
            for ((tenant_id, subject, model, provider, hour_start), added) in &hours {
                sqlx::query(UPSERT_HOUR)
                    .bind(*tenant_id)
                    .bind(*subject)
                    .bind(*model)
                    .bind(*provider)
                    .bind(*hour_start)
                    .bind(added.requests)
                    .bind(added.prompt_tokens)
                    .bind(added.completion_tokens)
                    .bind(added.cached_tokens)
                    .bind(added.total_tokens)
                    .bind(added.cost_micro_usd)
                    .execute(&mut *conn)
                    .await?;
            }
            inserted
        });
        // In the same transaction: a threshold fires exactly when the usage that crossed it is
        // recorded, and is marked fired with it.
        let touched: Touched<'_> = hours
            .keys()
            .map(|(tenant, subject, _, _, hour)| (*tenant, *subject, *hour))
            .collect();
        tx.fire_quota_thresholds(&touched, Timestamp::now()).await?;
        tx.commit().await?;
        Ok(Some(inserted))
    }

    /// Per-user totals since `from`, read from the hourly rollup only (so a month is a few
    /// thousand rows, not millions of events). `from` is floored to its hour; UTC days and
    /// months start on an hour, so for the periods quotas use this is exact.
    pub async fn usage_totals_since(&self, from: Timestamp) -> Result<Vec<UsageTotal>, StoreError> {
        let hour = Timestamp(from.0 - from.0.rem_euclid(3_600_000));
        let rows = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT tenant_id, subject, COALESCE(CAST(SUM(requests) AS BIGINT), 0) AS requests, ",
            sums!(),
            " FROM usage_hourly WHERE hour_start >= $1 \
             GROUP BY tenant_id, subject ORDER BY tenant_id, subject"
        ))
        .bind(hour)
        .fetch_all(pool)
        .await)?;
        Ok(rows)
    }

    /// The first stored event with this request id (a client may send one id twice).
    pub async fn usage_event(&self, request_id: &str) -> Result<Option<UsageEvent>, StoreError> {
        // An event is one request; the table has no column saying so.
        let event = on_pool!(self, pool => sqlx::query_as(
            concat!("SELECT CAST(1 AS BIGINT) AS requests, ", event_columns!(),
                " FROM usage_events WHERE request_id = $1 ORDER BY at, event_id LIMIT 1")
        )
        .bind(request_id)
        .fetch_optional(pool)
        .await)?;
        Ok(event)
    }

    /// How many events are stored.
    pub async fn usage_count(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM usage_events"
        )
        .fetch_one(pool)
        .await)?;
        Ok(count)
    }

    /// Sums over every stored event.
    pub async fn usage_event_sums(&self) -> Result<Tally, StoreError> {
        let sums = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT COUNT(*) AS requests, ", sums!(), " FROM usage_events"
        ))
        .fetch_one(pool)
        .await)?;
        Ok(sums)
    }

    /// Sums over the whole hourly rollup; equal to [`Store::usage_event_sums`] when the two
    /// are in step.
    pub async fn usage_rollup_sums(&self) -> Result<Tally, StoreError> {
        let sums = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT COALESCE(CAST(SUM(requests) AS BIGINT), 0) AS requests, ", sums!(),
            " FROM usage_hourly"
        ))
        .fetch_one(pool)
        .await)?;
        Ok(sums)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn any_batch_is_written_with_the_same_eight_statements() {
        let mut texts = HashSet::new();
        for size in 1..=1_000 {
            let events: Vec<usize> = (0..size).collect();
            let chunks: Vec<&[usize]> = statement_chunks(&events).collect();
            // Every event once, in order.
            assert_eq!(chunks.concat(), events, "batch of {size}");
            for chunk in chunks {
                texts.insert(insert_sql(chunk.len(), false, false));
            }
        }
        assert_eq!(texts.len(), STATEMENT_ROWS.len());
        assert!(texts.iter().all(|text| matches!(text, Cow::Borrowed(_))));
    }

    #[test]
    fn a_statement_has_a_parameter_per_column_of_every_row() {
        let sql = insert_sql(4, true, true);
        assert!(sql.contains("($64, $65, "), "{sql}");
        assert!(sql.ends_with("$84) ON CONFLICT (event_id) DO NOTHING RETURNING event_id"));
        let anonymous = insert_sql(2, false, false);
        assert_eq!(anonymous.matches('?').count(), 2 * EVENT_PARAMS);
    }
}
