//! Webhook endpoints, the delivery outbox, and the marks of quota thresholds already fired.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::tx::on_tx;
use super::{Store, StoreError, Tx, from_json_text, json_text, on_pool};
use crate::clock::Timestamp;
use crate::metering::Tally;
use crate::store::Limits;
use crate::webhooks::thresholds::{self, Crossing};
use crate::webhooks::{QUOTA_THRESHOLD, body};

/// A registered endpoint, as the admin API shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub thresholds: Vec<i32>,
    pub created_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    tenant_id: String,
    url: String,
    events: String,
    thresholds: String,
    created_at: Timestamp,
}

impl From<EndpointRow> for WebhookEndpoint {
    fn from(row: EndpointRow) -> Self {
        Self {
            id: row.id,
            tenant_id: row.tenant_id,
            url: row.url,
            events: from_json_text(&row.events),
            thresholds: from_json_text(&row.thresholds),
            created_at: row.created_at,
        }
    }
}

const ENDPOINT_COLUMNS: &str = "id, tenant_id, url, events, thresholds, created_at";

/// A new endpoint, secret included: stored, never read back through the admin API.
pub struct NewWebhookEndpoint<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub url: &'a str,
    pub events: &'a [String],
    pub thresholds: &'a [i32],
    pub secret: &'a str,
}

/// One event for one endpoint, as its delivery log shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WebhookDelivery {
    /// The `webhook-id` every attempt carries.
    pub id: String,
    pub event_type: String,
    /// `pending` (not yet delivered; retried), `delivered`, or `failed` (given up).
    pub status: String,
    pub attempts: i32,
    pub created_at: Timestamp,
    pub next_attempt_at: Option<Timestamp>,
    /// The receiver's HTTP status at the last attempt, if it answered.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    #[serde(skip)]
    payload: String,
}

impl WebhookDelivery {
    /// The event that was (or is to be) sent.
    pub fn event(&self) -> Value {
        serde_json::from_str(&self.payload).unwrap_or(Value::Null)
    }
}

/// A delivery a worker has claimed: what it needs to send one attempt.
#[derive(sqlx::FromRow)]
pub struct DueDelivery {
    pub id: String,
    pub endpoint_id: String,
    pub payload: String,
    pub attempts: i32,
    pub created_at: Timestamp,
}

/// Where a claimed delivery goes, and the secret that signs it.
#[derive(sqlx::FromRow)]
pub struct DeliveryTarget {
    pub url: String,
    pub secret: String,
    pub deleted_at: Option<Timestamp>,
}

/// How an attempt went.
pub enum Attempt<'a> {
    Delivered {
        status: i32,
    },
    Failed {
        status: Option<i32>,
        error: &'a str,
        /// When to try again; `None` gives the delivery up.
        retry_at: Option<Timestamp>,
    },
}

/// What the usage settlement touched: a user's usage in the hour of an event.
pub type Touched<'a> = BTreeSet<(&'a str, &'a str, Timestamp)>;

impl Store {
    /// An endpoint of the tenant that has not been removed.
    pub async fn webhook_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        let row: Option<EndpointRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(Into::into))
    }

    /// The tenant's endpoints, oldest first.
    pub async fn webhook_endpoints(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
        );
        let rows: Vec<EndpointRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(tenant_id)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// An endpoint's delivery log, newest first.
    pub async fn webhook_deliveries(
        &self,
        endpoint_id: &str,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let rows = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, event_type, status, attempts, created_at, \
             CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, \
             last_status, last_error, delivered_at, payload FROM webhook_deliveries \
             WHERE endpoint_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        )
        .bind(endpoint_id)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(rows)
    }

    /// Takes up to `limit` due deliveries until `lease_until`; another worker (this replica's
    /// or another's) skips them meanwhile, and takes them over when a lease runs out unused —
    /// a worker that crashed mid-attempt delays a delivery, never loses it.
    pub async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        // PostgreSQL: rows another replica is claiming are skipped rather than waited for.
        // SQLite has one writer at a time, which is the same guarantee.
        const DUE: &str = "SELECT id FROM webhook_deliveries WHERE status = 'pending' \
             AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
             ORDER BY next_attempt_at LIMIT $3";
        let claim = |lock: &str| {
            format!(
                "UPDATE webhook_deliveries SET claimed_until = $2 WHERE id IN ({DUE}{lock}) \
                 RETURNING id, endpoint_id, payload, attempts, created_at"
            )
        };
        let rows = match &*self.pool {
            super::Pool::Sqlite(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(claim("")))
                    .bind(now)
                    .bind(lease_until)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            super::Pool::Postgres(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(claim(" FOR UPDATE SKIP LOCKED")))
                    .bind(now)
                    .bind(lease_until)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// The endpoint a claimed delivery goes to, removed or not.
    pub async fn webhook_target(
        &self,
        endpoint_id: &str,
    ) -> Result<Option<DeliveryTarget>, StoreError> {
        let target = on_pool!(self, pool => sqlx::query_as(
            "SELECT url, secret, deleted_at FROM webhook_endpoints WHERE id = $1"
        )
        .bind(endpoint_id)
        .fetch_optional(pool)
        .await)?;
        Ok(target)
    }

    /// Records an attempt and releases the claim.
    pub async fn record_webhook_attempt(
        &self,
        id: &str,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (status, last_status, last_error, next, delivered_at) = match attempt {
            Attempt::Delivered { status } => ("delivered", Some(status), None, None, Some(now)),
            Attempt::Failed {
                status,
                error,
                retry_at,
            } => (
                if retry_at.is_some() {
                    "pending"
                } else {
                    "failed"
                },
                status,
                Some(error),
                retry_at,
                None,
            ),
        };
        on_pool!(self, pool => sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, claimed_until = NULL, \
             status = $2, last_status = $3, last_error = $4, \
             next_attempt_at = COALESCE($5, next_attempt_at), delivered_at = $6 WHERE id = $1"
        )
        .bind(id)
        .bind(status)
        .bind(last_status)
        .bind(last_error)
        .bind(next)
        .bind(delivered_at)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Deliveries not yet delivered nor given up, across every tenant.
    pub async fn pending_webhook_deliveries(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'"
        )
        .fetch_one(pool)
        .await)?;
        Ok(count)
    }
}

/// An endpoint as the outbox sees it: what it subscribed to.
#[derive(sqlx::FromRow)]
struct Subscriber {
    id: String,
    tenant_id: String,
    events: String,
    thresholds: String,
}

impl Subscriber {
    fn wants(&self, event_type: &str) -> bool {
        from_json_text::<Vec<String>>(&self.events)
            .iter()
            .any(|wanted| wanted == event_type)
    }
}

// === impl Tx ===

impl Tx {
    pub async fn create_webhook_endpoint(
        &mut self,
        new: &NewWebhookEndpoint<'_>,
        now: Timestamp,
    ) -> Result<WebhookEndpoint, StoreError> {
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, events, thresholds, secret, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(new.id)
        .bind(new.tenant_id)
        .bind(new.url)
        .bind(json_text(new.events))
        .bind(json_text(new.thresholds))
        .bind(new.secret)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))
        .map_err(StoreError::conflict_on_unique("webhook"))?;
        Ok(WebhookEndpoint {
            id: new.id.to_owned(),
            tenant_id: new.tenant_id.to_owned(),
            url: new.url.to_owned(),
            events: new.events.to_vec(),
            thresholds: new.thresholds.to_vec(),
            created_at: now,
        })
    }

    /// Removes an endpoint; what it had not been sent yet is given up with it. `None` when
    /// there was no such endpoint (or it was already removed).
    pub async fn remove_webhook_endpoint(
        &mut self,
        tenant_id: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let sql = format!(
            "UPDATE webhook_endpoints SET deleted_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING {ENDPOINT_COLUMNS}"
        );
        let row: Option<EndpointRow> = on_tx!(self, conn => sqlx::query_as(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .fetch_optional(conn)
        .await)?;
        if row.is_some() {
            on_tx!(self, conn => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'failed', claimed_until = NULL, \
                 last_error = 'endpoint removed' WHERE endpoint_id = $1 AND status = 'pending'"
            )
            .bind(id)
            .execute(conn)
            .await
            .map(|_| ()))?;
        }
        Ok(row.map(Into::into))
    }

    /// Puts one event in the outbox of every endpoint of the tenant that subscribed to it.
    pub async fn enqueue_webhook_event(
        &mut self,
        tenant_id: &str,
        event_type: &str,
        data: Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let subscribers = self.subscribers(Some(tenant_id)).await?;
        let endpoints: Vec<&str> = subscribers
            .iter()
            .filter(|endpoint| endpoint.wants(event_type))
            .map(|endpoint| endpoint.id.as_str())
            .collect();
        if endpoints.is_empty() {
            return Ok(());
        }
        let payload = body(event_type, now, data);
        for endpoint in endpoints {
            self.insert_delivery(endpoint, tenant_id, event_type, &payload, now)
                .await?;
        }
        Ok(())
    }

    async fn subscribers(
        &mut self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let rows = on_tx!(self, conn => sqlx::query_as(
            "SELECT id, tenant_id, events, thresholds FROM webhook_endpoints \
             WHERE deleted_at IS NULL AND ($1 IS NULL OR tenant_id = $1) ORDER BY id"
        )
        .bind(tenant_id)
        .fetch_all(conn)
        .await)?;
        Ok(rows)
    }

    async fn insert_delivery(
        &mut self,
        endpoint_id: &str,
        tenant_id: &str,
        event_type: &str,
        payload: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, event_type, payload, \
             created_at, status, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $6)"
        )
        .bind(&id)
        .bind(endpoint_id)
        .bind(tenant_id)
        .bind(event_type)
        .bind(payload)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The `quota.threshold` events a usage settlement causes, written in its transaction
    /// (after its rollup rows, which they read): for each user and tenant it touched, each
    /// watched limit, each threshold some endpoint of the tenant asked for and the usage of
    /// the period has reached — unless that threshold already fired this period.
    pub async fn fire_quota_thresholds(
        &mut self,
        touched: &Touched<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let subscribers: Vec<Subscriber> = self
            .subscribers(None)
            .await?
            .into_iter()
            .filter(|endpoint| endpoint.wants(QUOTA_THRESHOLD))
            .collect();
        if subscribers.is_empty() {
            return Ok(());
        }
        let mut by_tenant: BTreeMap<&str, Vec<(&str, Vec<i32>)>> = BTreeMap::new();
        for endpoint in &subscribers {
            by_tenant
                .entry(endpoint.tenant_id.as_str())
                .or_default()
                .push((endpoint.id.as_str(), from_json_text(&endpoint.thresholds)));
        }
        for (tenant, endpoints) in &by_tenant {
            let users: BTreeSet<(&str, Timestamp)> = touched
                .iter()
                .filter(|(t, _, _)| t == tenant)
                .map(|(_, subject, hour)| (*subject, *hour))
                .collect();
            if users.is_empty() {
                continue;
            }
            let wanted: BTreeSet<i32> = endpoints
                .iter()
                .flat_map(|(_, thresholds)| thresholds.iter().copied())
                .collect();
            let wanted: Vec<i32> = wanted.into_iter().collect();
            let limits = self.tenant_limits(tenant).await?;
            // (subject or None for the tenant, limit, period start): checked once each.
            let mut checks: BTreeSet<(Option<&str>, usize, Timestamp)> = BTreeSet::new();
            for (subject, hour) in &users {
                for (index, kind) in thresholds::WATCHED.iter().enumerate() {
                    let start = kind.window().start(*hour);
                    checks.insert((Some(subject), index, start));
                    checks.insert((None, index, start));
                }
            }
            for (subject, index, start) in checks {
                let kind = thresholds::WATCHED[index];
                let scope_limits = match subject {
                    Some(subject) => limits.user(subject),
                    None => limits.tenant,
                };
                let Some(limit) = kind.limit(&scope_limits) else {
                    continue;
                };
                let end = kind.window().end(start);
                let used = kind.of(&self.used(tenant, subject, start, end).await?.into());
                for threshold in thresholds::reached(limit, used, &wanted) {
                    let crossing = Crossing {
                        tenant,
                        subject,
                        kind,
                        threshold,
                        used,
                        limit,
                        period_start: start,
                    };
                    if !self.mark_fired(&crossing, now).await? {
                        continue;
                    }
                    let payload = body(QUOTA_THRESHOLD, now, crossing.data());
                    for (endpoint, thresholds) in endpoints {
                        if thresholds.contains(&threshold) {
                            self.insert_delivery(endpoint, tenant, QUOTA_THRESHOLD, &payload, now)
                                .await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Marks a threshold fired for its period; `false` when it already was — by this
    /// replica or another, whose transaction this one waits for on the primary key.
    async fn mark_fired(
        &mut self,
        crossing: &Crossing<'_>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let written = on_tx!(self, conn => sqlx::query(
            "INSERT INTO quota_thresholds_fired (tenant_id, scope, subject, limit_kind, \
             period_start, threshold, fired_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT DO NOTHING"
        )
        .bind(crossing.tenant)
        .bind(crossing.scope().as_str())
        .bind(crossing.subject.unwrap_or(""))
        .bind(crossing.kind.name())
        .bind(crossing.period_start)
        .bind(crossing.threshold)
        .bind(now)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(written == 1)
    }

    /// Usage in `[start, end)` from the rollup: one user's, or the whole tenant's.
    async fn used(
        &mut self,
        tenant: &str,
        subject: Option<&str>,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Tally, StoreError> {
        let tally = on_tx!(self, conn => sqlx::query_as(
            "SELECT COALESCE(CAST(SUM(requests) AS BIGINT), 0) AS requests, \
             COALESCE(CAST(SUM(prompt_tokens) AS BIGINT), 0) AS prompt_tokens, \
             COALESCE(CAST(SUM(completion_tokens) AS BIGINT), 0) AS completion_tokens, \
             COALESCE(CAST(SUM(cached_tokens) AS BIGINT), 0) AS cached_tokens, \
             COALESCE(CAST(SUM(total_tokens) AS BIGINT), 0) AS total_tokens, \
             COALESCE(CAST(SUM(cost_micro_usd) AS BIGINT), 0) AS cost_micro_usd \
             FROM usage_hourly WHERE tenant_id = $1 AND ($2 IS NULL OR subject = $2) \
             AND hour_start >= $3 AND hour_start < $4"
        )
        .bind(tenant)
        .bind(subject)
        .bind(start)
        .bind(end)
        .fetch_one(conn)
        .await)?;
        Ok(tally)
    }

    /// Every limit row of a tenant, read inside the settlement's transaction.
    async fn tenant_limits(&mut self, tenant: &str) -> Result<TenantLimits, StoreError> {
        let rows: Vec<LimitRow> = on_tx!(self, conn => sqlx::query_as(
            "SELECT scope, subject, tokens_per_day, tokens_per_month, cost_microusd_per_month, \
             requests_per_minute, tokens_per_minute FROM quotas WHERE tenant_id = $1"
        )
        .bind(tenant)
        .fetch_all(conn)
        .await)?;
        let mut limits = TenantLimits::default();
        for row in rows {
            match row.scope.as_str() {
                "tenant" => limits.tenant = row.limits,
                "default_user" => limits.default_user = row.limits,
                _ => {
                    limits.users.insert(row.subject, row.limits);
                }
            }
        }
        Ok(limits)
    }
}

#[derive(sqlx::FromRow)]
struct LimitRow {
    scope: String,
    subject: String,
    #[sqlx(flatten)]
    limits: Limits,
}

/// A tenant's limits as admission applies them: a user's own row, else the tenant's default.
#[derive(Default)]
struct TenantLimits {
    tenant: Limits,
    default_user: Limits,
    users: BTreeMap<String, Limits>,
}

impl TenantLimits {
    fn user(&self, subject: &str) -> Limits {
        self.users
            .get(subject)
            .copied()
            .unwrap_or(self.default_user)
    }
}
