//! Parameters of reports and exports, parsed the same way for HTTP and the CLI.
//!
//! `from` is inclusive and `to` exclusive. A date (`2026-11-01`) means that day's 00:00 UTC, so
//! `from=2026-11-01&to=2026-12-01` is exactly November. An RFC 3339 instant must fall on a whole
//! hour: the rollup is hourly, and silently widening a period would bill the wrong hours.

use super::BillingError;
use crate::clock::Timestamp;
use crate::store::Dimension;

const HOUR_MS: i64 = 3_600_000;
/// Longest period one request may cover; a guard against typos like `to=9999-01-01`.
const MAX_DAYS: i64 = 3_700;

/// A half-open period `[from, to)` on whole hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Period {
    /// Parses `from` and `to`; each error names the field at fault.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, BillingError> {
        let from = parse_instant("from", from)?;
        let to = parse_instant("to", to)?;
        if to <= from {
            return Err(BillingError::invalid(
                "to",
                "must be after `from` (`to` is exclusive)",
            ));
        }
        if to.0 - from.0 > MAX_DAYS * 24 * HOUR_MS {
            return Err(BillingError::invalid(
                "to",
                format!("the period may span at most {MAX_DAYS} days"),
            ));
        }
        Ok(Self { from, to })
    }
}

/// A date (`2026-11-01`, that day's 00:00 UTC) or an RFC 3339 instant on a whole hour.
pub fn parse_instant(field: &'static str, text: Option<&str>) -> Result<Timestamp, BillingError> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| BillingError::invalid(field, "is required (a date or an RFC 3339 time)"))?;
    let at = Timestamp::parse_date_or_rfc3339(text).ok_or_else(|| {
        BillingError::invalid(
            field,
            format!("`{text}` is neither a date (2026-11-01) nor an RFC 3339 time"),
        )
    })?;
    if at.0.rem_euclid(HOUR_MS) != 0 {
        return Err(BillingError::invalid(
            field,
            format!("`{text}` is not on a whole hour (usage is kept per hour)"),
        ));
    }
    Ok(at)
}

/// `tenant,user,model,provider,month,day,hour` in any order and combination, at most one of the
/// periods; returned sorted and without duplicates.
pub fn parse_group_by(text: &str) -> Result<Vec<Dimension>, BillingError> {
    let mut dimensions = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let dimension = match name {
            "month" => Dimension::Month,
            "day" => Dimension::Day,
            "hour" => Dimension::Hour,
            "tenant" => Dimension::Tenant,
            "user" => Dimension::User,
            "model" => Dimension::Model,
            "provider" => Dimension::Provider,
            other => {
                return Err(BillingError::invalid(
                    "group_by",
                    format!(
                        "unknown `{other}`; use any of tenant, user, model, provider, month, \
                         day, hour"
                    ),
                ));
            }
        };
        dimensions.push(dimension);
    }
    dimensions.sort();
    dimensions.dedup();
    let periods = dimensions
        .iter()
        .filter(|d| matches!(d, Dimension::Month | Dimension::Day | Dimension::Hour))
        .count();
    if periods > 1 {
        return Err(BillingError::invalid(
            "group_by",
            "at most one of month, day and hour",
        ));
    }
    Ok(dimensions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn dates_are_utc_midnight_and_times_must_be_whole_hours() {
        assert_eq!(
            parse_instant("from", Some("2026-11-01")).unwrap(),
            at("2026-11-01T00:00:00Z")
        );
        assert_eq!(
            parse_instant("to", Some("2026-11-01T05:00:00+02:00")).unwrap(),
            at("2026-11-01T03:00:00Z")
        );
        let error = parse_instant("to", Some("2026-11-01T05:30:00Z")).unwrap_err();
        assert!(error.to_string().starts_with("`to`"), "{error}");
        assert!(parse_instant("from", Some("yesterday")).is_err());
        assert!(parse_instant("from", None).is_err());
    }

    #[test]
    fn periods_are_half_open_and_bounded() {
        let period = Period::parse(Some("2026-11-01"), Some("2026-12-01")).unwrap();
        assert_eq!(period.to, at("2026-12-01T00:00:00Z"));
        assert!(Period::parse(Some("2026-11-01"), Some("2026-11-01")).is_err());
        assert!(Period::parse(Some("2000-01-01"), Some("2030-01-01")).is_err());
    }

    #[test]
    fn group_by_is_sorted_deduplicated_and_checked() {
        assert_eq!(
            parse_group_by("model, user,day,model").unwrap(),
            vec![Dimension::Day, Dimension::User, Dimension::Model]
        );
        assert_eq!(parse_group_by("").unwrap(), vec![]);
        assert!(parse_group_by("day,hour").is_err());
        assert!(parse_group_by("color").is_err());
    }
}
