//! A user's API keys: created (the one time the secret exists outside the caller) and revoked.

use super::{Admin, AdminError};
use crate::audit::{Actor, Entry};
use crate::auth::api_keys::GeneratedKey;
use crate::changes::Change;
use crate::clock::Timestamp;
use crate::store::{ApiKey, NewApiKey, UserStatus};

/// A key just created: the secret, to be shown this once, and what is stored of it.
pub struct NewKey {
    pub secret: String,
    pub key: ApiKey,
}

impl Admin {
    /// A new key for a user who is not deleted. Announces nothing: no cache can hold a key
    /// whose hash did not exist until now.
    pub async fn create_api_key(
        &self,
        by: &Actor,
        tenant: &str,
        subject: &str,
        name: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<NewKey, AdminError> {
        self.store.live_tenant(tenant).await?;
        let user = self
            .store
            .user(tenant, subject)
            .await?
            .ok_or(AdminError::UserNotFound)?;
        if user.status == UserStatus::Deleted {
            return Err(AdminError::UserDeleted);
        }
        let generated = GeneratedKey::new()?;
        let id = uuid::Uuid::now_v7().to_string();
        let mut write = self.begin(by).await?;
        let key = write
            .tx
            .create_api_key(&NewApiKey {
                id: &id,
                tenant_id: tenant,
                subject,
                name,
                key_hash: &generated.hash,
                key_prefix: generated.prefix(),
                expires_at,
            })
            .await?;
        // `ApiKey` serialises without its hash; the key itself never reaches this write.
        write
            .audit(Entry::new("key.created", Some(tenant), Some(&key.id)).after(&key))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %key.tenant_id, subject = %key.subject, key_id = %key.id, "api key created");
        Ok(NewKey {
            secret: generated.key,
            key,
        })
    }

    /// Revoking twice is fine; an unknown key is not found.
    pub async fn revoke_api_key(
        &self,
        by: &Actor,
        tenant: &str,
        subject: &str,
        id: &str,
    ) -> Result<ApiKey, AdminError> {
        self.store.live_tenant(tenant).await?;
        let mut write = self.begin(by).await?;
        let key = write.tx.revoke_api_key(tenant, subject, id).await?;
        write
            .announce(Change::ApiKey {
                hash: key.key_hash.clone(),
            })
            .await?;
        write
            .audit(Entry::new("key.revoked", Some(tenant), Some(&key.id)).after(&key))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %key.tenant_id, subject = %key.subject, key_id = %key.id, "api key revoked");
        Ok(key)
    }
}
