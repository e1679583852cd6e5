//! Groups as access policy: a group (pushed over SCIM, or named by an administrator) may carry a
//! model list and the tenant-admin role, which its members get. The SCIM side of the same rows
//! (resources, adoption, members by SCIM id) is in [`super::scim`].

use serde::{Deserialize, Serialize};

use super::tx::on_tx;
use super::{Store, StoreError, Tx, from_json_text, json_text, on_pool};
use crate::clock::Timestamp;

/// The role a group gives its members. A group gives the admin role or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupRole {
    Admin,
}

/// What a group gives its members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupPolicy {
    /// The models members may use (within the tenant's own list); `None`: the group does not
    /// narrow anything.
    pub models: Option<Vec<String>>,
    pub role: Option<GroupRole>,
}

impl GroupPolicy {
    /// Whether the group gives anything at all.
    pub fn is_empty(&self) -> bool {
        self.models.is_none() && self.role.is_none()
    }
}

/// A group of a tenant and its policy.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Group {
    #[serde(skip)]
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub policy: GroupPolicy,
    /// Pushed by the identity provider over SCIM (else named by an administrator).
    pub scim: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: String,
    name: String,
    models: Option<String>,
    role: Option<String>,
    scim: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<GroupRow> for Group {
    fn from(row: GroupRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            policy: GroupPolicy {
                models: row.models.as_deref().map(from_json_text),
                role: row.role.is_some().then_some(GroupRole::Admin),
            },
            scim: row.scim,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

macro_rules! columns {
    () => {
        "id, name, models, role, (resource IS NOT NULL) AS scim, created_at, updated_at"
    };
}

impl Store {
    /// Every group of the tenant, by name.
    pub async fn groups(&self, tenant_id: &str) -> Result<Vec<Group>, StoreError> {
        let rows: Vec<GroupRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM groups WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(tenant_id)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Group::from).collect())
    }

    pub async fn group(&self, tenant_id: &str, name: &str) -> Result<Option<Group>, StoreError> {
        let row: Option<GroupRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM groups WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(Group::from))
    }

    /// The members of the tenant's groups (all groups, or one): `(group id, subject)`.
    pub async fn group_members(
        &self,
        tenant_id: &str,
        group_id: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT group_id, subject FROM group_members \
             WHERE tenant_id = $1 AND ($2 IS NULL OR group_id = $2) ORDER BY subject"
        )
        .bind(tenant_id)
        .bind(group_id)
        .fetch_all(pool)
        .await)?)
    }
}

// === impl Tx ===

impl Tx {
    pub async fn group(
        &mut self,
        tenant_id: &str,
        name: &str,
    ) -> Result<Option<Group>, StoreError> {
        let row: Option<GroupRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM groups WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(conn)
        .await)?;
        Ok(row.map(Group::from))
    }

    /// Gives the group called `name` this policy, creating it (not from SCIM) if the tenant has
    /// none of that name; an identity provider pushing that name later adopts it.
    pub async fn save_group_policy(
        &mut self,
        tenant_id: &str,
        name: &str,
        policy: &GroupPolicy,
    ) -> Result<Group, StoreError> {
        let now = Timestamp::now();
        let row: GroupRow = on_tx!(self, conn => sqlx::query_as(concat!(
            "INSERT INTO groups (id, tenant_id, name, models, role, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET models = excluded.models, \
                 role = excluded.role, version = groups.version + 1, \
                 updated_at = excluded.updated_at \
             RETURNING ", columns!()
        ))
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(tenant_id)
        .bind(name)
        .bind(policy.models.as_ref().map(json_text))
        .bind(policy.role.map(|_| "admin"))
        .bind(now)
        .fetch_one(conn)
        .await)
        .map_err(StoreError::conflict_on_unique("group"))?;
        Ok(row.into())
    }

    /// The group stops carrying a policy. One the identity provider pushed stays, with its
    /// members, until it deletes it; one an administrator named goes (an identity provider's
    /// members never reach such a group: pushing its name adopts it as a SCIM group).
    pub async fn delete_group_policy(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            sqlx::query(
                "UPDATE groups SET models = NULL, role = NULL, version = version + 1, \
                 updated_at = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(Timestamp::now())
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM groups WHERE tenant_id = $1 AND id = $2 AND resource IS NULL")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            Ok::<(), StoreError>(())
        })
    }
}
