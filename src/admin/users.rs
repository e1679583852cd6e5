//! A tenant's users: saved, suspended or restored (one upsert), soft-deleted, and their tokens
//! revoked.

use super::write::Write;
use super::{Admin, AdminError};
use crate::audit::{Actor, Entry};
use crate::changes::Change;
use crate::clock::Timestamp;
use crate::store::{RevokedToken, Upserted, User, UserPatch, UserStatus};

impl Admin {
    /// Creates the user or changes the given fields: suspending, reactivating and restoring a
    /// deleted user are all this write.
    pub async fn upsert_user(
        &self,
        by: &Actor,
        tenant: &str,
        subject: &str,
        patch: &UserPatch,
    ) -> Result<(User, Upserted), AdminError> {
        self.store.live_tenant(tenant).await?;
        let mut write = self.begin(by).await?;
        let before = write.tx.user(tenant, subject).await?;
        let (user, upserted) = write.tx.upsert_user(tenant, subject, patch).await?;
        write.announce(changed(&user)).await?;
        write.audit(saved(before.as_ref(), &user)).await?;
        write.commit().await?;
        tracing::info!(tenant = %user.tenant_id, subject = %user.subject,
            status = user.status.as_str(), role = user.role.as_str(), "user saved");
        Ok((user, upserted))
    }

    /// Soft delete: the row and usage history stay, and the user's tokens and API keys end for
    /// good (a later restore does not bring them back).
    pub async fn delete_user(
        &self,
        by: &Actor,
        tenant: &str,
        subject: &str,
    ) -> Result<User, AdminError> {
        self.store.live_tenant(tenant).await?;
        let mut write = self.begin(by).await?;
        let user = self.delete_user_in(&mut write, tenant, subject).await?;
        write.commit().await?;
        Ok(user)
    }

    /// The delete, inside a write another door may be making (SCIM's removes the user's
    /// resource and memberships in the same transaction).
    pub(super) async fn delete_user_in(
        &self,
        write: &mut Write<'_>,
        tenant: &str,
        subject: &str,
    ) -> Result<User, AdminError> {
        let before = write.tx.user(tenant, subject).await?;
        let (user, revoked_keys) = write.tx.delete_user(tenant, subject).await?;
        write.announce(changed(&user)).await?;
        for hash in &revoked_keys {
            let hash = hash.clone();
            write.announce(Change::ApiKey { hash }).await?;
        }
        write
            .audit(
                Entry::new("user.deleted", Some(tenant), Some(subject))
                    .before(&before)
                    .after(&user),
            )
            .await?;
        tracing::info!(tenant = %user.tenant_id, subject = %user.subject,
            revoked_keys = revoked_keys.len(), "user deleted; their tokens and keys ended");
        Ok(user)
    }

    /// Every token issued to the user before now is rejected from now on.
    pub async fn revoke_user_tokens(
        &self,
        by: &Actor,
        tenant: &str,
        subject: &str,
    ) -> Result<User, AdminError> {
        self.store.live_tenant(tenant).await?;
        let mut write = self.begin(by).await?;
        let before = write.tx.user(tenant, subject).await?;
        let user = write.tx.revoke_user_tokens(tenant, subject).await?;
        write.announce(changed(&user)).await?;
        write
            .audit(
                Entry::new("user.tokens_revoked", Some(tenant), Some(subject))
                    .before(&before)
                    .after(&user),
            )
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %user.tenant_id, subject = %user.subject, "user's tokens revoked");
        Ok(user)
    }

    /// Revokes one token by `jti`, until `expires_at` (after which it has expired anyway).
    pub async fn revoke_token(
        &self,
        by: &Actor,
        tenant: &str,
        jti: &str,
        expires_at: Timestamp,
    ) -> Result<RevokedToken, AdminError> {
        self.store.live_tenant(tenant).await?;
        let mut write = self.begin(by).await?;
        let revoked = write.tx.revoke_token(tenant, jti, expires_at).await?;
        write
            .announce(Change::Revocation {
                tenant: tenant.to_owned(),
                jti: jti.to_owned(),
            })
            .await?;
        write
            .audit(Entry::new("token.revoked", Some(tenant), Some(jti)).after(&revoked))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, "token revoked by jti");
        Ok(revoked)
    }
}

/// The audit entry for a user saved: its action says what the save did to them.
pub(super) fn saved(before: Option<&User>, after: &User) -> Entry {
    let action = match (before.map(|user| user.status), after.status) {
        (None, _) => "user.created",
        (Some(UserStatus::Active), UserStatus::Suspended) => "user.suspended",
        (Some(UserStatus::Suspended), UserStatus::Active) => "user.reactivated",
        (Some(UserStatus::Deleted), UserStatus::Active | UserStatus::Suspended) => "user.restored",
        _ => "user.updated",
    };
    Entry::new(action, Some(&after.tenant_id), Some(&after.subject))
        .before(&before)
        .after(after)
}

/// The auth stage must see a user's change on the very next request.
fn changed(user: &User) -> Change {
    Change::User {
        tenant: user.tenant_id.clone(),
        subject: user.subject.clone(),
    }
}
