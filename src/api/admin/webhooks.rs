//! A tenant's webhook endpoints and their delivery logs.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::WebhookRequest;
use crate::api::json::ApiJson;
use crate::api::query::ApiQuery;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{WebhookDelivery, WebhookEndpoint};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// Where deliveries go: a public http(s) URL (unless `webhooks.allow_private_destinations`).
    url: String,
    /// `quota.threshold`, `user.created`, `user.suspended`, `user.reactivated`,
    /// `user.deleted`, `key.created`, `key.revoked`.
    events: Vec<String>,
    /// Percentages of a limit that fire `quota.threshold`; default `[80, 100]`.
    thresholds: Option<Vec<i32>>,
}

/// The answer to a create: the one time the secret is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    /// The signing secret (`whsec_…`), shown this once.
    secret: String,
    #[serde(flatten)]
    endpoint: WebhookEndpoint,
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/webhooks",
    operation_id = "webhooks_create",
    tag = "webhooks",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body = NewWebhookBody,
    responses(
        (status = 201, description = "The endpoint, with its secret shown this once.", body = CreatedWebhook),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<NewWebhookBody>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let request = WebhookRequest {
        url: body.url,
        events: body.events,
        thresholds: body.thresholds,
    };
    let allow_private = state.running().config.webhooks.allow_private_destinations;
    let new = state
        .admin
        .create_webhook(&by, &tenant, request, allow_private)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            secret: new.secret,
            endpoint: new.endpoint,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/webhooks",
    operation_id = "webhooks_list",
    tag = "webhooks",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The tenant's endpoints.", body = Webhooks),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Webhooks>, ApiError> {
    state.store.live_tenant(&tenant).await?;
    let webhooks = state.store.webhook_endpoints(&tenant).await?;
    Ok(Json(Webhooks { webhooks }))
}

/// A tenant's webhook endpoints.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Webhooks {
    webhooks: Vec<WebhookEndpoint>,
}

#[derive(Deserialize)]
pub struct WebhookPath {
    tenant: String,
    id: String,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/webhooks/{id}",
    operation_id = "webhooks_get",
    tag = "webhooks",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The endpoint.", body = WebhookEndpoint),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Path(path): Path<WebhookPath>,
) -> Result<Json<WebhookEndpoint>, ApiError> {
    Ok(Json(endpoint(&state, &path).await?))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/webhooks/{id}",
    operation_id = "webhooks_delete",
    tag = "webhooks",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The endpoint, removed.", body = WebhookEndpoint),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<WebhookPath>,
) -> Result<Json<WebhookEndpoint>, ApiError> {
    Ok(Json(
        state
            .admin
            .remove_webhook(&by, &path.tenant, &path.id)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// An endpoint's delivery log, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Deliveries {
    deliveries: Vec<Delivery>,
}

/// One delivery: its status and attempts, and the event it carries.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Delivery {
    #[serde(flatten)]
    delivery: WebhookDelivery,
    /// The event body that was (or is to be) sent.
    event: Value,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/webhooks/{id}/deliveries",
    operation_id = "webhooks_deliveries",
    tag = "webhooks",
    params(("tenant" = String, Path, description = "The tenant's id."), ("id" = String, Path, description = "The endpoint's id."), DeliveriesQuery),
    responses(
        (status = 200, description = "The delivery log, newest first.", body = Deliveries),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
/// The delivery log, newest first: each event, its status, attempts and last error.
pub async fn deliveries(
    State(state): State<AppState>,
    Path(path): Path<WebhookPath>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Deliveries>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "`limit` must be from 1 to 1000",
        ));
    }
    let endpoint = endpoint(&state, &path).await?;
    let deliveries = state
        .store
        .webhook_deliveries(&endpoint.id, limit)
        .await?
        .into_iter()
        .map(|delivery| Delivery {
            event: delivery.event(),
            delivery,
        })
        .collect();
    Ok(Json(Deliveries { deliveries }))
}

async fn endpoint(state: &AppState, path: &WebhookPath) -> Result<WebhookEndpoint, ApiError> {
    state
        .store
        .webhook_endpoint(&path.tenant, &path.id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook endpoint not found."))
}
