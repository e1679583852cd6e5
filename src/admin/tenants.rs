//! Tenants and their model allow-lists.

use super::write::Write;
use super::{Admin, AdminError};
use crate::audit::{Actor, Entry};
use crate::changes::Change;
use crate::store::{StoreError, Tenant, TenantPatch, TenantStatus};

impl Admin {
    /// Announces nothing: no cache holds a row for an id that did not exist (a cached "no such
    /// tenant" expires within `auth.negative_cache_ttl`).
    pub async fn create_tenant(
        &self,
        by: &Actor,
        id: &str,
        name: &str,
    ) -> Result<Tenant, AdminError> {
        let mut write = self.begin(by).await?;
        let tenant = write.tx.create_tenant(id, name).await?;
        // A token that named this id before it existed is remembered as "no such tenant"
        // (`auth.negative_cache_ttl`) on whichever replica saw it: forget that everywhere.
        write.announce(changed(&tenant)).await?;
        write
            .audit(Entry::new("tenant.created", Some(id), Some(id)).after(&tenant))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant.id, "tenant created");
        Ok(tenant)
    }

    /// Renames, disables or re-enables a tenant.
    pub async fn update_tenant(
        &self,
        by: &Actor,
        id: &str,
        patch: &TenantPatch,
    ) -> Result<Tenant, AdminError> {
        let mut write = self.begin(by).await?;
        let before = live_before(&mut write, id).await?;
        let tenant = write.tx.update_tenant(id, patch).await?;
        write.announce(changed(&tenant)).await?;
        let action = match (before.status, tenant.status) {
            (TenantStatus::Active, TenantStatus::Disabled) => "tenant.disabled",
            (TenantStatus::Disabled, TenantStatus::Active) => "tenant.enabled",
            _ => "tenant.updated",
        };
        write.audit(entry(action, &before, &tenant)).await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant.id, status = tenant.status.as_str(), "tenant updated");
        Ok(tenant)
    }

    /// Soft delete: the row stays, so usage history stays attributable.
    pub async fn delete_tenant(&self, by: &Actor, id: &str) -> Result<Tenant, AdminError> {
        let mut write = self.begin(by).await?;
        let before = live_before(&mut write, id).await?;
        let tenant = write.tx.delete_tenant(id).await?;
        write.announce(changed(&tenant)).await?;
        write
            .audit(entry("tenant.deleted", &before, &tenant))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant.id, "tenant deleted");
        Ok(tenant)
    }

    /// `None` allows every configured model.
    pub async fn set_allowed_models(
        &self,
        by: &Actor,
        id: &str,
        models: Option<&[String]>,
    ) -> Result<Tenant, AdminError> {
        let mut write = self.begin(by).await?;
        let before = live_before(&mut write, id).await?;
        let tenant = write.tx.set_allowed_models(id, models).await?;
        write.announce(changed(&tenant)).await?;
        write
            .audit(entry("tenant.models_set", &before, &tenant))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant.id, "model allow-list updated");
        Ok(tenant)
    }
}

/// The tenant a write is about to change, read under its lock; a deleted one is not found, as
/// the write itself would say.
async fn live_before(write: &mut Write<'_>, id: &str) -> Result<Tenant, StoreError> {
    match write.tx.tenant(id).await? {
        Some(tenant) if tenant.status != TenantStatus::Deleted => Ok(tenant),
        _ => Err(StoreError::NotFound("tenant")),
    }
}

/// A tenant's audit entry: the whole row before and after, allow-list included.
fn entry(action: &'static str, before: &Tenant, after: &Tenant) -> Entry {
    Entry::new(action, Some(&after.id), Some(&after.id))
        .before(before)
        .after(after)
}

/// The tenant's row and its limits are cached apart from its users'.
fn changed(tenant: &Tenant) -> Change {
    Change::Tenant {
        tenant: tenant.id.clone(),
    }
}
