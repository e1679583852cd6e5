//! `quota.threshold`: which thresholds of a limit a scope's usage has reached in a period.
//!
//! The check runs in the usage settlement's transaction, against the rollup that transaction
//! just updated, and the "already fired" mark is a row with a primary key in the same database
//! (`quota_thresholds_fired`). So the mark lives where the usage it judges lives: two replicas
//! settling at once serialise on that key, a restart forgets nothing, and a threshold fires
//! exactly once per period however the usage was spread — no Redis key that could expire or
//! be flushed, no in-process memory that each replica would have its own copy of.

use serde_json::{Value, json};

use crate::clock::Timestamp;
use crate::quota::LimitKind;

/// The limits thresholds watch. Per-minute limits fill and empty every minute: a warning
/// about one would arrive when the minute is already over.
pub const WATCHED: [LimitKind; 3] = [
    LimitKind::TokensPerDay,
    LimitKind::TokensPerMonth,
    LimitKind::CostPerMonth,
];

/// Whose usage a threshold is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Tenant,
    User,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::User => "user",
        }
    }
}

/// The thresholds (percent) that `used` has reached of `limit`. A limit of zero is reached by
/// any usage, including none: it is never a surprise, so it fires nothing.
pub fn reached(limit: i64, used: i64, thresholds: &[i32]) -> Vec<i32> {
    if limit <= 0 {
        return Vec::new();
    }
    thresholds
        .iter()
        .copied()
        .filter(|&percent| i128::from(used) * 100 >= i128::from(percent) * i128::from(limit))
        .collect()
}

/// One threshold reached: the event's `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing<'a> {
    pub tenant: &'a str,
    /// `None` for the tenant scope.
    pub subject: Option<&'a str>,
    pub kind: LimitKind,
    pub threshold: i32,
    pub used: i64,
    pub limit: i64,
    pub period_start: Timestamp,
}

impl Crossing<'_> {
    pub fn scope(&self) -> Scope {
        match self.subject {
            Some(_) => Scope::User,
            None => Scope::Tenant,
        }
    }

    /// The event's `data`; cost limits and usage are integer micro-dollars.
    pub fn data(&self) -> Value {
        json!({
            "tenant": self.tenant,
            "subject": self.subject,
            "scope": self.scope().as_str(),
            "limit": self.kind.name(),
            "threshold_percent": self.threshold,
            "used": self.used,
            "limit_value": self.limit,
            "period_start": self.period_start,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_is_reached_at_exactly_its_share_of_the_limit() {
        let thresholds = [50, 80, 100];
        assert_eq!(reached(1000, 499, &thresholds), Vec::<i32>::new());
        assert_eq!(reached(1000, 500, &thresholds), vec![50]);
        assert_eq!(reached(1000, 999, &thresholds), vec![50, 80]);
        assert_eq!(reached(1000, 1000, &thresholds), vec![50, 80, 100]);
        assert_eq!(reached(1000, 5000, &thresholds), vec![50, 80, 100]);
        // No overflow near the top of the range.
        assert_eq!(reached(i64::MAX, i64::MAX, &[100]), vec![100]);
        assert!(reached(0, 10, &thresholds).is_empty());
    }
}
