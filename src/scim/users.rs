//! `/Users`: the identity provider's view of the tenant's provisioned users.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use super::patch::PatchRequest;
use super::resource::Base;
use super::{ListQuery, Provisioner, ScimError, created, parse_body, scim_json};
use crate::admin::Edit;
use crate::state::AppState;
use crate::store::ScimUser;

pub(super) async fn list(
    State(state): State<AppState>,
    who: Provisioner,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    query.answer(all(&state, &who).await?)
}

/// Every resource of the tenant, rendered, for a list or a search to filter and page.
pub(super) async fn all(state: &AppState, who: &Provisioner) -> Result<Vec<Value>, ScimError> {
    let users = state.store.scim_users(&who.tenant).await?;
    let groups: HashMap<String, String> = state
        .store
        .scim_groups(&who.tenant)
        .await?
        .into_iter()
        .map(|group| (group.id, group.name))
        .collect();
    let mut memberships: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for member in state.store.scim_members(&who.tenant, None).await? {
        if let Some(name) = groups.get(&member.group_id) {
            memberships
                .entry(member.user_id)
                .or_default()
                .push((member.group_id, name.clone()));
        }
    }
    let base = Base(&who.base);
    let resources = users
        .iter()
        .map(|user| base.user(user, memberships.get(&user.id).map_or(&[], Vec::as_slice)))
        .collect();
    Ok(resources)
}

pub(super) async fn get(
    State(state): State<AppState>,
    who: Provisioner,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let user = state
        .store
        .scim_user(&who.tenant, &id)
        .await?
        .ok_or_else(|| super::not_found("User", &id))?;
    let resource = render(&state, &who, &user).await?;
    Ok(scim_json(StatusCode::OK, &query.project(resource)))
}

pub(super) async fn create(
    State(state): State<AppState>,
    who: Provisioner,
    body: Bytes,
) -> Result<Response, ScimError> {
    let resource: Value = parse_body(&body)?;
    let user = state
        .admin
        .scim_save_user(&who.actor, &who.tenant, None, Edit::Replace(resource))
        .await?;
    Ok(created(&render(&state, &who, &user).await?))
}

pub(super) async fn replace(
    State(state): State<AppState>,
    who: Provisioner,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let resource: Value = parse_body(&body)?;
    save(&state, &who, &id, Edit::Replace(resource)).await
}

pub(super) async fn patch(
    State(state): State<AppState>,
    who: Provisioner,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let request: PatchRequest = parse_body(&body)?;
    save(&state, &who, &id, Edit::Patch(request.operations)).await
}

pub(super) async fn delete(
    State(state): State<AppState>,
    who: Provisioner,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ScimError> {
    state
        .admin
        .scim_delete_user(&who.actor, &who.tenant, &id)
        .await
        .map_err(|error| super::missing("User", error, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn save(
    state: &AppState,
    who: &Provisioner,
    id: &str,
    edit: Edit,
) -> Result<Response, ScimError> {
    let user = state
        .admin
        .scim_save_user(&who.actor, &who.tenant, Some(id), edit)
        .await
        .map_err(|error| super::missing("User", error, id))?;
    Ok(scim_json(StatusCode::OK, &render(state, who, &user).await?))
}

async fn render(state: &AppState, who: &Provisioner, user: &ScimUser) -> Result<Value, ScimError> {
    let groups = state
        .store
        .scim_user_groups(&who.tenant, &user.subject)
        .await?;
    Ok(Base(&who.base).user(user, &groups))
}
