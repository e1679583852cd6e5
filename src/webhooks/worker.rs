//! The delivery worker, one per replica: claims due deliveries from the outbox, sends each
//! signed, records every attempt, and schedules the next one after a failure.
//!
//! Nothing is held in memory that a crash could lose: a delivery is a row until an attempt
//! succeeds or it is given up, and a claim is a lease. A replica killed mid-attempt leaves
//! rows claimed until their lease ends; then any replica (or this one, restarted) sends them
//! again, under the same `webhook-id`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::destination::{self, PublicOnly};
use super::signature;
use crate::clock::Timestamp;
use crate::config::WebhooksConfig;
use crate::store::{Attempt, DueDelivery, Store};

/// Starts the worker.
pub struct DeliveryWorker {
    store: Store,
    config: WebhooksConfig,
    client: reqwest::Client,
}

/// The running worker; it stops when the gateway's stop signal turns true.
pub struct WorkerHandle {
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Waits for the attempts in flight to be recorded. Rows not claimed yet stay in the
    /// outbox for the next start (or another replica).
    pub async fn finished(self) {
        let _ = self.task.await;
    }
}

impl DeliveryWorker {
    pub fn start(
        store: Store,
        config: WebhooksConfig,
        stop: watch::Receiver<bool>,
    ) -> Result<WorkerHandle, reqwest::Error> {
        let mut client = reqwest::Client::builder()
            // A redirect could lead anywhere, a private address included: not followed, and
            // not a success (Standard Webhooks counts only 2xx).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .user_agent(concat!("tollgate-webhooks/", env!("CARGO_PKG_VERSION")));
        if !config.allow_private_destinations {
            client = client.dns_resolver(Arc::new(PublicOnly));
        }
        let worker = Arc::new(Self {
            store,
            config,
            client: client.build()?,
        });
        Ok(WorkerHandle {
            task: tokio::spawn(worker.run(stop)),
        })
    }

    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            // Drain what is due before sleeping again, claiming no more than can be sent at
            // once: a claimed row waits for no one, and a stop waits only for what is in flight.
            while self.round().await == self.config.concurrency && !*stop.borrow() {}
            match self.store.pending_webhook_deliveries().await {
                Ok(pending) => metrics::gauge!("tollgate_webhook_pending").set(pending as f64),
                Err(error) => tracing::warn!(%error, "cannot count pending webhook deliveries"),
            }
        }
    }

    /// Claims as many deliveries as may be in flight at once and sends them; returns how many
    /// were claimed.
    async fn round(self: &Arc<Self>) -> usize {
        let now = Timestamp::now();
        // Long enough for an attempt to end (it times out) and be recorded.
        let lease = Timestamp(now.0 + 2 * millis(self.config.timeout) + 5_000);
        let limit = i64::try_from(self.config.concurrency).unwrap_or(i64::MAX);
        let due = match self.store.claim_webhook_deliveries(now, lease, limit).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot claim webhook deliveries; retrying on the next tick");
                return 0;
            }
        };
        let claimed = due.len();
        futures_util::stream::iter(due)
            .for_each_concurrent(self.config.concurrency, |delivery| async move {
                self.deliver(delivery).await;
            })
            .await;
        claimed
    }

    async fn deliver(&self, delivery: DueDelivery) {
        let attempt = delivery.attempts + 1;
        let result = self.attempt(&delivery).await;
        let now = Timestamp::now();
        let recorded = match &result {
            Ok(status) => {
                tracing::info!(delivery = %delivery.id, endpoint = %delivery.endpoint_id,
                    attempt, status, "webhook delivered");
                metrics::counter!("tollgate_webhook_deliveries_total", "result" => "delivered")
                    .increment(1);
                Attempt::Delivered { status: *status }
            }
            Err(error) => {
                let retry_at = self.retry_at(&delivery, now, error.permanent);
                match retry_at {
                    Some(at) => {
                        tracing::warn!(delivery = %delivery.id, endpoint = %delivery.endpoint_id,
                            attempt, error = %error.message, next_attempt = %at.to_rfc3339(),
                            "webhook delivery failed; will retry");
                        metrics::counter!("tollgate_webhook_deliveries_total", "result" => "failed")
                            .increment(1);
                    }
                    None => {
                        tracing::error!(delivery = %delivery.id, endpoint = %delivery.endpoint_id,
                            attempt, error = %error.message, "webhook delivery given up");
                        metrics::counter!("tollgate_webhook_deliveries_total", "result" => "gave_up")
                            .increment(1);
                    }
                }
                Attempt::Failed {
                    status: error.status,
                    error: &error.message,
                    retry_at,
                }
            }
        };
        if let Err(error) = self
            .store
            .record_webhook_attempt(&delivery.id, recorded, now)
            .await
        {
            // The lease runs out and the delivery is sent again: a duplicate (which the
            // receiver drops by its id), never a loss.
            tracing::warn!(delivery = %delivery.id, %error, "cannot record a webhook attempt");
        }
    }

    /// One attempt: the receiver's 2xx status, or why the attempt failed.
    async fn attempt(&self, delivery: &DueDelivery) -> Result<i32, Failure> {
        let target = match self.store.webhook_target(&delivery.endpoint_id).await {
            Ok(Some(target)) if target.deleted_at.is_none() => target,
            Ok(_) => return Err(Failure::permanent("endpoint removed")),
            Err(error) => return Err(Failure::retry(None, format!("database: {error}"))),
        };
        // The resolver refuses names that resolve to private addresses; an address written
        // in the URL itself is checked here.
        if let Err(error) = destination::check(&target.url, self.config.allow_private_destinations)
        {
            return Err(Failure::permanent(error.to_string()));
        }
        let timestamp = Timestamp::now().0 / 1000;
        let signed = signature::sign(&target.secret, &delivery.id, timestamp, &delivery.payload);
        let sent = self
            .client
            .post(&target.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed)
            .body(delivery.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                Ok(i32::from(response.status().as_u16()))
            }
            Ok(response) => {
                let status = response.status();
                Err(Failure::retry(
                    Some(i32::from(status.as_u16())),
                    format!("the receiver answered {status}"),
                ))
            }
            // Without the URL: its query string may hold the receiver's own token.
            Err(error) => Err(Failure::retry(None, describe(&error.without_url()))),
        }
    }

    /// When to try again after a failed attempt; `None` to give up. Waits double from the
    /// initial backoff up to the maximum; the last attempt is made when `give_up_after` ends.
    fn retry_at(
        &self,
        delivery: &DueDelivery,
        now: Timestamp,
        permanent: bool,
    ) -> Option<Timestamp> {
        let deadline = delivery.created_at.0 + millis(self.config.give_up_after);
        if permanent || now.0 >= deadline {
            return None;
        }
        let exponent = u32::try_from(delivery.attempts).unwrap_or(0).min(30);
        let wait = self
            .config
            .retry_initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.config.retry_max_backoff);
        Some(Timestamp((now.0 + millis(wait)).min(deadline)))
    }
}

/// Why an attempt failed, and whether trying again could help.
struct Failure {
    /// The receiver's HTTP status, when it answered.
    status: Option<i32>,
    message: String,
    permanent: bool,
}

impl Failure {
    fn retry(status: Option<i32>, message: String) -> Self {
        Self {
            status,
            message,
            permanent: false,
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self {
            status: None,
            message: message.into(),
            permanent: true,
        }
    }
}

/// An error and its causes on one line ("error sending request: connection refused").
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
