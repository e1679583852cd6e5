//! Quota routes: the tenant-wide limit, one user's, and the default for users without their own;
//! each shows what is used and reserved in the current periods and when they reset.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::json::ApiJson;
use crate::audit::Actor;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::ids;
use crate::quota::{LimitKind, Scope};
use crate::state::AppState;
use crate::store::{Limits, QuotaScope};

/// Largest cost limit accepted, in USD (beyond it f64 loses micro-dollar precision).
const MAX_COST_USD: f64 = 1e9;

/// A quota as the API takes it: money in dollars, `null` or absent for no limit.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaBody {
    #[serde(default)]
    tokens_per_day: Option<i64>,
    #[serde(default)]
    tokens_per_month: Option<i64>,
    #[serde(default)]
    cost_usd_per_month: Option<f64>,
    #[serde(default)]
    requests_per_minute: Option<i64>,
    #[serde(default)]
    tokens_per_minute: Option<i64>,
}

impl QuotaBody {
    fn into_limits(self) -> Result<Limits, ApiError> {
        for (name, value) in [
            ("tokens_per_day", self.tokens_per_day),
            ("tokens_per_month", self.tokens_per_month),
            ("requests_per_minute", self.requests_per_minute),
            ("tokens_per_minute", self.tokens_per_minute),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(ApiError::invalid_request(format!(
                    "`{name}` must be 0 or more"
                )));
            }
        }
        let cost = match self.cost_usd_per_month {
            None => None,
            Some(usd) if usd.is_finite() && (0.0..=MAX_COST_USD).contains(&usd) => {
                Some((usd * 1e6).round() as i64)
            }
            Some(_) => {
                return Err(ApiError::invalid_request(format!(
                    "`cost_usd_per_month` must be between 0 and {MAX_COST_USD}"
                )));
            }
        };
        Ok(Limits {
            tokens_per_day: self.tokens_per_day,
            tokens_per_month: self.tokens_per_month,
            cost_microusd_per_month: cost,
            requests_per_minute: self.requests_per_minute,
            tokens_per_minute: self.tokens_per_minute,
        })
    }
}

/// Limits as the API shows them: money in dollars.
#[derive(Serialize)]
struct LimitsView {
    tokens_per_day: Option<i64>,
    tokens_per_month: Option<i64>,
    cost_usd_per_month: Option<f64>,
    requests_per_minute: Option<i64>,
    tokens_per_minute: Option<i64>,
}

impl From<&Limits> for LimitsView {
    fn from(limits: &Limits) -> Self {
        Self {
            tokens_per_day: limits.tokens_per_day,
            tokens_per_month: limits.tokens_per_month,
            cost_usd_per_month: limits.cost_microusd_per_month.map(dollars),
            requests_per_minute: limits.requests_per_minute,
            tokens_per_minute: limits.tokens_per_minute,
        }
    }
}

fn dollars(micro: i64) -> f64 {
    micro as f64 / 1e6
}

/// Each limit with what the scope used and holds reserved in its current period.
async fn usage(state: &AppState, scope: &Scope, limits: &Limits) -> Vec<Value> {
    let now = Timestamp::now();
    let mut rows = Vec::with_capacity(LimitKind::ALL.len());
    for kind in LimitKind::ALL {
        let window = kind.window();
        let counter = state.quotas.snapshot(scope, window).await;
        let (limit, used, reserved) = if kind == LimitKind::CostPerMonth {
            (
                json!(kind.limit(limits).map(dollars)),
                json!(dollars(kind.of(&counter.used))),
                json!(dollars(kind.of(&counter.reserved))),
            )
        } else {
            (
                json!(kind.limit(limits)),
                json!(kind.of(&counter.used)),
                json!(kind.of(&counter.reserved)),
            )
        };
        rows.push(json!({
            "limit": kind.name(),
            "max": limit,
            "used": used,
            "reserved": reserved,
            "period_start": window.start(now),
            "resets_at": window.end(now),
        }));
    }
    rows
}

#[derive(Deserialize)]
pub struct UserPath {
    tenant: String,
    subject: String,
}

pub async fn put_tenant(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<Json<Value>, ApiError> {
    let limits = body.into_limits()?;
    state.admin.set_tenant_quota(&by, &tenant, &limits).await?;
    get_tenant(State(state), Path(tenant)).await
}

/// The stored limits of a tenant-wide scope (none set: no limits).
async fn tenant_wide_limits(
    state: &AppState,
    tenant: &str,
    scope: QuotaScope,
) -> Result<Limits, ApiError> {
    state.store.live_tenant(tenant).await?;
    Ok(state
        .store
        .quota(tenant, scope, "")
        .await?
        .unwrap_or_default())
}

pub async fn get_tenant(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let limits = tenant_wide_limits(&state, &tenant, QuotaScope::Tenant).await?;
    let scope = Scope {
        tenant: tenant.as_str().into(),
        subject: None,
    };
    Ok(Json(json!({
        "tenant": tenant,
        "scope": "tenant",
        "limits": LimitsView::from(&limits),
        "usage": usage(&state, &scope, &limits).await,
    })))
}

pub async fn put_user(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<UserPath>,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<Json<Value>, ApiError> {
    ids::subject("subject", &path.subject)?;
    let limits = body.into_limits()?;
    state
        .admin
        .set_user_quota(&by, &path.tenant, &path.subject, &limits)
        .await?;
    get_user(State(state), Path(path)).await
}

pub async fn get_user(
    State(state): State<AppState>,
    Path(path): Path<UserPath>,
) -> Result<Json<Value>, ApiError> {
    state.store.live_tenant(&path.tenant).await?;
    state
        .store
        .user(&path.tenant, &path.subject)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found."))?;
    let tenant: std::sync::Arc<str> = path.tenant.as_str().into();
    let subject: std::sync::Arc<str> = path.subject.as_str().into();
    let applicable = state
        .quotas
        .applicable(&tenant, &subject)
        .await
        .map_err(|e| ApiError::from(crate::store::StoreError::Invalid(e.to_string())))?;
    let scope = Scope {
        tenant,
        subject: Some(subject),
    };
    Ok(Json(json!({
        "tenant": path.tenant,
        "subject": path.subject,
        "scope": "user",
        "source": if applicable.user_has_own { "user" } else { "default_user" },
        "limits": LimitsView::from(&applicable.user),
        "usage": usage(&state, &scope, &applicable.user).await,
    })))
}

pub async fn put_default(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<Json<Value>, ApiError> {
    let limits = body.into_limits()?;
    state
        .admin
        .set_default_user_quota(&by, &tenant, &limits)
        .await?;
    get_default(State(state), Path(tenant)).await
}

pub async fn get_default(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let limits = tenant_wide_limits(&state, &tenant, QuotaScope::DefaultUser).await?;
    let now = Timestamp::now();
    let windows: Vec<Value> = LimitKind::ALL
        .iter()
        .map(|&kind| {
            json!({
                "limit": kind.name(),
                "period_start": kind.window().start(now),
                "resets_at": kind.window().end(now),
            })
        })
        .collect();
    Ok(Json(json!({
        "tenant": tenant,
        "scope": "default_user",
        "limits": LimitsView::from(&limits),
        "periods": windows,
    })))
}
