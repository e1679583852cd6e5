//! Tenants and their model allow-lists.

use super::{Admin, AdminError};
use crate::audit::Actor;
use crate::changes::Change;
use crate::store::{Tenant, TenantPatch};

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
        let tenant = write.tx.update_tenant(id, patch).await?;
        write.announce(changed(&tenant)).await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant.id, status = tenant.status.as_str(), "tenant updated");
        Ok(tenant)
    }

    /// Soft delete: the row stays, so usage history stays attributable.
    pub async fn delete_tenant(&self, by: &Actor, id: &str) -> Result<Tenant, AdminError> {
        let mut write = self.begin(by).await?;
        let tenant = write.tx.delete_tenant(id).await?;
        write.announce(changed(&tenant)).await?;
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
        let tenant = write.tx.set_allowed_models(id, models).await?;
        write.announce(changed(&tenant)).await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant.id, "model allow-list updated");
        Ok(tenant)
    }
}

/// The tenant's row and its limits are cached apart from its users'.
fn changed(tenant: &Tenant) -> Change {
    Change::Tenant {
        tenant: tenant.id.clone(),
    }
}
