//! Prices in integers. The config says USD per million tokens as a decimal; that is converted
//! once, at start, to pico-dollars per token (USD/Mtok × 10⁶), so a request's cost is exact
//! integer arithmetic and only the final rounding to micro-dollars ever loses anything.

use std::collections::HashMap;

use tollgate_providers::Usage;

use crate::config::{ModelConfig, PriceConfig};

/// Pico-dollars (10⁻¹² USD) per micro-dollar.
const PICO_PER_MICRO: i128 = 1_000_000;

/// One model's price, in pico-dollars per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input_pico_per_token: i64,
    pub cached_input_pico_per_token: i64,
    pub cache_write_pico_per_token: i64,
    pub output_pico_per_token: i64,
}

impl Price {
    /// Converts USD per million tokens to pico-dollars per token. A cached-input or cache-write
    /// price that is not given is the input price. (The config check already refused negative
    /// or NaN prices.)
    pub fn from_config(config: &PriceConfig) -> Self {
        let input = pico_per_token(config.input_per_mtok);
        Self {
            input_pico_per_token: input,
            cached_input_pico_per_token: config.cached_input_per_mtok.map_or(input, pico_per_token),
            cache_write_pico_per_token: config.cache_write_per_mtok.map_or(input, pico_per_token),
            output_pico_per_token: pico_per_token(config.output_per_mtok),
        }
    }

    /// The cost of one request in micro-dollars, rounded half up. `prompt_tokens` includes the
    /// `cached_tokens` and `cache_write_tokens`, which are charged at their own rates instead of
    /// the input rate.
    pub fn cost_micro_usd(&self, usage: &Usage) -> i64 {
        // A confused upstream reporting more cache traffic than prompt cannot make the plain
        // input negative: cache reads are capped first, then writes, by what is left.
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
        let uncached = usage.prompt_tokens - cached - written;
        // i128: 2^64 tokens × 2^63 pico-dollars cannot overflow it.
        let pico = i128::from(uncached) * i128::from(self.input_pico_per_token)
            + i128::from(cached) * i128::from(self.cached_input_pico_per_token)
            + i128::from(written) * i128::from(self.cache_write_pico_per_token)
            + i128::from(usage.completion_tokens) * i128::from(self.output_pico_per_token);
        let micro = (pico + PICO_PER_MICRO / 2) / PICO_PER_MICRO;
        i64::try_from(micro).unwrap_or(i64::MAX)
    }
}

/// USD per million tokens → pico-dollars per token: 1 USD/Mtok = 10⁻⁶ USD/token = 10⁶ pico.
/// Rounded to the nearest pico-dollar, which is 10⁻⁶ USD per million tokens: finer than any
/// published price.
fn pico_per_token(usd_per_mtok: f64) -> i64 {
    let pico = (usd_per_mtok * 1e6).round();
    if pico.is_finite() && pico >= 0.0 {
        // `as` saturates for huge values, which a real price never is.
        pico as i64
    } else {
        0
    }
}

/// Every configured model's price, by the model name clients send. Built once at start.
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    prices: HashMap<String, Price>,
}

impl PriceBook {
    pub fn from_config(models: &[ModelConfig]) -> Self {
        let prices = models
            .iter()
            .filter_map(|model| {
                Some((
                    model.name.clone(),
                    Price::from_config(model.price.as_ref()?),
                ))
            })
            .collect();
        Self { prices }
    }

    /// `None` for a model without a price: its usage is counted and costs nothing.
    pub fn get(&self, model: &str) -> Option<&Price> {
        self.prices.get(model)
    }
}

/// The cost of a request for `model`, in micro-dollars; 0 for a model without a price.
pub fn cost(prices: &PriceBook, model: &str, usage: &Usage) -> i64 {
    prices
        .get(model)
        .map_or(0, |price| price.cost_micro_usd(usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: f64, output: f64, cached: Option<f64>) -> Price {
        Price::from_config(&PriceConfig {
            input_per_mtok: input,
            output_per_mtok: output,
            cached_input_per_mtok: cached,
            cache_write_per_mtok: None,
        })
    }

    /// `prompt` tokens (including `cached`) and `completion` tokens.
    fn usage(prompt: u64, cached: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            cached_tokens: cached,
            completion_tokens: completion,
            ..Usage::default()
        }
    }

    #[test]
    fn converts_to_pico_dollars_per_token() {
        let p = price(0.15, 0.60, None);
        assert_eq!(p.input_pico_per_token, 150_000);
        assert_eq!(p.output_pico_per_token, 600_000);
        assert_eq!(p.cached_input_pico_per_token, 150_000, "defaults to input");
        // 0.075 is not exact in binary; rounding to the pico-dollar makes it so.
        assert_eq!(
            price(2.50, 10.0, Some(0.075)).cached_input_pico_per_token,
            75_000
        );
        assert_eq!(price(3.0, 15.0, None).output_pico_per_token, 15_000_000);
    }

    #[test]
    fn gpt_4o_mini_example_is_exact() {
        // 1234 × 150 000 + 567 × 600 000 = 185 100 000 + 340 200 000 = 525 300 000 pico
        // = 525.3 micro-dollars → 525.
        assert_eq!(
            price(0.15, 0.60, None).cost_micro_usd(&usage(1234, 0, 567)),
            525
        );
    }

    #[test]
    fn rounds_half_up_to_the_micro_dollar() {
        let half = price(0.5, 0.0, None); // 500 000 pico = 0.5 micro per token
        assert_eq!(half.cost_micro_usd(&usage(1, 0, 0)), 1, "0.5 rounds up");
        assert_eq!(half.cost_micro_usd(&usage(3, 0, 0)), 2, "1.5 rounds up");
        let p = price(0.4999, 0.0, None); // 0.4999 micro per token
        assert_eq!(
            p.cost_micro_usd(&usage(1, 0, 0)),
            0,
            "just below a half rounds down"
        );
        assert_eq!(half.cost_micro_usd(&usage(0, 0, 0)), 0);
    }

    #[test]
    fn cached_tokens_are_charged_at_the_cached_rate() {
        // 1000 prompt of which 800 cached: 200 × 2.5 + 800 × 1.25 + 100 × 10 micro-dollars
        // (USD/Mtok = micro-dollars per token) = 500 + 1000 + 1000.
        let p = price(2.50, 10.0, Some(1.25));
        assert_eq!(p.cost_micro_usd(&usage(1000, 800, 100)), 2500);
        // Without a cached price, cached tokens cost the input price.
        assert_eq!(
            price(2.50, 10.0, None).cost_micro_usd(&usage(1000, 800, 100)),
            3500
        );
        // More cached than prompt (a confused upstream) cannot make the cost negative.
        assert_eq!(p.cost_micro_usd(&usage(10, 50, 0)), 13);
    }

    #[test]
    fn cache_writes_are_charged_at_the_cache_write_rate() {
        // Anthropic: 21 input + 4 cache reads + 2 cache writes, 7 output at 3 / 15 USD/Mtok,
        // reads 0.30, writes 3.75: 63 + 1.2 + 7.5 + 105 = 176.7 micro-dollars → 177.
        let p = Price::from_config(&PriceConfig {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
            cached_input_per_mtok: Some(0.30),
            cache_write_per_mtok: Some(3.75),
        });
        let u = Usage {
            cache_write_tokens: 2,
            ..usage(27, 4, 7)
        };
        assert_eq!(p.cache_write_pico_per_token, 3_750_000);
        assert_eq!(p.cost_micro_usd(&u), 177);
        // Without a cache-write price, writes cost the input price: 63 + 1.2 + 6 + 105 → 175.
        let plain = price(3.0, 15.0, Some(0.30));
        assert_eq!(plain.cache_write_pico_per_token, 3_000_000);
        assert_eq!(plain.cost_micro_usd(&u), 175);
        // More cache traffic than prompt cannot make the cost negative: 10 prompt tokens, all
        // read (0.3 × 10 = 3 micro-dollars), and the writes find nothing left to charge.
        let confused = Usage {
            cache_write_tokens: 50,
            ..usage(10, 10, 0)
        };
        assert_eq!(p.cost_micro_usd(&confused), 3);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let p = price(1_000.0, 1_000.0, None);
        assert_eq!(p.cost_micro_usd(&usage(u64::MAX, 0, u64::MAX)), i64::MAX);
    }

    #[test]
    fn price_book_looks_up_by_client_model_name() {
        let config = crate::Config::from_toml(
            r#"
            [[providers]]
            name = "openai"
            kind = "mock"
            [[models]]
            name = "gpt-4o-mini"
            targets = [ { provider = "openai", model = "gpt-4o-mini" } ]
            price = { input_per_mtok = 0.15, output_per_mtok = 0.60 }
            [[models]]
            name = "free"
            targets = [ { provider = "openai", model = "x" } ]
            "#,
        )
        .unwrap();
        let book = PriceBook::from_config(&config.models);
        assert_eq!(cost(&book, "gpt-4o-mini", &usage(1234, 0, 567)), 525);
        assert_eq!(cost(&book, "free", &usage(1234, 0, 567)), 0);
        assert_eq!(cost(&book, "unknown", &usage(1234, 0, 567)), 0);
    }
}
