//! Quota limits: the tenant's, its default for users without their own, and one user's.

use serde_json::json;

use super::{Admin, AdminError};
use crate::audit::{Actor, Entry};
use crate::changes::Change;
use crate::store::{Limits, QuotaScope};

impl Admin {
    pub async fn set_tenant_quota(
        &self,
        by: &Actor,
        tenant: &str,
        limits: &Limits,
    ) -> Result<(), AdminError> {
        self.set_quota(by, tenant, QuotaScope::Tenant, None, limits)
            .await
    }

    pub async fn set_default_user_quota(
        &self,
        by: &Actor,
        tenant: &str,
        limits: &Limits,
    ) -> Result<(), AdminError> {
        self.set_quota(by, tenant, QuotaScope::DefaultUser, None, limits)
            .await
    }

    pub async fn set_user_quota(
        &self,
        by: &Actor,
        tenant: &str,
        subject: &str,
        limits: &Limits,
    ) -> Result<(), AdminError> {
        self.set_quota(by, tenant, QuotaScope::User, Some(subject), limits)
            .await
    }

    /// Replaces the limits of one scope: the tenant's own or its default for users (no
    /// subject; either changes what every user of the tenant is admitted against), or one
    /// user's. Setting no limit at all is audited as `quota.removed`.
    async fn set_quota(
        &self,
        by: &Actor,
        tenant: &str,
        scope: QuotaScope,
        subject: Option<&str>,
        limits: &Limits,
    ) -> Result<(), AdminError> {
        self.store.live_tenant(tenant).await?;
        if let Some(subject) = subject {
            self.store
                .user(tenant, subject)
                .await?
                .ok_or(AdminError::UserNotFound)?;
        }
        let mut write = self.begin(by).await?;
        let key = subject.unwrap_or_default();
        let before = write.tx.quota(tenant, scope, key).await?;
        write.tx.set_quota(tenant, scope, key, limits).await?;
        write
            .announce(Change::Quota {
                tenant: tenant.to_owned(),
                subject: subject.map(str::to_owned),
            })
            .await?;
        let view = |limits: &Limits| json!({"scope": scope.as_str(), "limits": limits});
        let entry = if limits.is_unlimited() {
            Entry::new("quota.removed", Some(tenant), subject)
        } else {
            Entry::new("quota.set", Some(tenant), subject).after(&view(limits))
        };
        write
            .audit(entry.before(&before.as_ref().map(view)))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, subject, scope = scope.as_str(), ?limits, "quota set");
        Ok(())
    }
}
