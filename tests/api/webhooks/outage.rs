//! Nothing is lost: not while the receiver is down, not when the gateway is stopped with
//! deliveries still to make.

use std::process::Child;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::{Behaviour, FAST_WEBHOOKS_TOML, Receiver, deliveries, fast_webhooks, register};
use crate::metering::lifecycle::{ADMIN_TOKEN, serve_on};
use crate::support::{Backend, TestApp, on_both_backends};

fn subjects(events: &[Value]) -> Vec<String> {
    let mut subjects: Vec<String> = events
        .iter()
        .map(|d| d["event"]["data"]["subject"].as_str().unwrap().to_owned())
        .collect();
    subjects.sort();
    subjects
}

on_both_backends!(events_wait_out_a_receiver_outage);

async fn events_wait_out_a_receiver_outage(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut receiver) = Receiver::start(dir.path(), Behaviour::default()) else {
        return;
    };
    let app = TestApp::spawn_with(backend, fast_webhooks).await;
    app.create_tenant("acme").await;
    let endpoint = register(&app, "acme", &receiver, json!({"events": ["user.created"]})).await;

    receiver.stop();
    let names: Vec<String> = (0..5).map(|i| format!("user-{i}")).collect();
    for name in &names {
        assert_eq!(app.put_user("acme", name, json!({})).await.status(), 201);
    }
    // Every event is tried, fails, and waits for the next attempt.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(&app, "acme", &endpoint).await;
        let retried = log
            .iter()
            .filter(|d| d["status"] == "pending" && d["attempts"].as_i64() >= Some(2))
            .count();
        if retried == names.len() {
            for entry in &log {
                let error = entry["last_error"].as_str().unwrap();
                assert!(!error.is_empty(), "{entry}");
                assert!(entry["next_attempt_at"].is_string(), "{entry}");
                assert_eq!(
                    entry["last_status"],
                    Value::Null,
                    "no receiver answered: {entry}"
                );
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries not retried: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    receiver.restart();
    let delivered = receiver.delivered(names.len()).await;
    assert_eq!(subjects(&delivered), names);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = deliveries(&app, "acme", &endpoint).await;
        if log.iter().all(|d| d["status"] == "delivered") {
            assert!(
                log.iter().all(|d| d["attempts"].as_i64() >= Some(3)),
                "{log:#?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{log:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `tollgate serve` as its own process on `database`, with fast webhooks to loopback.
fn serve(dir: &std::path::Path, database: &str) -> (Child, String) {
    // No request reaches an upstream here.
    serve_on(dir, database, "http://127.0.0.1:9", FAST_WEBHOOKS_TOML)
}

async fn admin(base: &str, method: Method, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{base}/admin/v1{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    crate::support::json(response).await
}

/// SIGTERM while deliveries are in flight and more are waiting: the gateway finishes the
/// attempts it started, and the next start sends the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_stopped_mid_way_delivers_the_rest_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let receiver_dir = dir.path().join("receiver");
    std::fs::create_dir_all(&receiver_dir).unwrap();
    // A slow receiver: 40 events take 5 s at 8 at a time, far longer than making them.
    let Some(receiver) = Receiver::start(
        &receiver_dir,
        Behaviour {
            delay: Some(Duration::from_millis(1000)),
            ..Behaviour::default()
        },
    ) else {
        return;
    };
    let database = format!("sqlite://{}", dir.path().join("t.db").display());
    let (mut gateway, base) = serve(dir.path(), &database);
    let (code, _) = admin(
        &base,
        Method::POST,
        "/tenants",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, created) = admin(
        &base,
        Method::POST,
        "/tenants/acme/webhooks",
        json!({"url": receiver.url(), "events": ["user.created"]}),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    receiver.trust(created["secret"].as_str().unwrap());

    let names: Vec<String> = (0..40).map(|i| format!("user-{i:02}")).collect();
    for name in &names {
        let (code, body) = admin(
            &base,
            Method::PUT,
            &format!("/tenants/acme/users/{name}"),
            json!({}),
        )
        .await;
        assert_eq!(code, 201, "{body}");
    }
    // Let the first attempts start, then stop the gateway as an orchestrator would: it
    // finishes the attempts in flight and leaves the rest in the outbox.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(gateway.wait().unwrap().success(), "a clean exit on SIGTERM");
    let before_restart = receiver.received().len();
    assert!(
        before_restart > 0 && before_restart < names.len(),
        "the gateway stopped mid-way ({before_restart} of {} sent)",
        names.len()
    );

    let (mut gateway, _) = serve(dir.path(), &database);
    let delivered = receiver.delivered(names.len()).await;
    assert_eq!(subjects(&delivered), names);
    gateway.kill().unwrap();
    gateway.wait().unwrap();
}

/// An event the receiver never takes is retried until `webhooks.give_up_after`, then given up:
/// the log says `failed` with the last error, and the worker stops trying it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_never_taken_is_given_up_after_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut receiver) = Receiver::start(dir.path(), Behaviour::default()) else {
        return;
    };
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        fast_webhooks(config);
        config.webhooks.give_up_after = Duration::from_millis(800);
    })
    .await;
    app.create_tenant("acme").await;
    let endpoint = register(&app, "acme", &receiver, json!({"events": ["user.created"]})).await;
    receiver.stop();
    assert_eq!(app.put_user("acme", "gone", json!({})).await.status(), 201);

    let deadline = Instant::now() + Duration::from_secs(10);
    let given_up = loop {
        let log = deliveries(&app, "acme", &endpoint).await;
        if log[0]["status"] == "failed" {
            break log[0].clone();
        }
        assert!(Instant::now() < deadline, "not given up: {log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let attempts = given_up["attempts"].as_i64().unwrap();
    assert!(attempts >= 2, "retried before giving up: {given_up}");
    assert!(!given_up["last_error"].as_str().unwrap().is_empty());
    assert_eq!(
        given_up["next_attempt_at"],
        Value::Null,
        "nothing more planned"
    );
    // Given up means given up: the receiver back, nothing is sent.
    receiver.restart();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(receiver.received().is_empty());
    let log = deliveries(&app, "acme", &endpoint).await;
    assert_eq!(log[0]["attempts"].as_i64(), Some(attempts));
    assert!(
        app.metrics().await.lines().any(|line| line
            .starts_with("tollgate_webhook_deliveries_total{result=\"gave_up\"}")
            && !line.ends_with(" 0")),
        "counted as given up"
    );
}
