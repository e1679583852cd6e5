//! `/admin/v1/tenants/{tenant}/groups`: the policy each group carries — a model list that
//! narrows the tenant's, and the tenant-admin role — for its members, whether the identity
//! provider says so over SCIM or in a token's groups claim.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::api::json::ApiJson;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{Group, GroupPolicy, GroupRole};

#[derive(Deserialize)]
pub struct GroupPath {
    tenant: String,
    group: String,
}

/// The whole policy: a field left out is `null`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// The models members may use, within the tenant's list; `null`: no narrowing.
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    role: Option<GroupRole>,
}

/// A group as the API shows it: its policy, where it came from, and its SCIM members (a
/// token's groups claim names members nobody stores).
#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupView {
    #[serde(flatten)]
    group: Group,
    member_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Vec<String>>,
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/groups/{group}",
    operation_id = "groups_put",
    tag = "groups",
    params(("tenant" = String, Path, description = "The tenant's id."), ("group" = String, Path, description = "The group's name.")),
    request_body = PolicyBody,
    responses(
        (status = 200, description = "The group, its policy replaced.", body = GroupView),
        (status = 201, description = "The group, created.", body = GroupView),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// `PUT …/groups/{group}`: 201 when the group was created, 200 when its policy was replaced.
pub async fn put(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<GroupPath>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    ids::text("group", &path.group, ids::MAX_TEXT)?;
    // Like the tenant's allow-list: names, not checked against the configured models, so a
    // list may name a model before it is configured.
    if let Some(models) = &body.models {
        for (i, model) in models.iter().enumerate() {
            ids::text(&format!("models[{i}]"), model, ids::MAX_TEXT)?;
        }
    }
    let policy = GroupPolicy {
        models: body.models,
        role: body.role,
    };
    let (group, created) = state
        .admin
        .save_group(&by, &path.tenant, &path.group, &policy)
        .await?;
    let members = state
        .store
        .group_members(&path.tenant, Some(&group.id))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(group, members))))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/groups",
    operation_id = "groups_list",
    tag = "groups",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The tenant's groups with their member counts.", body = Vec<GroupView>),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// `GET …/groups`: every group of the tenant with its member count.
pub async fn list(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    state.store.live_tenant(&tenant).await?;
    let groups = state.store.groups(&tenant).await?;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (group_id, _) in state.store.group_members(&tenant, None).await? {
        *counts.entry(group_id).or_default() += 1;
    }
    let views = groups
        .into_iter()
        .map(|group| GroupView {
            member_count: counts.get(&group.id).copied().unwrap_or(0),
            group,
            members: None,
        })
        .collect();
    Ok(Json(views))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/groups/{group}",
    operation_id = "groups_get",
    tag = "groups",
    params(("tenant" = String, Path, description = "The tenant's id."), ("group" = String, Path, description = "The group's name.")),
    responses(
        (status = 200, description = "The group with its members.", body = GroupView),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// `GET …/groups/{group}`: the group with its members' subjects.
pub async fn get(
    State(state): State<AppState>,
    Path(path): Path<GroupPath>,
) -> Result<Json<GroupView>, ApiError> {
    let group = state
        .store
        .group(&path.tenant, &path.group)
        .await?
        .ok_or_else(|| ApiError::not_found("Group not found."))?;
    let members = state
        .store
        .group_members(&path.tenant, Some(&group.id))
        .await?;
    Ok(Json(view(group, members)))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/groups/{group}",
    operation_id = "groups_delete",
    tag = "groups",
    params(("tenant" = String, Path, description = "The tenant's id."), ("group" = String, Path, description = "The group's name.")),
    responses(
        (status = 204, description = "The group gives nothing any more."),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// `DELETE …/groups/{group}`: the group gives nothing any more (one the identity provider
/// pushed stays, without a policy, until it deletes it).
pub async fn delete(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<GroupPath>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .delete_group(&by, &path.tenant, &path.group)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn view(group: Group, members: Vec<(String, String)>) -> GroupView {
    let members: Vec<String> = members.into_iter().map(|(_, subject)| subject).collect();
    GroupView {
        group,
        member_count: members.len(),
        members: Some(members),
    }
}
