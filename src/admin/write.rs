//! One admin write: a store transaction, the changes it announces and the audit events it
//! records.

use crate::audit::{Actor, Entry};
use crate::changes::{CHANNEL, Change, Changes};
use crate::clock::Timestamp;
use crate::store::{Store, StoreError, Tx};

/// A write in progress. Dropped without [`Write::commit`], it rolls back, and nothing it
/// announced reaches anyone.
pub(super) struct Write<'a> {
    pub(super) tx: Tx,
    changes: &'a Changes,
    by: &'a Actor,
    announced: Vec<Change>,
}

impl<'a> Write<'a> {
    pub(super) async fn begin(
        store: &Store,
        changes: &'a Changes,
        by: &'a Actor,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            tx: store.begin().await?,
            changes,
            by,
            announced: Vec::new(),
        })
    }

    /// Records who made the change, in the same transaction: no change without its event, no
    /// event for a change that rolled back.
    pub(super) async fn audit(&mut self, entry: Entry) -> Result<(), StoreError> {
        self.tx
            .record_audit(self.by, &entry, Timestamp::now())
            .await
    }

    /// Tells every replica, with a `NOTIFY` sent inside the transaction: PostgreSQL delivers it
    /// only when the write commits, so no replica drops a cache entry and reads the old row
    /// back. A failed announcement fails the write.
    pub(super) async fn announce(&mut self, change: Change) -> Result<(), StoreError> {
        self.tx.notify(CHANNEL, &change.to_payload()).await?;
        self.announced.push(change);
        Ok(())
    }

    /// Commits, then applies the announced changes to this process's caches — after the
    /// commit, for the same reason the other replicas hear of them only then.
    pub(super) async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        for change in &self.announced {
            self.changes.apply(change).await;
        }
        Ok(())
    }
}
