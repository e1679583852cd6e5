//! What admission reserves for a request before it runs: the prompt estimate plus its safety
//! margin, and the output cap once for every choice the request asks for.
//!
//! The numbers come from the client (`max_tokens` up to 2^64 − 1, `n`), so every sum and product
//! is checked: a reservation too large to count saturates at `i64::MAX`, which no limit below that
//! admits, instead of wrapping round to something small. Caps above `quota.max_output_tokens`
//! never get this far: they are a 400.

use tollgate_providers::Usage;

use super::Amount;
use crate::config::QuotaConfig;
use crate::metering::Price;

/// The largest `n` OpenAI accepts; more choices than this is a 400.
pub const MAX_CHOICES: u64 = 128;

/// The output a request may produce, checked against `quota.max_output_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// The most output tokens one choice may use.
    pub cap: u64,
    /// How many choices (`n`); each may use the whole cap.
    pub choices: u64,
}

/// A request asking for more output than admission can reserve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("`{field}` is {value}; at most {max} output tokens may be asked for")]
    CapTooLarge {
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("`n` is {0}; it must be between 1 and {MAX_CHOICES}")]
    Choices(u64),
}

impl OutputError {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::CapTooLarge { field, .. } => field,
            Self::Choices(_) => "n",
        }
    }
}

impl Output {
    /// Nothing but the prompt is billed (embeddings).
    pub const NONE: Output = Output { cap: 0, choices: 1 };

    /// The output a request asks for: `caps` are the request's cap fields in order of
    /// precedence (the first one set is the cap; every one set must be within the limit), `n`
    /// its number of choices. No cap set reserves `quota.default_max_tokens`.
    pub fn parse(
        caps: &[(&'static str, Option<u64>)],
        n: Option<u64>,
        quota: &QuotaConfig,
    ) -> Result<Self, OutputError> {
        for &(field, value) in caps {
            if let Some(value) = value
                && value > quota.max_output_tokens
            {
                return Err(OutputError::CapTooLarge {
                    field,
                    value,
                    max: quota.max_output_tokens,
                });
            }
        }
        let choices = n.unwrap_or(1);
        if !(1..=MAX_CHOICES).contains(&choices) {
            return Err(OutputError::Choices(choices));
        }
        let cap = caps
            .iter()
            .find_map(|&(_, value)| value)
            .unwrap_or(quota.default_max_tokens);
        Ok(Self { cap, choices })
    }

    /// The amount to reserve for a prompt of `prompt_tokens` (the tokenizer's count): one
    /// request, `prompt + margin% + choices × cap` tokens, and what those tokens cost at `price`
    /// (the prompt at the input rate, the rest at the output rate).
    pub fn reservation(
        &self,
        prompt_tokens: u64,
        margin_percent: u64,
        price: Option<&Price>,
    ) -> Amount {
        let prompt = prompt_tokens
            .checked_mul(margin_percent)
            .map(|scaled| scaled.div_ceil(100))
            .and_then(|margin| prompt_tokens.checked_add(margin));
        let completion = self.cap.checked_mul(self.choices.max(1));
        let (Some(prompt), Some(completion)) = (prompt, completion) else {
            return Amount::UNCOUNTABLE;
        };
        let tokens = prompt
            .checked_add(completion)
            .and_then(|total| i64::try_from(total).ok())
            .unwrap_or(i64::MAX);
        Amount {
            requests: 1,
            tokens,
            cost_micro_usd: price.map_or(0, |price| {
                price.cost_micro_usd(&Usage {
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                    ..Usage::default()
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::clock::Timestamp;
    use crate::config::PriceConfig;
    use crate::quota::{Ledger, Scope};
    use crate::store::Limits;

    fn price() -> Price {
        Price::from_config(&PriceConfig {
            input_per_mtok: 2.5,
            output_per_mtok: 10.0,
            cached_input_per_mtok: None,
            cache_write_per_mtok: None,
        })
    }

    fn chat(
        max_tokens: Option<u64>,
        max_completion_tokens: Option<u64>,
        n: Option<u64>,
    ) -> Result<Output, OutputError> {
        Output::parse(
            &[
                ("max_completion_tokens", max_completion_tokens),
                ("max_tokens", max_tokens),
            ],
            n,
            &QuotaConfig::default(),
        )
    }

    #[test]
    fn a_cap_above_the_limit_is_refused_naming_its_field() {
        for cap in [u64::MAX, u64::MAX - 1, 1 << 63, 1_048_577] {
            assert_eq!(
                chat(Some(cap), None, None).unwrap_err().field(),
                "max_tokens"
            );
            assert_eq!(
                chat(None, Some(cap), None).unwrap_err().field(),
                "max_completion_tokens"
            );
            // A sane max_completion_tokens does not excuse an absurd max_tokens.
            assert_eq!(
                chat(Some(cap), Some(10), None).unwrap_err().field(),
                "max_tokens"
            );
        }
        assert_eq!(chat(Some(1_048_576), None, None).unwrap().cap, 1_048_576);
        assert_eq!(
            chat(Some(5), Some(7), None).unwrap().cap,
            7,
            "max_completion_tokens wins"
        );
        assert_eq!(chat(None, None, None).unwrap().cap, 1024, "the default");
    }

    #[test]
    fn n_must_be_between_one_and_128() {
        for n in [0, 129, u64::MAX] {
            assert_eq!(chat(None, None, Some(n)).unwrap_err().field(), "n");
        }
        assert_eq!(chat(None, None, Some(128)).unwrap().choices, 128);
    }

    #[test]
    fn an_uncountable_reservation_saturates_instead_of_wrapping() {
        let huge = Output {
            cap: u64::MAX,
            choices: 2,
        };
        assert_eq!(
            huge.reservation(10, 20, Some(&price())),
            Amount::UNCOUNTABLE
        );
        let nearly = Output {
            cap: u64::MAX - 1,
            choices: 1,
        };
        let amount = nearly.reservation(10, 20, Some(&price()));
        assert_eq!(amount.tokens, i64::MAX);
        assert_eq!(amount.cost_micro_usd, i64::MAX);
        assert_eq!(
            Output::NONE.reservation(u64::MAX, 20, None),
            Amount::UNCOUNTABLE
        );
    }

    #[test]
    fn every_choice_reserves_the_whole_cap() {
        let output = chat(Some(30), None, Some(100)).unwrap();
        // 10 + 2 (20 % margin, rounded up) + 100 × 30.
        assert_eq!(output.reservation(10, 20, None).tokens, 3_012);
        // 12 tokens × 2.5 + 3,000 × 10 USD per million tokens = 30,030 µ$.
        assert_eq!(
            output.reservation(10, 20, Some(&price())).cost_micro_usd,
            30_030
        );
    }

    fn limit_value() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(0),
            Just(1),
            Just(i64::MAX),
            Just(i64::MAX - 1),
            0..10_000i64,
            (i64::MAX - 10_000)..=i64::MAX,
        ]
    }

    fn client_number() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0),
            Just(u64::MAX),
            Just(u64::MAX - 1),
            Just(i64::MAX as u64),
            Just((i64::MAX as u64) + 1),
            0..5_000u64,
            1_048_000..1_049_000u64,
            (u64::MAX - 10_000)..=u64::MAX,
        ]
    }

    proptest! {
        /// Whatever the client asks and whatever the limits: nothing panics, a cap over the
        /// maximum is refused, and the usage that admitted requests report (a prompt up to 4×
        /// the tokenizer's count, plus `n × cap`, the most an upstream honouring the cap can
        /// produce) exceeds the limit only by what prompts used beyond their reservation.
        #[test]
        fn admitted_usage_stays_within_the_limit_but_for_the_prompt_estimate(
            tokens_per_day in limit_value(),
            cost_per_month in limit_value(),
            requests in proptest::collection::vec(
                (client_number(), client_number(), client_number(), 0..=400u64),
                1..20,
            ),
        ) {
            let quota = QuotaConfig::default();
            let ledger = Ledger::default();
            let now = Timestamp::now();
            let limits = Limits {
                tokens_per_day: Some(tokens_per_day),
                cost_microusd_per_month: Some(cost_per_month),
                ..Limits::default()
            };
            let scope = Scope { tenant: Arc::from("acme"), subject: Some(Arc::from("kate")) };
            let scopes = [(scope, limits)];
            let price = price();
            let mut used: i128 = 0;
            let mut shortfall: i128 = 0;
            for (prompt_tokens, max_tokens, n, actual_prompt_percent) in requests {
                let output = match Output::parse(&[("max_tokens", Some(max_tokens))], Some(n), &quota) {
                    Ok(output) => output,
                    Err(OutputError::CapTooLarge { value, max, .. }) => {
                        prop_assert!(value > max);
                        continue;
                    }
                    Err(OutputError::Choices(choices)) => {
                        prop_assert!(choices == 0 || choices > MAX_CHOICES);
                        continue;
                    }
                };
                let estimate = output.reservation(prompt_tokens, quota.prompt_margin_percent, Some(&price));
                prop_assert!(estimate.tokens >= 0 && estimate.cost_micro_usd >= 0);
                let Ok(reservation) = ledger.reserve(&scopes, estimate, now) else {
                    continue;
                };
                let actual_prompt = i128::from(prompt_tokens) * i128::from(actual_prompt_percent) / 100;
                let actual_completion = i128::from(output.cap) * i128::from(output.choices);
                let reserved_prompt = i128::from(estimate.tokens) - actual_completion;
                shortfall += (actual_prompt - reserved_prompt).max(0);
                let actual = actual_prompt + actual_completion;
                used += actual;
                ledger.settle(reservation, Amount {
                    requests: 1,
                    tokens: i64::try_from(actual).unwrap_or(i64::MAX),
                    cost_micro_usd: 0,
                });
            }
            prop_assert!(
                used <= i128::from(tokens_per_day) + shortfall,
                "used {used} against a limit of {tokens_per_day} (prompt shortfall {shortfall})"
            );
        }
    }
}
