//! The configuration in force, and replacing it while serving (SIGHUP, `tollgate reload`, the
//! admin API).
//!
//! What a request needs of the config — the routes, the prices, the quota settings — is one
//! immutable [`Running`] snapshot behind an `ArcSwap`. A request takes the snapshot once, when
//! it begins, and keeps it to the end: a reload changes what the *next* request sees, while
//! those in flight (a long stream, say) finish on what they started with, and are metered at
//! the price that applied when they were admitted.
//!
//! Only the sections the data plane reads per request reload ([`RELOADABLE`]). The others
//! (listen address, database, Redis, auth, console, webhooks, logging…) are wired into tasks and
//! pools at start; a reload that changes them applies the rest and names those keys in the log
//! and its answer, and the snapshot keeps their running values, so what it shows is what runs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::config::{Config, ConfigError, Loaded};
use crate::metering::PriceBook;
use crate::routing::{ProviderKeys, Routes, RoutesError, read_keys};

/// The top-level sections a reload applies; changes anywhere else need a restart.
pub const RELOADABLE: [&str; 4] = ["providers", "models", "routing", "quota"];

/// The configuration requests are served with.
#[derive(Debug)]
pub struct Running {
    pub config: Arc<Config>,
    pub routes: Arc<Routes>,
    pub prices: Arc<PriceBook>,
    /// What was written (file and environment) for the sections in force, to name what the
    /// next reload changes.
    written: Value,
}

/// Where a reload reads the configuration from.
#[derive(Debug)]
pub enum Source {
    /// Defaults, then the file (if any), then `TOLLGATE__…` variables: as `tollgate serve` reads
    /// it. Provider keys are read again from their variables and files.
    Files { path: Option<PathBuf> },
    /// Built in code by an embedder or a test, with these provider keys: there is nothing to
    /// read again.
    Code { keys: ProviderKeys },
}

/// The running configuration and the means to replace it.
#[derive(Debug)]
pub struct Live {
    running: ArcSwap<Running>,
    source: Source,
    /// One reload at a time: two at once would both build from the same predecessor.
    reloading: Mutex<()>,
}

/// What a reload did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    /// Keys of the reloadable sections whose values changed (now in force).
    pub applied: Vec<String>,
    /// Keys that changed but only take effect after a restart; their old values stay in force.
    pub restart_required: Vec<String>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Routes(#[from] RoutesError),
    #[error("this gateway's configuration was built in code: there is no file to read again")]
    NoSource,
    #[error("the reload task failed: {0}")]
    Task(String),
}

// === impl Live ===

impl Live {
    /// The configuration a gateway starts with. `written` is what [`Config::load_written`]
    /// found, when the config came from files.
    pub fn start(loaded: Loaded, source: Source) -> Result<Self, ReloadError> {
        let keys = match &source {
            Source::Files { .. } => read_keys(&loaded.config.providers)?,
            Source::Code { keys } => keys.clone(),
        };
        let routes = Routes::from_config(&loaded.config, &keys)?;
        drop(keys);
        let running = Running {
            prices: Arc::new(PriceBook::from_config(&loaded.config.models)),
            routes: Arc::new(routes),
            config: Arc::new(loaded.config),
            written: loaded.written,
        };
        Ok(Self {
            running: ArcSwap::from_pointee(running),
            source,
            reloading: Mutex::new(()),
        })
    }

    /// The configuration in force now. Hold on to it for as long as one request lasts.
    pub fn current(&self) -> Arc<Running> {
        self.running.load_full()
    }

    /// Reads the configuration again and puts it in force for new requests; an invalid one
    /// changes nothing. Logged and counted either way. Reading files and building HTTP clients
    /// block, so this runs on the blocking pool.
    pub async fn reload(self: &Arc<Self>) -> Result<Reloaded, ReloadError> {
        let live = Arc::clone(self);
        let outcome = tokio::task::spawn_blocking(move || live.reload_now())
            .await
            .unwrap_or_else(|error| Err(ReloadError::Task(error.to_string())));
        let result = if outcome.is_ok() {
            "applied"
        } else {
            "invalid"
        };
        metrics::counter!("tollgate_config_reloads_total", "result" => result).increment(1);
        match &outcome {
            Ok(reloaded) => {
                tracing::info!(
                    applied = ?reloaded.applied,
                    "configuration reloaded; new requests use it, requests in flight finish on the old one"
                );
                if !reloaded.restart_required.is_empty() {
                    tracing::warn!(
                        keys = ?reloaded.restart_required,
                        "these keys changed but take effect only after a restart; their running values stay in force"
                    );
                }
            }
            Err(error) => tracing::error!(
                %error,
                "configuration reload refused; the running configuration keeps serving"
            ),
        }
        outcome
    }

    fn reload_now(&self) -> Result<Reloaded, ReloadError> {
        let Source::Files { path } = &self.source else {
            return Err(ReloadError::NoSource);
        };
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let loaded = Config::load_written(path.as_deref())?;
        let keys = read_keys(&loaded.config.providers)?;
        let old = self.current();
        let mut changed = Vec::new();
        changed_keys("", &old.written, &loaded.written, &mut changed);
        let (applied, restart_required) = changed.into_iter().partition(|key| is_reloadable(key));
        let (config, written) = merge(&old, loaded);
        let routes = Routes::rebuild(&config, &keys, Some(&old.routes))?;
        drop(keys);
        self.running.store(Arc::new(Running {
            prices: Arc::new(PriceBook::from_config(&config.models)),
            routes: Arc::new(routes),
            config: Arc::new(config),
            written,
        }));
        Ok(Reloaded {
            applied,
            restart_required,
        })
    }
}

/// The new configuration's reloadable sections over the running one's others, as parsed and
/// as written.
fn merge(old: &Running, new: Loaded) -> (Config, Value) {
    let Loaded { config, written } = new;
    let merged = Config {
        providers: config.providers,
        models: config.models,
        routing: config.routing,
        quota: config.quota,
        ..Config::clone(&old.config)
    };
    let mut kept = match &old.written {
        Value::Object(sections) => sections.clone(),
        _ => serde_json::Map::new(),
    };
    kept.retain(|section, _| !RELOADABLE.contains(&section.as_str()));
    if let Value::Object(sections) = written {
        kept.extend(
            sections
                .into_iter()
                .filter(|(section, _)| RELOADABLE.contains(&section.as_str())),
        );
    }
    (merged, Value::Object(kept))
}

fn is_reloadable(key: &str) -> bool {
    let section = key.split(['.', '[']).next().unwrap_or(key);
    RELOADABLE.contains(&section)
}

/// Appends to `out` the dotted keys under `prefix` whose values differ: tables are compared key
/// by key, lists of the same length item by item (`models[2].price`), anything else whole.
fn changed_keys(prefix: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Array(old), Value::Array(new)) if old.len() == new.len() => {
            for (i, (old, new)) in old.iter().zip(new).enumerate() {
                changed_keys(&format!("{prefix}[{i}]"), old, new, out);
            }
        }
        _ => match (table(old), table(new)) {
            (Some(old), Some(new)) => {
                let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    let (old, new) = (old.get(key), new.get(key));
                    changed_keys(
                        &path,
                        old.unwrap_or(&Value::Null),
                        new.unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            _ => out.push(prefix.to_owned()),
        },
    }
}

/// A table's keys; a table that is not there has none, so a table that appears or goes is named
/// by its keys, as a changed one is.
fn table(value: &Value) -> Option<&serde_json::Map<String, Value>> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    match value {
        Value::Object(table) => Some(table),
        Value::Null => Some(EMPTY.get_or_init(serde_json::Map::new)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changed_keys_name_the_leaves_that_differ() {
        let old = json!({
            "server": { "listen": "127.0.0.1:8080", "sse_keep_alive": "10s" },
            "models": [{ "name": "a", "price": { "input_per_mtok": 1.0 } }],
            "providers": [{ "name": "p" }],
        });
        let new = json!({
            "server": { "listen": "0.0.0.0:8080", "sse_keep_alive": "10s" },
            "models": [{ "name": "a", "price": { "input_per_mtok": 2.0 } }],
            "providers": [{ "name": "p" }, { "name": "q" }],
            "quota": { "prompt_margin_percent": 10 },
        });
        let mut changed = Vec::new();
        changed_keys("", &old, &new, &mut changed);
        assert_eq!(
            changed,
            [
                "models[0].price.input_per_mtok",
                "providers",
                "quota.prompt_margin_percent",
                "server.listen"
            ]
        );
        let (applied, restart): (Vec<String>, Vec<String>) =
            changed.into_iter().partition(|key| is_reloadable(key));
        assert_eq!(
            applied,
            [
                "models[0].price.input_per_mtok",
                "providers",
                "quota.prompt_margin_percent"
            ]
        );
        assert_eq!(restart, ["server.listen"]);
    }
}
