//! Audit events: appended inside the transaction of the change they describe, with the webhook
//! event the change sends, if any ([`crate::webhooks::lifecycle_event`]).

use super::tx::on_tx;
use super::{StoreError, Tx};
use crate::audit::{Actor, Entry};
use crate::clock::Timestamp;

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
