//! `user.*` and `key.*` events, whichever door the change came through: the admin API, SCIM or
//! just-in-time provisioning.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Behaviour, Receiver, fast_webhooks, register};
use crate::scim::{PATCH_OP, USER_SCHEMA};
use crate::support::{Backend, TestApp, on_both_backends};

on_both_backends!(user_and_key_changes_reach_the_endpoints_that_asked_for_them);

/// (type, subject) of each event delivered.
fn kinds(events: &[Value]) -> BTreeSet<(String, String)> {
    events
        .iter()
        .map(|delivered| {
            let event = &delivered["event"];
            (
                event["type"].as_str().unwrap().to_owned(),
                event["data"]["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn user_and_key_changes_reach_the_endpoints_that_asked_for_them(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (all_dir, keys_dir) = (dir.path().join("all"), dir.path().join("keys"));
    std::fs::create_dir_all(&all_dir).unwrap();
    std::fs::create_dir_all(&keys_dir).unwrap();
    let (Some(everything), Some(keys_only)) = (
        Receiver::start(&all_dir, Behaviour::default()),
        Receiver::start(&keys_dir, Behaviour::default()),
    ) else {
        return;
    };
    let app = TestApp::spawn_with(backend, fast_webhooks).await;
    app.create_tenant("acme").await;
    let all_events = json!({"events": ["user.created", "user.suspended", "user.reactivated",
        "user.deleted", "key.created", "key.revoked", "quota.threshold"]});
    register(&app, "acme", &everything, all_events).await;
    register(
        &app,
        "acme",
        &keys_only,
        json!({"events": ["key.created", "key.revoked"]}),
    )
    .await;

    // The admin API.
    let status = |s: &str| json!({"status": s});
    assert_eq!(app.put_user("acme", "bob", json!({})).await.status(), 201);
    assert_eq!(
        app.put_user("acme", "bob", status("suspended"))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.put_user("acme", "bob", status("active")).await.status(),
        200
    );
    // An edit that changes no status is not an event.
    let renamed = json!({"display_name": "Bob B."});
    assert_eq!(app.put_user("acme", "bob", renamed).await.status(), 200);
    let response = app
        .admin(Method::POST, "/tenants/acme/users/bob/keys")
        .json(&json!({"name": "laptop"}))
        .send()
        .await
        .unwrap();
    let (code, key) = crate::support::json(response).await;
    assert_eq!(code, 201, "{key}");
    let key_id = key["id"].as_str().unwrap();
    let revoked = app
        .admin(
            Method::DELETE,
            &format!("/tenants/acme/users/bob/keys/{key_id}"),
        )
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    let deleted = app
        .admin(Method::DELETE, "/tenants/acme/users/bob")
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());

    // SCIM.
    let scim = app.scim("acme").await;
    let carol = scim
        .create(
            "Users",
            json!({"schemas": [USER_SCHEMA], "userName": "carol@acme.test", "externalId": "carol"}),
        )
        .await;
    let id = carol["id"].as_str().unwrap();
    let body = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let (code, _) = scim
        .send(Method::PATCH, &format!("/Users/{id}"), Some(body))
        .await;
    assert_eq!(code, 200);

    // Just-in-time provisioning: the first request of a token's subject creates the user.
    let iss = "https://idp.acme.test";
    let issuer = app
        .admin(Method::POST, "/issuers")
        .json(
            &json!({"issuer": iss, "tenant": "acme", "audiences": [crate::identity::AUD],
                      "hs256_secret": crate::identity::HS_SECRET, "jit_provisioning": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(issuer.status(), 201);
    let token = crate::identity::hs_token(iss, "dave", json!({}));
    let models = app.get_as("/v1/models", &token).await;
    assert_eq!(models.status(), 200);

    let expected: BTreeSet<(String, String)> = [
        ("user.created", "bob"),
        ("user.suspended", "bob"),
        ("user.reactivated", "bob"),
        ("key.created", "bob"),
        ("key.revoked", "bob"),
        ("user.deleted", "bob"),
        ("user.created", "carol"),
        ("user.suspended", "carol"),
        ("user.created", "dave"),
    ]
    .into_iter()
    .map(|(kind, subject)| (kind.to_owned(), subject.to_owned()))
    .collect();
    let delivered = everything.delivered(expected.len()).await;
    assert_eq!(delivered.len(), expected.len(), "{delivered:#?}");
    assert_eq!(kinds(&delivered), expected);
    let key_event = delivered
        .iter()
        .find(|d| d["event"]["type"] == "key.created")
        .unwrap();
    assert_eq!(key_event["event"]["data"]["key_id"], key_id);
    assert_eq!(key_event["event"]["data"]["tenant"], "acme");
    let key_secret = key["key"].as_str().unwrap();
    for delivered in &delivered {
        assert!(
            !delivered.to_string().contains(key_secret),
            "no event carries an API key: {delivered}"
        );
    }

    let keys = keys_only.delivered(2).await;
    let expected_keys: BTreeSet<(String, String)> =
        [("key.created", "bob"), ("key.revoked", "bob")]
            .into_iter()
            .map(|(kind, subject)| (kind.to_owned(), subject.to_owned()))
            .collect();
    assert_eq!(kinds(&keys), expected_keys);
}
