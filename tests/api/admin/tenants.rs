//! `/admin/v1/tenants` and allow-lists.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, error_code, json, on_both_backends};

on_both_backends!(
    tenants_are_created_read_updated_and_soft_deleted,
    bad_tenant_input_is_refused_and_nothing_is_written,
    model_allow_lists_round_trip,
    oversized_bodies_get_413,
);

async fn tenants_are_created_read_updated_and_soft_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, created) = json(
        app.admin(Method::POST, "/tenants")
            .json(&json!({"id": "acme", "name": "Acme Corp"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(created["id"], "acme");
    assert_eq!(created["status"], "active");
    assert!(
        created["created_at"].as_str().unwrap().ends_with('Z'),
        "UTC: {created}"
    );

    let (status, body) = json(
        app.admin(Method::POST, "/tenants")
            .json(&json!({"id": "acme", "name": "Again"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(error_code(&body), "conflict");

    app.create_tenant("globex").await;
    let (_, list) = json(app.admin(Method::GET, "/tenants").send().await.unwrap()).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "globex"]);

    let (status, patched) = json(
        app.admin(Method::PATCH, "/tenants/acme")
            .json(&json!({"name": "Acme Inc", "status": "disabled"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(patched["name"], "Acme Inc");
    assert_eq!(patched["status"], "disabled");
    let (_, got) = json(
        app.admin(Method::GET, "/tenants/acme")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got["name"], "Acme Inc");

    let (status, deleted) = json(
        app.admin(Method::DELETE, "/tenants/globex")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["status"], "deleted");
    assert!(deleted["deleted_at"].is_string());
    let (_, list) = json(app.admin(Method::GET, "/tenants").send().await.unwrap()).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "deleted tenants are not listed"
    );
    let (_, all) = json(
        app.admin(Method::GET, "/tenants?include_deleted=true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 2, "but they are kept");
    let (status, _) = json(
        app.admin(Method::POST, "/tenants")
            .json(&json!({"id": "globex", "name": "Reuse"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "a deleted tenant's id is never reused");

    for (method, path) in [
        (Method::GET, "/tenants/nope"),
        (Method::PATCH, "/tenants/nope"),
        (Method::DELETE, "/tenants/nope"),
        (Method::DELETE, "/tenants/globex"),
    ] {
        let mut request = app.admin(method.clone(), path);
        if method == Method::PATCH {
            request = request.json(&json!({"name": "x"}));
        }
        let (status, body) = json(request.send().await.unwrap()).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(error_code(&body), "not_found");
    }
}

async fn bad_tenant_input_is_refused_and_nothing_is_written(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"id": "a".repeat(65), "name": "x"}), "`id`"),
        (json!({"id": "bad\u{7}id", "name": "x"}), "`id`"),
        (json!({"id": "has/slash", "name": "x"}), "`id`"),
        (json!({"id": "", "name": "x"}), "`id`"),
        (json!({"id": 7, "name": "x"}), "`id`"),
        (
            json!({"id": "ok", "name": "x", "plan": "gold"}),
            "unknown field `plan`",
        ),
        (json!({"id": "ok"}), "missing field `name`"),
        (json!({"id": "ok", "name": "line\nbreak"}), "`name`"),
        (json!(["not", "an", "object"]), "invalid type"),
    ];
    for (body, expected) in cases {
        let (status, answer) = json(
            app.admin(Method::POST, "/tenants")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error_code(&answer), "invalid_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body} → {message}");
    }
    let (status, answer) = json(
        app.admin(Method::POST, "/tenants")
            .header("content-type", "application/json")
            .body("{\"id\": \"ok\", ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let (status, _) = json(
        app.admin(Method::PATCH, "/tenants/ok")
            .json(&json!({"status": "deleted"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    // A query string that does not parse is a 400 in the envelope too, not axum's plain text.
    for path in [
        "/tenants?include_deleted=maybe",
        "/tenants/ok/users?colour=blue",
    ] {
        let (status, answer) = json(app.admin(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(error_code(&answer), "invalid_request", "{path}: {answer}");
    }

    let (_, list) = json(
        app.admin(Method::GET, "/tenants?include_deleted=true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list, json!([]), "nothing was written");
}

async fn model_allow_lists_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    let (status, all) = json(
        app.admin(Method::GET, "/tenants/acme/models")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(all, Value::Null, "every model by default");

    let (status, set) = json(
        app.admin(Method::PUT, "/tenants/acme/models")
            .json(&json!(["gpt-4o-mini", "claude-sonnet"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(set, json!(["gpt-4o-mini", "claude-sonnet"]));
    let (_, tenant) = json(
        app.admin(Method::GET, "/tenants/acme")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        tenant["allowed_models"],
        json!(["gpt-4o-mini", "claude-sonnet"])
    );

    let (_, none) = json(
        app.admin(Method::PUT, "/tenants/acme/models")
            .json(&json!([]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(none, json!([]), "an empty list allows nothing");
    let (_, reset) = json(
        app.admin(Method::PUT, "/tenants/acme/models")
            .json(&Value::Null)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reset, Value::Null);

    let (status, body) = json(
        app.admin(Method::PUT, "/tenants/acme/models")
            .json(&json!(["ok", 3]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("[1]"),
        "{body}"
    );
    let (status, _) = json(
        app.admin(Method::PUT, "/tenants/nope/models")
            .json(&json!(["m"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}

async fn oversized_bodies_get_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.server.max_body_bytes = 2048).await;
    let (status, body) = json(
        app.admin(Method::POST, "/tenants")
            .json(&json!({"id": "big", "name": "x".repeat(10_000)}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&body), "request_too_large");
    let (status, _) = json(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, 200, "and the process is still up");
}
