//! A tenant's users, their API keys and token revocations.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, encode, error_code, json, on_both_backends};

on_both_backends!(
    users_are_upserted_listed_and_soft_deleted,
    opaque_subjects_round_trip,
    bad_user_input_is_refused,
    tokens_can_be_revoked,
    api_keys_are_shown_once_and_revocable,
);

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    json(app.admin(Method::GET, path).send().await.unwrap()).await
}

async fn users_are_upserted_listed_and_soft_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;

    let (status, created) = json(
        app.put_user("acme", "jane", json!({"email": "jane@acme.test"}))
            .await,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(created["status"], "active");
    assert_eq!(created["role"], "member");
    assert_eq!(created["deleted_at"], Value::Null);

    let (status, updated) = json(
        app.put_user(
            "acme",
            "jane",
            json!({"display_name": "Jane", "role": "admin"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        updated["email"], "jane@acme.test",
        "fields not sent are kept"
    );
    assert_eq!(updated["role"], "admin");
    assert_eq!(updated["created_at"], created["created_at"]);

    assert_eq!(app.put_user("acme", "bob", json!({})).await.status(), 201);
    let (_, suspended) = json(
        app.put_user("acme", "bob", json!({"status": "suspended"}))
            .await,
    )
    .await;
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(app.put_user("acme", "carol", json!({})).await.status(), 201);

    let (status, deleted) = json(
        app.admin(Method::DELETE, "/tenants/acme/users/carol")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["status"], "deleted");
    assert!(deleted["deleted_at"].is_string());
    let (status, still_there) = get(&app, "/tenants/acme/users/carol").await;
    assert_eq!(status, 200, "soft delete keeps the row");
    assert_eq!(still_there["status"], "deleted");
    let (_, again) = json(
        app.put_user("acme", "carol", json!({"display_name": "C"}))
            .await,
    )
    .await;
    assert_eq!(
        again["status"], "deleted",
        "an update does not bring a deleted user back"
    );

    let subjects = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|u| u["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = get(&app, "/tenants/acme/users").await;
    assert_eq!(subjects(&all), ["bob", "carol", "jane"]);
    for (status, expected) in [
        ("active", "jane"),
        ("suspended", "bob"),
        ("deleted", "carol"),
    ] {
        let (_, list) = get(&app, &format!("/tenants/acme/users?status={status}")).await;
        assert_eq!(subjects(&list), [expected], "{status}");
    }
    let (status, _) = get(&app, "/tenants/acme/users?status=gone").await;
    assert_eq!(status, 400);

    for (method, path) in [
        (Method::GET, "/tenants/acme/users/nobody"),
        (Method::DELETE, "/tenants/acme/users/nobody"),
        (Method::DELETE, "/tenants/acme/users/carol"),
        (Method::GET, "/tenants/nope/users"),
        (Method::GET, "/tenants/nope/users/jane"),
    ] {
        let (status, body) = json(app.admin(method.clone(), path).send().await.unwrap()).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(error_code(&body), "not_found");
    }
    let (status, _) = json(app.put_user("nope", "jane", json!({})).await).await;
    assert_eq!(status, 404, "unknown tenant");
}

async fn opaque_subjects_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    let subjects = [
        "auth0|5f7c8ec7c33c6c004bbafe82",
        "user@example.com",
        "CN=Jane Doe,OU=Eng,O=Acme",
        "0b9e6a1c-2f0d-4d8e-9b8a-6c0f2d1e3a4b",
        "https://idp.example.com/users/42",
        "tenant/a/b",
        "Ünïcödé ユーザー",
        "100%+plus&amp?q=1#frag",
    ];
    for subject in subjects {
        let (status, created) = json(app.put_user("acme", subject, json!({})).await).await;
        assert_eq!(status, 201, "{subject}: {created}");
        assert_eq!(created["subject"], subject);
        let (status, got) = get(&app, &format!("/tenants/acme/users/{}", encode(subject))).await;
        assert_eq!(status, 200, "{subject}");
        assert_eq!(got["subject"], subject);
    }
    let (_, list) = get(&app, "/tenants/acme/users").await;
    assert_eq!(list.as_array().unwrap().len(), subjects.len());
    // Case matters: these are different subjects.
    assert_eq!(
        app.put_user("acme", "USER@example.com", json!({}))
            .await
            .status(),
        201
    );
}

async fn bad_user_input_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("jane", json!({"status": "deleted"}), "`status`"),
        ("jane", json!({"status": "banned"}), "`status`"),
        ("jane", json!({"role": "owner"}), "`role`"),
        ("jane", json!({"email": "not-an-address"}), "`email`"),
        ("jane", json!({"email": 42}), "`email`"),
        ("jane", json!({"nickname": "J"}), "unknown field `nickname`"),
        ("bad\nsubject", json!({}), "`subject`"),
        ("bad\u{0}subject", json!({}), "`subject`"),
    ];
    let long = "s".repeat(600);
    for (subject, body, expected) in
        cases
            .into_iter()
            .chain([(long.as_str(), json!({}), "`subject`")])
    {
        let (status, answer) = json(app.put_user("acme", subject, body.clone()).await).await;
        assert_eq!(status, 400, "{subject:?} {body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body} → {message}");
    }
    let (_, list) = get(&app, "/tenants/acme/users").await;
    assert_eq!(list, json!([]), "nothing was written");
}

async fn tokens_can_be_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    app.put_user("acme", "jane", json!({})).await;

    let (status, user) = json(
        app.admin(Method::POST, "/tenants/acme/users/jane/revoke-tokens")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(user["tokens_valid_after"].is_string(), "{user}");
    let (status, _) = json(
        app.admin(Method::POST, "/tenants/acme/users/nobody/revoke-tokens")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);

    let post = |body: Value| {
        app.admin(Method::POST, "/tenants/acme/revoked-tokens")
            .json(&body)
    };
    let (status, revoked) = json(
        post(json!({"jti": "tok-1", "expires_at": "2030-01-01T00:00:00Z"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(revoked["jti"], "tok-1");
    assert_eq!(revoked["expires_at"], "2030-01-01T00:00:00.000Z");
    let (status, _) = json(
        post(json!({"jti": "tok-1", "expires_at": "2031-01-01T00:00:00Z"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "revoking twice is harmless");
    let (_, list) = get(&app, "/tenants/acme/revoked-tokens").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["expires_at"], "2031-01-01T00:00:00.000Z");

    for (body, expected) in [
        (
            json!({"jti": "x", "expires_at": "tomorrow"}),
            "`expires_at`",
        ),
        (json!({"jti": "x"}), "missing field `expires_at`"),
        (
            json!({"jti": "", "expires_at": "2030-01-01T00:00:00Z"}),
            "`jti`",
        ),
    ] {
        let (status, answer) = json(post(body).send().await.unwrap()).await;
        assert_eq!(status, 400);
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected)
        );
    }
    let (status, _) = json(
        app.admin(Method::POST, "/tenants/nope/revoked-tokens")
            .json(&json!({"jti": "x", "expires_at": "2030-01-01T00:00:00Z"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}

async fn api_keys_are_shown_once_and_revocable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    app.put_user("acme", "auth0|jane", json!({})).await;
    let keys = "/tenants/acme/users/auth0%7Cjane/keys";

    let (status, created) = json(
        app.admin(Method::POST, keys)
            .json(&json!({"name": "laptop"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(key.starts_with("tg-") && key.len() >= 3 + 43, "{key}");
    assert_eq!(created["name"], "laptop");

    let (status, list) = get(&app, keys).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], id);
    assert!(
        !list.to_string().contains(&key[3..]),
        "the key is shown only once"
    );
    assert!(list[0].get("key_hash").is_none());

    let (status, revoked) = json(
        app.admin(Method::DELETE, &format!("{keys}/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = json(
        app.admin(Method::DELETE, &format!("{keys}/nope"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);

    let (status, _) = json(
        app.admin(Method::POST, "/tenants/acme/users/nobody/keys")
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "unknown user");
    for (body, expected) in [
        (
            json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            "in the past",
        ),
        (json!({"name": "x", "expires_at": "soon"}), "`expires_at`"),
        (json!({}), "missing field `name`"),
    ] {
        let (status, answer) = json(
            app.admin(Method::POST, keys)
                .json(&body)
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
                .contains(expected),
            "{answer}"
        );
    }
    app.admin(Method::DELETE, "/tenants/acme/users/auth0%7Cjane")
        .send()
        .await
        .unwrap();
    let (status, _) = json(
        app.admin(Method::POST, keys)
            .json(&json!({"name": "late"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "no keys for deleted users");
}
