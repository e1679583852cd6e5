//! Users, keyed by `(tenant_id, subject)`. The subject is an opaque string from the identity
//! provider; the same subject in two tenants is two users.

use serde::{Deserialize, Serialize};

use super::tx::on_tx;
use super::{Store, StoreError, Tx, on_pool};
use crate::clock::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    Member,
    Admin,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Suspended,
    Deleted,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub tenant_id: String,
    pub subject: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub role: UserRole,
    pub status: UserStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub status_changed_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    /// Tokens issued before this instant are rejected.
    pub tokens_valid_after: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    tenant_id: String,
    subject: String,
    email: Option<String>,
    display_name: Option<String>,
    role: String,
    status: String,
    created_at: Timestamp,
    updated_at: Timestamp,
    status_changed_at: Timestamp,
    deleted_at: Option<Timestamp>,
    tokens_valid_after: Option<Timestamp>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            tenant_id: row.tenant_id,
            subject: row.subject,
            email: row.email,
            display_name: row.display_name,
            role: if row.role == "admin" {
                UserRole::Admin
            } else {
                UserRole::Member
            },
            // An unreadable status fails closed.
            status: UserStatus::parse(&row.status).unwrap_or(UserStatus::Suspended),
            created_at: row.created_at,
            updated_at: row.updated_at,
            status_changed_at: row.status_changed_at,
            deleted_at: row.deleted_at,
            tokens_valid_after: row.tokens_valid_after,
        }
    }
}

/// The fields an upsert may set; `None` keeps the current value (or the default on create).
#[derive(Debug, Default, Clone)]
pub struct UserPatch {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub role: Option<UserRole>,
    /// `Active` or `Suspended`; deleting goes through [`Tx::delete_user`].
    pub status: Option<UserStatus>,
}

/// Whether an upsert made a new row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

macro_rules! columns {
    () => {
        "tenant_id, subject, email, display_name, role, status, created_at, updated_at, \
         status_changed_at, deleted_at, tokens_valid_after"
    };
}

impl Store {
    pub async fn user(&self, tenant_id: &str, subject: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM users WHERE tenant_id = $1 AND subject = $2"
        ))
        .bind(tenant_id)
        .bind(subject)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(User::from))
    }

    /// The tenant's users, optionally only those with one status, in subject order.
    pub async fn users(
        &self,
        tenant_id: &str,
        status: Option<UserStatus>,
    ) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM users \
             WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) ORDER BY subject"
        ))
        .bind(tenant_id)
        .bind(status.map(UserStatus::as_str))
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Users whose subject equals `subject` ignoring case, in any tenant: the near misses an
    /// operator needs to see when a token names a user that does not exist.
    pub async fn users_like(&self, subject: &str) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM users WHERE lower(subject) = lower($1) \
             ORDER BY tenant_id, subject LIMIT 20"
        ))
        .bind(subject)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(User::from).collect())
    }
}

// === impl Tx ===

impl Tx {
    /// Just-in-time provisioning: creates an active member if the subject is new (then `true`),
    /// and returns whatever row is there. A deleted user is returned as deleted, never
    /// re-created.
    pub async fn provision_user(
        &mut self,
        tenant_id: &str,
        subject: &str,
    ) -> Result<(User, bool), StoreError> {
        let now = Timestamp::now();
        let created = on_tx!(self, conn => sqlx::query(
            "INSERT INTO users (tenant_id, subject, role, status, created_at, updated_at, \
             status_changed_at) VALUES ($1, $2, 'member', 'active', $3, $3, $3) \
             ON CONFLICT (tenant_id, subject) DO NOTHING"
        )
        .bind(tenant_id)
        .bind(subject)
        .bind(now)
        .execute(conn)
        .await
        .map(|done| done.rows_affected() > 0))
        .map_err(StoreError::conflict_on_unique("user"))?;
        let user = self
            .user(tenant_id, subject)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        Ok((user, created))
    }

    /// Creates the user or updates the given fields. A deleted user stays deleted unless the
    /// patch sets a status explicitly (an operator bringing them back on purpose); `deleted_at`
    /// then keeps the time of the last delete, and the credentials that delete ended stay ended.
    pub async fn upsert_user(
        &mut self,
        tenant_id: &str,
        subject: &str,
        patch: &UserPatch,
    ) -> Result<(User, Upserted), StoreError> {
        // Insert-or-nothing rather than insert-and-catch-the-conflict: on PostgreSQL a failed
        // statement aborts the whole transaction, so the update could not follow it.
        if let Some(user) = self.insert_user(tenant_id, subject, patch).await? {
            return Ok((user, Upserted::Created));
        }
        let user = self.update_user(tenant_id, subject, patch).await?;
        Ok((user, Upserted::Updated))
    }

    /// The user as this transaction sees it (locked on PostgreSQL until it ends), to compare
    /// with what a write makes of them.
    pub async fn user(
        &mut self,
        tenant_id: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = self
            .fetch_locked(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM users WHERE tenant_id = $1 AND subject = $2"
                ),
                &[tenant_id, subject],
            )
            .await?;
        Ok(row.map(User::from))
    }

    /// The new user, or `None` if the subject is already there.
    async fn insert_user(
        &mut self,
        tenant_id: &str,
        subject: &str,
        patch: &UserPatch,
    ) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "INSERT INTO users (tenant_id, subject, email, display_name, role, status, \
             created_at, updated_at, status_changed_at) \
             VALUES ($1, $2, $3, $4, COALESCE($5, 'member'), COALESCE($6, 'active'), $7, $7, $7) \
             ON CONFLICT (tenant_id, subject) DO NOTHING RETURNING ", columns!()
        ))
        .bind(tenant_id)
        .bind(subject)
        .bind(patch.email.as_deref())
        .bind(patch.display_name.as_deref())
        .bind(patch.role.map(UserRole::as_str))
        .bind(patch.status.map(UserStatus::as_str))
        .bind(Timestamp::now())
        .fetch_optional(conn)
        .await)
        .map_err(StoreError::conflict_on_unique("user"))?;
        Ok(row.map(User::from))
    }

    async fn update_user(
        &mut self,
        tenant_id: &str,
        subject: &str,
        patch: &UserPatch,
    ) -> Result<User, StoreError> {
        let row: Option<UserRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE users SET email = COALESCE($3, email), \
             display_name = COALESCE($4, display_name), role = COALESCE($5, role), \
             status_changed_at = CASE WHEN $6 IS NOT NULL AND $6 <> status \
                 THEN $7 ELSE status_changed_at END, \
             status = COALESCE($6, status), updated_at = $7 \
             WHERE tenant_id = $1 AND subject = $2 RETURNING ", columns!()
        ))
        .bind(tenant_id)
        .bind(subject)
        .bind(patch.email.as_deref())
        .bind(patch.display_name.as_deref())
        .bind(patch.role.map(UserRole::as_str))
        .bind(patch.status.map(UserStatus::as_str))
        .bind(Timestamp::now())
        .fetch_optional(conn)
        .await)?;
        row.map(User::from).ok_or(StoreError::NotFound("user"))
    }

    /// Soft delete: status `deleted`, the row and its usage history stay. The user's existing
    /// credentials end for good, in the same transaction: every token issued until now is
    /// rejected (`tokens_valid_after`) and every API key is revoked, so restoring the user later
    /// is a fresh start rather than a revival. Returns the user and the hashes of the keys it
    /// revoked (for the caches).
    pub async fn delete_user(
        &mut self,
        tenant_id: &str,
        subject: &str,
    ) -> Result<(User, Vec<String>), StoreError> {
        let now = Timestamp::now();
        on_tx!(self, conn => {
            let row: Option<UserRow> = sqlx::query_as(concat!(
                "UPDATE users SET status = 'deleted', deleted_at = $3, status_changed_at = $3, \
                 tokens_valid_after = $3, updated_at = $3 \
                 WHERE tenant_id = $1 AND subject = $2 AND status <> 'deleted' \
                 RETURNING ", columns!()
            ))
            .bind(tenant_id)
            .bind(subject)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else {
                return Err(StoreError::NotFound("user"));
            };
            let revoked: Vec<(String,)> = sqlx::query_as(
                "UPDATE api_keys SET revoked_at = $3 \
                 WHERE tenant_id = $1 AND subject = $2 AND revoked_at IS NULL RETURNING key_hash",
            )
            .bind(tenant_id)
            .bind(subject)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            Ok((User::from(row), revoked.into_iter().map(|(hash,)| hash).collect()))
        })
    }

    /// Every token issued before now stops working for this user.
    pub async fn revoke_user_tokens(
        &mut self,
        tenant_id: &str,
        subject: &str,
    ) -> Result<User, StoreError> {
        let row: Option<UserRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE users SET tokens_valid_after = $3, updated_at = $3 \
             WHERE tenant_id = $1 AND subject = $2 RETURNING ", columns!()
        ))
        .bind(tenant_id)
        .bind(subject)
        .bind(Timestamp::now())
        .fetch_optional(conn)
        .await)?;
        row.map(User::from).ok_or(StoreError::NotFound("user"))
    }
}
