//! The policy a group carries: a model list and the tenant-admin role, which its members get.
//! Who is a member is the identity provider's to say, over SCIM or in a token's groups claim.

use super::{Admin, AdminError};
use crate::audit::{Actor, Entry};
use crate::changes::Change;
use crate::store::{Group, GroupPolicy, StoreError};

impl Admin {
    /// Gives the group called `name` this policy, creating the group if the tenant has none of
    /// that name (an identity provider that pushes the name later adopts it). Returns the group
    /// and whether it was created.
    pub async fn save_group(
        &self,
        by: &Actor,
        tenant: &str,
        name: &str,
        policy: &GroupPolicy,
    ) -> Result<(Group, bool), AdminError> {
        self.store.live_tenant(tenant).await?;
        let mut write = self.begin(by).await?;
        let before = write.tx.group(tenant, name).await?;
        let group = write.tx.save_group_policy(tenant, name, policy).await?;
        write.announce(groups_changed(tenant)).await?;
        let mut entry = Entry::new("group.saved", Some(tenant), Some(name));
        if let Some(before) = &before {
            entry = entry.before(before);
        }
        write.audit(entry.after(&group)).await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, group = %name, models = ?group.policy.models,
            role = ?group.policy.role, "group policy saved");
        Ok((group, before.is_none()))
    }

    /// The group stops giving anything. A group the identity provider pushed stays, members and
    /// all, until it deletes it; one an administrator named is gone.
    pub async fn delete_group(
        &self,
        by: &Actor,
        tenant: &str,
        name: &str,
    ) -> Result<(), AdminError> {
        let mut write = self.begin(by).await?;
        let group = write
            .tx
            .group(tenant, name)
            .await?
            .ok_or(StoreError::NotFound("group"))?;
        write.tx.delete_group_policy(tenant, &group.id).await?;
        write.announce(groups_changed(tenant)).await?;
        write
            .audit(Entry::new("group.deleted", Some(tenant), Some(name)).before(&group))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, group = %name, kept_for_scim = group.scim, "group policy deleted");
        Ok(())
    }
}

/// Who is in which group, or what a group gives, changed: each replica reloads the tenant's
/// groups on its next request.
pub(super) fn groups_changed(tenant: &str) -> Change {
    Change::Groups {
        tenant: tenant.to_owned(),
    }
}
