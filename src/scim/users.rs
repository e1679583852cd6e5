//! `/Users`: the identity provider's view of the tenant's provisioned users.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use super::patch::PatchRequest;
use super::resource::Base;
use super::{ListQuery, Provisioner, ScimError, created, parse_body, scim_json};
use crate::admin::Edit;
use crate::api::query::ApiQuery;
use crate::state::AppState;
use crate::store::ScimUser;

#[utoipa::path(
    get,
    path = "/scim/v2/{tenant}/Users",
    operation_id = "scim_users_list",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id."), ListQuery),
    responses(
        (status = 200, description = "The tenant's users, filtered and paged.", body = crate::api::openapi::ScimListResponse, content_type = "application/scim+json"),
        (status = 400, response = crate::api::openapi::ScimErrorResponse),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    who: Provisioner,
    ApiQuery(query): ApiQuery<ListQuery>,
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

#[utoipa::path(
    get,
    path = "/scim/v2/{tenant}/Users/{id}",
    operation_id = "scim_users_get",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The resource's id."), ListQuery),
    responses(
        (status = 200, description = "The user.", body = crate::api::openapi::ScimResource, content_type = "application/scim+json"),
        (status = 400, response = crate::api::openapi::ScimErrorResponse),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
        (status = 404, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
pub(super) async fn get(
    State(state): State<AppState>,
    who: Provisioner,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ScimError> {
    let user = state
        .store
        .scim_user(&who.tenant, &id)
        .await?
        .ok_or_else(|| super::not_found("User", &id))?;
    let resource = render(&state, &who, &user).await?;
    Ok(scim_json(StatusCode::OK, &query.project(resource)))
}

#[utoipa::path(
    post,
    path = "/scim/v2/{tenant}/Users",
    operation_id = "scim_users_create",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body(content(
        (crate::api::openapi::ScimResource = "application/scim+json"),
        (crate::api::openapi::ScimResource = "application/json"),
    )),
    responses(
        (status = 201, description = "The user, created.", body = crate::api::openapi::ScimResource, content_type = "application/scim+json"),
        (status = 400, response = crate::api::openapi::ScimErrorResponse),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
        (status = 409, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
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

#[utoipa::path(
    put,
    path = "/scim/v2/{tenant}/Users/{id}",
    operation_id = "scim_users_replace",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The resource's id.")),
    request_body(content(
        (crate::api::openapi::ScimResource = "application/scim+json"),
        (crate::api::openapi::ScimResource = "application/json"),
    )),
    responses(
        (status = 200, description = "The user, replaced.", body = crate::api::openapi::ScimResource, content_type = "application/scim+json"),
        (status = 400, response = crate::api::openapi::ScimErrorResponse),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
        (status = 404, response = crate::api::openapi::ScimErrorResponse),
        (status = 409, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
pub(super) async fn replace(
    State(state): State<AppState>,
    who: Provisioner,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let resource: Value = parse_body(&body)?;
    save(&state, &who, &id, Edit::Replace(resource)).await
}

#[utoipa::path(
    patch,
    path = "/scim/v2/{tenant}/Users/{id}",
    operation_id = "scim_users_patch",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The resource's id.")),
    request_body(content(
        (crate::api::openapi::ScimPatch = "application/scim+json"),
        (crate::api::openapi::ScimPatch = "application/json"),
    )),
    responses(
        (status = 200, description = "The user, changed.", body = crate::api::openapi::ScimResource, content_type = "application/scim+json"),
        (status = 400, response = crate::api::openapi::ScimErrorResponse),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
        (status = 404, response = crate::api::openapi::ScimErrorResponse),
        (status = 409, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
pub(super) async fn patch(
    State(state): State<AppState>,
    who: Provisioner,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let request: PatchRequest = parse_body(&body)?;
    save(&state, &who, &id, Edit::Patch(request.operations)).await
}

#[utoipa::path(
    delete,
    path = "/scim/v2/{tenant}/Users/{id}",
    operation_id = "scim_users_delete",
    tag = "scim",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The resource's id.")),
    responses(
        (status = 204, description = "The user is deleted."),
        (status = 401, response = crate::api::openapi::ScimErrorResponse),
        (status = 404, response = crate::api::openapi::ScimErrorResponse),
    ),
    security(("scim_token" = []))
)]
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
