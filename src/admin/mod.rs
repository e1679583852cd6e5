//! The service layer for every write an administrator makes — tenants, users, credentials,
//! quotas, issuers, groups — whichever door it comes through: the admin API today, the console and
//! SCIM next. A door parses its request, calls one method here and renders the answer; the
//! rules a write must obey (the tenant is live, the user exists), its side effects and its log
//! line are here, once.
//!
//! The side effects are the change every replica's caches must see ([`Change`]) and the audit
//! event naming who made it ([`crate::audit`]). A method writes both inside the write's own
//! transaction ([`write`]), so a new door cannot forget them, and a replica never hears of a
//! change before the row is there to read.
//!
//! [`Change`]: crate::changes::Change

mod console;
mod groups;
mod issuers;
mod keys;
mod quotas;
mod scim;
mod tenants;
mod users;
mod webhooks;
mod write;

use std::sync::Arc;

use crate::audit::Actor;
use crate::changes::Changes;
use crate::store::{Store, StoreError};

pub use keys::NewKey;
pub use scim::{Edit, NewScimToken, SCIM_TOKEN_PREFIX};
pub use webhooks::{NewWebhook, WebhookRequest};
use write::Write;

/// Every admin write, each committed with the change it announces.
pub struct Admin {
    store: Store,
    changes: Arc<Changes>,
}

impl Admin {
    pub fn new(store: Store, changes: Arc<Changes>) -> Self {
        Self { store, changes }
    }

    async fn begin<'a>(&'a self, by: &'a Actor) -> Result<Write<'a>, StoreError> {
        Write::begin(&self.store, &self.changes, by).await
    }
}

/// Why an admin write was refused or failed. Turned into HTTP in [`crate::error`].
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The user the write is about does not exist.
    #[error("user not found")]
    UserNotFound,
    /// An API key for a deleted user would never work.
    #[error("the user is deleted")]
    UserDeleted,
    /// The tenant an issuer is to be bound to does not exist or is deleted.
    #[error("tenant `{0}` (an issuer's tenant) not found")]
    IssuerTenantNotFound(String),
    /// A SCIM request the protocol refuses (a bad filter, path or value).
    #[error(transparent)]
    Scim(#[from] crate::scim::ScimFault),
    /// A webhook registration the gateway refuses: the field at fault and why.
    #[error("{0}: {1}")]
    Webhook(&'static str, String),
    #[error("webhook endpoint not found")]
    WebhookNotFound,
    #[error("no randomness for a new api key: {0}")]
    NoRandomness(#[from] getrandom::Error),
}
