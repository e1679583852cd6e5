//! `/admin/v1/tenants` and a tenant's model allow-list.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;

use crate::api::json::ApiJson;
use crate::api::query::ApiQuery;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{Tenant, TenantPatch, TenantStatus};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// 1 to 64 ASCII letters, digits, `.`, `_` and `-`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    id: String,
    #[schema(min_length = 1, max_length = 1024)]
    name: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants",
    operation_id = "tenants_create",
    tag = "tenants",
    request_body = NewTenant,
    responses(
        (status = 201, description = "The tenant, created.", body = Tenant),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 409, response = crate::api::openapi::Conflict),
    ),
    security(("platform_token" = []))
)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// List deleted tenants too.
    #[serde(default)]
    include_deleted: bool,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants",
    operation_id = "tenants_list",
    tag = "tenants",
    params(ListQuery),
    responses(
        (status = 200, description = "Every tenant.", body = Vec<Tenant>),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
    ),
    security(("platform_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(state.store.tenants(query.include_deleted).await?))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}",
    operation_id = "tenants_get",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The tenant.", body = Tenant),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    /// `active` or `disabled`; delete a tenant with DELETE.
    #[serde(default)]
    status: Option<TenantStatus>,
}

#[utoipa::path(
    patch,
    path = "/admin/v1/tenants/{tenant}",
    operation_id = "tenants_update",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The tenant, changed.", body = Tenant),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []))
)]
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

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}",
    operation_id = "tenants_delete",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The tenant, now `deleted` (its usage history stays).", body = Tenant),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    Ok(Json(state.admin.delete_tenant(&by, &tenant).await?))
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/models",
    operation_id = "tenants_set_models",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body = Option<Vec<String>>,
    responses(
        (status = 200, description = "The allow-list: the models the tenant may use, or `null` for every configured model.", body = Option<Vec<String>>),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []))
)]
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

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/models",
    operation_id = "tenants_models",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The allow-list, or `null` for every configured model.", body = Option<Vec<String>>),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn models(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Option<Vec<String>>>, ApiError> {
    Ok(Json(state.store.live_tenant(&tenant).await?.allowed_models))
}
