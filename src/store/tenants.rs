//! Tenants: the unit of isolation. Never hard-deleted, so usage history stays attributable.

use serde::{Deserialize, Serialize};

use super::tx::on_tx;
use super::{Store, StoreError, Tx, from_json_text, json_text, on_pool};
use crate::clock::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Disabled,
    Deleted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "active" => Self::Active,
            "disabled" => Self::Disabled,
            // Anything unexpected fails closed.
            _ => Self::Deleted,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub status: TenantStatus,
    /// `None`: every configured model; `Some(list)`: only these.
    pub allowed_models: Option<Vec<String>>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    name: String,
    status: String,
    allowed_models: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Option<Timestamp>,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            status: TenantStatus::parse(&row.status),
            allowed_models: row.allowed_models.as_deref().map(from_json_text),
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        }
    }
}

/// Changes to a tenant; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub status: Option<TenantStatus>,
}

/// The columns every query returns, in [`TenantRow`] order.
macro_rules! columns {
    () => {
        "id, name, status, allowed_models, created_at, updated_at, deleted_at"
    };
}

impl Store {
    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = on_pool!(self, pool => sqlx::query_as(
            concat!("SELECT ", columns!(), " FROM tenants WHERE id = $1"),
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(Tenant::from))
    }

    /// A tenant that exists and is not deleted, or `NotFound`.
    pub async fn live_tenant(&self, id: &str) -> Result<Tenant, StoreError> {
        match self.tenant(id).await? {
            Some(tenant) if tenant.status != TenantStatus::Deleted => Ok(tenant),
            _ => Err(StoreError::NotFound("tenant")),
        }
    }

    /// Every tenant, oldest first; deleted ones only when `include_deleted`.
    pub async fn tenants(&self, include_deleted: bool) -> Result<Vec<Tenant>, StoreError> {
        let rows: Vec<TenantRow> = on_pool!(self, pool => sqlx::query_as(
            concat!(
                "SELECT ", columns!(),
                " FROM tenants WHERE $1 OR status <> 'deleted' ORDER BY created_at, id"
            ),
        )
        .bind(include_deleted)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Tenant::from).collect())
    }
}

// === impl Tx ===

impl Tx {
    /// The tenant as this transaction sees it, locked until it ends (see
    /// [`Tx::fetch_locked`]), to compare with what a write makes of it.
    pub async fn tenant(&mut self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = self
            .fetch_locked(
                concat!("SELECT ", columns!(), " FROM tenants WHERE id = $1"),
                &[id],
            )
            .await?;
        Ok(row.map(Tenant::from))
    }

    pub async fn create_tenant(&mut self, id: &str, name: &str) -> Result<Tenant, StoreError> {
        let now = Timestamp::now();
        let row: TenantRow = on_tx!(self, conn => sqlx::query_as(concat!(
            "INSERT INTO tenants (id, name, status, created_at, updated_at) \
             VALUES ($1, $2, 'active', $3, $3) \
             RETURNING ", columns!()),
        )
        .bind(id)
        .bind(name)
        .bind(now)
        .fetch_one(conn)
        .await)
        .map_err(StoreError::conflict_on_unique("tenant"))?;
        Ok(row.into())
    }

    pub async fn update_tenant(
        &mut self,
        id: &str,
        patch: &TenantPatch,
    ) -> Result<Tenant, StoreError> {
        let row: Option<TenantRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE tenants SET name = COALESCE($2, name), status = COALESCE($3, status), \
             updated_at = $4 WHERE id = $1 AND status <> 'deleted' \
             RETURNING ", columns!()),
        )
        .bind(id)
        .bind(patch.name.as_deref())
        .bind(patch.status.map(TenantStatus::as_str))
        .bind(Timestamp::now())
        .fetch_optional(conn)
        .await)?;
        row.map(Tenant::from).ok_or(StoreError::NotFound("tenant"))
    }

    /// Soft delete: the row stays (usage history points at it) and the id is never reused.
    pub async fn delete_tenant(&mut self, id: &str) -> Result<Tenant, StoreError> {
        let now = Timestamp::now();
        let row: Option<TenantRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE tenants SET status = 'deleted', deleted_at = $2, updated_at = $2 \
             WHERE id = $1 AND status <> 'deleted' \
             RETURNING ", columns!()),
        )
        .bind(id)
        .bind(now)
        .fetch_optional(conn)
        .await)?;
        row.map(Tenant::from).ok_or(StoreError::NotFound("tenant"))
    }

    /// Sets the tenant's model allow-list; `None` allows every configured model.
    pub async fn set_allowed_models(
        &mut self,
        id: &str,
        models: Option<&[String]>,
    ) -> Result<Tenant, StoreError> {
        let row: Option<TenantRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE tenants SET allowed_models = $2, updated_at = $3 \
             WHERE id = $1 AND status <> 'deleted' \
             RETURNING ", columns!()),
        )
        .bind(id)
        .bind(models.map(json_text))
        .bind(Timestamp::now())
        .fetch_optional(conn)
        .await)?;
        row.map(Tenant::from).ok_or(StoreError::NotFound("tenant"))
    }
}
