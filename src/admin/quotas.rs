//! Quota limits: the tenant's, its default for users without their own, and one user's.

use super::{Admin, AdminError};
use crate::audit::Actor;
use crate::changes::Change;
use crate::store::{Limits, QuotaScope};

impl Admin {
    pub async fn set_tenant_quota(
        &self,
        by: &Actor,
        tenant: &str,
        limits: &Limits,
    ) -> Result<(), AdminError> {
        self.set_tenant_wide(by, tenant, QuotaScope::Tenant, limits)
            .await
    }

    pub async fn set_default_user_quota(
        &self,
        by: &Actor,
        tenant: &str,
        limits: &Limits,
    ) -> Result<(), AdminError> {
        self.set_tenant_wide(by, tenant, QuotaScope::DefaultUser, limits)
            .await
    }

    pub async fn set_user_quota(
        &self,
        by: &Actor,
        tenant: &str,
        subject: &str,
        limits: &Limits,
    ) -> Result<(), AdminError> {
        self.store.live_tenant(tenant).await?;
        self.store
            .user(tenant, subject)
            .await?
            .ok_or(AdminError::UserNotFound)?;
        let mut write = self.begin(by).await?;
        write
            .tx
            .set_quota(tenant, QuotaScope::User, subject, limits)
            .await?;
        write
            .announce(Change::Quota {
                tenant: tenant.to_owned(),
                subject: Some(subject.to_owned()),
            })
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, subject = %subject, ?limits, "user quota set");
        Ok(())
    }

    /// A limit without a subject: the tenant's own, or its default for users. Either changes
    /// what every user of the tenant is admitted against.
    async fn set_tenant_wide(
        &self,
        by: &Actor,
        tenant: &str,
        scope: QuotaScope,
        limits: &Limits,
    ) -> Result<(), AdminError> {
        self.store.live_tenant(tenant).await?;
        let mut write = self.begin(by).await?;
        write.tx.set_quota(tenant, scope, "", limits).await?;
        write
            .announce(Change::Quota {
                tenant: tenant.to_owned(),
                subject: None,
            })
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, scope = scope.as_str(), ?limits, "quota set");
        Ok(())
    }
}
