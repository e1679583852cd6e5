//! The usage writer against real databases: exact counts, duplicates, outages, overflow,
//! restarts, shutdown. Events are recorded straight into the writer (the data plane that will
//! call it is built elsewhere), and the tests read the tables back through the store.

mod admission;
mod crash;
mod full_disk;
pub(crate) mod gateway;
pub(crate) mod lifecycle;
mod migration;
mod outage;
mod reported;
mod writer;

use std::path::Path;
use std::time::Duration;

use sqlx::Connection;
use tempfile::TempDir;
use tollgate::clock::Timestamp;
use tollgate::config::MeteringConfig;
use tollgate::metering::{Ending, Tally, UsageEvent};
use tollgate::store::Store;

use crate::support::Backend;

/// A fresh, migrated database of `backend` and its URL.
pub async fn fresh_store(backend: &Backend, dir: &TempDir) -> (Store, String) {
    let url = backend.fresh_database(dir).await;
    let store = Store::connect(&url, 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, url)
}

/// Fast settings, so outages turn into spills within a test's patience.
pub fn settings(dir: &Path) -> MeteringConfig {
    MeteringConfig {
        queue_capacity: 10_000,
        batch_size: 100,
        flush_interval: Duration::from_millis(20),
        spill_after: Duration::from_secs(1),
        retry_initial_backoff: Duration::from_millis(20),
        retry_max_backoff: Duration::from_millis(200),
        spill_dir: dir.join("spill"),
        shutdown_timeout: Duration::from_secs(10),
        journal_fsync_interval: Duration::from_secs(1),
    }
}

/// A deterministic event: spread over tenants, users, models and hours, with token counts
/// that differ per event so a lost or doubled event changes every sum.
pub fn event(tag: &str, i: u64) -> UsageEvent {
    let prompt = 100 + (i * 37) % 1000;
    let completion = 10 + (i * 13) % 500;
    let cached = (i % 4) * 10;
    UsageEvent {
        event_id: format!("{tag}-{i}"),
        request_id: format!("{tag}-{i}"),
        // 2026-11-30T00:00:00Z plus 7 minutes per event: many hourly rollup rows.
        at: Timestamp(1_796_083_200_000 + (i as i64) * 420_000),
        tenant_id: format!("tenant-{}", i % 3),
        subject: format!("user-{}", i % 5),
        credential_id: format!("key-{}", i % 5),
        model: ["gpt-4o-mini", "claude-haiku"][(i % 2) as usize].to_owned(),
        provider: ["openai", "anthropic"][(i % 2) as usize].to_owned(),
        upstream_model: "upstream".to_owned(),
        tally: Tally {
            requests: 1,
            prompt_tokens: prompt as i64,
            completion_tokens: completion as i64,
            cached_tokens: cached as i64,
            total_tokens: (prompt + completion) as i64,
            cost_micro_usd: (prompt * 3 + completion * 7) as i64,
        },
        reasoning_tokens: 0,
        status: if i.is_multiple_of(10) {
            Ending::ClientDisconnected
        } else {
            Ending::Ok
        },
        http_status: 200,
        latency_ms: 50 + i as i64,
        ttft_ms: i.is_multiple_of(2).then_some(20),
        streamed: i.is_multiple_of(2),
        estimated: i.is_multiple_of(7),
    }
}

/// What the tables must sum to when exactly `events` (each once) are stored.
pub fn expected_sums<'a>(events: impl IntoIterator<Item = &'a UsageEvent>) -> Tally {
    let mut sums = Tally::default();
    for event in events {
        sums += event.tally;
    }
    sums
}

/// Asserts that the store holds exactly `events`: the count, the event sums and the rollup.
pub async fn assert_stored_exactly(store: &Store, events: &[UsageEvent]) {
    let expected = expected_sums(events);
    assert_eq!(store.usage_count().await.unwrap(), events.len() as i64);
    assert_eq!(
        store.usage_event_sums().await.unwrap(),
        expected,
        "event sums"
    );
    assert_eq!(
        store.usage_rollup_sums().await.unwrap(),
        expected,
        "rollup sums"
    );
}

/// Polls until the store holds `count` events, or fails after `timeout`.
pub async fn wait_for_count(store: &Store, count: i64, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match store.usage_count().await {
            Ok(n) if n == count => return,
            Ok(n) if n > count => panic!("{n} events stored, expected {count}: a duplicate"),
            other => {
                if tokio::time::Instant::now() > deadline {
                    panic!("gave up waiting for {count} events; last count: {other:?}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes one test's database refuse writes until released: for PostgreSQL the database stops
/// accepting connections and its sessions are killed; for SQLite another connection holds the
/// write lock (root ignores file permissions, so a read-only file would not stop anything).
pub enum Outage {
    Sqlite(sqlx::SqliteConnection),
    Postgres { server: String, database: String },
}

impl Outage {
    pub async fn begin(backend: &Backend, url: &str) -> Self {
        match backend {
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut connection)
                    .await
                    .unwrap();
                Self::Sqlite(connection)
            }
            Backend::Postgres(server) => {
                let (_, database) = url.rsplit_once('/').unwrap();
                let outage = Self::Postgres {
                    server: server.clone(),
                    database: database.to_owned(),
                };
                outage
                    .admin(&[
                        format!("ALTER DATABASE {database} ALLOW_CONNECTIONS false"),
                        format!(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
                        ),
                    ])
                    .await;
                outage
            }
        }
    }

    pub async fn end(self) {
        match self {
            Self::Sqlite(mut connection) => {
                sqlx::query("COMMIT")
                    .execute(&mut connection)
                    .await
                    .unwrap();
                connection.close().await.unwrap();
            }
            Self::Postgres { ref database, .. } => {
                let statement = format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true");
                self.admin(&[statement]).await;
            }
        }
    }

    /// Runs statements on the server's own database, which stays reachable.
    async fn admin(&self, statements: &[String]) {
        let Self::Postgres { server, .. } = self else {
            return;
        };
        let mut connection = sqlx::PgConnection::connect(server).await.unwrap();
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .execute(&mut connection)
                .await
                .unwrap();
        }
    }
}
