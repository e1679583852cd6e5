//! Quota limits: tenant-wide, per user, and the default for users without their own.

use serde::{Deserialize, Serialize};

use super::tx::on_tx;
use super::{Store, StoreError, Tx, on_pool};
use crate::clock::Timestamp;

/// Which limit row: the tenant's, one user's, or the tenant's default for users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaScope {
    Tenant,
    User,
    DefaultUser,
}

impl QuotaScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::User => "user",
            Self::DefaultUser => "default_user",
        }
    }
}

/// Limits; `None` means no limit. Money is integer micro-dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Limits {
    pub tokens_per_day: Option<i64>,
    pub tokens_per_month: Option<i64>,
    pub cost_microusd_per_month: Option<i64>,
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
}

impl Limits {
    pub fn is_unlimited(&self) -> bool {
        *self == Self::default()
    }
}

impl Store {
    /// The limits of one scope, if any were set.
    pub async fn quota(
        &self,
        tenant_id: &str,
        scope: QuotaScope,
        subject: &str,
    ) -> Result<Option<Limits>, StoreError> {
        let limits = on_pool!(self, pool => sqlx::query_as(
            "SELECT tokens_per_day, tokens_per_month, cost_microusd_per_month, \
             requests_per_minute, tokens_per_minute FROM quotas \
             WHERE tenant_id = $1 AND scope = $2 AND subject = $3"
        )
        .bind(tenant_id)
        .bind(scope.as_str())
        .bind(subject)
        .fetch_optional(pool)
        .await)?;
        Ok(limits)
    }
}

// === impl Tx ===

impl Tx {
    /// The limits of one scope as this transaction sees them, locked until it ends.
    pub async fn quota(
        &mut self,
        tenant_id: &str,
        scope: QuotaScope,
        subject: &str,
    ) -> Result<Option<Limits>, StoreError> {
        self.fetch_locked(
            "SELECT tokens_per_day, tokens_per_month, cost_microusd_per_month, \
             requests_per_minute, tokens_per_minute FROM quotas \
             WHERE tenant_id = $1 AND scope = $2 AND subject = $3",
            &[tenant_id, scope.as_str(), subject],
        )
        .await
    }

    /// Replaces the limits of one scope (`subject` is `""` unless the scope is `User`).
    pub async fn set_quota(
        &mut self,
        tenant_id: &str,
        scope: QuotaScope,
        subject: &str,
        limits: &Limits,
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO quotas (tenant_id, scope, subject, tokens_per_day, tokens_per_month, \
             cost_microusd_per_month, requests_per_minute, tokens_per_minute, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (tenant_id, scope, subject) DO UPDATE SET \
             tokens_per_day = excluded.tokens_per_day, tokens_per_month = excluded.tokens_per_month, \
             cost_microusd_per_month = excluded.cost_microusd_per_month, \
             requests_per_minute = excluded.requests_per_minute, \
             tokens_per_minute = excluded.tokens_per_minute, updated_at = excluded.updated_at"
        )
        .bind(tenant_id)
        .bind(scope.as_str())
        .bind(subject)
        .bind(limits.tokens_per_day)
        .bind(limits.tokens_per_month)
        .bind(limits.cost_microusd_per_month)
        .bind(limits.requests_per_minute)
        .bind(limits.tokens_per_minute)
        .bind(Timestamp::now())
        .execute(conn)
        .await
        .map(|_| ()))
        .map_err(StoreError::conflict_on_unique("quota"))
    }
}
