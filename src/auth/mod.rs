//! Bearer credential → who is calling. See [`authenticator`] for the steps.

pub mod algorithms;
pub mod api_keys;
pub mod authenticator;
pub mod directory;
pub mod explain;
pub mod groups;
pub mod jwks;
pub mod keys;
mod lifetime;
pub mod principal;
pub mod reason;
pub mod refusals;
pub mod scopes;
pub mod token;
pub mod trace;

pub use authenticator::{AuthError, Authenticator, Rejection};
pub use principal::{Credential, Principal};
pub use reason::Reason;

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The bearer credential of an `Authorization` header, if it has one.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
        .filter(|credential| !credential.is_empty())
}

use std::sync::Arc;

use crate::config::AuthConfig;
use crate::store::Store;

impl Authenticator {
    /// The auth stage as configured, with the issuer table loaded.
    pub async fn from_config(
        store: Store,
        config: &AuthConfig,
    ) -> Result<Self, crate::store::StoreError> {
        let client = jwks::client(config.jwks_timeout).map_err(|e| {
            crate::store::StoreError::Invalid(format!("cannot build the JWKS HTTP client: {e}"))
        })?;
        let directory = directory::Directory::new(
            store,
            client,
            jwks::JwksSettings {
                timeout: config.jwks_timeout,
                cooldown: config.jwks_refetch_cooldown,
                max_bytes: config.jwks_max_bytes,
            },
            &directory::DirectorySettings {
                ttl: config.cache_ttl,
                negative_ttl: config.negative_cache_ttl,
                capacity: config.cache_capacity,
            },
            Arc::new(crate::stale::StaleIfError::new(
                config.stale_if_error,
                config.cache_ttl,
            )),
        );
        directory.reload_issuers().await?;
        Ok(Self::new(Arc::new(directory), config.token_cache_capacity))
    }

    /// Re-reads the issuers; if any changed, cached verified tokens are dropped.
    pub async fn reload_issuers(&self) -> Result<(), crate::store::StoreError> {
        if self.directory().reload_issuers().await? {
            self.forget_tokens();
        }
        Ok(())
    }
}
