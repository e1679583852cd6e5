//! A database outage on PostgreSQL: callers already cached (an API key and a JWT) keep being
//! served for `auth.stale_if_error` past `auth.cache_ttl`, callers never seen fail closed with
//! 503, `/readyz` says "degraded" (not 503) meanwhile, and the stale serving is counted.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::hs_token;
use crate::metering::Outage;
use crate::support::{Backend, MOCK_MODEL, TestApp, json};

const CACHE_TTL: Duration = Duration::from_secs(1);
const STALE_IF_ERROR: Duration = Duration::from_secs(3);

impl TestApp {
    async fn readyz(&self) -> (u16, Value) {
        json(self.client.get(self.url("/readyz")).send().await.unwrap()).await
    }
}

/// The sum of `tollgate_stale_served_total` over its labels, from a scrape.
fn stale_served(scrape: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| line.starts_with("tollgate_stale_served_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_callers_outlive_the_cache_ttl_in_a_database_outage() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let mock = tollgate::Config::from_toml(MOCK_MODEL).unwrap();
    let app = TestApp::spawn_with(backend.clone(), |config| {
        config.providers = mock.providers;
        config.models = mock.models;
        config.auth.cache_ttl = CACHE_TTL;
        config.auth.negative_cache_ttl = CACHE_TTL / 2;
        config.auth.stale_if_error = STALE_IF_ERROR;
    })
    .await;
    let warm_key = app.api_key("acme", "jane").await;
    let cold_key = app.user_key("acme", "bob").await;
    app.register_issuer(
        "https://idp.test",
        json!({ "tenant": "acme", "hs256_secret": super::HS_SECRET }),
    )
    .await;
    // A `jti`, so the revocation list is read too.
    let jwt = hs_token("https://idp.test", "jane", json!({ "jti": "t-1" }));
    assert_eq!(app.ask(&warm_key, "m").await.0, 200);
    assert_eq!(app.ask(&jwt, "m").await.0, 200);
    let served_before = stale_served(&app.metrics().await);

    let outage = Outage::begin(&backend, &app.config.database.url).await;
    let started = Instant::now();
    // Well past the cache TTL, the warm callers are still served.
    while started.elapsed() < CACHE_TTL * 2 {
        assert_eq!(app.ask(&warm_key, "m").await.0, 200, "warm API key");
        assert_eq!(app.ask(&jwt, "m").await.0, 200, "warm JWT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.ask(&warm_key, "m").await.0, 200);
    assert_eq!(app.ask(&jwt, "m").await.0, 200);
    // Never seen: fail closed, and as our failure (503), not the caller's (401).
    assert_eq!(app.ask(&cold_key, "m").await.0, 503, "cold API key");
    let (status, ready) = app.readyz().await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["down"], json!(["database"]), "{ready}");
    assert!(
        stale_served(&app.metrics().await) > served_before,
        "tollgate_stale_served_total counts what was served stale"
    );

    // Past the stale window, the last good copies are gone too: 503 for everyone.
    let deadline = CACHE_TTL + STALE_IF_ERROR + Duration::from_secs(2);
    loop {
        let (key, token) = (app.ask(&warm_key, "m").await.0, app.ask(&jwt, "m").await.0);
        if key == 503 && token == 503 {
            break;
        }
        // The two expire a moment apart (their rows were read at different times).
        assert!([200, 503].contains(&key) && [200, 503].contains(&token));
        assert!(
            started.elapsed() < deadline,
            "still served stale at {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        started.elapsed() > STALE_IF_ERROR,
        "stale served too briefly"
    );
    // Nothing left to serve: now this replica is not ready.
    let deadline = Instant::now() + CACHE_TTL + Duration::from_secs(1);
    while app.readyz().await.0 != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz stays 200 with nothing to serve"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The database back: everyone is served again.
    outage.end().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.ask(&cold_key, "m").await.0 != 200 || app.ask(&jwt, "m").await.0 != 200 {
        assert!(Instant::now() < deadline, "not served after the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.readyz().await, (200, json!({ "status": "ready" })));
}
