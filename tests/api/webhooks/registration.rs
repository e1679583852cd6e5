//! Registering endpoints: what is refused and why, the secret shown once, removal.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, error_code, json};

async fn post(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .admin(Method::POST, "/tenants/acme/webhooks")
        .json(&body)
        .send()
        .await
        .unwrap();
    json(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_destinations_are_refused_unless_the_operator_allows_them() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_tenant("acme").await;
    for url in [
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://10.0.0.8/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
    ] {
        let (status, body) = post(&app, json!({"url": url, "events": ["user.created"]})).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(error_code(&body), "invalid_request", "{body}");
        assert_eq!(body["error"]["param"], "url");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("allow_private_destinations"),
            "{body}"
        );
    }

    let allowed = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.webhooks.allow_private_destinations = true;
    })
    .await;
    allowed.create_tenant("acme").await;
    let (status, body) = post(
        &allowed,
        json!({"url": "http://127.0.0.1:9/hooks", "events": ["user.created"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_is_checked_shown_without_its_secret_and_removed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_tenant("acme").await;
    let public = "https://hooks.example.com/tollgate";
    for (body, field) in [
        (json!({"url": public, "events": []}), "events"),
        (
            json!({"url": public, "events": ["user.exploded"]}),
            "events",
        ),
        (
            json!({"url": public, "events": ["quota.threshold"], "thresholds": [0]}),
            "thresholds",
        ),
        (
            json!({"url": public, "events": ["quota.threshold"], "thresholds": [101]}),
            "thresholds",
        ),
        (
            json!({"url": "ftp://example.com/", "events": ["user.created"]}),
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["user.created"]}),
            "url",
        ),
    ] {
        let (status, answer) = post(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["param"], field, "{answer}");
    }
    let (status, answer) = post(&app, json!({"url": public, "events": "user.created"})).await;
    assert_eq!(status, 400, "a wrong type: {answer}");

    let (status, created) = post(
        &app,
        json!({"url": public, "events": ["user.created", "quota.threshold", "user.created"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(
        created["events"],
        json!(["quota.threshold", "user.created"])
    );
    assert_eq!(created["thresholds"], json!([50, 80, 100]), "the defaults");
    let id = created["id"].as_str().unwrap();

    let read = app
        .admin(Method::GET, &format!("/tenants/acme/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    let (status, endpoint) = json(read).await;
    assert_eq!(status, 200);
    assert_eq!(endpoint["url"], public);
    assert!(
        !endpoint.to_string().contains(secret),
        "shown once: {endpoint}"
    );
    let list = app
        .admin(Method::GET, "/tenants/acme/webhooks")
        .send()
        .await
        .unwrap();
    let (_, list) = json(list).await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret));

    let removed = app
        .admin(Method::DELETE, &format!("/tenants/acme/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    for path in [
        format!("/tenants/acme/webhooks/{id}"),
        format!("/tenants/acme/webhooks/{id}/deliveries"),
    ] {
        let response = app.admin(Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let again = app
        .admin(Method::DELETE, &format!("/tenants/acme/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}
