//! A tenant's webhook endpoints: registered (the one time the signing secret is shown) and
//! removed.

use super::{Admin, AdminError};
use crate::audit::{Actor, Entry};
use crate::clock::Timestamp;
use crate::store::{NewWebhookEndpoint, WebhookEndpoint};
use crate::webhooks::{DEFAULT_THRESHOLDS, EVENT_TYPES, QUOTA_THRESHOLD, destination, signature};

/// Most endpoints a tenant may register: each event is written once per endpoint.
const MAX_ENDPOINTS: usize = 20;

/// What an administrator asks for.
pub struct WebhookRequest {
    pub url: String,
    pub events: Vec<String>,
    /// Percentages of each limit; `None` for the defaults (50, 80, 100).
    pub thresholds: Option<Vec<i32>>,
}

/// An endpoint just registered, with its secret (shown this once).
pub struct NewWebhook {
    pub secret: String,
    pub endpoint: WebhookEndpoint,
}

impl Admin {
    pub async fn create_webhook(
        &self,
        by: &Actor,
        tenant: &str,
        request: WebhookRequest,
        allow_private: bool,
    ) -> Result<NewWebhook, AdminError> {
        self.store.live_tenant(tenant).await?;
        let url = destination::check(&request.url, allow_private)
            .map_err(|error| AdminError::Webhook("url", error.to_string()))?;
        let events = events(request.events)?;
        let thresholds = thresholds(request.thresholds)?;
        if self.store.webhook_endpoints(tenant).await?.len() >= MAX_ENDPOINTS {
            return Err(AdminError::Webhook(
                "url",
                format!("a tenant may register at most {MAX_ENDPOINTS} webhook endpoints"),
            ));
        }
        let secret = signature::new_secret()?;
        let id = uuid::Uuid::now_v7().to_string();
        let mut write = self.begin(by).await?;
        let endpoint = write
            .tx
            .create_webhook_endpoint(
                &NewWebhookEndpoint {
                    id: &id,
                    tenant_id: tenant,
                    url: url.as_str(),
                    events: &events,
                    thresholds: &thresholds,
                    secret: &secret,
                },
                Timestamp::now(),
            )
            .await?;
        write
            .audit(Entry::new("webhook.created", Some(tenant), Some(&id)).after(&endpoint))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, webhook = %id, url = %endpoint.url, "webhook endpoint registered");
        Ok(NewWebhook { secret, endpoint })
    }

    /// Removes an endpoint; deliveries it had not received are given up.
    pub async fn remove_webhook(
        &self,
        by: &Actor,
        tenant: &str,
        id: &str,
    ) -> Result<WebhookEndpoint, AdminError> {
        let mut write = self.begin(by).await?;
        let endpoint = write
            .tx
            .remove_webhook_endpoint(tenant, id, Timestamp::now())
            .await?
            .ok_or(AdminError::WebhookNotFound)?;
        write
            .audit(Entry::new("webhook.deleted", Some(tenant), Some(id)).before(&endpoint))
            .await?;
        write.commit().await?;
        tracing::info!(tenant = %tenant, webhook = %id, "webhook endpoint removed");
        Ok(endpoint)
    }
}

/// Known event types, each once, in a stable order.
fn events(mut events: Vec<String>) -> Result<Vec<String>, AdminError> {
    if events.is_empty() {
        return Err(AdminError::Webhook(
            "events",
            format!("name at least one of: {}", EVENT_TYPES.join(", ")),
        ));
    }
    if let Some(unknown) = events
        .iter()
        .find(|event| !EVENT_TYPES.contains(&event.as_str()))
    {
        return Err(AdminError::Webhook(
            "events",
            format!(
                "unknown event `{unknown}`; known: {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    events.sort();
    events.dedup();
    Ok(events)
}

/// Percentages from 1 to 100, each once, ascending.
fn thresholds(thresholds: Option<Vec<i32>>) -> Result<Vec<i32>, AdminError> {
    let Some(mut thresholds) = thresholds else {
        return Ok(DEFAULT_THRESHOLDS.to_vec());
    };
    if thresholds.is_empty() || thresholds.len() > 10 {
        return Err(AdminError::Webhook(
            "thresholds",
            format!(
                "give 1 to 10 percentages (default {DEFAULT_THRESHOLDS:?}) for {QUOTA_THRESHOLD}"
            ),
        ));
    }
    if thresholds
        .iter()
        .any(|percent| !(1..=100).contains(percent))
    {
        return Err(AdminError::Webhook(
            "thresholds",
            "each threshold is a percentage from 1 to 100".to_owned(),
        ));
    }
    thresholds.sort_unstable();
    thresholds.dedup();
    Ok(thresholds)
}
