//! SCIM provisioning as service-layer writes: the tenant's SCIM tokens and setting, and every
//! change an identity provider pushes to a user or a group. Each turns into the user-store
//! change an administrator would make — create, suspend, reactivate, rename, delete — and so
//! announces and audits it the same way.

use serde_json::Value;

use super::groups::groups_changed;
use super::{Admin, AdminError};
use crate::audit::{Actor, Entry};
use crate::auth::api_keys::GeneratedKey;
use crate::changes::Change;
use crate::clock::Timestamp;
use crate::scim::ScimFault;
use crate::scim::patch::{self, Operation};
use crate::scim::resource::{GroupFields, UserFields};
use crate::store::{
    ScimGroup, ScimToken, ScimUser, StoreError, SubjectAttribute, UserPatch, UserStatus,
};

/// What SCIM tokens start with, so one is recognised in a config or a leak report.
pub const SCIM_TOKEN_PREFIX: &str = "tgscim-";

/// A SCIM token just made: the secret, shown this once, and what is stored of it.
pub struct NewScimToken {
    pub secret: String,
    pub token: ScimToken,
}

/// How a resource changes: replaced whole (PUT) or patched (PATCH).
pub enum Edit {
    Replace(Value),
    Patch(Vec<Operation>),
}

impl Edit {
    /// The resource after the edit, from the one stored.
    fn apply(self, current: Value) -> Result<Value, ScimFault> {
        match self {
            Edit::Replace(resource) => Ok(resource),
            Edit::Patch(operations) => {
                let mut resource = current;
                patch::apply(&mut resource, &operations)?;
                Ok(resource)
            }
        }
    }
}

impl Admin {
    pub async fn create_scim_token(
        &self,
        by: &Actor,
        tenant: &str,
        name: &str,
    ) -> Result<NewScimToken, AdminError> {
        self.store.live_tenant(tenant).await?;
        let generated = GeneratedKey::with_prefix(SCIM_TOKEN_PREFIX)?;
        let token = ScimToken {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.to_owned(),
            name: name.to_owned(),
            token_prefix: generated.prefix().to_owned(),
            token_hash: generated.hash,
            created_at: Timestamp::now(),
            revoked_at: None,
        };
        let mut write = self.begin(by).await?;
        write.tx.create_scim_token(&token).await?;
        write
            .audit(Entry::new("scim_token.created", Some(tenant), Some(&token.id)).after(&token))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, token_id = %token.id, "scim token created");
        Ok(NewScimToken {
            secret: generated.key,
            token,
        })
    }

    /// Takes effect on the next SCIM request: tokens are looked up on every one.
    pub async fn revoke_scim_token(
        &self,
        by: &Actor,
        tenant: &str,
        id: &str,
    ) -> Result<ScimToken, AdminError> {
        let mut write = self.begin(by).await?;
        let token = write.tx.revoke_scim_token(tenant, id).await?;
        write
            .audit(Entry::new("scim_token.revoked", Some(tenant), Some(id)).after(&token))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, token_id = %id, "scim token revoked");
        Ok(token)
    }

    /// Which SCIM attribute becomes the subject of users provisioned from now on.
    pub async fn set_scim_subject_attribute(
        &self,
        by: &Actor,
        tenant: &str,
        attribute: SubjectAttribute,
    ) -> Result<(), AdminError> {
        let before = self.store.scim_subject_attribute(tenant).await?;
        let mut write = self.begin(by).await?;
        write
            .tx
            .set_scim_subject_attribute(tenant, attribute)
            .await?;
        write
            .audit(
                Entry::new("scim.settings_set", Some(tenant), None)
                    .before(&serde_json::json!({"subject_attribute": before}))
                    .after(&serde_json::json!({"subject_attribute": attribute})),
            )
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, attribute = attribute.as_str(), "scim subject attribute set");
        Ok(())
    }

    /// A User the identity provider creates (`id: None`) or changes. Its subject comes from
    /// the tenant's setting; `active` decides whether the user is active or suspended; a new
    /// subject (a rename) moves the person's keys, quota and groups to it.
    pub async fn scim_save_user(
        &self,
        by: &Actor,
        tenant: &str,
        id: Option<&str>,
        edit: Edit,
    ) -> Result<ScimUser, AdminError> {
        self.store.live_tenant(tenant).await?;
        let attribute = self.store.scim_subject_attribute(tenant).await?;
        let mut write = self.begin(by).await?;
        let existing = match id {
            Some(id) => Some(
                write
                    .tx
                    .scim_user(tenant, id)
                    .await?
                    .ok_or(StoreError::NotFound("User"))?,
            ),
            None => None,
        };
        let current = existing
            .as_ref()
            .map(|user| serde_json::from_str(&user.resource).unwrap_or_default())
            .unwrap_or_default();
        let mut fields = UserFields::read(edit.apply(current)?)?;
        if existing.is_none() {
            fields.active_by_default();
        }
        let subject = fields.subject(attribute)?;
        let now = Timestamp::now();
        let renamed_from = existing
            .as_ref()
            .filter(|old| old.subject != subject)
            .map(|old| old.subject.clone());
        if let Some(old) = &renamed_from {
            write.tx.move_subject(tenant, old, &subject).await?;
            write.announce(user_change(tenant, old)).await?;
            // Their group memberships moved with them.
            write.announce(groups_changed(tenant)).await?;
        }
        let before = write.tx.user(tenant, &subject).await?;
        let status = if fields.active {
            UserStatus::Active
        } else {
            UserStatus::Suspended
        };
        let (user, _) = write
            .tx
            .upsert_user(
                tenant,
                &subject,
                &UserPatch {
                    email: fields.email.clone(),
                    display_name: fields.display_name.clone(),
                    role: None,
                    status: Some(status),
                },
            )
            .await?;
        let saved = write
            .tx
            .save_scim_user(&ScimUser {
                id: existing
                    .as_ref()
                    .map_or_else(|| uuid::Uuid::now_v7().to_string(), |old| old.id.clone()),
                tenant_id: tenant.to_owned(),
                subject: subject.clone(),
                user_name: fields.user_name.clone(),
                external_id: fields.external_id.clone(),
                resource: fields.resource.to_string(),
                version: 1,
                created_at: existing.as_ref().map_or(now, |old| old.created_at),
                updated_at: now,
            })
            .await?;
        write.announce(user_change(tenant, &subject)).await?;
        let entry = match &renamed_from {
            Some(old) => Entry::new("user.renamed", Some(tenant), Some(&subject))
                .before(&serde_json::json!({"subject": old}))
                .after(&user),
            None => super::users::saved(before.as_ref(), &user),
        };
        write.audit(entry).await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, subject = %subject, scim_id = %saved.id,
            status = user.status.as_str(), renamed_from = renamed_from.as_deref(), "user saved over scim");
        Ok(saved)
    }

    /// The identity provider deleted the user: deleted here as by an administrator (tokens and
    /// keys end for good), out of every group, and gone from SCIM.
    pub async fn scim_delete_user(
        &self,
        by: &Actor,
        tenant: &str,
        id: &str,
    ) -> Result<(), AdminError> {
        let mut write = self.begin(by).await?;
        let user = write
            .tx
            .scim_user(tenant, id)
            .await?
            .ok_or(StoreError::NotFound("User"))?;
        write.tx.leave_groups(tenant, &user.subject).await?;
        write.announce(groups_changed(tenant)).await?;
        write.tx.delete_scim_user(tenant, id).await?;
        match self.delete_user_in(&mut write, tenant, &user.subject).await {
            // Already deleted by an administrator: the SCIM resource still goes.
            Err(AdminError::Store(StoreError::NotFound(_))) => {
                write
                    .audit(Entry::new(
                        "user.deleted",
                        Some(tenant),
                        Some(&user.subject),
                    ))
                    .await?;
            }
            other => {
                other?;
            }
        }
        write.commit().await?;
        tracing::info!(tenant = %tenant, subject = %user.subject, scim_id = %id, "user deleted over scim");
        Ok(())
    }

    /// A Group the identity provider creates (`id: None`) or changes. A group an administrator
    /// already named for its policy is adopted rather than refused. Members are the users the
    /// resource lists by SCIM id; when members, the name or the adoption change what the
    /// tenant's groups give anyone, the tenant's groups are announced, so access is recomputed
    /// on the next request.
    pub async fn scim_save_group(
        &self,
        by: &Actor,
        tenant: &str,
        id: Option<&str>,
        edit: Edit,
    ) -> Result<ScimGroup, AdminError> {
        self.store.live_tenant(tenant).await?;
        let mut write = self.begin(by).await?;
        let existing = match id {
            Some(id) => Some(
                write
                    .tx
                    .scim_group(tenant, id)
                    .await?
                    .ok_or(StoreError::NotFound("Group"))?,
            ),
            None => None,
        };
        let members_before = match &existing {
            Some(group) => write.tx.scim_member_ids(tenant, &group.id).await?,
            None => Vec::new(),
        };
        let mut current: Value = existing
            .as_ref()
            .and_then(|group| group.resource.as_deref())
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(group) = &existing {
            current["displayName"] = Value::String(group.name.clone());
            if !members_before.is_empty() {
                current["members"] = members_before
                    .iter()
                    .map(|(id, _)| serde_json::json!({"value": id}))
                    .collect();
            }
        }
        let fields = GroupFields::read(edit.apply(current)?)?;
        let now = Timestamp::now();
        let adopted = match &existing {
            Some(_) => None,
            None => write.tx.group_named(tenant, &fields.name).await?,
        };
        if adopted
            .as_ref()
            .is_some_and(|group| group.resource.is_some())
        {
            return Err(StoreError::Conflict("a group with this displayName").into());
        }
        let wanted = write.tx.scim_subjects(tenant, &fields.members).await?;
        if let Some(unknown) = fields
            .members
            .iter()
            .find(|id| !wanted.iter().any(|(known, _)| known == *id))
        {
            return Err(ScimFault::invalid_value(format!(
                "member `{unknown}` is not a User of this tenant"
            ))
            .into());
        }
        let base = existing.as_ref().or(adopted.as_ref());
        let group = write
            .tx
            .save_scim_group(&ScimGroup {
                id: base.map_or_else(
                    || uuid::Uuid::now_v7().to_string(),
                    |group| group.id.clone(),
                ),
                tenant_id: tenant.to_owned(),
                name: fields.name.clone(),
                resource: Some(fields.resource.to_string()),
                version: 1,
                created_at: base.map_or(now, |group| group.created_at),
                updated_at: now,
            })
            .await?;
        let mut changed = Vec::new();
        for (id, subject) in &members_before {
            if !wanted.iter().any(|(kept, _)| kept == id) {
                write.tx.remove_group_member(&group.id, subject).await?;
                changed.push(subject.clone());
            }
        }
        for (id, subject) in &wanted {
            if !members_before.iter().any(|(had, _)| had == id) {
                write
                    .tx
                    .add_group_member(tenant, &group.id, subject)
                    .await?;
                changed.push(subject.clone());
            }
        }
        // A new name may match other tokens' groups claims.
        let renamed = existing.as_ref().is_some_and(|old| old.name != group.name);
        if !changed.is_empty() || renamed || adopted.is_some() {
            write.announce(groups_changed(tenant)).await?;
        }
        let subjects = |members: &[(String, String)]| -> Vec<String> {
            members.iter().map(|(_, subject)| subject.clone()).collect()
        };
        let view = |name: &str, members: Vec<String>| serde_json::json!({"name": name, "members": members});
        let entry = match &existing {
            Some(old) => Entry::new("group.updated", Some(tenant), Some(&group.id))
                .before(&view(&old.name, subjects(&members_before))),
            None => Entry::new("group.created", Some(tenant), Some(&group.id)),
        }
        .after(&view(&group.name, subjects(&wanted)));
        write.audit(entry).await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, group = %group.name, members_changed = changed.len(), "group saved over scim");
        Ok(group)
    }

    /// The identity provider deleted the group: its members leave it. A policy an
    /// administrator gave it stays until they remove it.
    pub async fn scim_delete_group(
        &self,
        by: &Actor,
        tenant: &str,
        id: &str,
    ) -> Result<(), AdminError> {
        let mut write = self.begin(by).await?;
        let group = write
            .tx
            .scim_group(tenant, id)
            .await?
            .ok_or(StoreError::NotFound("Group"))?;
        write.tx.delete_scim_group(tenant, id).await?;
        write.announce(groups_changed(tenant)).await?;
        write
            .audit(
                Entry::new("group.deleted", Some(tenant), Some(id))
                    .before(&serde_json::json!({"name": group.name})),
            )
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, group = %group.name, "group deleted over scim");
        Ok(())
    }
}

fn user_change(tenant: &str, subject: &str) -> Change {
    Change::User {
        tenant: tenant.to_owned(),
        subject: subject.to_owned(),
    }
}
