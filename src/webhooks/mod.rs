//! Webhooks: tenants hear about their quotas and their users without polling.
//!
//! An event never leaves from where it happens. The change that causes it — an admin write, a
//! SCIM request, a just-in-time user, a usage settlement crossing a quota threshold — writes
//! one row per subscribed endpoint into an outbox (`webhook_deliveries`) in its own
//! transaction: no event without its change, no change without its event, whatever crashes
//! next. A [`worker`] on every replica then claims due rows, signs ([`signature`]) and sends
//! them, and records each attempt; a failure is retried with exponential backoff until
//! `webhooks.give_up_after`. Delivery is at least once: a receiver drops a redelivery by its
//! `webhook-id`, which every attempt of one event shares.

pub mod destination;
pub mod signature;
pub mod thresholds;
mod worker;

use serde_json::{Value, json};

use crate::audit::Entry;
use crate::clock::Timestamp;

pub use worker::{DeliveryWorker, WorkerHandle};

/// Every event type an endpoint can subscribe to.
pub const EVENT_TYPES: [&str; 7] = [
    QUOTA_THRESHOLD,
    "user.created",
    "user.suspended",
    "user.reactivated",
    "user.deleted",
    "key.created",
    "key.revoked",
];

pub const QUOTA_THRESHOLD: &str = "quota.threshold";

/// The thresholds an endpoint that names none is told about, in percent of a limit.
pub const DEFAULT_THRESHOLDS: [i32; 3] = [50, 80, 100];

/// The body of one event, the same bytes on every attempt.
pub fn body(event_type: &str, at: Timestamp, data: Value) -> String {
    json!({"type": event_type, "timestamp": at, "data": data}).to_string()
}

/// The event a change recorded in the audit log sends, if it is one endpoints can subscribe
/// to: the audit entry already names the change, its tenant and its target, and the
/// service layer writes it in the change's own transaction — so every door (admin API, SCIM,
/// just-in-time provisioning) sends the same events without knowing webhooks exist.
pub fn lifecycle_event(entry: &Entry) -> Option<(&'static str, Value)> {
    let event_type = match entry.action {
        "user.created" | "user.suspended" | "user.reactivated" | "user.deleted" => entry.action,
        // Undeleting brings a user back, as reactivating does.
        "user.restored" => "user.reactivated",
        "key.created" | "key.revoked" => entry.action,
        _ => return None,
    };
    let tenant = entry.tenant.as_deref()?;
    let state = entry.after.as_ref().or(entry.before.as_ref());
    let data = if event_type.starts_with("user.") {
        json!({"tenant": tenant, "subject": entry.target, "user": state})
    } else {
        let subject = state.and_then(|key| key.get("subject")).cloned();
        json!({"tenant": tenant, "key_id": entry.target, "subject": subject, "key": state})
    };
    Some((event_type, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_key_changes_are_events_and_other_changes_are_not() {
        let user = serde_json::json!({"subject": "ann", "status": "suspended"});
        let entry = Entry::new("user.suspended", Some("acme"), Some("ann")).after(&user);
        let (kind, data) = lifecycle_event(&entry).unwrap();
        assert_eq!(kind, "user.suspended");
        assert_eq!(data["subject"], "ann");
        assert_eq!(data["user"]["status"], "suspended");

        let key = serde_json::json!({"id": "k1", "subject": "ann"});
        let entry = Entry::new("key.revoked", Some("acme"), Some("k1")).after(&key);
        let (kind, data) = lifecycle_event(&entry).unwrap();
        assert_eq!(
            (kind, &data["key_id"], &data["subject"]),
            ("key.revoked", &json!("k1"), &json!("ann"))
        );

        let restored = Entry::new("user.restored", Some("acme"), Some("ann"));
        assert_eq!(lifecycle_event(&restored).unwrap().0, "user.reactivated");
        for action in [
            "user.updated",
            "tenant.created",
            "quota.set",
            "scim_token.created",
        ] {
            assert!(
                lifecycle_event(&Entry::new(action, Some("acme"), None)).is_none(),
                "{action}"
            );
        }
    }
}
