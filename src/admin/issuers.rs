//! The identity providers whose tokens are accepted.

use super::{Admin, AdminError};
use crate::audit::{Actor, Entry};
use crate::changes::Change;
use crate::store::{Issuer, NewIssuer, StoreError};

impl Admin {
    /// Registers an issuer the door has validated field by field; one bound to a tenant needs
    /// that tenant live.
    pub async fn create_issuer(&self, by: &Actor, new: &NewIssuer) -> Result<Issuer, AdminError> {
        if let Some(tenant) = &new.tenant_id {
            self.store
                .live_tenant(tenant)
                .await
                .map_err(|error| match error {
                    StoreError::NotFound(_) => AdminError::IssuerTenantNotFound(tenant.clone()),
                    error => error.into(),
                })?;
        }
        let mut write = self.begin(by).await?;
        let issuer = write.tx.create_issuer(new).await?;
        write.announce(Change::Issuers).await?;
        write
            .audit(entry("issuer.created", &issuer).after(&issuer))
            .await?;
        write.commit().await?;
        tracing::info!(issuer = %issuer.issuer, id = %issuer.id, "issuer registered");
        Ok(issuer)
    }

    pub async fn delete_issuer(&self, by: &Actor, id: &str) -> Result<(), AdminError> {
        let mut write = self.begin(by).await?;
        let issuer = write.tx.delete_issuer(id).await?;
        write.announce(Change::Issuers).await?;
        write
            .audit(entry("issuer.deleted", &issuer).before(&issuer))
            .await?;
        write.commit().await?;
        tracing::info!(id = %id, "issuer deleted");
        Ok(())
    }
}

/// An issuer's audit entry, under the tenant it is bound to (none for an issuer whose tokens
/// name their tenant in a claim). `Issuer` serialises without its HS256 secret.
fn entry(action: &'static str, issuer: &Issuer) -> Entry {
    Entry::new(action, issuer.tenant_id.as_deref(), Some(&issuer.id))
}
