//! Who may call the admin API, and what every response carries.

use reqwest::Method;
use serde_json::json;

use crate::support::{Backend, TestApp, error_code, json, on_both_backends};

on_both_backends!(
    admin_routes_need_the_platform_token,
    health_and_readiness_answer_with_request_ids,
    state_survives_a_restart,
);

async fn admin_routes_need_the_platform_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = app.url("/admin/v1/tenants");

    let none = app.client.get(&url).send().await.unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let (status, none_body) = json(none).await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&none_body), "invalid_credentials");

    let (status, wrong_body) = json(
        app.client
            .get(&url)
            .bearer_auth("nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(wrong_body, none_body, "every refusal looks the same");

    let (status, _) = json(app.admin(Method::GET, "/tenants").send().await.unwrap()).await;
    assert_eq!(status, 200);
}

async fn health_and_readiness_answer_with_request_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(!health.headers()["x-request-id"].is_empty());

    let ready = app
        .client
        .get(app.url("/readyz"))
        .header("x-request-id", "my-trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.headers()["x-request-id"],
        "my-trace-123",
        "the client's id is echoed"
    );

    let (status, body) = json(app.client.get(app.url("/nope")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "not_found");
}

async fn state_survives_a_restart(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    assert_eq!(
        app.put_user("acme", "auth0|jane", json!({"role": "admin"}))
            .await
            .status(),
        201
    );
    let response = app
        .admin(Method::POST, "/issuers")
        .json(&json!({
            "issuer": "https://idp.example.com",
            "tenant": "acme",
            "audiences": ["tollgate"],
            "hs256_secret": "0123456789abcdef0123456789abcdef",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    app.restart().await;

    let (_, tenants) = json(app.admin(Method::GET, "/tenants").send().await.unwrap()).await;
    assert_eq!(tenants[0]["id"], "acme");
    let (status, user) = json(
        app.admin(Method::GET, "/tenants/acme/users/auth0%7Cjane")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(user["role"], "admin");
    let (_, issuers) = json(app.admin(Method::GET, "/issuers").send().await.unwrap()).await;
    assert_eq!(issuers[0]["issuer"], "https://idp.example.com");
}

#[tokio::test]
async fn without_a_token_the_admin_api_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tollgate::Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.database.url = format!("sqlite://{}", dir.path().join("t.db").display());
    config.metering.spill_dir = dir.path().join("spill");
    let gateway = tollgate::Gateway::start(config, None).await.unwrap();
    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{}/admin/v1/tenants", gateway.addr))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // An empty variable does not enable it either.
    gateway.shutdown().await.unwrap();
    let mut config = tollgate::Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.database.url = format!("sqlite://{}", dir.path().join("t.db").display());
    config.metering.spill_dir = dir.path().join("spill");
    let gateway = tollgate::Gateway::start(config, Some("  ".into()))
        .await
        .unwrap();
    let response = client
        .get(format!("http://{}/admin/v1/tenants", gateway.addr))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    gateway.shutdown().await.unwrap();
}

/// The shutdown grace period counts from the stop signal: a gateway keeps serving long after
/// `server.shutdown_grace` has passed since it started.
#[tokio::test]
async fn serving_outlives_the_shutdown_grace_period() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.server.shutdown_grace = std::time::Duration::from_millis(200);
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
