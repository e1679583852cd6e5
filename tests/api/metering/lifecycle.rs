//! No usage lost: SIGTERM with streams in flight, and the database going away under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tollgate::metering::Ending;
use tollgate::store::Store;
use tollgate_testkit::{Step, Upstream};

use super::{Outage, wait_for_count};
use crate::support::{Backend, TestApp, on_both_backends};

/// `tollgate serve` as its own process on SQLite in `dir`, model `m` on `upstream`, with
/// `server` TOML lines added to its `[server]` section; a tenant `acme` with user `jane`.
/// Returns the process, its base URL and jane's API key.
async fn serve_one(
    dir: &std::path::Path,
    upstream: &str,
    server: &str,
) -> (std::process::Child, String, String) {
    let database = format!("sqlite://{}", dir.join("t.db").display());
    let (child, base) = serve_on(dir, &database, upstream, server);
    let key = jane_key(&base).await;
    (child, base, key)
}

pub(crate) const ADMIN_TOKEN: &str = "sigterm-test-admin-token-0123456789";

/// `tollgate serve` as its own process on `database`, spill directory `dir/spill`, model `m` on
/// `upstream`, with `server` TOML lines added to its `[server]` section (which may go on with
/// tables of their own).
pub(crate) fn serve_on(
    dir: &std::path::Path,
    database: &str,
    upstream: &str,
    server: &str,
) -> (std::process::Child, String) {
    let config = dir.join("tollgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [server]
            listen = "127.0.0.1:0"
            {server}
            [database]
            url = "{database}"
            [metering]
            spill_dir = "{spill}"
            [[providers]]
            name = "up"
            kind = "openai"
            base_url = "{upstream}"
            [[models]]
            name = "m"
            targets = [{{ provider = "up", model = "real-m" }}]
            "#,
            spill = dir.join("spill").display(),
        ),
    )
    .unwrap();
    let mut command = crate::cli::tollgate(dir);
    command
        .arg("--config")
        .arg(&config)
        .env("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN);
    let (child, addr, _, lines) = crate::cli::serve(command);
    // Keep reading the log so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

/// Creates tenant `acme` and user `jane` through the admin API at `base`; jane's API key.
pub(super) async fn jane_key(base: &str) -> String {
    let client = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        client
            .post(format!("{base}/admin/v1{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    admin("/tenants", json!({"id": "acme", "name": "Acme"}))
        .await
        .unwrap();
    client
        .put(format!("{base}/admin/v1/tenants/acme/users/jane"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let created: Value = admin("/tenants/acme/users/jane/keys", json!({"name": "k"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["key"].as_str().unwrap().to_owned()
}

/// Opens `n` streams with request ids `{tag}-{i}`; each task returns the body the client got.
fn open_streams(
    base: &str,
    key: &str,
    tag: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<String>> {
    let client = reqwest::Client::new();
    (0..n)
        .map(|i| {
            let client = client.clone();
            let url = format!("{base}/v1/chat/completions");
            let key = key.to_owned();
            let id = format!("{tag}-{i}");
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(key)
                    .header("x-request-id", id)
                    .json(&json!({"model": "m", "stream": true,
                                  "messages": [{"role": "user", "content": "hi"}]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.text().await.unwrap_or_default()
            })
        })
        .collect()
}

/// `tollgate serve` as its own process, SIGTERM while 100 streams are open: every request that
/// started is recorded once.
#[tokio::test]
async fn sigterm_during_100_streams_records_every_request_once() {
    let upstream = Upstream::always(Step::Slow(Duration::from_millis(150))).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, key) = serve_one(dir.path(), &upstream.base_url, "").await;
    let streams = open_streams(&base, &key, "inflight", 100);
    for _ in 0..200 {
        if upstream.hits() >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(upstream.hits(), 100, "all 100 streams are open");
    crate::cli::terminate(&child);
    for stream in streams {
        let body = stream.await.unwrap();
        assert!(
            body.ends_with("data: [DONE]\n\n"),
            "in-flight streams finish: {body}"
        );
    }
    assert!(child.wait().unwrap().success());
    for event in billed_once(dir.path(), "inflight", 100).await {
        assert!(event.tally.total_tokens > 0);
    }
}

/// Checks that `serve_one`'s database in `dir` holds exactly `n` events; returns those of
/// requests `{tag}-0`, the middle one and the last.
async fn billed_once(
    dir: &std::path::Path,
    tag: &str,
    n: usize,
) -> Vec<tollgate::metering::UsageEvent> {
    let store = Store::connect(&format!("sqlite://{}", dir.join("t.db").display()), 1)
        .await
        .unwrap();
    assert_eq!(
        store.usage_count().await.unwrap(),
        n as i64,
        "every request billed, once"
    );
    let mut events = Vec::new();
    for i in [0, n / 2, n - 1] {
        let id = format!("{tag}-{i}");
        events.push(store.usage_event(&id).await.unwrap().expect(&id));
    }
    events
}

/// SIGTERM with a 2 s grace period while 30 streams run on an upstream that never finishes: at
/// the end of the grace period each stream gets an error event and `[DONE]`, the process exits,
/// and every one of them is billed (the prompt and what was delivered, estimated).
#[tokio::test]
async fn streams_cut_at_the_end_of_the_grace_period_are_billed() {
    let upstream = Upstream::always(Step::Endless).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, key) =
        serve_one(dir.path(), &upstream.base_url, r#"shutdown_grace = "2s""#).await;
    let streams = open_streams(&base, &key, "cut", 30);
    for _ in 0..300 {
        if upstream.hits() >= 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(upstream.hits(), 30, "all 30 streams are open");
    let stopped = std::time::Instant::now();
    crate::cli::terminate(&child);
    for stream in streams {
        let body = stream.await.unwrap();
        assert!(
            body.contains(r#""code":"unavailable""#) && body.ends_with("data: [DONE]\n\n"),
            "a cut stream ends with an error event and [DONE]: {body}"
        );
    }
    assert!(child.wait().unwrap().success());
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "the grace period, then a prompt stop: {took:?}"
    );
    for event in billed_once(dir.path(), "cut", 30).await {
        assert!(
            event.tally.total_tokens > 0 && event.tally.completion_tokens > 0,
            "{event:?}"
        );
        assert!(event.estimated);
        assert_eq!(event.status, Ending::ShutDown, "stored as it ended");
    }
}

on_both_backends!(the_database_going_away_under_load_loses_no_usage);

/// Traffic keeps flowing while the database is away for 10 s; afterwards every answered
/// request is in the database exactly once.
async fn the_database_going_away_under_load_loses_no_usage(backend: Backend) {
    let app = TestApp::spawn_with(backend.clone(), |config| {
        let upstreams = tollgate::Config::from_toml(
            r#"
            [[providers]]
            name = "mock"
            kind = "mock"
            [[models]]
            name = "m"
            targets = [{ provider = "mock", model = "mock-1" }]
            "#,
        )
        .unwrap();
        config.providers = upstreams.providers;
        config.models = upstreams.models;
        config.metering.flush_interval = Duration::from_millis(20);
        config.metering.spill_after = Duration::from_secs(1);
        config.metering.retry_max_backoff = Duration::from_millis(300);
    })
    .await;
    let key = app.api_key("acme", "jane").await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let client = app.client.clone();
        let url = app.url("/v1/chat/completions");
        tokio::spawn(async move {
            let mut answered = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let id = format!("load-{i}");
                let sent = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("x-request-id", &id)
                    .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
                    .timeout(Duration::from_secs(15))
                    .send()
                    .await;
                if let Ok(response) = sent
                    && response.status() == 200
                {
                    answered.push(id);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answered
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outage = Outage::begin(&backend, &app.config.database.url).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    outage.end().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let answered = load.await.unwrap();
    assert!(answered.len() > 20, "traffic flowed: {}", answered.len());

    let store = Store::connect(&app.config.database.url, 2).await.unwrap();
    wait_for_count(&store, answered.len() as i64, Duration::from_secs(20)).await;
    assert_eq!(
        store.usage_count().await.unwrap(),
        answered.len() as i64,
        "exactly once"
    );
    for id in &answered {
        assert!(
            store.usage_event(id).await.unwrap().is_some(),
            "{id} was lost"
        );
    }
}
