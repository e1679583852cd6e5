//! A transaction on whichever backend the store runs. Every write to state the hot path caches
//! goes through one, so whatever the write must cause — a change notification today, audit and
//! outbox rows later — commits or rolls back with it.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Postgres, Sqlite, Transaction};

use super::{Pool, Store, StoreError};

/// An open transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx(pub(super) Inner);

pub(super) enum Inner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection, whichever backend it is:
/// what [`super::on_pool!`] is for a pool.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.0 {
            $crate::store::tx::Inner::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::tx::Inner::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl Store {
    /// Begins a write. On SQLite the write lock is taken at once (`BEGIN IMMEDIATE`), so a
    /// transaction waits for another writer up front instead of failing halfway.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &*self.pool {
            Pool::Sqlite(pool) => Inner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => Inner::Postgres(pool.begin().await?),
        };
        Ok(Tx(inner))
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.0 {
            Inner::Sqlite(tx) => tx.commit().await?,
            Inner::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// The row `select` finds, read under the write's lock so what a write compares with (an
    /// audit event's `before`) is what it changes: `FOR UPDATE` on PostgreSQL; on SQLite,
    /// `BEGIN IMMEDIATE` already holds the whole database. `binds` are `$1`, `$2`, ….
    pub(super) async fn fetch_locked<R>(
        &mut self,
        select: &'static str,
        binds: &[&str],
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let row = match &mut self.0 {
            Inner::Sqlite(tx) => {
                let mut query = sqlx::query_as::<_, R>(select);
                for value in binds {
                    query = query.bind(*value);
                }
                query.fetch_optional(&mut **tx).await?
            }
            Inner::Postgres(tx) => {
                let locked = sqlx::AssertSqlSafe(format!("{select} FOR UPDATE"));
                let mut query = sqlx::query_as::<_, R>(locked);
                for value in binds {
                    query = query.bind(*value);
                }
                query.fetch_optional(&mut **tx).await?
            }
        };
        Ok(row)
    }

    /// `NOTIFY` on PostgreSQL: listeners get `payload` on `channel` when, and only if, this
    /// transaction commits — never before the rows it wrote are visible. SQLite has no other
    /// process to tell, so there it does nothing.
    pub async fn notify(&mut self, channel: &str, payload: &str) -> Result<(), StoreError> {
        if let Inner::Postgres(tx) = &mut self.0 {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
