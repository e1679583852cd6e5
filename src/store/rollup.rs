//! Reading the hourly rollup back, grouped the way a report or an export asks.
//!
//! Reports never touch `usage_events`: a month of one tenant is at most a few hundred thousand
//! rollup rows, however many millions of requests they count.

use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};

use super::{Store, StoreError, on_pool};
use crate::clock::Timestamp;
use crate::metering::Tally;
use crate::quota::Window;

/// What rows can be grouped by. The order of the variants is the order of the columns and of
/// the sort, so the same query always yields the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Month,
    Day,
    Hour,
    Tenant,
    User,
    Model,
    Provider,
}

/// One grouped row: what the group adds up to. A column not grouped by is `None`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RollupRow {
    pub period_start: Option<Timestamp>,
    pub tenant_id: Option<String>,
    pub subject: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    #[sqlx(flatten)]
    pub tally: Tally,
}

/// A grouped read of `[from, to)`, optionally of one tenant. `from` and `to` are hour starts
/// (the rollup's granularity); the caller checks that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupQuery {
    pub from: Timestamp,
    pub to: Timestamp,
    pub tenant: Option<String>,
    /// Sorted, without duplicates, at most one of month/day/hour.
    pub group_by: Vec<Dimension>,
}

impl RollupQuery {
    /// The SQL text. Only fixed column names and integers computed here go into it; the tenant
    /// and the period are bound parameters.
    fn sql(&self) -> String {
        let has = |d: Dimension| self.group_by.contains(&d);
        let period = if has(Dimension::Hour) {
            Some("hour_start".to_owned())
        } else if has(Dimension::Day) {
            Some("(hour_start - (hour_start % 86400000))".to_owned())
        } else if has(Dimension::Month) {
            Some(self.month_case())
        } else {
            None
        };
        let mut select = Vec::new();
        let mut keys = Vec::new();
        match &period {
            Some(expr) => {
                select.push(format!("CAST({expr} AS BIGINT) AS period_start"));
                keys.push(expr.clone());
            }
            None => select.push("CAST(NULL AS BIGINT) AS period_start".to_owned()),
        }
        for (dimension, column) in [
            (Dimension::Tenant, "tenant_id"),
            (Dimension::User, "subject"),
            (Dimension::Model, "model"),
            (Dimension::Provider, "provider"),
        ] {
            if has(dimension) {
                select.push(format!("{column} AS {column}"));
                keys.push(column.to_owned());
            } else {
                select.push(format!("CAST(NULL AS TEXT) AS {column}"));
            }
        }
        for column in [
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "total_tokens",
            "cost_micro_usd",
        ] {
            // PostgreSQL's SUM of a BIGINT is NUMERIC: cast back so both engines give an i64.
            select.push(format!(
                "COALESCE(CAST(SUM({column}) AS BIGINT), 0) AS {column}"
            ));
        }
        let mut sql = format!(
            "SELECT {} FROM usage_hourly WHERE hour_start >= $1 AND hour_start < $2",
            select.join(", ")
        );
        if self.tenant.is_some() {
            sql.push_str(" AND tenant_id = $3");
        }
        if !keys.is_empty() {
            let keys = keys.join(", ");
            sql.push_str(&format!(" GROUP BY {keys} ORDER BY {keys}"));
        }
        sql
    }

    /// Maps an hour to the start of its UTC month with a CASE over the months the period
    /// touches: the same text works on both engines, which share no date functions.
    fn month_case(&self) -> String {
        let mut case = String::from("CASE");
        let mut start = Window::Month.start(self.from);
        while start < self.to {
            let end = Window::Month.end(start);
            case.push_str(&format!(" WHEN hour_start < {} THEN {}", end.0, start.0));
            start = end;
        }
        case.push_str(&format!(" ELSE {} END", start.0));
        case
    }
}

impl Store {
    /// Streams the grouped rows of `query` from the database as they come, in a fixed order:
    /// nothing is collected, so an export of millions of rows runs in constant memory.
    pub fn rollup_rows(&self, query: &RollupQuery) -> BoxStream<'_, Result<RollupRow, StoreError>> {
        let sql = sqlx::AssertSqlSafe(query.sql());
        let (from, to, tenant) = (query.from, query.to, query.tenant.clone());
        on_pool!(self, pool => {
            let mut q = sqlx::query_as::<_, RollupRow>(sql).bind(from).bind(to);
            if let Some(tenant) = tenant {
                q = q.bind(tenant);
            }
            q.fetch(pool).map_err(StoreError::from).boxed()
        })
    }

    /// The grouped rows of `query`, all at once: for reports, whose size the rollup bounds.
    pub async fn rollup_report(&self, query: &RollupQuery) -> Result<Vec<RollupRow>, StoreError> {
        self.rollup_rows(query).try_collect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn month_case_covers_every_month_of_the_period() {
        let query = RollupQuery {
            from: at("2026-11-15T00:00:00Z"),
            to: at("2027-01-02T00:00:00Z"),
            tenant: None,
            group_by: vec![Dimension::Month],
        };
        let case = query.month_case();
        let nov = at("2026-11-01T00:00:00Z").0;
        let dec = at("2026-12-01T00:00:00Z").0;
        let jan = at("2027-01-01T00:00:00Z").0;
        assert!(case.contains(&format!("WHEN hour_start < {dec} THEN {nov}")));
        assert!(case.contains(&format!("WHEN hour_start < {jan} THEN {dec}")));
        assert!(case.contains(&format!("THEN {jan}")));
    }

    #[test]
    fn ungrouped_query_has_no_group_by_and_binds_the_tenant() {
        let query = RollupQuery {
            from: Timestamp(0),
            to: Timestamp(3_600_000),
            tenant: Some("acme".into()),
            group_by: vec![],
        };
        let sql = query.sql();
        assert!(!sql.contains("GROUP BY"));
        assert!(sql.contains("tenant_id = $3"));
        assert!(
            !sql.contains("acme"),
            "the tenant is a parameter, never text"
        );
    }
}
