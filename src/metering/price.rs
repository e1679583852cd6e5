//! Prices in integers. The config says USD per million tokens as a decimal; that is converted
//! once, at start, to pico-dollars per token (USD/Mtok × 10⁶), so a request's cost is exact
//! integer arithmetic and only the final rounding to micro-dollars ever loses anything.

use std::collections::HashMap;

use crate::config::{ModelConfig, PriceConfig};

/// Pico-dollars (10⁻¹² USD) per micro-dollar.
const PICO_PER_MICRO: i128 = 1_000_000;

/// One model's price, in pico-dollars per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input_pico_per_token: i64,
    pub cached_input_pico_per_token: i64,
    pub output_pico_per_token: i64,
}

impl Price {
    /// Converts USD per million tokens to pico-dollars per token. A cached-input price that is
    /// not given is the input price. (The config check already refused negative or NaN prices.)
    pub fn from_config(config: &PriceConfig) -> Self {
        let input = pico_per_token(config.input_per_mtok);
        Self {
            input_pico_per_token: input,
            cached_input_pico_per_token: config.cached_input_per_mtok.map_or(input, pico_per_token),
            output_pico_per_token: pico_per_token(config.output_per_mtok),
        }
    }

    /// The cost of one request in micro-dollars, rounded half up. `prompt_tokens` includes the
    /// `cached_tokens`, which are charged at the cached rate instead of the input rate.
    pub fn cost_micro_usd(
        &self,
        prompt_tokens: u64,
        cached_tokens: u64,
        completion_tokens: u64,
    ) -> i64 {
        let cached = cached_tokens.min(prompt_tokens);
        let uncached = prompt_tokens - cached;
        // i128: 2^64 tokens × 2^63 pico-dollars cannot overflow it.
        let pico = i128::from(uncached) * i128::from(self.input_pico_per_token)
            + i128::from(cached) * i128::from(self.cached_input_pico_per_token)
            + i128::from(completion_tokens) * i128::from(self.output_pico_per_token);
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
pub fn cost(
    prices: &PriceBook,
    model: &str,
    prompt_tokens: u64,
    cached_tokens: u64,
    completion_tokens: u64,
) -> i64 {
    prices.get(model).map_or(0, |price| {
        price.cost_micro_usd(prompt_tokens, cached_tokens, completion_tokens)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: f64, output: f64, cached: Option<f64>) -> Price {
        Price::from_config(&PriceConfig {
            input_per_mtok: input,
            output_per_mtok: output,
            cached_input_per_mtok: cached,
        })
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
        assert_eq!(price(0.15, 0.60, None).cost_micro_usd(1234, 0, 567), 525);
    }

    #[test]
    fn rounds_half_up_to_the_micro_dollar() {
        let half = price(0.5, 0.0, None); // 500 000 pico = 0.5 micro per token
        assert_eq!(half.cost_micro_usd(1, 0, 0), 1, "0.5 rounds up");
        assert_eq!(half.cost_micro_usd(3, 0, 0), 2, "1.5 rounds up");
        let p = price(0.4999, 0.0, None); // 0.4999 micro per token
        assert_eq!(
            p.cost_micro_usd(1, 0, 0),
            0,
            "just below a half rounds down"
        );
        assert_eq!(half.cost_micro_usd(0, 0, 0), 0);
    }

    #[test]
    fn cached_tokens_are_charged_at_the_cached_rate() {
        // 1000 prompt of which 800 cached: 200 × 2.5 + 800 × 1.25 + 100 × 10 micro-dollars
        // (USD/Mtok = micro-dollars per token) = 500 + 1000 + 1000.
        let p = price(2.50, 10.0, Some(1.25));
        assert_eq!(p.cost_micro_usd(1000, 800, 100), 2500);
        // Without a cached price, cached tokens cost the input price.
        assert_eq!(price(2.50, 10.0, None).cost_micro_usd(1000, 800, 100), 3500);
        // More cached than prompt (a confused upstream) cannot make the cost negative.
        assert_eq!(p.cost_micro_usd(10, 50, 0), 13);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let p = price(1_000.0, 1_000.0, None);
        assert_eq!(p.cost_micro_usd(u64::MAX, 0, u64::MAX), i64::MAX);
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
        assert_eq!(cost(&book, "gpt-4o-mini", 1234, 0, 567), 525);
        assert_eq!(cost(&book, "free", 1234, 0, 567), 0);
        assert_eq!(cost(&book, "unknown", 1234, 0, 567), 0);
    }
}
