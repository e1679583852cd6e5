//! The upstream half of the configuration: `[[providers]]`, `[[models]]` and `[routing]`.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use tollgate_providers::ProviderKind;

use super::{Config, ConfigError, duration, invalid};

/// One upstream account that models route to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    /// `openai | azure | anthropic | gemini | ollama | mock`. Kept as text so that a bad value is
    /// reported by [`validate`] with the key's index, like every other mistake.
    pub kind: String,
    /// Defaults to the vendor's public endpoint; required for `azure`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Name of the environment variable holding the provider's API key, read at start and on
    /// every reload.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// A file holding the provider's API key (a mounted secret, say), read at start and on every
    /// reload: rotating the key is writing the file and reloading. Not with `api_key_env`.
    #[serde(default)]
    pub api_key_file: Option<std::path::PathBuf>,
    /// Azure OpenAI's `api-version`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Whole-attempt limit: a non-streaming call, or a stream from request to last chunk.
    #[serde(default = "defaults::timeout", with = "duration")]
    pub timeout: Duration,
    #[serde(default = "defaults::connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// Until the upstream's response headers arrive. A timeout here is retried.
    #[serde(default = "defaults::first_byte_timeout", with = "duration")]
    pub first_byte_timeout: Duration,
    /// Between two chunks of a stream.
    #[serde(default = "defaults::idle_timeout", with = "duration")]
    pub idle_timeout: Duration,
    /// Whether the upstream serves OpenAI's Responses API (`/responses`). Defaults to true for
    /// `openai` and `azure`; set it to false for an OpenAI-compatible server without it, and
    /// `/v1/responses` requests are translated to chat completions for it.
    #[serde(default)]
    pub responses_api: Option<bool>,
}

/// A model name clients may send, and where it goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    pub targets: Vec<TargetConfig>,
    /// Other model names tried, in order, when every target of this one failed.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    #[serde(default)]
    pub price: Option<PriceConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub provider: String,
    /// The model name the upstream knows.
    pub model: String,
    /// Share of first attempts; 0 makes the target a standby, tried only after the others.
    #[serde(default = "defaults::weight")]
    pub weight: u32,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// Prompt tokens written to the upstream's cache (Anthropic prices them above input).
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
}

/// Retries, backoff and circuit breaking, for every model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Upstream calls one request may make in all, over every target and fallback.
    pub max_attempts: u32,
    /// Calls to one target before moving on to the next (retryable failures only).
    pub attempts_per_target: u32,
    /// The first retry waits up to this long (full jitter); each further retry doubles it.
    #[serde(with = "duration")]
    pub backoff_base: Duration,
    #[serde(with = "duration")]
    pub backoff_max: Duration,
    /// A `Retry-After` up to this long is waited out; a longer one moves on to the next target.
    #[serde(with = "duration")]
    pub max_retry_after: Duration,
    /// Consecutive failures that open a target's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker keeps its target out before letting one probe through.
    #[serde(with = "duration")]
    pub breaker_cooldown: Duration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            attempts_per_target: 2,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

mod defaults {
    use std::time::Duration;

    pub fn timeout() -> Duration {
        Duration::from_secs(600)
    }
    pub fn connect_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn first_byte_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn idle_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn weight() -> u32 {
        1
    }
}

// === impl ProviderConfig ===

impl ProviderConfig {
    /// The kind; [`validate`] has made sure it parses.
    pub fn kind(&self) -> Option<ProviderKind> {
        self.kind.parse().ok()
    }

    /// The configured base URL, or the vendor's public one.
    pub fn base_url(&self) -> &str {
        if let Some(url) = &self.base_url {
            return url;
        }
        match self.kind() {
            Some(ProviderKind::OpenAi) => "https://api.openai.com/v1",
            Some(ProviderKind::Anthropic) => "https://api.anthropic.com",
            Some(ProviderKind::Gemini) => "https://generativelanguage.googleapis.com",
            Some(ProviderKind::Ollama) => "http://localhost:11434",
            Some(ProviderKind::Azure | ProviderKind::Mock) | None => "",
        }
    }
}

// === impl RoutingConfig ===

impl RoutingConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(invalid("routing.max_attempts", "must be at least 1"));
        }
        if self.attempts_per_target == 0 {
            return Err(invalid("routing.attempts_per_target", "must be at least 1"));
        }
        if self.backoff_max < self.backoff_base {
            return Err(invalid(
                "routing.backoff_max",
                "must not be shorter than routing.backoff_base",
            ));
        }
        if self.breaker_failures == 0 {
            return Err(invalid("routing.breaker_failures", "must be at least 1"));
        }
        Ok(())
    }
}

/// References between providers and models, ranges, duplicates.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut providers = HashSet::new();
    for (i, provider) in config.providers.iter().enumerate() {
        let key = |field: &str| format!("providers[{i}].{field}");
        if provider.name.trim().is_empty() {
            return Err(invalid(key("name"), "must not be empty"));
        }
        if !providers.insert(provider.name.as_str()) {
            return Err(invalid(
                key("name"),
                format!("`{}` is used by two providers", provider.name),
            ));
        }
        let Some(kind) = provider.kind() else {
            let kinds: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(invalid(
                key("kind"),
                format!("`{}` is not one of {}", provider.kind, kinds.join(", ")),
            ));
        };
        match &provider.base_url {
            Some(base_url)
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) =>
            {
                return Err(invalid(
                    key("base_url"),
                    "must be an http:// or https:// URL",
                ));
            }
            None if kind == ProviderKind::Azure => {
                return Err(invalid(
                    key("base_url"),
                    "is required for azure (https://RESOURCE.openai.azure.com)",
                ));
            }
            _ => {}
        }
        if provider.responses_api == Some(true)
            && !matches!(kind, ProviderKind::OpenAi | ProviderKind::Azure)
        {
            return Err(invalid(
                key("responses_api"),
                "only openai and azure providers can serve the Responses API",
            ));
        }
        if let Some(env) = &provider.api_key_env
            && env.trim().is_empty()
        {
            return Err(invalid(key("api_key_env"), "must name a variable"));
        }
        if provider.api_key_file.is_some() && provider.api_key_env.is_some() {
            return Err(invalid(
                key("api_key_file"),
                "give the key in one place: api_key_env or api_key_file, not both",
            ));
        }
        for (field, value) in [
            ("timeout", provider.timeout),
            ("first_byte_timeout", provider.first_byte_timeout),
            ("idle_timeout", provider.idle_timeout),
            ("connect_timeout", provider.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(key(field), "must be longer than zero"));
            }
        }
    }
    let models: HashSet<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
    if models.len() != config.models.len() {
        return Err(invalid("models", "two models have the same name"));
    }
    for (i, model) in config.models.iter().enumerate() {
        let key = |field: &str| format!("models[{i}].{field}");
        if model.name.trim().is_empty() {
            return Err(invalid(key("name"), "must not be empty"));
        }
        if model.targets.is_empty() {
            return Err(invalid(key("targets"), "needs at least one target"));
        }
        for (j, target) in model.targets.iter().enumerate() {
            if !providers.contains(target.provider.as_str()) {
                return Err(invalid(
                    key(&format!("targets[{j}].provider")),
                    format!("no provider is named `{}`", target.provider),
                ));
            }
            if target.model.trim().is_empty() {
                return Err(invalid(
                    key(&format!("targets[{j}].model")),
                    "must not be empty",
                ));
            }
        }
        if model.targets.iter().all(|t| t.weight == 0) {
            return Err(invalid(
                key("targets"),
                "at least one weight must be above 0",
            ));
        }
        for fallback in &model.fallbacks {
            if !models.contains(fallback.as_str()) || fallback == &model.name {
                return Err(invalid(
                    key("fallbacks"),
                    format!("`{fallback}` is not another configured model"),
                ));
            }
        }
        if let Some(price) = model.price {
            let prices = [
                price.input_per_mtok,
                price.output_per_mtok,
                price.cached_input_per_mtok.unwrap_or(0.0),
                price.cache_write_per_mtok.unwrap_or(0.0),
            ];
            if prices.iter().any(|p| !p.is_finite() || *p < 0.0) {
                return Err(invalid(key("price"), "prices must be zero or more"));
            }
        }
    }
    Ok(())
}
