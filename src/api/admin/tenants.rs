//! `/admin/v1/tenants` and a tenant's model allow-list.

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use serde::Deserialize;

use crate::api::json::ApiJson;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{Tenant, TenantPatch, TenantStatus};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    id: String,
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    by: Actor,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    ids::tenant_id("id", &body.id)?;
    ids::text("name", &body.name, ids::MAX_TEXT)?;
    let tenant = state.admin.create_tenant(&by, &body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    include_deleted: bool,
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(state.store.tenants(query.include_deleted).await?))
}

pub async fn get(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    let tenant = state
        .store
        .tenant(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Tenant `{tenant}` not found.")))?;
    Ok(Json(tenant))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<TenantStatus>,
}

pub async fn update(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<Json<Tenant>, ApiError> {
    if let Some(name) = &body.name {
        ids::text("name", name, ids::MAX_TEXT)?;
    }
    if body.status == Some(TenantStatus::Deleted) {
        return Err(ApiError::invalid_request(
            "`status` may be `active` or `disabled`; delete a tenant with DELETE.",
        ));
    }
    let patch = TenantPatch {
        name: body.name,
        status: body.status,
    };
    Ok(Json(state.admin.update_tenant(&by, &tenant, &patch).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    Ok(Json(state.admin.delete_tenant(&by, &tenant).await?))
}

/// `PUT /tenants/{tenant}/models`: `["model", …]`, or `null` for every configured model.
pub async fn set_models(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(models): ApiJson<Option<Vec<String>>>,
) -> Result<Json<Option<Vec<String>>>, ApiError> {
    if let Some(models) = &models {
        for (i, model) in models.iter().enumerate() {
            ids::text(&format!("[{i}]"), model, ids::MAX_TEXT)?;
        }
    }
    let tenant = state
        .admin
        .set_allowed_models(&by, &tenant, models.as_deref())
        .await?;
    Ok(Json(tenant.allowed_models))
}

pub async fn models(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Option<Vec<String>>>, ApiError> {
    Ok(Json(state.store.live_tenant(&tenant).await?.allowed_models))
}
