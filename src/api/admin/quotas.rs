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
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaBody {
    #[serde(default)]
    #[schema(minimum = 0)]
    tokens_per_day: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    tokens_per_month: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1e9)]
    cost_usd_per_month: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    requests_per_minute: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0)]
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

/// Limits as the API shows them: money in dollars, `null` for no limit.
#[derive(Serialize, utoipa::ToSchema)]
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

/// A scope's quota as the API shows it: the tenant-wide one, a user's, or the tenant's default
/// for users without their own.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QuotaView {
    tenant: String,
    /// A user's quota: whose.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    /// `tenant`, `user` or `default_user`.
    scope: &'static str,
    /// A user's quota: `user` (their own limits) or `default_user` (the tenant's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    limits: LimitsView,
    /// The tenant's and a user's: each limit with what is used in its current period.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Vec<LimitUsage>>,
    /// The default for users (nobody's usage): each limit's current period.
    #[serde(skip_serializing_if = "Option::is_none")]
    periods: Option<Vec<Period>>,
}

/// One limit in its current period: dollars for `cost_usd_per_month`, tokens or requests else.
#[derive(Serialize, utoipa::ToSchema)]
struct LimitUsage {
    limit: &'static str,
    /// `null`: no limit.
    #[schema(value_type = Option<f64>)]
    max: Value,
    #[schema(value_type = f64)]
    used: Value,
    /// Held by requests in flight.
    #[schema(value_type = f64)]
    reserved: Value,
    period_start: Timestamp,
    resets_at: Timestamp,
}

/// One limit's current period.
#[derive(Serialize, utoipa::ToSchema)]
struct Period {
    limit: &'static str,
    period_start: Timestamp,
    resets_at: Timestamp,
}

/// Each limit with what the scope used and holds reserved in its current period.
async fn usage(state: &AppState, scope: &Scope, limits: &Limits) -> Vec<LimitUsage> {
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
        rows.push(LimitUsage {
            limit: kind.name(),
            max: limit,
            used,
            reserved,
            period_start: window.start(now),
            resets_at: window.end(now),
        });
    }
    rows
}

#[derive(Deserialize)]
pub struct UserPath {
    tenant: String,
    subject: String,
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/quota",
    operation_id = "quotas_put_tenant",
    tag = "quotas",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body = QuotaBody,
    responses(
        (status = 200, description = "The limits, with what is used and when each period resets.", body = QuotaView),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []))
)]
pub async fn put_tenant(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<Json<QuotaView>, ApiError> {
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

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/quota",
    operation_id = "quotas_get_tenant",
    tag = "quotas",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The limits, with what is used and when each period resets.", body = QuotaView),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<QuotaView>, ApiError> {
    let limits = tenant_wide_limits(&state, &tenant, QuotaScope::Tenant).await?;
    let scope = Scope {
        tenant: tenant.as_str().into(),
        subject: None,
    };
    Ok(Json(QuotaView {
        usage: Some(usage(&state, &scope, &limits).await),
        tenant,
        subject: None,
        scope: "tenant",
        source: None,
        limits: LimitsView::from(&limits),
        periods: None,
    }))
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/users/{subject}/quota",
    operation_id = "quotas_put_user",
    tag = "quotas",
    params(("tenant" = String, Path, description = "The tenant's id."), ("subject" = String, Path, description = "The user's subject, as the identity provider names it.")),
    request_body = QuotaBody,
    responses(
        (status = 200, description = "The limits, with what is used and when each period resets.", body = QuotaView),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn put_user(
    State(state): State<AppState>,
    by: Actor,
    Path(path): Path<UserPath>,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<Json<QuotaView>, ApiError> {
    ids::subject("subject", &path.subject)?;
    let limits = body.into_limits()?;
    state
        .admin
        .set_user_quota(&by, &path.tenant, &path.subject, &limits)
        .await?;
    get_user(State(state), Path(path)).await
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/users/{subject}/quota",
    operation_id = "quotas_get_user",
    tag = "quotas",
    params(("tenant" = String, Path, description = "The tenant's id."), ("subject" = String, Path, description = "The user's subject, as the identity provider names it.")),
    responses(
        (status = 200, description = "The limits, with what is used and when each period resets.", body = QuotaView),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn get_user(
    State(state): State<AppState>,
    Path(path): Path<UserPath>,
) -> Result<Json<QuotaView>, ApiError> {
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
    Ok(Json(QuotaView {
        usage: Some(usage(&state, &scope, &applicable.user).await),
        tenant: path.tenant,
        subject: Some(path.subject),
        scope: "user",
        source: Some(if applicable.user_has_own {
            "user"
        } else {
            "default_user"
        }),
        limits: LimitsView::from(&applicable.user),
        periods: None,
    }))
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/default-user-quota",
    operation_id = "quotas_put_default",
    tag = "quotas",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    request_body = QuotaBody,
    responses(
        (status = 200, description = "The limits, with what is used and when each period resets.", body = QuotaView),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn put_default(
    State(state): State<AppState>,
    by: Actor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<Json<QuotaView>, ApiError> {
    let limits = body.into_limits()?;
    state
        .admin
        .set_default_user_quota(&by, &tenant, &limits)
        .await?;
    get_default(State(state), Path(tenant)).await
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/default-user-quota",
    operation_id = "quotas_get_default",
    tag = "quotas",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "The limits, with what is used and when each period resets.", body = QuotaView),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn get_default(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<QuotaView>, ApiError> {
    let limits = tenant_wide_limits(&state, &tenant, QuotaScope::DefaultUser).await?;
    let now = Timestamp::now();
    let periods = LimitKind::ALL
        .iter()
        .map(|&kind| Period {
            limit: kind.name(),
            period_start: kind.window().start(now),
            resets_at: kind.window().end(now),
        })
        .collect();
    Ok(Json(QuotaView {
        tenant,
        subject: None,
        scope: "default_user",
        source: None,
        limits: LimitsView::from(&limits),
        usage: None,
        periods: Some(periods),
    }))
}
