//! Model name → ordered targets: weighted choice among a model's targets, then its fallback
//! models; retries with backoff, circuit breakers and deadlines live in [`attempts`].
//!
//! Built once from the config at start. Nothing here touches SQL or knows about tenants: the
//! caller passes in which model names it may use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tollgate_providers::{AnyProvider, ProviderSettings};

use crate::config::{Config, ModelConfig, ProviderConfig, RoutingConfig};

mod attempts;
mod breaker;
mod random;

pub use attempts::{AttemptError, Prefetched, RouteError, Served};
pub use breaker::Breaker;

/// Every configured model and provider, ready to call.
#[derive(Debug)]
pub struct Routes {
    models: HashMap<Arc<str>, Model>,
    policy: RoutingConfig,
}

/// One model name clients may send.
#[derive(Debug)]
pub struct Model {
    pub name: Arc<str>,
    targets: Vec<Arc<Target>>,
    fallbacks: Vec<Arc<str>>,
}

/// One (provider, upstream model) pair, with its own circuit breaker.
#[derive(Debug)]
pub struct Target {
    /// The configured model this target belongs to: differs from the requested one after a
    /// fallback.
    pub model: Arc<str>,
    pub provider: Arc<Upstream>,
    pub upstream_model: Arc<str>,
    pub weight: u32,
    pub breaker: Breaker,
}

/// One configured provider.
#[derive(Debug)]
pub struct Upstream {
    pub name: Arc<str>,
    pub client: AnyProvider,
    /// Whole-attempt limit (`timeout`).
    pub timeout: Duration,
}

/// Why the routes could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error("provider `{name}`: {message}")]
    Provider { name: String, message: String },
}

/// Provider API keys by provider name, read from the variables `api_key_env` names.
pub type ProviderKeys = HashMap<String, String>;

// === impl Routes ===

impl Routes {
    /// Builds one HTTP client per provider (its connect timeout is the provider's) and the
    /// model table. `keys` holds the API keys by provider name.
    pub fn from_config(config: &Config, keys: &ProviderKeys) -> Result<Self, RoutesError> {
        let mut upstreams = HashMap::new();
        for provider in &config.providers {
            let upstream = build_upstream(provider, keys.get(&provider.name).cloned())?;
            upstreams.insert(provider.name.as_str(), Arc::new(upstream));
        }
        let mut models = HashMap::new();
        for model in &config.models {
            let built = build_model(model, &upstreams, &config.routing)?;
            models.insert(built.name.clone(), built);
        }
        Ok(Self {
            models,
            policy: config.routing.clone(),
        })
    }

    /// The model clients call `name`, if configured.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    /// Targets in the order to try them: the model's own (a weighted draw decides the order),
    /// then each fallback's the same way. A fallback the caller may not use is left out: a
    /// tenant limited to cheap models must not be served an expensive one by the back door.
    pub fn plan(&self, model: &Model, allowed: impl Fn(&str) -> bool) -> Vec<Arc<Target>> {
        let mut plan = Vec::with_capacity(model.targets.len() + model.fallbacks.len());
        push_weighted(&model.targets, &mut plan);
        for fallback in &model.fallbacks {
            if let Some(fallback) = self.models.get(fallback)
                && allowed(&fallback.name)
            {
                push_weighted(&fallback.targets, &mut plan);
            }
        }
        plan
    }

    pub fn policy(&self) -> &RoutingConfig {
        &self.policy
    }
}

/// Reads each provider's key from the variable its `api_key_env` names. A variable that is
/// named but unset is worth a warning (the upstream will refuse us), not a failed start: local
/// OpenAI-compatible servers often need no key at all.
pub fn keys_from_env(providers: &[ProviderConfig]) -> ProviderKeys {
    let mut keys = ProviderKeys::new();
    for provider in providers {
        let Some(var) = &provider.api_key_env else {
            continue;
        };
        match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => {
                keys.insert(provider.name.clone(), key.trim().to_owned());
            }
            _ => tracing::warn!(
                provider = %provider.name,
                variable = %var,
                "the provider's API key variable is not set; calling it without a key"
            ),
        }
    }
    keys
}

fn build_upstream(provider: &ProviderConfig, key: Option<String>) -> Result<Upstream, RoutesError> {
    let fail = |message: String| RoutesError::Provider {
        name: provider.name.clone(),
        message,
    };
    let kind = provider
        .kind()
        .ok_or_else(|| fail(format!("unknown kind `{}`", provider.kind)))?;
    let mut settings = ProviderSettings::new(provider.name.clone(), kind, provider.base_url());
    settings.api_key = key;
    settings.api_version = provider.api_version.clone();
    settings.first_byte_timeout = provider.first_byte_timeout;
    settings.idle_timeout = provider.idle_timeout;
    if let Some(responses_api) = provider.responses_api {
        settings.responses_api = responses_api;
    }
    let client = reqwest::Client::builder()
        .connect_timeout(provider.connect_timeout)
        // Small SSE chunks must not wait for Nagle's algorithm on the way in either.
        .tcp_nodelay(true)
        .build()
        .map_err(|e| fail(format!("cannot build an HTTP client: {e}")))?;
    let client = AnyProvider::from_settings(settings, client).map_err(|e| fail(e.to_string()))?;
    Ok(Upstream {
        name: provider.name.as_str().into(),
        client,
        timeout: provider.timeout,
    })
}

fn build_model(
    model: &ModelConfig,
    upstreams: &HashMap<&str, Arc<Upstream>>,
    policy: &RoutingConfig,
) -> Result<Model, RoutesError> {
    let name: Arc<str> = model.name.as_str().into();
    let mut targets = Vec::with_capacity(model.targets.len());
    for target in &model.targets {
        let provider =
            upstreams
                .get(target.provider.as_str())
                .ok_or_else(|| RoutesError::Provider {
                    name: target.provider.clone(),
                    message: format!("named by model `{}` but not configured", model.name),
                })?;
        targets.push(Arc::new(Target {
            model: name.clone(),
            provider: provider.clone(),
            upstream_model: target.model.as_str().into(),
            weight: target.weight,
            breaker: Breaker::new(policy.breaker_failures, policy.breaker_cooldown).with_gauge(
                metrics::gauge!(
                    "tollgate_circuit_breaker_state",
                    "model" => model.name.clone(),
                    "provider" => target.provider.clone(),
                    "upstream_model" => target.model.clone(),
                ),
            ),
        }));
    }
    Ok(Model {
        name,
        targets,
        fallbacks: model.fallbacks.iter().map(|f| f.as_str().into()).collect(),
    })
}

/// Appends `targets` in a weighted random order (each position drawn in proportion to the
/// weights of those not yet placed); weight-0 targets follow as standbys, in config order.
fn push_weighted(targets: &[Arc<Target>], out: &mut Vec<Arc<Target>>) {
    let start = out.len();
    out.extend(targets.iter().filter(|t| t.weight > 0).cloned());
    let end = out.len();
    for i in start..end {
        let total: u64 = out[i..end].iter().map(|t| u64::from(t.weight)).sum();
        let mut draw = random::below(total);
        let mut chosen = i;
        for (j, target) in out[i..end].iter().enumerate() {
            let weight = u64::from(target.weight);
            if draw < weight {
                chosen = i + j;
                break;
            }
            draw -= weight;
        }
        out.swap(i, chosen);
    }
    out.extend(targets.iter().filter(|t| t.weight == 0).cloned());
}

#[cfg(test)]
mod tests {
    use figment::providers::Format;

    use super::*;

    fn config(toml: &str) -> Config {
        let config: Config = figment::Figment::new()
            .merge(figment::providers::Toml::string(toml))
            .extract()
            .unwrap();
        config.validate().unwrap();
        config
    }

    const TOML: &str = r#"
        [[providers]]
        name = "a"
        kind = "mock"
        [[providers]]
        name = "b"
        kind = "mock"
        [[models]]
        name = "main"
        targets = [{ provider = "a", model = "a1", weight = 3 }, { provider = "b", model = "b1", weight = 1 }, { provider = "b", model = "standby", weight = 0 }]
        fallbacks = ["spare", "secret"]
        [[models]]
        name = "spare"
        targets = [{ provider = "b", model = "s1" }]
        [[models]]
        name = "secret"
        targets = [{ provider = "a", model = "x1" }]
    "#;

    #[test]
    fn plans_follow_weights_then_standbys_then_allowed_fallbacks() {
        let routes = Routes::from_config(&config(TOML), &ProviderKeys::new()).unwrap();
        let model = routes.model("main").unwrap();
        let mut first_a = 0;
        for _ in 0..2000 {
            let plan = routes.plan(model, |name| name != "secret");
            let names: Vec<&str> = plan.iter().map(|t| &*t.upstream_model).collect();
            assert_eq!(names.len(), 4, "{names:?}");
            assert_eq!(&names[2..], ["standby", "s1"]);
            assert_eq!(&*plan[3].model, "spare");
            if names[0] == "a1" {
                first_a += 1;
            }
        }
        // Weight 3 of 4: about 1500 of 2000.
        assert!((1350..1650).contains(&first_a), "{first_a}");
        let all = routes.plan(model, |_| true);
        assert_eq!(&*all.last().unwrap().upstream_model, "x1");
    }
}
