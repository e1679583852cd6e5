//! SQL access for SQLite (the embedded default) and PostgreSQL (for several replicas).
//!
//! Both backends run the same SQL text: times are integer milliseconds, JSON is text, and
//! parameters are `$1`-style, which SQLite accepts too. [`on_pool!`] expands one query for
//! whichever pool the URL chose, so there is no `sqlx::Any` (it loses types) and no twin code.

mod api_keys;
mod audit;
mod console;
mod deployment;
mod groups;
mod issuers;
mod quotas;
mod revocations;
mod rollup;
mod scim;
mod tenants;
mod tx;
mod usage;
mod users;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use api_keys::{ApiKey, NewApiKey};
pub use console::{ConsoleSession, PendingLogin, SessionOwner};
pub use groups::{Group, GroupPolicy, GroupRole};
pub use issuers::{Issuer, KeySource, NewIssuer, SubjectCase};
pub use quotas::{Limits, QuotaScope};
pub use revocations::RevokedToken;
pub use rollup::{Dimension, RollupQuery, RollupRow};
pub use scim::{ScimGroup, ScimMember, ScimToken, ScimUser, SubjectAttribute};
pub use tenants::{Tenant, TenantPatch, TenantStatus};
pub use tx::Tx;
pub use usage::UsageTotal;
pub use users::{Upserted, User, UserPatch, UserRole, UserStatus};
pub use webhooks::{
    Attempt, DeliveryTarget, DueDelivery, NewWebhookEndpoint, WebhookDelivery, WebhookEndpoint,
};

/// What can go wrong in the store, in terms a handler can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A write the schema refused (a reference to a row that does not exist, say).
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Maps a unique-key violation to `Conflict(what)`, anything else to `Database`.
    fn conflict_on_unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::Invalid(format!("{what} refers to a row that does not exist"))
            }
            _ => StoreError::Database(error),
        }
    }
}

pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The handle every part of tollgate uses to reach SQL. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: std::sync::Arc<Pool>,
}

/// Runs `$body` with `$pool` bound to the concrete pool, whichever backend it is.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &*$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Connects to `url`: `sqlite://file.db` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let acquire_timeout = Duration::from_secs(5);
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .connect(url)
                .await?;
            Pool::Postgres(pool)
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await?;
            Pool::Sqlite(pool)
        };
        Ok(Self {
            pool: std::sync::Arc::new(pool),
        })
    }

    /// The SQLite pool, for tests and tools that read it directly; `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&SqlitePool> {
        match &*self.pool {
            Pool::Sqlite(pool) => Some(pool),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for `LISTEN`/`NOTIFY`; `None` on SQLite.
    pub fn postgres(&self) -> Option<&PgPool> {
        match &*self.pool {
            Pool::Postgres(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        }
    }

    /// Applies every migration not yet applied. Safe to run on every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &*self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// One round-trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Hides the password of a database URL, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

/// Encodes a list as the JSON text stored in a column.
fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// Reads a JSON text column back; a corrupt value reads as empty rather than failing a request.
fn from_json_text<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_url("sqlite://tollgate.db"), "sqlite://tollgate.db");
    }

    /// Events stored before events had ids of their own keep their counts, and are not
    /// written a second time by a replay of the spill file they came from.
    #[tokio::test]
    async fn events_stored_before_event_ids_survive_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let store = Store::connect(&url, 1).await.unwrap();
        let all = sqlx::migrate!("migrations/sqlite");
        let before = sqlx::migrate::Migrator {
            migrations: all.migrations[..2].to_vec().into(),
            ..sqlx::migrate!("migrations/sqlite")
        };
        let Pool::Sqlite(pool) = &*store.pool else {
            unreachable!("a sqlite url")
        };
        before.run(pool).await.unwrap();
        sqlx::query(
            "INSERT INTO usage_events (request_id, at, tenant_id, subject, credential_id, model, \
             provider, upstream_model, prompt_tokens, completion_tokens, cached_tokens, \
             reasoning_tokens, total_tokens, cost_micro_usd, status, http_status, latency_ms, \
             ttft_ms, streamed, estimated) \
             VALUES ('old-1', 1000, 'acme', 'jane', 'k', 'm', 'p', 'u', 3, 4, 0, 0, 7, 9, 'ok', \
             200, 5, NULL, false, false)",
        )
        .execute(pool)
        .await
        .unwrap();

        store.migrate().await.unwrap();
        let old = store.usage_event("old-1").await.unwrap().unwrap();
        assert_eq!(
            (old.event_id.as_str(), old.tally.total_tokens),
            ("old-1", 7)
        );
        // The same event read back from an old spill file (no event id) is keyed the same way.
        let mut replayed = old.clone();
        replayed.event_id.clear();
        let line = serde_json::to_string(&replayed)
            .unwrap()
            .replace(r#""event_id":"","#, "");
        let spill = dir.path().join("old.jsonl");
        std::fs::write(&spill, line + "\n").unwrap();
        let (events, _) = crate::metering::spill::SpillReader::read_all(&spill).unwrap();
        assert_eq!(store.insert_usage_batch(&events).await.unwrap(), 0);
        assert_eq!(store.usage_count().await.unwrap(), 1);
    }
}
