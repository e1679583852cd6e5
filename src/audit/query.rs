//! Reading the audit log back: which events a query selects, each event as the API shows it,
//! and the JSON Lines export.

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Actor;
use crate::clock::Timestamp;
use crate::store::{Store, StoreError};

/// Events in flight between the query and the reader of an export.
const CHANNEL_EVENTS: usize = 64;

/// Which events to read, oldest first (by id, a UUIDv7). Every `None` selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub tenant: Option<String>,
    /// Inclusive.
    pub from: Option<Timestamp>,
    /// Exclusive.
    pub to: Option<Timestamp>,
    pub action: Option<Action>,
    pub actor: Option<ActorFilter>,
    /// Only events after this id: the last id of the previous page.
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// `user.suspended` (exactly that action) or `user.` (every action that starts so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Exact(String),
    Prefix(String),
}

impl Action {
    pub fn parse(text: &str) -> Self {
        if text.ends_with('.') {
            Self::Prefix(text.to_owned())
        } else {
            Self::Exact(text.to_owned())
        }
    }
}

/// `kind` or `kind:id`, e.g. `tenant_admin`, `tenant_admin:alice`, `scim:<token id>`,
/// `system:jit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorFilter {
    pub kind: super::ActorKind,
    pub id: Option<String>,
}

impl ActorFilter {
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, id) = match text.split_once(':') {
            Some((kind, id)) if !id.is_empty() => (kind, Some(id.to_owned())),
            Some(_) => return None,
            None => (text, None),
        };
        Some(Self {
            kind: super::ActorKind::parse(kind)?,
            id,
        })
    }
}

/// One event as the audit API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Event {
    pub id: String,
    pub at: Timestamp,
    pub actor: Actor,
    pub tenant: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
}

/// Starts reading the events `filter` selects on a task of their own and returns them as
/// JSON lines, one an event, as they come. A store error ends the stream with that error, so
/// a reader never mistakes a cut-off export for a complete one; a reader that goes away stops
/// the query.
pub fn jsonl(store: Store, filter: Filter) -> mpsc::Receiver<Result<Bytes, StoreError>> {
    let (sender, receiver) = mpsc::channel(CHANNEL_EVENTS);
    tokio::spawn(async move {
        let mut events = store.audit_events(&filter);
        while let Some(event) = events.next().await {
            let failed = event.is_err();
            let line = event.map(|event| {
                let mut line = serde_json::to_vec(&event).unwrap_or_default();
                line.push(b'\n');
                Bytes::from(line)
            });
            if sender.send(line).await.is_err() || failed {
                return;
            }
        }
    });
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ActorKind;

    #[test]
    fn an_action_ending_in_a_dot_is_a_prefix() {
        assert_eq!(Action::parse("user."), Action::Prefix("user.".into()));
        assert_eq!(
            Action::parse("user.created"),
            Action::Exact("user.created".into())
        );
    }

    #[test]
    fn an_actor_is_a_kind_with_an_optional_id() {
        let parsed = |text| ActorFilter::parse(text).map(|a| (a.kind, a.id));
        assert_eq!(parsed("platform"), Some((ActorKind::Platform, None)));
        assert_eq!(
            parsed("tenant_admin:alice@example.com"),
            Some((ActorKind::TenantAdmin, Some("alice@example.com".into())))
        );
        assert_eq!(
            parsed("system:jit"),
            Some((ActorKind::System, Some("jit".into())))
        );
        assert_eq!(parsed("scim:"), None);
        assert_eq!(parsed("robot"), None);
    }
}
