//! A tenant's webhook endpoints and their delivery logs.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::admin::WebhookRequest;
use crate::api::json::ApiJson;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::WebhookEndpoint;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    url: String,
    events: Vec<String>,
    thresholds: Option<Vec<i32>>,
}

/// The answer to a create: the one time the secret is shown.
#[derive(Serialize)]
pub struct CreatedWebhook {
    secret: String,
    #[serde(flatten)]
    endpoint: WebhookEndpoint,
}

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

pub async fn list(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.store.live_tenant(&tenant).await?;
    let webhooks = state.store.webhook_endpoints(&tenant).await?;
    Ok(Json(json!({ "webhooks": webhooks })))
}

#[derive(Deserialize)]
pub struct WebhookPath {
    tenant: String,
    id: String,
}

pub async fn get(
    State(state): State<AppState>,
    Path(path): Path<WebhookPath>,
) -> Result<Json<WebhookEndpoint>, ApiError> {
    Ok(Json(endpoint(&state, &path).await?))
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    limit: Option<i64>,
}

/// The delivery log, newest first: each event, its status, attempts and last error.
pub async fn deliveries(
    State(state): State<AppState>,
    Path(path): Path<WebhookPath>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query
        .map_err(|rejection| ApiError::invalid_request(format!("Invalid query: {rejection}")))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "`limit` must be from 1 to 1000",
        ));
    }
    let endpoint = endpoint(&state, &path).await?;
    let deliveries: Vec<Value> = state
        .store
        .webhook_deliveries(&endpoint.id, limit)
        .await?
        .into_iter()
        .map(|delivery| {
            let mut row = serde_json::to_value(&delivery).unwrap_or(Value::Null);
            row["event"] = delivery.event();
            row
        })
        .collect();
    Ok(Json(json!({ "deliveries": deliveries })))
}

async fn endpoint(state: &AppState, path: &WebhookPath) -> Result<WebhookEndpoint, ApiError> {
    state
        .store
        .webhook_endpoint(&path.tenant, &path.id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook endpoint not found."))
}
