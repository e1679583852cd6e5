//! Model name → ordered targets: weighted choice among a model's targets, then its fallback
//! models; retries with backoff, circuit breakers and deadlines live in [`attempts`].
//!
//! Built from the config at start and again on every reload, keeping what did not change (a
//! provider's connection pool, a target's breaker). Nothing here touches SQL or knows about
//! tenants: the caller passes in which model names it may use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tollgate_providers::{AnyProvider, ProviderSettings};

use crate::config::{Config, ConfigError, ModelConfig, ProviderConfig, RoutingConfig};

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
    /// Shared with the same target of the routes a reload replaces, so an open breaker stays
    /// open across a reload.
    pub breaker: Arc<Breaker>,
}

/// One configured provider.
#[derive(Debug)]
pub struct Upstream {
    pub name: Arc<str>,
    pub client: AnyProvider,
    /// Whole-attempt limit (`timeout`).
    pub timeout: Duration,
    /// What it was built from (the key as a digest), to tell whether a reload changed it.
    built_from: (ProviderConfig, Option<[u8; 32]>),
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
        Self::rebuild(config, keys, None)
    }

    /// Like [`Routes::from_config`], reusing what `previous` built where nothing changed: a
    /// provider with the same settings and key keeps its client (and its open connections), and
    /// its targets keep their circuit breakers unless the breaker policy changed.
    pub fn rebuild(
        config: &Config,
        keys: &ProviderKeys,
        previous: Option<&Routes>,
    ) -> Result<Self, RoutesError> {
        let previous_upstreams: HashMap<&str, &Arc<Upstream>> = previous
            .into_iter()
            .flat_map(|routes| routes.models.values())
            .flat_map(|model| &model.targets)
            .map(|target| (&*target.provider.name, &target.provider))
            .collect();
        let mut upstreams = HashMap::new();
        for provider in &config.providers {
            let key = keys.get(&provider.name);
            let built_from = (
                provider.clone(),
                key.map(|k| crate::auth::sha256(k.as_bytes())),
            );
            let upstream = match previous_upstreams.get(provider.name.as_str()) {
                Some(kept) if kept.built_from == built_from => Arc::clone(kept),
                _ => Arc::new(build_upstream(built_from, key.cloned())?),
            };
            upstreams.insert(provider.name.as_str(), upstream);
        }
        // Breakers carry over only under the same policy: a new threshold starts counting anew.
        let breakers = previous
            .filter(|routes| {
                routes.policy.breaker_failures == config.routing.breaker_failures
                    && routes.policy.breaker_cooldown == config.routing.breaker_cooldown
            })
            .map(Routes::breakers)
            .unwrap_or_default();
        let mut models = HashMap::new();
        for model in &config.models {
            let built = build_model(model, &upstreams, &breakers, &config.routing)?;
            models.insert(built.name.clone(), built);
        }
        Ok(Self {
            models,
            policy: config.routing.clone(),
        })
    }

    /// Every target's breaker, by the target's model, its provider (only while that provider's
    /// client is the same one) and its upstream model.
    fn breakers(&self) -> HashMap<BreakerKey, Arc<Breaker>> {
        self.models
            .values()
            .flat_map(|model| &model.targets)
            .map(|target| {
                let key = (
                    target.model.clone(),
                    Arc::as_ptr(&target.provider),
                    target.upstream_model.clone(),
                );
                (key, target.breaker.clone())
            })
            .collect()
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

/// A target as its breaker is known across a reload.
type BreakerKey = (Arc<str>, *const Upstream, Arc<str>);

/// Reads each provider's key from the file `api_key_file` names or the variable `api_key_env`
/// names. A file that cannot be read is an error (a mounted secret that is missing is a mistake
/// to stop at); a variable that is named but unset is worth a warning (the upstream will refuse
/// us), not a failed start: local OpenAI-compatible servers often need no key at all.
pub fn read_keys(providers: &[ProviderConfig]) -> Result<ProviderKeys, ConfigError> {
    let mut keys = ProviderKeys::new();
    for (i, provider) in providers.iter().enumerate() {
        if let Some(path) = &provider.api_key_file {
            let key = std::fs::read_to_string(path).map_err(|error| {
                crate::config::invalid(
                    format!("providers[{i}].api_key_file"),
                    format!("cannot read {}: {error}", path.display()),
                )
            })?;
            if key.trim().is_empty() {
                return Err(crate::config::invalid(
                    format!("providers[{i}].api_key_file"),
                    format!("{} is empty", path.display()),
                ));
            }
            keys.insert(provider.name.clone(), key.trim().to_owned());
            continue;
        }
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
    Ok(keys)
}

fn build_upstream(
    built_from: (ProviderConfig, Option<[u8; 32]>),
    key: Option<String>,
) -> Result<Upstream, RoutesError> {
    let provider = &built_from.0;
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
    settings.connect_timeout = provider.connect_timeout;
    let client = AnyProvider::from_settings(settings).map_err(|e| fail(e.to_string()))?;
    Ok(Upstream {
        name: provider.name.as_str().into(),
        client,
        timeout: provider.timeout,
        built_from,
    })
}

fn build_model(
    model: &ModelConfig,
    upstreams: &HashMap<&str, Arc<Upstream>>,
    breakers: &HashMap<BreakerKey, Arc<Breaker>>,
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
        let upstream_model: Arc<str> = target.model.as_str().into();
        let kept = breakers.get(&(name.clone(), Arc::as_ptr(provider), upstream_model.clone()));
        let breaker = kept.cloned().unwrap_or_else(|| {
            Arc::new(
                Breaker::new(policy.breaker_failures, policy.breaker_cooldown).with_gauge(
                    metrics::gauge!(
                        "tollgate_circuit_breaker_state",
                        "model" => model.name.clone(),
                        "provider" => target.provider.clone(),
                        "upstream_model" => target.model.clone(),
                    ),
                ),
            )
        });
        targets.push(Arc::new(Target {
            model: name.clone(),
            provider: provider.clone(),
            upstream_model,
            weight: target.weight,
            breaker,
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

    /// The one target of `model` whose upstream model is `upstream_model`.
    fn target<'a>(routes: &'a Routes, model: &str, upstream_model: &str) -> &'a Arc<Target> {
        let model = routes.model(model).unwrap();
        let found = model
            .targets
            .iter()
            .find(|t| &*t.upstream_model == upstream_model);
        found.unwrap()
    }

    #[test]
    fn a_rebuild_keeps_clients_and_breakers_of_what_did_not_change() {
        let old_config = config(TOML);
        let old = Routes::from_config(&old_config, &ProviderKeys::new()).unwrap();
        // Open a's breaker on main's a1 (threshold 5 by default).
        for _ in 0..5 {
            target(&old, "main", "a1").breaker.record_failure();
        }
        assert!(target(&old, "main", "a1").breaker.is_open());

        // b moves; a1's weight changes; a and its targets are otherwise as they were.
        let moved = TOML.replace(
            "name = \"b\"\n        kind = \"mock\"",
            "name = \"b\"\n        kind = \"mock\"\n        base_url = \"http://elsewhere.test\"",
        );
        let moved = moved.replace("model = \"a1\", weight = 3", "model = \"a1\", weight = 2");
        let new = Routes::rebuild(&config(&moved), &ProviderKeys::new(), Some(&old)).unwrap();
        let (old_a1, new_a1) = (target(&old, "main", "a1"), target(&new, "main", "a1"));
        assert_eq!(new_a1.weight, 2);
        assert!(
            Arc::ptr_eq(&old_a1.provider, &new_a1.provider),
            "a keeps its client"
        );
        assert!(Arc::ptr_eq(&old_a1.breaker, &new_a1.breaker));
        assert!(new_a1.breaker.is_open(), "an open breaker stays open");
        let (old_b1, new_b1) = (target(&old, "main", "b1"), target(&new, "main", "b1"));
        assert!(
            !Arc::ptr_eq(&old_b1.provider, &new_b1.provider),
            "b was rebuilt"
        );
        assert!(!Arc::ptr_eq(&old_b1.breaker, &new_b1.breaker));

        // A new key is a new client, and its targets' breakers start afresh.
        let keys = ProviderKeys::from([("a".to_owned(), "sk-rotated".to_owned())]);
        let rekeyed = Routes::rebuild(&config(&moved), &keys, Some(&new)).unwrap();
        let a1 = target(&rekeyed, "main", "a1");
        assert!(!Arc::ptr_eq(&new_a1.provider, &a1.provider));
        assert!(!a1.breaker.is_open());

        // So does a new breaker policy.
        let stricter = format!("{moved}\n[routing]\nbreaker_failures = 9\n");
        let stricter = Routes::rebuild(&config(&stricter), &keys, Some(&rekeyed)).unwrap();
        let (before, after) = (
            target(&rekeyed, "main", "b1"),
            target(&stricter, "main", "b1"),
        );
        assert!(Arc::ptr_eq(&before.provider, &after.provider));
        assert!(!Arc::ptr_eq(&before.breaker, &after.breaker));
    }
}
