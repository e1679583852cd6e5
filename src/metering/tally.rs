//! The accounting numbers: what one request counts for, and what many add up to.

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};
use tollgate_providers::Usage;

use super::price::Price;

/// Requests, tokens and micro-dollars: one request's (in its usage event), or the sums of many
/// (an hour of the rollup, a report row, a user's month). The meter writes it; the rollup, the
/// reports, the exports and the quotas read it. Its fields are the columns of `usage_events`
/// and `usage_hourly` and the keys of a spilled event line, so it reads straight from either.
///
/// Reasoning and cache-write tokens are parts of the completion and the prompt that no sum
/// keeps: the event stores the first, the request log line shows the second.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    sqlx::FromRow,
    utoipa::ToSchema,
)]
pub struct Tally {
    /// 1 in an event. Event lines spilled before events carried it are one request each.
    #[serde(default = "one")]
    pub requests: i64,
    /// Includes `cached_tokens`.
    pub prompt_tokens: i64,
    /// Includes reasoning tokens.
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub total_tokens: i64,
    pub cost_micro_usd: i64,
}

fn one() -> i64 {
    1
}

// === impl Tally ===

impl Tally {
    /// One request's tally, priced. `price` is `None` for a model without a price in the
    /// config: its tokens are counted and its cost is zero.
    pub fn request(usage: &Usage, price: Option<&Price>) -> Self {
        // The upstream's total is what the client was shown; an upstream that leaves it out
        // (or a tokenizer estimate) gets the sum.
        let total = if usage.total_tokens > 0 {
            usage.total_tokens
        } else {
            usage.prompt_tokens.saturating_add(usage.completion_tokens)
        };
        Self {
            requests: 1,
            prompt_tokens: to_i64(usage.prompt_tokens),
            completion_tokens: to_i64(usage.completion_tokens),
            cached_tokens: to_i64(usage.cached_tokens),
            total_tokens: to_i64(total),
            cost_micro_usd: price.map_or(0, |price| price.cost_micro_usd(usage)),
        }
    }
}

/// Sums saturate rather than wrap: no real sum comes near `i64::MAX`, and one pinned there is
/// over every limit, which is the safe side.
impl AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
        self.cost_micro_usd = self.cost_micro_usd.saturating_add(other.cost_micro_usd);
    }
}

/// Counts beyond `i64::MAX` do not happen; saturate rather than wrap if one ever did.
pub(super) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PriceConfig;

    fn price() -> Price {
        Price::from_config(&PriceConfig {
            input_per_mtok: 0.15,
            output_per_mtok: 0.60,
            cached_input_per_mtok: None,
            cache_write_per_mtok: None,
        })
    }

    #[test]
    fn reported_usage_is_kept_and_priced() {
        let usage = Usage {
            prompt_tokens: 1234,
            completion_tokens: 567,
            total_tokens: 1801,
            cached_tokens: 0,
            reasoning_tokens: 100,
            cache_write_tokens: 0,
            reported: tollgate_providers::Reported::All,
        };
        let tally = Tally::request(&usage, Some(&price()));
        assert_eq!(
            tally,
            Tally {
                requests: 1,
                prompt_tokens: 1234,
                completion_tokens: 567,
                cached_tokens: 0,
                total_tokens: 1801,
                cost_micro_usd: 525,
            }
        );
    }

    #[test]
    fn a_missing_total_is_the_sum_and_no_price_costs_nothing() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            ..Usage::default()
        };
        let tally = Tally::request(&usage, None);
        assert_eq!(tally.total_tokens, 15);
        assert_eq!(tally.cost_micro_usd, 0, "no price, no cost");
    }

    #[test]
    fn sums_saturate() {
        let mut sum = Tally::request(&Usage::default(), None);
        sum += Tally {
            total_tokens: i64::MAX,
            ..Tally::default()
        };
        sum += Tally {
            requests: 1,
            total_tokens: 1,
            ..Tally::default()
        };
        assert_eq!((sum.requests, sum.total_tokens), (2, i64::MAX));
    }
}
