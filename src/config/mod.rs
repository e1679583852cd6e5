//! Configuration: built-in defaults, then the TOML file, then `TOLLGATE__SECTION__KEY`
//! environment variables, checked once at start so a mistake stops the process with a message
//! that names the key, never a panic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

mod upstreams;

pub use upstreams::{ModelConfig, PriceConfig, ProviderConfig, RoutingConfig, TargetConfig};

/// The whole configuration. Every section has defaults, so an empty file (or none) is valid.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: Option<RedisConfig>,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub metering: MeteringConfig,
    pub providers: Vec<ProviderConfig>,
    pub models: Vec<ModelConfig>,
    pub routing: RoutingConfig,
    pub quota: QuotaConfig,
    pub console: ConsoleConfig,
    pub webhooks: WebhooksConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Request bodies larger than this get 413.
    pub max_body_bytes: usize,
    /// How long in-flight requests get to finish after SIGTERM.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// A `: keep-alive` comment goes to a streaming client after this much upstream silence, so
    /// proxies between the client and us do not close an idle connection.
    #[serde(with = "duration")]
    pub sse_keep_alive: Duration,
    /// After a request starts or ends, keep polling the network this long instead of sleeping
    /// (see `busy_poll.rs`). Zero, the default, turns it off.
    #[serde(with = "duration")]
    pub busy_poll: Duration,
    /// A client that has not sent a whole request head by then is disconnected; an idle
    /// keep-alive connection is closed after as long.
    #[serde(with = "duration")]
    pub request_header_timeout: Duration,
    /// A request body must have arrived this long after its head, or the client gets 408 and
    /// is disconnected.
    #[serde(with = "duration")]
    pub request_body_timeout: Duration,
    /// Connections open at once; further clients wait in the kernel's backlog. Lowered at start
    /// to fit the open-file limit (less 256 descriptors kept for the database and upstreams).
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            sse_keep_alive: Duration::from_secs(10),
            busy_poll: Duration::ZERO,
            request_header_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://file.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://tollgate.db".to_owned(),
            max_connections: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    /// What admission does while Redis cannot be reached (`tollgate_quota_degraded` is 1): refuse
    /// (503, the default) or count in this process alone, from the shared counters last read and
    /// the recorded usage (a limit can then be exceeded by what the other replicas admit).
    #[serde(default)]
    pub on_unavailable: RedisFallback,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisFallback {
    #[default]
    FailClosed,
    Local,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Name of the environment variable holding the platform admin's bearer token. The token
    /// itself never goes in the file.
    pub token_env: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            token_env: "TOLLGATE_ADMIN_TOKEN".to_owned(),
        }
    }
}

/// The web console's sessions (the console is on whenever the admin API is).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A session unused this long ends.
    #[serde(with = "duration")]
    pub session_idle_timeout: Duration,
    /// A session ends this long after its login, however busy.
    #[serde(with = "duration")]
    pub session_max_age: Duration,
    /// The console's address as browsers reach it (`https://gateway.example.com`), for the SSO
    /// callback URL; unset, it is taken from each request's `Host` and scheme.
    pub public_url: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_max_age: Duration::from_secs(12 * 3600),
            public_url: None,
        }
    }
}

/// Caches and key fetching of the auth stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long users, tenants, revocations and API keys are served from memory (at most 5 s).
    /// Admin writes made through this process take effect at once regardless.
    #[serde(with = "duration")]
    pub cache_ttl: Duration,
    /// How long "no such user" is remembered.
    #[serde(with = "duration")]
    pub negative_cache_ttl: Duration,
    pub cache_capacity: u64,
    /// Verified tokens kept (each until it expires).
    pub token_cache_capacity: u64,
    /// How often the issuer table is re-read from the database.
    #[serde(with = "duration")]
    pub issuer_refresh_interval: Duration,
    #[serde(with = "duration")]
    pub jwks_timeout: Duration,
    /// At most one refetch per issuer within this time when a token names an unknown `kid`.
    #[serde(with = "duration")]
    pub jwks_refetch_cooldown: Duration,
    /// How often every JWKS is refreshed in the background.
    #[serde(with = "duration")]
    pub jwks_refresh_interval: Duration,
    pub jwks_max_bytes: usize,
    /// While the database is unreachable, cached identity, allow-lists and quota limits keep
    /// serving this long past their TTL (0 = off): nobody can change them meanwhile.
    #[serde(with = "duration")]
    pub stale_if_error: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(5),
            negative_cache_ttl: Duration::from_secs(2),
            cache_capacity: 100_000,
            token_cache_capacity: 100_000,
            issuer_refresh_interval: Duration::from_secs(5),
            jwks_timeout: Duration::from_secs(5),
            jwks_refetch_cooldown: Duration::from_secs(30),
            jwks_refresh_interval: Duration::from_secs(300),
            jwks_max_bytes: 256 * 1024,
            stale_if_error: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `tollgate=debug,info`; `RUST_LOG` wins if set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// The usage writer: how usage events are queued, batched into the database, and spilled to a
/// local file while the database is away.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeteringConfig {
    /// Events held in memory for the writer; beyond this they go straight to the spill file.
    pub queue_capacity: usize,
    /// Events per insert transaction.
    pub batch_size: usize,
    /// A partial batch is written after at most this long.
    #[serde(with = "duration")]
    pub flush_interval: Duration,
    /// A batch that has failed for this long goes to the spill file, so the queue keeps draining.
    #[serde(with = "duration")]
    pub spill_after: Duration,
    /// First wait between retries of a failed batch; doubles (with jitter) up to the maximum.
    #[serde(with = "duration")]
    pub retry_initial_backoff: Duration,
    #[serde(with = "duration")]
    pub retry_max_backoff: Duration,
    /// Where spilled events wait to be replayed; created if missing. One gateway per directory.
    pub spill_dir: PathBuf,
    /// At shutdown, how long the writer keeps trying the database and the spill file with
    /// events neither takes before it gives them up (logged and counted).
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// How often the usage journal is synced to disk: what a machine crash (not a process
    /// crash, which loses nothing) may lose at most. Zero syncs every write.
    #[serde(with = "duration")]
    pub journal_fsync_interval: Duration,
}

impl Default for MeteringConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            batch_size: 500,
            flush_interval: Duration::from_millis(200),
            spill_after: Duration::from_secs(5),
            retry_initial_backoff: Duration::from_millis(50),
            retry_max_backoff: Duration::from_secs(2),
            spill_dir: PathBuf::from("./tollgate-spill"),
            shutdown_timeout: Duration::from_secs(10),
            journal_fsync_interval: Duration::from_secs(1),
        }
    }
}

/// Webhook delivery: where events may go and how hard the worker tries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Lets endpoints point at loopback, private, link-local and other non-public addresses.
    /// Off by default: a tenant admin must not be able to make the gateway call into the
    /// network it runs in.
    pub allow_private_destinations: bool,
    /// How long one delivery attempt may take, connection included.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// How often each replica looks for deliveries that are due.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Wait after the first failed attempt; doubles per attempt up to the maximum.
    #[serde(with = "duration")]
    pub retry_initial_backoff: Duration,
    #[serde(with = "duration")]
    pub retry_max_backoff: Duration,
    /// An event not delivered this long after it was written is given up (and logged).
    #[serde(with = "duration")]
    pub give_up_after: Duration,
    /// Deliveries one replica sends at once.
    pub concurrency: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_destinations: false,
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            retry_initial_backoff: Duration::from_secs(5),
            retry_max_backoff: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
            concurrency: 8,
        }
    }
}

/// How admission estimates what a request will cost before it runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Completion tokens reserved for a request that sets no `max_tokens`: the most a limit can
    /// be overshot by per such request in flight.
    pub default_max_tokens: u64,
    /// Added to the tokenizer's prompt estimate, in percent: upstream tokenizers differ from
    /// tiktoken, and a reservation must not fall short of the real count.
    pub prompt_margin_percent: u64,
    /// The largest output cap (`max_tokens`, `max_completion_tokens`, `max_output_tokens`) a
    /// request may ask for; a larger one is a 400 naming the field.
    pub max_output_tokens: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            default_max_tokens: 1024,
            prompt_margin_percent: 20,
            max_output_tokens: 1_048_576,
        }
    }
}

/// A configuration that cannot be used, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
    #[error("`{key}`: {message}")]
    Invalid { key: String, message: String },
}

pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// What serves when there is no config file: an offline model, so that a first run answers a
/// chat call with no network and no provider key. Any config file replaces it.
pub const DEMO_MODELS: &str = r#"
[[providers]]
name = "demo"
kind = "mock"

[[models]]
name = "demo"
targets = [{ provider = "demo", model = "demo" }]
"#;

/// The name of the offline model [`DEMO_MODELS`] configures.
pub const DEMO_MODEL: &str = "demo";

/// A configuration as loaded, with the values as they were written (file and environment, no
/// defaults), so that a reload can name the keys that changed.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub written: serde_json::Value,
}

impl Config {
    /// Defaults, then the file at `path` (if any), then `TOLLGATE__…` variables; then checked.
    /// Without a file, the offline [`DEMO_MODELS`] are configured.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_written(path).map(|loaded| loaded.config)
    }

    /// [`Config::load`], keeping what was written too.
    pub fn load_written(path: Option<&Path>) -> Result<Loaded, ConfigError> {
        let mut figment = Figment::new();
        if path.is_none() {
            figment = figment.merge(Toml::string(DEMO_MODELS));
        }
        if let Some(path) = path {
            // Check it ourselves: figment quietly skips a missing file, and a typo in a path
            // must not start the gateway on defaults.
            std::fs::File::open(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment.merge(Env::prefixed("TOLLGATE__").split("__"));
        let parse_error = |error: figment::Error| {
            let mut messages: Vec<String> = error.into_iter().map(describe).collect();
            messages.dedup();
            ConfigError::Parse(messages.join("; "))
        };
        let config: Config = figment.extract().map_err(parse_error)?;
        let written = figment.extract().map_err(parse_error)?;
        config.validate()?;
        Ok(Loaded { config, written })
    }

    /// Parses and checks a configuration from TOML text (no environment overrides).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::Parse(e.into_iter().map(describe).collect()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: references between sections, ranges, duplicates.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database.url.trim().is_empty() {
            return Err(invalid("database.url", "must not be empty"));
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite: or postgres:// (e.g. sqlite://tollgate.db)",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        if self.server.sse_keep_alive.is_zero() {
            return Err(invalid("server.sse_keep_alive", "must be longer than zero"));
        }
        if self.server.busy_poll > Duration::from_millis(10) {
            return Err(invalid(
                "server.busy_poll",
                "at most 10ms: it is meant to bridge the gap to the next packet, not to spin idle",
            ));
        }
        if self.server.request_header_timeout.is_zero()
            || self.server.request_body_timeout.is_zero()
        {
            return Err(invalid(
                "server",
                "request_header_timeout and request_body_timeout must be longer than zero",
            ));
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        if self.admin.token_env.trim().is_empty() {
            return Err(invalid(
                "admin.token_env",
                "must name an environment variable",
            ));
        }
        let webhooks = &self.webhooks;
        if webhooks.timeout.is_zero()
            || webhooks.poll_interval.is_zero()
            || webhooks.retry_initial_backoff.is_zero()
        {
            return Err(invalid(
                "webhooks",
                "timeout, poll_interval and retry_initial_backoff must be longer than zero",
            ));
        }
        if webhooks.retry_max_backoff < webhooks.retry_initial_backoff {
            return Err(invalid(
                "webhooks.retry_max_backoff",
                "must be at least webhooks.retry_initial_backoff",
            ));
        }
        if webhooks.concurrency == 0 {
            return Err(invalid("webhooks.concurrency", "must be at least 1"));
        }
        let console = &self.console;
        if console.session_idle_timeout.is_zero() {
            return Err(invalid(
                "console.session_idle_timeout",
                "must be longer than zero",
            ));
        }
        if console.session_max_age < console.session_idle_timeout {
            return Err(invalid(
                "console.session_max_age",
                "must be at least console.session_idle_timeout",
            ));
        }
        if let Some(url) = &console.public_url {
            let parsed = reqwest::Url::parse(url).ok();
            let usable = parsed.as_ref().is_some_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.query().is_none()
            });
            if !usable {
                return Err(invalid(
                    "console.public_url",
                    "must be an http:// or https:// URL with a host and no query \
                     (e.g. https://gateway.example.com)",
                ));
            }
        }
        let auth = &self.auth;
        if auth.cache_ttl > Duration::from_secs(5) {
            return Err(invalid("auth.cache_ttl", "must be at most 5s"));
        }
        if auth.negative_cache_ttl > auth.cache_ttl {
            return Err(invalid(
                "auth.negative_cache_ttl",
                "must not exceed auth.cache_ttl",
            ));
        }
        if auth.jwks_timeout.is_zero() || auth.jwks_timeout > Duration::from_secs(60) {
            return Err(invalid("auth.jwks_timeout", "must be between 1ms and 60s"));
        }
        if auth.issuer_refresh_interval.is_zero() || auth.jwks_refresh_interval.is_zero() {
            return Err(invalid(
                "auth",
                "refresh intervals must be longer than zero",
            ));
        }
        if auth.jwks_max_bytes < 1024 {
            return Err(invalid("auth.jwks_max_bytes", "must be at least 1024"));
        }
        // A revocation made on another replica just before an outage is not seen until the
        // database is back: keep that window bounded.
        if auth.stale_if_error > Duration::from_secs(24 * 3600) {
            return Err(invalid(
                "auth.stale_if_error",
                "must be at most 24h (0 turns it off)",
            ));
        }
        let metering = &self.metering;
        if metering.queue_capacity == 0 {
            return Err(invalid("metering.queue_capacity", "must be at least 1"));
        }
        if metering.batch_size == 0 || metering.batch_size > 10_000 {
            return Err(invalid(
                "metering.batch_size",
                "must be between 1 and 10000",
            ));
        }
        if metering.flush_interval.is_zero() || metering.retry_initial_backoff.is_zero() {
            return Err(invalid(
                "metering",
                "flush_interval and retry_initial_backoff must be longer than zero",
            ));
        }
        if metering.retry_max_backoff < metering.retry_initial_backoff {
            return Err(invalid(
                "metering.retry_max_backoff",
                "must not be shorter than metering.retry_initial_backoff",
            ));
        }
        if metering.spill_dir.as_os_str().is_empty() {
            return Err(invalid("metering.spill_dir", "must not be empty"));
        }
        // Bounded so that `n` (at most 128) times the cap stays far from overflowing a counter.
        if self.quota.max_output_tokens == 0 || self.quota.max_output_tokens > 1 << 32 {
            return Err(invalid(
                "quota.max_output_tokens",
                "must be between 1 and 4294967296",
            ));
        }
        if self.quota.prompt_margin_percent > 1_000 {
            return Err(invalid(
                "quota.prompt_margin_percent",
                "must be at most 1000",
            ));
        }
        if let Some(redis) = &self.redis
            && !(redis.url.starts_with("redis://") || redis.url.starts_with("rediss://"))
        {
            return Err(invalid(
                "redis.url",
                "must start with redis:// or rediss://",
            ));
        }
        upstreams::validate(self)?;
        self.routing.validate()?;
        Ok(())
    }
}

/// One figment error as a line an operator can act on: the key, what is wrong, and where the
/// value came from (the file or an environment variable).
fn describe(error: figment::Error) -> String {
    let key = error
        .path
        .iter()
        .filter(|part| part.as_str() != "default")
        .cloned()
        .collect::<Vec<_>>()
        .join(".");
    let origin = error
        .metadata
        .as_ref()
        .and_then(|meta| meta.source.as_ref())
        .map(|source| format!(" (from {source})"))
        .unwrap_or_default();
    if key.is_empty() {
        format!("{}{origin}", error.kind)
    } else {
        format!("`{key}`: {}{origin}", error.kind)
    }
}

/// Durations written as `500ms`, `30s`, `15m`, `2h`, or a number of seconds.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(seconds) => Ok(Duration::from_secs(seconds)),
            Raw::Text(text) => parse(&text).ok_or_else(|| {
                de::Error::custom(format!(
                    "`{text}` is not a duration (use e.g. 150us, 500ms, 30s, 15m, 2h)"
                ))
            }),
        }
    }

    /// Parses `150us`, `500ms`, `30s`, `15m`, `2h`, `1d` or a bare number of seconds.
    pub fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().ok()?;
        let micros = match unit.trim() {
            "us" | "µs" => number,
            "ms" => number.checked_mul(1_000)?,
            "" | "s" => number.checked_mul(1_000_000)?,
            "m" => number.checked_mul(60_000_000)?,
            "h" => number.checked_mul(3_600_000_000)?,
            "d" => number.checked_mul(86_400_000_000)?,
            _ => return None,
        };
        Some(Duration::from_micros(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(duration::parse("150us"), Some(Duration::from_micros(150)));
        assert_eq!(duration::parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration::parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(duration::parse("15m"), Some(Duration::from_secs(900)));
        assert_eq!(duration::parse("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(duration::parse("7"), Some(Duration::from_secs(7)));
        assert_eq!(duration::parse("soon"), None);
        assert_eq!(duration::parse("5 fortnights"), None);
    }

    fn parse(toml: &str) -> Result<Config, ConfigError> {
        Config::from_toml(toml)
    }

    #[test]
    fn empty_file_gives_the_contract_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database.url, "sqlite://tollgate.db");
        assert_eq!(config.admin.token_env, "TOLLGATE_ADMIN_TOKEN");
    }

    #[test]
    fn the_contract_example_parses() {
        let config = parse(
            r#"
            [server]
            listen = "127.0.0.1:9000"
            [database]
            url = "sqlite://x.db"
            [redis]
            url = "redis://127.0.0.1:6379"
            [admin]
            token_env = "X"
            [[providers]]
            name = "openai"
            kind = "openai"
            base_url = "https://api.openai.com/v1"
            api_key_env = "OPENAI_API_KEY"
            timeout = "60s"
            [[models]]
            name = "gpt-4o-mini"
            targets = [ { provider = "openai", model = "gpt-4o-mini", weight = 1 } ]
            fallbacks = []
            price = { input_per_mtok = 0.15, output_per_mtok = 0.60 }
            "#,
        )
        .unwrap();
        assert_eq!(config.models[0].targets[0].provider, "openai");
        assert_eq!(config.providers[0].timeout, Duration::from_secs(60));
    }

    #[test]
    fn stale_if_error_defaults_to_ten_minutes_and_is_bounded() {
        assert_eq!(
            parse("").unwrap().auth.stale_if_error,
            Duration::from_secs(600)
        );
        let off = parse("[auth]\nstale_if_error = \"0\"").unwrap();
        assert!(off.auth.stale_if_error.is_zero());
        assert!(parse("[auth]\nstale_if_error = \"2d\"").is_err());
    }

    #[test]
    fn console_session_keys_default_parse_and_are_checked() {
        let defaults = parse("").unwrap().console;
        assert_eq!(defaults.session_idle_timeout, Duration::from_secs(1800));
        assert_eq!(defaults.session_max_age, Duration::from_secs(12 * 3600));
        assert_eq!(defaults.public_url, None);
        let config = parse(
            "[console]\nsession_idle_timeout = \"10m\"\nsession_max_age = \"1h\"\n\
             public_url = \"https://gw.example.com\"",
        )
        .unwrap();
        assert_eq!(
            config.console.session_idle_timeout,
            Duration::from_secs(600)
        );
        assert_eq!(config.console.session_max_age, Duration::from_secs(3600));
        let message = |toml: &str| parse(toml).unwrap_err().to_string();
        assert!(
            message("[console]\nsession_idle_timeout = \"0\"")
                .contains("console.session_idle_timeout")
        );
        assert!(
            message("[console]\nsession_idle_timeout = \"2h\"\nsession_max_age = \"1h\"")
                .contains("console.session_max_age")
        );
        assert!(
            message("[console]\npublic_url = \"gw.example.com\"").contains("console.public_url")
        );
    }

    #[test]
    fn metering_keys_parse_and_are_checked() {
        let config = parse(
            "[metering]\nqueue_capacity = 64\nbatch_size = 8\nflush_interval = \"50ms\"\n\
             spill_after = \"1s\"\nspill_dir = \"/var/lib/tollgate/spill\"",
        )
        .unwrap();
        assert_eq!(config.metering.queue_capacity, 64);
        assert_eq!(config.metering.batch_size, 8);
        assert_eq!(config.metering.flush_interval, Duration::from_millis(50));
        assert_eq!(config.metering.spill_after, Duration::from_secs(1));
        assert_eq!(
            config.metering.spill_dir,
            PathBuf::from("/var/lib/tollgate/spill")
        );
        let defaults = parse("").unwrap().metering;
        assert_eq!(defaults.queue_capacity, 10_000);
        assert_eq!(defaults.batch_size, 500);
        assert_eq!(defaults.flush_interval, Duration::from_millis(200));
        assert_eq!(defaults.spill_after, Duration::from_secs(5));
        assert_eq!(defaults.spill_dir, PathBuf::from("./tollgate-spill"));
        let message = |toml: &str| parse(toml).unwrap_err().to_string();
        assert!(message("[metering]\nqueue_capacity = 0").contains("metering.queue_capacity"));
        assert!(message("[metering]\nbatch_size = 0").contains("metering.batch_size"));
    }

    #[test]
    fn routing_and_provider_deadlines_parse_and_are_checked() {
        let config = parse(
            r#"
            [server]
            sse_keep_alive = "2s"
            [routing]
            max_attempts = 6
            backoff_base = "50ms"
            breaker_cooldown = "1m"
            [[providers]]
            name = "p"
            kind = "anthropic"
            first_byte_timeout = "5s"
            idle_timeout = "30s"
            "#,
        )
        .unwrap();
        assert_eq!(config.routing.max_attempts, 6);
        assert_eq!(config.routing.attempts_per_target, 2, "default kept");
        assert_eq!(config.routing.breaker_cooldown, Duration::from_secs(60));
        assert_eq!(config.server.sse_keep_alive, Duration::from_secs(2));
        let provider = &config.providers[0];
        assert_eq!(provider.first_byte_timeout, Duration::from_secs(5));
        assert_eq!(provider.base_url(), "https://api.anthropic.com");

        let message = |toml: &str| parse(toml).unwrap_err().to_string();
        assert!(message("[routing]\nmax_attempts = 0").contains("routing.max_attempts"));
        assert!(message("[routing]\nretries = 3").contains("retries"));
        assert!(
            message("[routing]\nbackoff_base = \"5s\"\nbackoff_max = \"1s\"")
                .contains("routing.backoff_max")
        );
        assert!(
            message("[[providers]]\nname = \"p\"\nkind = \"azure\"")
                .contains("providers[0].base_url")
        );
        assert!(
            message("[[providers]]\nname = \"p\"\nkind = \"mock\"\nidle_timeout = \"0s\"")
                .contains("providers[0].idle_timeout")
        );
    }

    #[test]
    fn responses_api_is_a_setting_of_openai_style_providers() {
        let compatible =
            parse("[[providers]]\nname = \"p\"\nkind = \"openai\"\nresponses_api = false").unwrap();
        assert_eq!(compatible.providers[0].responses_api, Some(false));
        assert_eq!(
            parse("[[providers]]\nname = \"p\"\nkind = \"openai\"")
                .unwrap()
                .providers[0]
                .responses_api,
            None,
            "the kind's default"
        );
        let error =
            parse("[[providers]]\nname = \"p\"\nkind = \"anthropic\"\nresponses_api = true")
                .unwrap_err()
                .to_string();
        assert!(error.contains("providers[0].responses_api"), "{error}");
    }

    #[test]
    fn errors_name_the_key() {
        let message = |toml: &str| parse(toml).unwrap_err().to_string();
        assert!(message("[server]\nlisten = 5").contains("server.listen"));
        assert!(message("[server]\nlisen = \"x\"").contains("lisen"));
        assert!(message("[database]\nurl = \"mysql://x\"").contains("database.url"));
        let unknown_provider =
            message("[[models]]\nname = \"m\"\ntargets = [{ provider = \"nope\", model = \"m\" }]");
        assert!(unknown_provider.contains("models[0].targets[0].provider"));
        assert!(unknown_provider.contains("nope"));
        let bad_kind = message("[[providers]]\nname = \"p\"\nkind = \"skynet\"");
        assert!(bad_kind.contains("providers[0].kind"));
        let bad_timeout =
            message("[[providers]]\nname = \"p\"\nkind = \"mock\"\ntimeout = \"soon\"");
        assert!(bad_timeout.contains("timeout"), "{bad_timeout}");
        assert!(message("[server]\nbusy_poll = \"1s\"").contains("server.busy_poll"));
        assert_eq!(
            parse("[server]\nbusy_poll = \"150us\"")
                .unwrap()
                .server
                .busy_poll,
            Duration::from_micros(150)
        );
    }
}
