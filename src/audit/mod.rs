//! The audit log: who changed what, when, through which door. Every write of the service layer
//! ([`crate::admin`]) records one [`Entry`] in its own transaction, so an event exists exactly
//! when its change does. An event never carries a secret: `before`/`after` are the same
//! serialisations the admin API answers with, which leave out hashes, keys and HS256 secrets.

pub mod query;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    /// The tenant admin's subject, the SCIM token's id, or what the system was doing (`jit`);
    /// none for the platform admin.
    pub id: Option<String>,
    /// The request that made the change, when a request did.
    #[serde(skip)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Platform,
    TenantAdmin,
    Scim,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::TenantAdmin => "tenant_admin",
            Self::Scim => "scim",
            Self::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "platform" => Self::Platform,
            "tenant_admin" => Self::TenantAdmin,
            "scim" => Self::Scim,
            "system" => Self::System,
            _ => return None,
        })
    }
}

impl Actor {
    pub fn platform(request_id: Option<String>) -> Self {
        Self {
            kind: ActorKind::Platform,
            id: None,
            request_id,
        }
    }

    pub fn tenant_admin(subject: &str, request_id: Option<String>) -> Self {
        Self {
            kind: ActorKind::TenantAdmin,
            id: Some(subject.to_owned()),
            request_id,
        }
    }

    pub fn scim(token_id: &str, request_id: Option<String>) -> Self {
        Self {
            kind: ActorKind::Scim,
            id: Some(token_id.to_owned()),
            request_id,
        }
    }

    /// tollgate itself, doing `what` (e.g. `jit` for just-in-time provisioning).
    pub fn system(what: &str, request_id: Option<String>) -> Self {
        Self {
            kind: ActorKind::System,
            id: Some(what.to_owned()),
            request_id,
        }
    }
}

/// One change, as a write describes it; the actor and the time are the write's.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `<resource>.<verb>`, e.g. `user.suspended`, `key.created`.
    pub action: &'static str,
    pub tenant: Option<String>,
    /// What the change was made to, e.g. the subject or the key id.
    pub target: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Entry {
    pub fn new(action: &'static str, tenant: Option<&str>, target: Option<&str>) -> Self {
        Self {
            action,
            tenant: tenant.map(str::to_owned),
            target: target.map(str::to_owned),
            before: None,
            after: None,
        }
    }

    /// The state before the change, as the admin API shows it; `None` (nothing there yet)
    /// leaves it out.
    pub fn before(mut self, state: &impl Serialize) -> Self {
        self.before = state_of(state);
        self
    }

    /// The state after the change, as the admin API shows it.
    pub fn after(mut self, state: &impl Serialize) -> Self {
        self.after = state_of(state);
        self
    }
}

fn state_of(state: &impl Serialize) -> Option<Value> {
    serde_json::to_value(state)
        .ok()
        .filter(|value| !value.is_null())
}
