//! Webhooks, black-box: a gateway delivering to a receiver on loopback that checks every
//! signature with the Python `standardwebhooks` package (`receiver.py`), not with tollgate's
//! own code.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate::config::Config;

use crate::support::TestApp;

mod lifecycle;
mod outage;
mod registration;
mod thresholds;

const RECEIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/webhooks/receiver.py"
);

/// Fast delivery for tests, to a receiver on loopback.
pub fn fast_webhooks(config: &mut Config) {
    config.webhooks.allow_private_destinations = true;
    config.webhooks.poll_interval = Duration::from_millis(50);
    config.webhooks.retry_initial_backoff = Duration::from_millis(100);
    config.webhooks.retry_max_backoff = Duration::from_millis(400);
    config.webhooks.timeout = Duration::from_secs(5);
}

/// The same as TOML, for a gateway run as its own process.
pub const FAST_WEBHOOKS_TOML: &str = "[webhooks]\nallow_private_destinations = true\n\
     poll_interval = \"50ms\"\nretry_initial_backoff = \"100ms\"\nretry_max_backoff = \"400ms\"\n";

/// How the receiver answers.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer 500 to the first attempt of each event.
    pub fail_first: bool,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
}

/// `receiver.py`, running; killed when dropped.
pub struct Receiver {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    behaviour: Behaviour,
}

impl Receiver {
    /// The receiver, or `None` (the test skips, saying why) when Python's `standardwebhooks`
    /// is not installed — except in CI, which must run these tests.
    pub fn start(dir: &Path, behaviour: Behaviour) -> Option<Self> {
        let installed = Command::new("python3")
            .args(["-c", "import standardwebhooks"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the webhook tests: pip install 'standardwebhooks==1.0.0'"
            );
            eprintln!("skipped: pip install 'standardwebhooks==1.0.0' to run the webhook tests");
            return None;
        }
        let mut receiver = Self {
            child: None,
            port: 0,
            dir: dir.to_owned(),
            behaviour,
        };
        receiver.launch();
        Some(receiver)
    }

    fn launch(&mut self) {
        let mut command = Command::new("python3");
        command
            .arg(RECEIVER)
            .arg("--log")
            .arg(self.dir.join("deliveries.jsonl"))
            .arg("--secrets")
            .arg(self.dir.join("secrets"))
            .arg("--port")
            .arg(self.port.to_string());
        if self.behaviour.fail_first {
            command.arg("--fail-first");
        }
        if let Some(delay) = self.behaviour.delay {
            command.arg("--delay").arg(delay.as_secs_f64().to_string());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the webhook receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the receiver says where it listens");
        self.port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                panic!("receiver.py did not start (is standardwebhooks installed?): {line:?}")
            });
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// Tells the receiver an endpoint's secret.
    pub fn trust(&self, secret: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("secrets"))
            .unwrap();
        writeln!(file, "{secret}").unwrap();
    }

    /// Stops listening: deliveries find the port closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Listens again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("deliveries.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The distinct events answered 2xx, once `n` of them have arrived (panics after 20 s).
    pub async fn delivered(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            let mut ids = std::collections::BTreeSet::new();
            let delivered: Vec<Value> = received
                .iter()
                .filter(|r| r["answered"].as_u64().is_some_and(|s| s < 300))
                .filter(|r| ids.insert(r["id"].as_str().unwrap().to_owned()))
                .cloned()
                .collect();
            if delivered.len() >= n {
                for request in &received {
                    assert_eq!(request["verified"], true, "signature verified: {request}");
                }
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} events delivered; received: {received:#?}",
                delivered.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Registers an endpoint for `events` at the receiver; returns its id and tells the receiver
/// its secret.
pub async fn register(app: &TestApp, tenant: &str, receiver: &Receiver, body: Value) -> String {
    let mut body = body;
    body["url"] = json!(receiver.url());
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/tenants/{tenant}/webhooks"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, created) = crate::support::json(response).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.trust(secret);
    created["id"].as_str().unwrap().to_owned()
}

/// An endpoint's delivery log.
pub async fn deliveries(app: &TestApp, tenant: &str, id: &str) -> Vec<Value> {
    let response = app
        .admin(
            reqwest::Method::GET,
            &format!("/tenants/{tenant}/webhooks/{id}/deliveries"),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = crate::support::json(response).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}
