//! API keys: long random secrets shown once and stored only as a SHA-256 hash.

use serde::Serialize;

use super::tx::on_tx;
use super::{Store, StoreError, Tx, on_pool};
use crate::clock::Timestamp;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub subject: String,
    pub name: String,
    #[serde(skip)]
    pub key_hash: String,
    /// The first characters of the key, so an operator can tell keys apart.
    pub key_prefix: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A key to store. The caller generated the secret and keeps it; only its hash comes here.
#[derive(Debug)]
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub subject: &'a str,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub key_prefix: &'a str,
    pub expires_at: Option<Timestamp>,
}

macro_rules! columns {
    () => {
        "id, tenant_id, subject, name, key_hash, key_prefix, created_at, expires_at, revoked_at"
    };
}

impl Store {
    /// The key with this hash, revoked or not (the caller decides what revoked means).
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let key = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM api_keys WHERE key_hash = $1"
        ))
        .bind(key_hash)
        .fetch_optional(pool)
        .await)?;
        Ok(key)
    }

    pub async fn api_keys(
        &self,
        tenant_id: &str,
        subject: &str,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let keys = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM api_keys WHERE tenant_id = $1 AND subject = $2 \
             ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .bind(subject)
        .fetch_all(pool)
        .await)?;
        Ok(keys)
    }
}

// === impl Tx ===

impl Tx {
    pub async fn create_api_key(&mut self, new: &NewApiKey<'_>) -> Result<ApiKey, StoreError> {
        let key: ApiKey = on_tx!(self, conn => sqlx::query_as(concat!(
            "INSERT INTO api_keys (id, tenant_id, subject, name, key_hash, key_prefix, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
            columns!()
        ))
        .bind(new.id)
        .bind(new.tenant_id)
        .bind(new.subject)
        .bind(new.name)
        .bind(new.key_hash)
        .bind(new.key_prefix)
        .bind(Timestamp::now())
        .bind(new.expires_at)
        .fetch_one(conn)
        .await)
        .map_err(StoreError::conflict_on_unique("api key"))?;
        Ok(key)
    }

    /// Revokes a key of this user. Revoking twice is fine; an unknown key is `NotFound`.
    pub async fn revoke_api_key(
        &mut self,
        tenant_id: &str,
        subject: &str,
        id: &str,
    ) -> Result<ApiKey, StoreError> {
        let key: Option<ApiKey> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $4) \
             WHERE tenant_id = $1 AND subject = $2 AND id = $3 RETURNING ", columns!()
        ))
        .bind(tenant_id)
        .bind(subject)
        .bind(id)
        .bind(Timestamp::now())
        .fetch_optional(conn)
        .await)?;
        key.ok_or(StoreError::NotFound("api key"))
    }
}
