//! What SCIM provisioning keeps: the tenant's bearer tokens, each provisioned user's resource
//! beside the user row it drives, and the groups an identity provider pushes with their members.

use serde::{Deserialize, Serialize};

use super::tx::on_tx;
use super::{Store, StoreError, Tx, on_pool};
use crate::clock::Timestamp;

/// A bearer token for one tenant's SCIM endpoint. Only its hash is stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ScimToken {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub token_prefix: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Which SCIM attribute becomes the subject of a provisioned user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum SubjectAttribute {
    /// `externalId`, or `userName` when the identity provider sends no `externalId`.
    #[serde(rename = "externalId")]
    ExternalId,
    #[serde(rename = "userName")]
    UserName,
}

impl SubjectAttribute {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExternalId => "externalId",
            Self::UserName => "userName",
        }
    }
}

/// A provisioned user: the resource as the identity provider last sent it (without `id` and
/// `meta`), and the subject it provisions.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimUser {
    pub id: String,
    pub tenant_id: String,
    pub subject: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub resource: String,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A group pushed over SCIM (its `resource` is set) or named by an administrator for its policy.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimGroup {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub resource: Option<String>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A member of a group, as SCIM names it: by the member's SCIM id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimMember {
    pub group_id: String,
    pub user_id: String,
}

macro_rules! user_columns {
    () => {
        "id, tenant_id, subject, user_name, external_id, resource, version, created_at, updated_at"
    };
}

macro_rules! group_columns {
    () => {
        "id, tenant_id, name, resource, version, created_at, updated_at"
    };
}

impl Store {
    pub async fn scim_token_by_hash(&self, hash: &str) -> Result<Option<ScimToken>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, tenant_id, name, token_hash, token_prefix, created_at, revoked_at \
             FROM scim_tokens WHERE token_hash = $1"
        )
        .bind(hash)
        .fetch_optional(pool)
        .await)?)
    }

    pub async fn scim_tokens(&self, tenant_id: &str) -> Result<Vec<ScimToken>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, tenant_id, name, token_hash, token_prefix, created_at, revoked_at \
             FROM scim_tokens WHERE tenant_id = $1 ORDER BY created_at, id"
        )
        .bind(tenant_id)
        .fetch_all(pool)
        .await)?)
    }

    pub async fn scim_subject_attribute(
        &self,
        tenant_id: &str,
    ) -> Result<SubjectAttribute, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT scim_subject_attribute FROM tenants WHERE id = $1"
        )
        .bind(tenant_id)
        .fetch_optional(pool)
        .await)?;
        match row {
            Some((text,)) if text == "userName" => Ok(SubjectAttribute::UserName),
            Some(_) => Ok(SubjectAttribute::ExternalId),
            None => Err(StoreError::NotFound("tenant")),
        }
    }

    pub async fn scim_user(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ScimUser>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", user_columns!(), " FROM scim_users WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    /// Every provisioned user of the tenant, oldest first (a SCIM list filters and pages these).
    pub async fn scim_users(&self, tenant_id: &str) -> Result<Vec<ScimUser>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", user_columns!(), " FROM scim_users WHERE tenant_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(pool)
        .await)?)
    }

    pub async fn scim_group(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ScimGroup>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", group_columns!(), " FROM groups \
             WHERE tenant_id = $1 AND id = $2 AND resource IS NOT NULL"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    /// The groups pushed over SCIM, oldest first.
    pub async fn scim_groups(&self, tenant_id: &str) -> Result<Vec<ScimGroup>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", group_columns!(), " FROM groups \
             WHERE tenant_id = $1 AND resource IS NOT NULL ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(pool)
        .await)?)
    }

    /// The provisioned members of the tenant's groups (all groups, or one), by SCIM id.
    pub async fn scim_members(
        &self,
        tenant_id: &str,
        group_id: Option<&str>,
    ) -> Result<Vec<ScimMember>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT m.group_id, u.id AS user_id FROM group_members m \
             JOIN scim_users u ON u.tenant_id = m.tenant_id AND u.subject = m.subject \
             WHERE m.tenant_id = $1 AND ($2 IS NULL OR m.group_id = $2) \
             ORDER BY u.created_at, u.id"
        )
        .bind(tenant_id)
        .bind(group_id)
        .fetch_all(pool)
        .await)?)
    }

    /// The SCIM groups a provisioned user is a member of: `(group id, group name)`.
    pub async fn scim_user_groups(
        &self,
        tenant_id: &str,
        subject: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT g.id, g.name FROM group_members m JOIN groups g ON g.id = m.group_id \
             WHERE m.tenant_id = $1 AND m.subject = $2 AND g.resource IS NOT NULL \
             ORDER BY g.name"
        )
        .bind(tenant_id)
        .bind(subject)
        .fetch_all(pool)
        .await)?)
    }
}

// === impl Tx ===

impl Tx {
    pub async fn create_scim_token(&mut self, token: &ScimToken) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO scim_tokens (id, tenant_id, name, token_hash, token_prefix, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(&token.id)
        .bind(&token.tenant_id)
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(&token.token_prefix)
        .bind(token.created_at)
        .execute(conn)
        .await
        .map(|_| ()))
        .map_err(StoreError::conflict_on_unique("scim token"))
    }

    /// Revoking twice is fine; an unknown token is `NotFound`.
    pub async fn revoke_scim_token(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<ScimToken, StoreError> {
        let token: Option<ScimToken> = on_tx!(self, conn => sqlx::query_as(
            "UPDATE scim_tokens SET revoked_at = COALESCE(revoked_at, $3) \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING id, tenant_id, name, token_hash, token_prefix, created_at, revoked_at"
        )
        .bind(tenant_id)
        .bind(id)
        .bind(Timestamp::now())
        .fetch_optional(conn)
        .await)?;
        token.ok_or(StoreError::NotFound("scim token"))
    }

    pub async fn set_scim_subject_attribute(
        &mut self,
        tenant_id: &str,
        attribute: SubjectAttribute,
    ) -> Result<(), StoreError> {
        let done = on_tx!(self, conn => sqlx::query(
            "UPDATE tenants SET scim_subject_attribute = $2 WHERE id = $1 AND status <> 'deleted'"
        )
        .bind(tenant_id)
        .bind(attribute.as_str())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound("tenant"));
        }
        Ok(())
    }

    /// The provisioned user, locked for the rest of the transaction on PostgreSQL (SQLite's
    /// writer already holds the database).
    pub async fn scim_user(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ScimUser>, StoreError> {
        const SELECT: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM scim_users WHERE tenant_id = $1 AND id = $2"
        );
        const LOCKED: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM scim_users WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
        );
        Ok(match &mut self.0 {
            super::tx::Inner::Sqlite(tx) => {
                sqlx::query_as(SELECT)
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
            }
            super::tx::Inner::Postgres(tx) => {
                sqlx::query_as(LOCKED)
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
            }
        })
    }

    /// Inserts the user's resource, or replaces it (same `id`) with the version one higher.
    pub async fn save_scim_user(&mut self, user: &ScimUser) -> Result<ScimUser, StoreError> {
        let saved: ScimUser = on_tx!(self, conn => sqlx::query_as(concat!(
            "INSERT INTO scim_users (", user_columns!(), ", user_name_lower) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, \
                 user_name = excluded.user_name, user_name_lower = excluded.user_name_lower, \
                 external_id = excluded.external_id, resource = excluded.resource, \
                 version = scim_users.version + 1, updated_at = excluded.updated_at \
             RETURNING ", user_columns!()
        ))
        .bind(&user.id)
        .bind(&user.tenant_id)
        .bind(&user.subject)
        .bind(&user.user_name)
        .bind(&user.external_id)
        .bind(&user.resource)
        .bind(user.version)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(user.user_name.to_lowercase())
        .fetch_one(conn)
        .await)
        .map_err(StoreError::conflict_on_unique(
            "a user with this userName or subject",
        ))?;
        Ok(saved)
    }

    pub async fn delete_scim_user(&mut self, tenant_id: &str, id: &str) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query("DELETE FROM scim_users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(conn)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Moves everything that belongs to a person from one subject to another when the identity
    /// provider renames them: keys, quota, group memberships. The old user row is left deleted
    /// (its usage history stays under the old subject); the new one takes its role and status.
    pub async fn move_subject(
        &mut self,
        tenant_id: &str,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        on_tx!(self, conn => {
            let taken: Option<(String,)> = sqlx::query_as(
                "SELECT status FROM users WHERE tenant_id = $1 AND subject = $2",
            )
            .bind(tenant_id)
            .bind(to)
            .fetch_optional(&mut *conn)
            .await?;
            match taken {
                Some((status,)) if status != "deleted" => {
                    return Err(StoreError::Conflict("a user with this subject"));
                }
                Some(_) => {
                    sqlx::query(
                        "UPDATE users SET (email, display_name, role, status, updated_at, \
                         status_changed_at, deleted_at) = (SELECT email, display_name, role, \
                         status, $4, $4, NULL FROM users WHERE tenant_id = $1 AND subject = $2) \
                         WHERE tenant_id = $1 AND subject = $3",
                    )
                    .bind(tenant_id)
                    .bind(from)
                    .bind(to)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO users (tenant_id, subject, email, display_name, role, status, \
                         created_at, updated_at, status_changed_at, tokens_valid_after) \
                         SELECT tenant_id, $3, email, display_name, role, status, $4, $4, $4, \
                         tokens_valid_after FROM users WHERE tenant_id = $1 AND subject = $2",
                    )
                    .bind(tenant_id)
                    .bind(from)
                    .bind(to)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            for sql in [
                "UPDATE api_keys SET subject = $3 WHERE tenant_id = $1 AND subject = $2",
                "UPDATE scim_users SET subject = $3 WHERE tenant_id = $1 AND subject = $2",
                "UPDATE group_members SET subject = $3 WHERE tenant_id = $1 AND subject = $2",
                "DELETE FROM quotas WHERE tenant_id = $1 AND scope = 'user' AND subject = $3",
                "UPDATE quotas SET subject = $3 WHERE tenant_id = $1 AND scope = 'user' AND subject = $2",
            ] {
                sqlx::query(sql)
                    .bind(tenant_id)
                    .bind(from)
                    .bind(to)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query(
                "UPDATE users SET status = 'deleted', deleted_at = $3, status_changed_at = $3, \
                 updated_at = $3 WHERE tenant_id = $1 AND subject = $2",
            )
            .bind(tenant_id)
            .bind(from)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok::<(), StoreError>(())
        })
    }

    /// Removes the subject from every group of the tenant; returns the groups it left.
    pub async fn leave_groups(&mut self, tenant_id: &str, subject: &str) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query(
            "DELETE FROM group_members WHERE tenant_id = $1 AND subject = $2"
        )
        .bind(tenant_id)
        .bind(subject)
        .execute(conn)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn scim_group(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ScimGroup>, StoreError> {
        Ok(on_tx!(self, conn => sqlx::query_as(concat!(
            "SELECT ", group_columns!(), " FROM groups \
             WHERE tenant_id = $1 AND id = $2 AND resource IS NOT NULL"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(conn)
        .await)?)
    }

    /// The group called `name` whatever its origin: an administrator may have named it for its
    /// policy before the identity provider pushed it.
    pub async fn group_named(
        &mut self,
        tenant_id: &str,
        name: &str,
    ) -> Result<Option<ScimGroup>, StoreError> {
        Ok(on_tx!(self, conn => sqlx::query_as(concat!(
            "SELECT ", group_columns!(), " FROM groups WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(conn)
        .await)?)
    }

    /// Inserts the group's SCIM resource, or replaces it (same `id`), bumping its version.
    pub async fn save_scim_group(&mut self, group: &ScimGroup) -> Result<ScimGroup, StoreError> {
        let saved: ScimGroup = on_tx!(self, conn => sqlx::query_as(concat!(
            "INSERT INTO groups (", group_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, resource = excluded.resource, \
                 version = groups.version + 1, updated_at = excluded.updated_at \
             RETURNING ", group_columns!()
        ))
        .bind(&group.id)
        .bind(&group.tenant_id)
        .bind(&group.name)
        .bind(&group.resource)
        .bind(group.version)
        .bind(group.created_at)
        .bind(group.updated_at)
        .fetch_one(conn)
        .await)
        .map_err(StoreError::conflict_on_unique(
            "a group with this displayName",
        ))?;
        Ok(saved)
    }

    /// The group stops being the identity provider's: a group that carries a policy keeps it
    /// (and its row) until an administrator removes it; one that carries none goes.
    pub async fn delete_scim_group(&mut self, tenant_id: &str, id: &str) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            sqlx::query("DELETE FROM group_members WHERE group_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "DELETE FROM groups WHERE tenant_id = $1 AND id = $2 \
                 AND models IS NULL AND role IS NULL",
            )
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE groups SET resource = NULL WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            Ok::<(), StoreError>(())
        })
    }

    pub async fn add_group_member(
        &mut self,
        tenant_id: &str,
        group_id: &str,
        subject: &str,
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO group_members (group_id, tenant_id, subject) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING"
        )
        .bind(group_id)
        .bind(tenant_id)
        .bind(subject)
        .execute(conn)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn remove_group_member(
        &mut self,
        group_id: &str,
        subject: &str,
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query(
            "DELETE FROM group_members WHERE group_id = $1 AND subject = $2"
        )
        .bind(group_id)
        .bind(subject)
        .execute(conn)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The group's provisioned members: `(SCIM id, subject)`.
    pub async fn scim_member_ids(
        &mut self,
        tenant_id: &str,
        group_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on_tx!(self, conn => sqlx::query_as(
            "SELECT u.id, u.subject FROM group_members m \
             JOIN scim_users u ON u.tenant_id = m.tenant_id AND u.subject = m.subject \
             WHERE m.tenant_id = $1 AND m.group_id = $2 ORDER BY u.created_at, u.id"
        )
        .bind(tenant_id)
        .bind(group_id)
        .fetch_all(conn)
        .await)?)
    }

    /// The subjects of the tenant's provisioned users with these SCIM ids; an id that names no
    /// provisioned user is missing from the answer.
    pub async fn scim_subjects(
        &mut self,
        tenant_id: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<(String,)> = on_tx!(self, conn => sqlx::query_as(
                "SELECT subject FROM scim_users WHERE tenant_id = $1 AND id = $2"
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(conn)
            .await)?;
            if let Some((subject,)) = row {
                found.push((id.clone(), subject));
            }
        }
        Ok(found)
    }
}
