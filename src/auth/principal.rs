//! Who is calling, once authentication has said so.

use std::sync::Arc;

use crate::store::{Tenant, UserRole};

/// An authenticated caller: an active user of an active tenant.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Arc<Tenant>,
    pub subject: Arc<str>,
    /// The user's role, or `Admin` when one of their groups gives it.
    pub role: UserRole,
    /// The union of the model lists of the caller's groups that carry one; `None` when none
    /// does (see [`crate::auth::groups`]).
    pub group_models: Option<Arc<[String]>>,
    pub credential: Credential,
}

impl Principal {
    pub fn tenant_id(&self) -> &str {
        &self.tenant.id
    }

    /// Whether the caller may use the model called `name`: the tenant's allow-list, narrowed
    /// by the caller's groups. A caller in no group with a model list gets the tenant's list
    /// unchanged; groups never widen it.
    pub fn may_use(&self, name: &str) -> bool {
        let listed =
            |list: Option<&[String]>| list.is_none_or(|list| list.iter().any(|m| m == name));
        listed(self.tenant.allowed_models.as_deref()) && listed(self.group_models.as_deref())
    }
}

/// What the caller presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A JWT from the issuer with this id.
    Jwt { issuer_id: Arc<str> },
    /// An API key with this id.
    ApiKey { id: Arc<str> },
}

impl Credential {
    /// A stable identifier for usage records: `jwt:<issuer id>` or `key:<key id>`.
    pub fn id(&self) -> String {
        // Concatenated rather than `format!`ed: this runs for every request's usage event.
        let (kind, id) = match self {
            Self::Jwt { issuer_id } => ("jwt:", &**issuer_id),
            Self::ApiKey { id } => ("key:", &**id),
        };
        [kind, id].concat()
    }
}
