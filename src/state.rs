//! What every handler can reach: the store, the running configuration (routes and prices with
//! it), the admin token.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::Authenticator;
use crate::metering::UsageRecorder;
use crate::quota::Quotas;
use crate::reload::{Live, Running};
use crate::store::Store;

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// For reads; writes go through [`Inner::admin`].
    pub store: Store,
    /// The configuration in force, with its routes and prices; replaced by a reload.
    pub live: Arc<Live>,
    /// The platform admin's token; `None` disables the admin API.
    pub admin_token: Option<AdminToken>,
    pub auth: Arc<Authenticator>,
    pub quotas: Arc<Quotas>,
    /// Every admin write goes through here, so every replica's caches see it.
    pub admin: crate::admin::Admin,
    /// Where the data plane sends a [`crate::metering::UsageEvent`] when a request ends.
    pub usage: UsageRecorder,
    /// Turns true when the shutdown grace period is over: streams still open end then, with an
    /// error event and `[DONE]`, so their usage is recorded before the usage writer drains.
    pub streams_cut: tokio::sync::watch::Receiver<bool>,
    /// The web console's in-memory part (its sessions live in SQL).
    pub console: crate::console::Console,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Inner {
    /// The configuration in force now. A request takes it once and keeps it to its end, so a
    /// reload never changes a request half-way.
    pub fn running(&self) -> Arc<Running> {
        self.live.current()
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The platform admin's bearer token, kept only as a SHA-256 digest and compared in constant
/// time, so neither a log line nor response timing gives it away.
pub struct AdminToken([u8; 32]);

impl AdminToken {
    /// `None` for an empty token: an empty secret must not open the admin API.
    pub fn new(token: &str) -> Option<Self> {
        let token = token.trim();
        (!token.is_empty()).then(|| Self(crate::auth::sha256(token.as_bytes())))
    }

    /// What a console session opened with this token remembers of it: a digest of the digest,
    /// under its own label, so the sessions table holds nothing that opens the admin API.
    pub fn session_key(&self) -> String {
        let mut input = b"tollgate console session\0".to_vec();
        input.extend_from_slice(&self.0);
        hex::encode(crate::auth::sha256(&input))
    }

    pub fn matches(&self, candidate: &str) -> bool {
        use subtle::ConstantTimeEq;
        let digest = crate::auth::sha256(candidate.as_bytes());
        bool::from(self.0.ct_eq(&digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_matches_only_itself() {
        let token = AdminToken::new("s3cret-admin-token").unwrap();
        assert!(token.matches("s3cret-admin-token"));
        assert!(!token.matches("s3cret-admin-tokeN"));
        assert!(!token.matches(""));
        assert!(AdminToken::new("  ").is_none());
    }
}
