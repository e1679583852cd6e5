//! The usage report of one tenant, as JSON: grouped rows and their totals.

use serde::Serialize;

use super::BillingError;
use super::money::dollars;
use super::params::{Period, parse_group_by};
use crate::clock::Timestamp;
use crate::metering::Tally;
use crate::store::{Dimension, RollupQuery, RollupRow, Store};

/// `GET /admin/v1/tenants/{tenant}/usage`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_start: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(flatten)]
    pub tally: Tally,
    pub cost_usd: String,
}

impl ReportRow {
    /// The sums of a report's rows.
    fn totals(rows: &[ReportRow]) -> Self {
        let mut tally = Tally::default();
        for row in rows {
            tally += row.tally;
        }
        Self {
            cost_usd: dollars(tally.cost_micro_usd),
            tally,
            ..Self::default()
        }
    }
}

impl From<RollupRow> for ReportRow {
    fn from(row: RollupRow) -> Self {
        Self {
            period_start: row.period_start,
            subject: row.subject,
            model: row.model,
            provider: row.provider,
            cost_usd: dollars(row.tally.cost_micro_usd),
            tally: row.tally,
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
    let totals = ReportRow::totals(&rows);
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
