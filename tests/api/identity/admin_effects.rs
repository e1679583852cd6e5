//! Admin writes take effect on the very next request in the same process, whatever the caches
//! hold; just-in-time provisioning and subject case rules.

use reqwest::Method;
use serde_json::json;

use super::hs_token;
use crate::support::{Backend, TestApp, json, on_both_backends};

on_both_backends!(
    suspend_delete_and_revoke_reject_the_next_request,
    jit_provisioning_creates_members_but_never_revives_the_deleted,
    subject_case_rules_apply,
    restoring_a_deleted_user_revives_none_of_their_credentials,
);

const ISS: &str = "https://hs.acme.test";

async fn suspend_delete_and_revoke_reject_the_next_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.tenant_with_hs256_issuer("acme", ISS, "jane").await;
    let token = hs_token(ISS, "jane", json!({}));
    app.assert_accepted(&token).await;
    app.assert_accepted(&token).await; // warm: served from the caches

    app.put_user("acme", "jane", json!({"status": "suspended"}))
        .await;
    app.assert_refused(&token, "user_suspended").await;
    app.put_user("acme", "jane", json!({"status": "active"}))
        .await;
    app.assert_accepted(&token).await;

    // Revoke everything issued so far: the warm token dies at once.
    app.admin(Method::POST, "/tenants/acme/users/jane/revoke-tokens")
        .send()
        .await
        .unwrap();
    app.assert_refused(&token, "token_revoked").await;
    // A token issued after the revocation works (iat is in whole seconds, so wait one).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = hs_token(ISS, "jane", json!({"iat": super::idp::now()}));
    app.assert_accepted(&fresh).await;

    // Revoke one token by jti.
    let jti = "one-token";
    let single = hs_token(ISS, "jane", json!({"jti": jti}));
    app.assert_accepted(&single).await;
    app.admin(Method::POST, "/tenants/acme/revoked-tokens")
        .json(&json!({"jti": jti, "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    app.assert_refused(&single, "token_revoked").await;
    app.assert_accepted(&fresh).await;

    // API keys: revoked at once.
    let (_, created) = json(
        app.admin(Method::POST, "/tenants/acme/users/jane/keys")
            .json(&json!({"name": "k"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let key = created["key"].as_str().unwrap();
    app.assert_accepted(key).await;
    let id = created["id"].as_str().unwrap();
    app.admin(
        Method::DELETE,
        &format!("/tenants/acme/users/jane/keys/{id}"),
    )
    .send()
    .await
    .unwrap();
    app.assert_refused(key, "api_key_revoked").await;

    // Tenant disabled: every credential of it stops.
    app.admin(Method::PATCH, "/tenants/acme")
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .unwrap();
    app.assert_refused(&fresh, "tenant_disabled").await;
    app.admin(Method::PATCH, "/tenants/acme")
        .json(&json!({"status": "active"}))
        .send()
        .await
        .unwrap();
    app.assert_accepted(&fresh).await;

    // Deleted: the token is recognised as a deleted user's, not an unknown one's.
    app.admin(Method::DELETE, "/tenants/acme/users/jane")
        .send()
        .await
        .unwrap();
    app.assert_refused(&fresh, "user_deleted").await;
}

async fn restoring_a_deleted_user_revives_none_of_their_credentials(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.tenant_with_hs256_issuer("acme", ISS, "jane").await;
    let token = hs_token(ISS, "jane", json!({}));
    let old_key = app.user_key("acme", "ann").await;
    let (_, created) = json(
        app.admin(Method::POST, "/tenants/acme/users/jane/keys")
            .json(&json!({"name": "laptop"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    app.assert_accepted(&token).await;
    app.assert_accepted(&key).await; // both warm in the caches
    app.assert_accepted(&old_key).await;

    let deleted = app
        .admin(Method::DELETE, "/tenants/acme/users/jane")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    app.assert_refused(&token, "user_deleted").await;
    // The delete revoked the key itself (the key is checked before its user).
    app.assert_refused(&key, "api_key_revoked").await;

    // Restored: a fresh start. What was issued before the delete stays dead.
    let (status, user) = json(
        app.put_user("acme", "jane", json!({"status": "active"}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(user["status"], "active");
    assert!(
        user["deleted_at"].is_string(),
        "the delete stays on record: {user}"
    );
    app.assert_refused(&token, "token_revoked").await;
    app.assert_refused(&key, "api_key_revoked").await;
    let (_, keys) = json(
        app.admin(Method::GET, "/tenants/acme/users/jane/keys")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["revoked_at"].is_string()),
        "{keys}"
    );
    // New credentials work; another user's were never touched.
    let (_, created) = json(
        app.admin(Method::POST, "/tenants/acme/users/jane/keys")
            .json(&json!({"name": "new laptop"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    app.assert_accepted(created["key"].as_str().unwrap()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.assert_accepted(&hs_token(ISS, "jane", json!({"iat": super::idp::now()})))
        .await;
    app.assert_accepted(&old_key).await;
}

async fn jit_provisioning_creates_members_but_never_revives_the_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    app.register_issuer(
        ISS,
        json!({"tenant": "acme", "hs256_secret": super::HS_SECRET, "jit_provisioning": true}),
    )
    .await;
    let token = hs_token(ISS, "newcomer", json!({}));
    app.assert_accepted(&token).await;
    let (status, user) = json(
        app.admin(Method::GET, "/tenants/acme/users/newcomer")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(user["status"], "active");
    assert_eq!(user["role"], "member");

    app.admin(Method::DELETE, "/tenants/acme/users/newcomer")
        .send()
        .await
        .unwrap();
    app.assert_refused(&token, "user_deleted").await;
    let (_, user) = json(
        app.admin(Method::GET, "/tenants/acme/users/newcomer")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(user["status"], "deleted", "never re-created");
}

async fn subject_case_rules_apply(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.tenant_with_hs256_issuer("acme", ISS, "jane@example.com")
        .await;
    app.register_issuer(
        "https://lower.test",
        json!({"tenant": "acme", "hs256_secret": super::HS_SECRET, "subject_case": "lowercase"}),
    )
    .await;
    // Exact: a case-only difference is a different, unknown user, and explain says why.
    let shouting = hs_token(ISS, "Jane@Example.com", json!({}));
    app.assert_refused(&shouting, "unknown_user").await;
    let explained = app.explain(&shouting).await;
    let hints = explained["hints"].to_string();
    assert!(
        hints.contains("differs only in case") && hints.contains("jane@example.com"),
        "{hints}"
    );
    // Lowercase: the same token shape resolves.
    app.assert_accepted(&hs_token(
        "https://lower.test",
        "Jane@Example.com",
        json!({}),
    ))
    .await;
    // Lowercase folds ASCII only: a KELVIN SIGN (U+212A), which Unicode lowercases to `k`, is
    // not the user `kate`, on the data plane or the admin API (kate is a tenant admin).
    app.put_user("acme", "kate", json!({"role": "admin"})).await;
    app.assert_accepted(&hs_token("https://lower.test", "KATE", json!({})))
        .await;
    let lookalike = hs_token("https://lower.test", "\u{212A}ate", json!({}));
    app.assert_refused(&lookalike, "unknown_user").await;
    let admin_call = app.get_as("/admin/v1/tenants/acme/users", &lookalike).await;
    assert_eq!(admin_call.status(), 401);
    // A different identifier in `sub`, the real one in `email`: explain spots it.
    let oid = hs_token(ISS, "00u1a2b3c4", json!({"email": "jane@example.com"}));
    app.assert_refused(&oid, "unknown_user").await;
    let hints = app.explain(&oid).await["hints"].to_string();
    assert!(hints.contains("`email` claim"), "{hints}");
}
