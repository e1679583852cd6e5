//! The usage report of one tenant, as JSON: grouped rows and their totals.

use serde::Serialize;

use super::BillingError;
use super::money::dollars;
use super::params::{Period, parse_group_by};
use crate::clock::Timestamp;
use crate::store::{Dimension, RollupQuery, RollupRow, Store};

/// `GET /admin/v1/tenants/{tenant}/usage`.
#[derive(Debug, Serialize)]
pub struct UsageReport {
    pub tenant: String,
    pub from: Timestamp,
    /// Exclusive.
    pub to: Timestamp,
    pub group_by: Vec<&'static str>,
    pub rows: Vec<ReportRow>,
    pub totals: ReportRow,
}

/// One row: the columns grouped by, then the sums. Money is exact decimal text in dollars
/// (`"0.012345"`) and also the integer micro-dollars it came from.
#[derive(Debug, Default, Serialize)]
pub struct ReportRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_start: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: String,
    pub cost_micro_usd: i64,
}

impl From<RollupRow> for ReportRow {
    fn from(row: RollupRow) -> Self {
        Self {
            period_start: row.period_start,
            subject: row.subject,
            model: row.model,
            provider: row.provider,
            requests: row.requests,
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            cached_tokens: row.cached_tokens,
            total_tokens: row.total_tokens,
            cost_usd: dollars(row.cost_micro_usd),
            cost_micro_usd: row.cost_micro_usd,
        }
    }
}

/// Builds the report from the rollup. `group_by` may name `user, model, provider` and one of
/// `month, day, hour`; absent or empty gives one row of totals.
pub async fn report(
    store: &Store,
    tenant: &str,
    from: Option<&str>,
    to: Option<&str>,
    group_by: Option<&str>,
) -> Result<UsageReport, BillingError> {
    let period = Period::parse(from, to)?;
    let group_by = parse_group_by(group_by.unwrap_or(""))?;
    if group_by.contains(&Dimension::Tenant) {
        return Err(BillingError::invalid(
            "group_by",
            "a tenant's report cannot group by tenant; use the export for several tenants",
        ));
    }
    let query = RollupQuery {
        from: period.from,
        to: period.to,
        tenant: Some(tenant.to_owned()),
        group_by,
    };
    let rows: Vec<ReportRow> = store
        .rollup_report(&query)
        .await?
        .into_iter()
        .map(ReportRow::from)
        .collect();
    let mut totals = ReportRow::default();
    for row in &rows {
        totals.requests += row.requests;
        totals.prompt_tokens += row.prompt_tokens;
        totals.completion_tokens += row.completion_tokens;
        totals.cached_tokens += row.cached_tokens;
        totals.total_tokens += row.total_tokens;
        totals.cost_micro_usd += row.cost_micro_usd;
    }
    totals.cost_usd = dollars(totals.cost_micro_usd);
    Ok(UsageReport {
        tenant: tenant.to_owned(),
        from: period.from,
        to: period.to,
        group_by: query.group_by.iter().map(|d| name(*d)).collect(),
        rows,
        totals,
    })
}

fn name(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Month => "month",
        Dimension::Day => "day",
        Dimension::Hour => "hour",
        Dimension::Tenant => "tenant",
        Dimension::User => "user",
        Dimension::Model => "model",
        Dimension::Provider => "provider",
    }
}
