//! Starting gateways for tests: port 0, a fresh database per test (SQLite file or a new
//! PostgreSQL database), and an HTTP client.

use std::path::PathBuf;

use serde_json::Value;
use sqlx::Connection;
use tempfile::TempDir;
use tollgate::routing::ProviderKeys;
use tollgate::{Config, Gateway};

pub const ADMIN_TOKEN: &str = "test-admin-token-with-enough-entropy-0123456789";

/// Where the whole test run's logs go: `TOLLGATE_TEST_LOG`, else `target/tmp/tollgate-test.log`.
/// `.ci/check-log-secrets` greps this file for every secret the tests use.
pub fn test_log_path() -> PathBuf {
    std::env::var_os("TOLLGATE_TEST_LOG")
        .filter(|path| !path.is_empty())
        .map_or_else(
            || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tollgate-test.log"),
            PathBuf::from,
        )
}

/// Installs one process-wide subscriber that writes every gateway's logs, at TRACE for
/// tollgate's own crates, as JSON lines to [`test_log_path`] (truncated once per run). What a
/// gateway would log in the most verbose setting is what the secrets check reads.
pub fn init_test_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let path = test_log_path();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the test log's directory");
        }
        let file = std::fs::File::create(&path).expect("create the test log");
        let filter = tracing_subscriber::EnvFilter::new(
            "tollgate=trace,tollgate_providers=trace,tower_http=debug,warn",
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init();
    });
}

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The server URL; each test makes its own database on it.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL from `TOLLGATE_TEST_POSTGRES_URL`. Unset: the test is skipped with a printed
    /// reason, except in CI, where it must run.
    pub fn postgres() -> Option<Self> {
        match std::env::var("TOLLGATE_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Self::Postgres(url)),
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must run the PostgreSQL tests: set TOLLGATE_TEST_POSTGRES_URL"
                );
                eprintln!("skipped: set TOLLGATE_TEST_POSTGRES_URL to run the PostgreSQL tests");
                None
            }
        }
    }

    /// A fresh, empty database for one test; returns its URL.
    pub async fn fresh_database(&self, dir: &TempDir) -> String {
        match self {
            Self::Sqlite => format!("sqlite://{}", dir.path().join("tollgate.db").display()),
            Self::Postgres(server) => {
                let name = format!("tg_test_{}", uuid::Uuid::new_v4().simple());
                let mut connection = sqlx::PgConnection::connect(server)
                    .await
                    .expect("connect to the test PostgreSQL server");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut connection)
                    .await
                    .expect("create a test database");
                let (base, _) = server.rsplit_once('/').expect("a database URL has a path");
                format!("{base}/{name}")
            }
        }
    }
}

/// Generates `sqlite` and `postgres` variants of each listed `async fn(Backend)` test.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::support::Backend::postgres() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// One offline model `m` (the mock provider), as config TOML for tests that need a model but
/// not an upstream.
pub const MOCK_MODEL: &str = r#"
[[providers]]
name = "mock"
kind = "mock"
[[models]]
name = "m"
targets = [{ provider = "mock", model = "mock-1" }]
"#;

/// A running gateway and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub config: Config,
    gateway: Option<Gateway>,
    /// For a gateway started from a file: its path and the sections the harness sets.
    file: Option<(PathBuf, String)>,
    // Keeps the SQLite file (and anything else) alive for the test's duration.
    _dir: TempDir,
}

impl TestApp {
    /// A gateway with the admin API on, on a fresh database of `backend`.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_with_keys(backend, ProviderKeys::new(), adjust).await
    }

    /// A gateway whose providers get these API keys (by provider name).
    pub async fn spawn_with_keys(
        backend: Backend,
        keys: ProviderKeys,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        init_test_logging();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.database.url = backend.fresh_database(&dir).await;
        config.database.max_connections = 4;
        // Each gateway its own spill directory: a shared one would replay events into the
        // wrong test's database.
        config.metering.spill_dir = dir.path().join("spill");
        adjust(&mut config);
        let gateway = Gateway::start_with_keys(config.clone(), Some(ADMIN_TOKEN.to_owned()), keys)
            .await
            .expect("gateway starts");
        Self {
            base: format!("http://{}", gateway.addr),
            client: reqwest::Client::new(),
            config,
            gateway: Some(gateway),
            file: None,
            _dir: dir,
        }
    }

    /// A gateway started from a config file, as `tollgate serve --config FILE` starts one, so
    /// that a reload reads the file again. `rest` is the TOML after the sections the harness
    /// writes (listen address, database, spill directory).
    pub async fn spawn_from_file(backend: Backend, rest: &str) -> Self {
        init_test_logging();
        let dir = tempfile::tempdir().expect("temp dir");
        let header = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\
             [database]\nurl = \"{}\"\nmax_connections = 4\n\
             [metering]\nspill_dir = \"{}\"\n",
            backend.fresh_database(&dir).await,
            dir.path().join("spill").display()
        );
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, format!("{header}{rest}")).expect("config file");
        let loaded = Config::load_written(Some(&path)).expect("a valid config file");
        let config = loaded.config.clone();
        let gateway = Gateway::start_from(loaded, Some(path.clone()), Some(ADMIN_TOKEN.to_owned()))
            .await
            .expect("gateway starts");
        Self {
            base: format!("http://{}", gateway.addr),
            client: reqwest::Client::new(),
            config,
            gateway: Some(gateway),
            file: Some((path, header)),
            _dir: dir,
        }
    }

    /// Rewrites the file of [`TestApp::spawn_from_file`] with another `rest` (not reloaded).
    pub fn write_config(&self, rest: &str) {
        let (path, header) = self.file.as_ref().expect("a gateway started from a file");
        std::fs::write(path, format!("{header}{rest}")).expect("config file");
    }

    /// `POST /admin/v1/config/reload`: its status and body.
    pub async fn reload(&self) -> (u16, Value) {
        json(
            self.admin(reqwest::Method::POST, "/config/reload")
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// Stops the gateway and starts a new one on the same database and config.
    pub async fn restart(&mut self) {
        self.restart_with_admin_token(ADMIN_TOKEN).await;
    }

    /// The same, with another platform admin token (a rotation).
    pub async fn restart_with_admin_token(&mut self, admin_token: &str) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await.expect("clean shutdown");
        }
        let mut config = self.config.clone();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        let gateway = Gateway::start(config, Some(admin_token.to_owned()))
            .await
            .expect("gateway restarts");
        self.base = format!("http://{}", gateway.addr);
        self.gateway = Some(gateway);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The Prometheus text `/metrics` answers now.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// An admin request with the platform token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(&format!("/admin/v1{path}")))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub async fn create_tenant(&self, id: &str) {
        let response = self
            .admin(reqwest::Method::POST, "/tenants")
            .json(&serde_json::json!({ "id": id, "name": format!("Tenant {id}") }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201, "create tenant {id}");
    }

    /// A tenant, an active user in it, and an API key for that user; returns the key.
    pub async fn api_key(&self, tenant: &str, subject: &str) -> String {
        self.create_tenant(tenant).await;
        self.user_key(tenant, subject).await
    }

    /// A new active user in an existing tenant, and an API key for it.
    pub async fn user_key(&self, tenant: &str, subject: &str) -> String {
        assert_eq!(
            self.put_user(tenant, subject, serde_json::json!({}))
                .await
                .status(),
            201
        );
        self.user_key_of(tenant, subject).await
    }

    /// A new API key for a user who exists.
    pub async fn user_key_of(&self, tenant: &str, subject: &str) -> String {
        let response = self
            .admin(
                reqwest::Method::POST,
                &format!("/tenants/{tenant}/users/{}/keys", encode(subject)),
            )
            .json(&serde_json::json!({ "name": "test" }))
            .send()
            .await
            .expect("request");
        let (status, body) = json(response).await;
        assert_eq!(status, 201, "{body}");
        body["key"].as_str().expect("a key").to_owned()
    }

    /// Sets a user's quota (`PUT …/users/{subject}/quota`); panics unless it is accepted.
    pub async fn put_user_quota(&self, tenant: &str, subject: &str, body: Value) {
        let response = self
            .admin(
                reqwest::Method::PUT,
                &format!("/tenants/{tenant}/users/{}/quota", encode(subject)),
            )
            .json(&body)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "quota of {subject}: {}",
            response.status()
        );
    }

    /// `GET path` on the data plane with `bearer` as the credential.
    pub async fn get_as(&self, path: &str, bearer: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_user(&self, tenant: &str, subject: &str, body: Value) -> reqwest::Response {
        self.admin(
            reqwest::Method::PUT,
            &format!("/tenants/{tenant}/users/{}", encode(subject)),
        )
        .json(&body)
        .send()
        .await
        .expect("request")
    }
}

/// Percent-encodes one path segment (everything but unreserved characters).
pub fn encode(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Status and JSON body of a response.
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The `error.code` of an OpenAI error envelope.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// A file of the test fixtures.
pub fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `promtool` (Prometheus's linter and rule tester) in the repository root, with `stdin`
/// as its input. `None` when it is not installed, which only a run outside CI may skip:
/// `.ci/run` installs it.
pub fn promtool(args: &[&str], stdin: &str) -> Option<std::process::Output> {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run promtool: apt-get install prometheus"
        );
        eprintln!(
            "skipping `promtool {}`: promtool is not installed (apt-get install prometheus)",
            args.join(" ")
        );
        return None;
    };
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    Some(child.wait_with_output().expect("promtool runs"))
}
