//! Audit events: appended inside the transaction of the change they describe, with the webhook
//! event the change sends, if any ([`crate::webhooks::lifecycle_event`]); read back by the
//! audit API.

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

use super::tx::on_tx;
use super::{Store, StoreError, Tx, on_pool};
use crate::audit::query::{Action, Event, Filter};
use crate::audit::{Actor, ActorKind, Entry};
use crate::clock::Timestamp;

#[derive(sqlx::FromRow)]
struct EventRow {
    id: String,
    at: Timestamp,
    actor_kind: String,
    actor_id: Option<String>,
    tenant_id: Option<String>,
    action: String,
    target: Option<String>,
    before: Option<String>,
    after: Option<String>,
    request_id: Option<String>,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Self {
        let json = |text: Option<String>| text.and_then(|text| serde_json::from_str(&text).ok());
        Self {
            id: row.id,
            at: row.at,
            actor: Actor {
                // The schema's CHECK allows only the four kinds.
                kind: ActorKind::parse(&row.actor_kind).unwrap_or(ActorKind::System),
                id: row.actor_id,
                request_id: None,
            },
            tenant: row.tenant_id,
            action: row.action,
            target: row.target,
            before: json(row.before),
            after: json(row.after),
            request_id: row.request_id,
        }
    }
}

impl Store {
    /// The events `filter` selects, oldest first, streamed as the database returns them.
    pub fn audit_events<'a>(
        &'a self,
        filter: &'a Filter,
    ) -> BoxStream<'a, Result<Event, StoreError>> {
        let (exact, prefix) = match &filter.action {
            Some(Action::Exact(action)) => (Some(action.as_str()), None),
            Some(Action::Prefix(prefix)) => (None, Some(prefix.as_str())),
            None => (None, None),
        };
        let kind = filter.actor.as_ref().map(|actor| actor.kind.as_str());
        let actor_id = filter.actor.as_ref().and_then(|actor| actor.id.as_deref());
        // SQLite and PostgreSQL both take a LIMIT this large as "no limit".
        let limit = filter.limit.map_or(i64::MAX, i64::from);
        on_pool!(self, pool => sqlx::query_as::<_, EventRow>(
            "SELECT id, at, actor_kind, actor_id, tenant_id, action, target, before, after, \
             request_id FROM audit_events \
             WHERE ($1 IS NULL OR tenant_id = $1) \
             AND ($2 IS NULL OR at >= $2) AND ($3 IS NULL OR at < $3) \
             AND ($4 IS NULL OR action = $4) \
             AND ($5 IS NULL OR substr(action, 1, length($5)) = $5) \
             AND ($6 IS NULL OR actor_kind = $6) AND ($7 IS NULL OR actor_id = $7) \
             AND ($8 IS NULL OR id > $8) \
             ORDER BY id LIMIT $9"
        )
        .bind(filter.tenant.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(exact)
        .bind(prefix)
        .bind(kind)
        .bind(actor_id)
        .bind(filter.after.as_deref())
        .bind(limit)
        .fetch(pool)
        .map_ok(Event::from)
        .map_err(StoreError::from)
        .boxed())
    }
}

// === impl Tx ===

impl Tx {
    pub async fn record_audit(
        &mut self,
        actor: &Actor,
        entry: &Entry,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let before = entry.before.as_ref().map(|value| value.to_string());
        let after = entry.after.as_ref().map(|value| value.to_string());
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO audit_events \
             (id, at, actor_kind, actor_id, tenant_id, action, target, before, after, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
        .bind(&id)
        .bind(at)
        .bind(actor.kind.as_str())
        .bind(actor.id.as_deref())
        .bind(entry.tenant.as_deref())
        .bind(entry.action)
        .bind(entry.target.as_deref())
        .bind(before)
        .bind(after)
        .bind(actor.request_id.as_deref())
        .execute(conn)
        .await
        .map(|_| ()))?;
        if let (Some(tenant), Some((event_type, data))) = (
            entry.tenant.as_deref(),
            crate::webhooks::lifecycle_event(entry),
        ) {
            self.enqueue_webhook_event(tenant, event_type, data, at)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event lives and dies with its transaction: rolled back, it is gone with the change.
    #[tokio::test]
    async fn an_event_commits_or_rolls_back_with_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let store = Store::connect(&url, 1).await.unwrap();
        store.migrate().await.unwrap();
        let by = Actor::platform(Some("req-1".into()));
        let entry = Entry::new("tenant.created", Some("acme"), Some("acme"));
        let count = || async {
            let all = Filter::default();
            store
                .audit_events(&all)
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
                .len()
        };

        let mut tx = store.begin().await.unwrap();
        tx.create_tenant("acme", "Acme").await.unwrap();
        tx.record_audit(&by, &entry, Timestamp::now())
            .await
            .unwrap();
        drop(tx);
        assert_eq!(count().await, 0, "rolled back");
        assert!(store.tenant("acme").await.unwrap().is_none());

        let mut tx = store.begin().await.unwrap();
        tx.create_tenant("acme", "Acme").await.unwrap();
        tx.record_audit(&by, &entry, Timestamp::now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count().await, 1, "committed");
    }
}
