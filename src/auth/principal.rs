//! Who is calling, once authentication has said so.

use std::sync::Arc;

use crate::store::{Tenant, UserRole};

/// An authenticated caller: an active user of an active tenant.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Arc<Tenant>,
    pub subject: Arc<str>,
    pub role: UserRole,
    pub credential: Credential,
}

impl Principal {
    pub fn tenant_id(&self) -> &str {
        &self.tenant.id
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
        match self {
            Self::Jwt { issuer_id } => format!("jwt:{issuer_id}"),
            Self::ApiKey { id } => format!("key:{id}"),
        }
    }
}
