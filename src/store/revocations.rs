//! Individually revoked tokens, by `jti`, kept until the token would have expired anyway.

use serde::Serialize;

use super::tx::on_tx;
use super::{Store, StoreError, Tx, on_pool};
use crate::clock::Timestamp;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RevokedToken {
    pub tenant_id: String,
    pub jti: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

impl Store {
    pub async fn revoked_token(
        &self,
        tenant_id: &str,
        jti: &str,
    ) -> Result<Option<RevokedToken>, StoreError> {
        let row = on_pool!(self, pool => sqlx::query_as(
            "SELECT tenant_id, jti, expires_at, created_at FROM revoked_tokens \
             WHERE tenant_id = $1 AND jti = $2"
        )
        .bind(tenant_id)
        .bind(jti)
        .fetch_optional(pool)
        .await)?;
        Ok(row)
    }

    pub async fn revoked_tokens(&self, tenant_id: &str) -> Result<Vec<RevokedToken>, StoreError> {
        let rows = on_pool!(self, pool => sqlx::query_as(
            "SELECT tenant_id, jti, expires_at, created_at FROM revoked_tokens \
             WHERE tenant_id = $1 ORDER BY created_at, jti"
        )
        .bind(tenant_id)
        .fetch_all(pool)
        .await)?;
        Ok(rows)
    }
}

// === impl Tx ===

impl Tx {
    /// Adds a `jti` to the tenant's revocation list; revoking it again keeps the later expiry.
    pub async fn revoke_token(
        &mut self,
        tenant_id: &str,
        jti: &str,
        expires_at: Timestamp,
    ) -> Result<RevokedToken, StoreError> {
        let row = on_tx!(self, conn => sqlx::query_as(
            "INSERT INTO revoked_tokens (tenant_id, jti, expires_at, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, jti) \
             DO UPDATE SET expires_at = CASE WHEN excluded.expires_at > revoked_tokens.expires_at \
                 THEN excluded.expires_at ELSE revoked_tokens.expires_at END \
             RETURNING tenant_id, jti, expires_at, created_at"
        )
        .bind(tenant_id)
        .bind(jti)
        .bind(expires_at)
        .bind(Timestamp::now())
        .fetch_one(conn)
        .await)
        .map_err(StoreError::conflict_on_unique("revoked token"))?;
        Ok(row)
    }
}
