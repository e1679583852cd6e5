//! Key rotation, fetch storms and JWKS outages.

use std::time::{Duration, Instant};

use serde_json::json;

use super::idp::{self, JwksServer, sign, sign_with_header};
use crate::support::{Backend, TestApp};

const ISS: &str = "https://idp.acme.test";

async fn app(cooldown: Duration, jwks: &JwksServer) -> TestApp {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.auth.jwks_refetch_cooldown = cooldown;
        config.auth.jwks_timeout = Duration::from_millis(800);
    })
    .await;
    app.create_tenant("acme").await;
    app.put_user("acme", "jane", json!({})).await;
    app.register_issuer(ISS, json!({"tenant": "acme", "jwks_url": jwks.url()}))
        .await;
    app
}

#[tokio::test]
async fn a_new_kid_works_after_one_refetch() {
    let jwks = JwksServer::start(&["rsa-1"]).await;
    let app = app(Duration::from_millis(500), &jwks).await;
    app.assert_accepted(&sign("rsa-1", &idp::claims(ISS, "jane")))
        .await;
    assert_eq!(jwks.hits(), 1, "fetched on first use");

    // The identity provider rotates to a new key.
    jwks.serve_keys(json!([idp::public_jwk("rsa-1"), idp::public_jwk("rsa-2")]))
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let hits = jwks.hits();
    app.assert_accepted(&sign("rsa-2", &idp::claims(ISS, "jane")))
        .await;
    assert_eq!(jwks.hits(), hits + 1, "exactly one refetch for the new kid");
    app.assert_accepted(&sign("rsa-2", &idp::claims(ISS, "jane")))
        .await;
    assert_eq!(jwks.hits(), hits + 1, "and none after it");
}

#[tokio::test]
async fn a_flood_of_random_kids_causes_at_most_one_fetch_per_cooldown() {
    let jwks = JwksServer::start(&["rsa-1"]).await;
    let app = app(Duration::from_secs(30), &jwks).await;
    app.assert_accepted(&sign("rsa-1", &idp::claims(ISS, "jane")))
        .await;
    let before = jwks.hits();
    let requests = (0..100).map(|i| {
        let token = sign_with_header(
            "rsa-1",
            &json!({"alg": "RS256", "kid": format!("random-{i}-{}", uuid::Uuid::new_v4())}),
            &idp::claims(ISS, "jane"),
        );
        let app = &app;
        async move { app.call(&token).await.0 }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(
        jwks.hits(),
        before,
        "the last fetch is within the cooldown: no fetch at all"
    );
}

#[tokio::test]
async fn a_warm_issuer_survives_a_jwks_outage_and_a_cold_one_fails_closed_fast() {
    let jwks = JwksServer::start(&["rsa-1", "ec-1"]).await;
    let app = app(Duration::from_millis(100), &jwks).await;
    app.assert_accepted(&sign("rsa-1", &idp::claims(ISS, "jane")))
        .await;

    jwks.set_down(true);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // New tokens (not in the token cache) still verify with the keys already held.
    for kid in ["rsa-1", "ec-1", "rsa-1"] {
        app.assert_accepted(&sign(kid, &idp::claims(ISS, "jane")))
            .await;
    }
    // An unknown kid during the outage: refused, and the held keys survive the failed refetch.
    let unknown = sign_with_header(
        "rsa-1",
        &json!({"alg": "RS256", "kid": "new"}),
        &idp::claims(ISS, "jane"),
    );
    app.assert_refused(&unknown, "unknown_key_id").await;
    app.assert_accepted(&sign("ec-1", &idp::claims(ISS, "jane")))
        .await;

    // A cold issuer whose endpoint hangs: refused within the fetch timeout.
    let cold = JwksServer::start(&["ed-1"]).await;
    cold.set_hang(true);
    app.register_issuer(
        "https://cold.test",
        json!({"tenant": "acme", "jwks_url": cold.url()}),
    )
    .await;
    let started = Instant::now();
    let (status, _) = app
        .call(&sign("ed-1", &idp::claims("https://cold.test", "jane")))
        .await;
    assert_eq!(status, 401);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed closed in {:?}",
        started.elapsed()
    );

    // A JWKS URL that redirects is not followed.
    app.register_issuer(
        "https://redirected.test",
        json!({"tenant": "acme", "jwks_url": format!("{}/redirect", jwks.base)}),
    )
    .await;
    jwks.set_down(false);
    let token = sign("rsa-1", &idp::claims("https://redirected.test", "jane"));
    app.assert_refused(&token, "unknown_key_id").await;
}
