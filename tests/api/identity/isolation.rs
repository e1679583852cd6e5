//! Tenants are islands: the same subject in two tenants is two users, a tenant claim cannot
//! cross into a tenant with its own issuer, client headers change nothing, and tenant admins
//! stay inside their tenant.

use reqwest::Method;
use serde_json::{Value, json};

use super::{HS_SECRET, app_with_models, hs_token};
use crate::support::{Backend, json};

fn model_ids(body: &str) -> Vec<String> {
    let body: Value = serde_json::from_str(body).unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_same_subject_in_two_tenants_is_two_users() {
    let app = app_with_models(Backend::Sqlite).await;
    app.tenant_with_hs256_issuer("a", "https://a.test", "jane")
        .await;
    app.tenant_with_hs256_issuer("b", "https://b.test", "jane")
        .await;
    app.admin(Method::PUT, "/tenants/a/models")
        .json(&json!(["model-a"]))
        .send()
        .await
        .unwrap();
    app.admin(Method::PUT, "/tenants/b/models")
        .json(&json!(["model-b"]))
        .send()
        .await
        .unwrap();
    let token_a = hs_token("https://a.test", "jane", json!({}));
    let token_b = hs_token("https://b.test", "jane", json!({}));

    app.put_user("a", "jane", json!({"status": "suspended"}))
        .await;
    app.assert_refused(&token_a, "user_suspended").await;
    let (status, body) = app.call(&token_b).await;
    assert_eq!(status, 200);
    assert_eq!(model_ids(&body), ["model-b"], "b's jane sees b's models");

    // Headers and body fields that other gateways read never move the caller.
    let response = app
        .client
        .get(app.url("/v1/models"))
        .bearer_auth(&token_b)
        .header("X-Tenant-Id", "a")
        .header("OpenAI-Organization", "a")
        .header("X-User-Id", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(model_ids(&response.text().await.unwrap()), ["model-b"]);

    // Explain tells the operator where a subject does exist.
    app.admin(Method::DELETE, "/tenants/b/users/jane")
        .send()
        .await
        .unwrap();
    app.create_tenant("c").await;
    app.register_issuer(
        "https://c.test",
        json!({"tenant": "c", "hs256_secret": HS_SECRET}),
    )
    .await;
    let stray = hs_token("https://c.test", "jane", json!({}));
    app.assert_refused(&stray, "unknown_user").await;
    let hints = app.explain(&stray).await["hints"].to_string();
    assert!(hints.contains("exists in tenant `a`"), "{hints}");
}

#[tokio::test]
async fn a_tenant_claim_cannot_reach_a_tenant_with_its_own_issuer() {
    let app = app_with_models(Backend::Sqlite).await;
    app.tenant_with_hs256_issuer("private", "https://private.test", "jane")
        .await;
    app.create_tenant("shared").await;
    app.put_user("shared", "jane", json!({})).await;
    app.register_issuer(
        "https://multi.test",
        json!({"tenant_claim": "org", "hs256_secret": HS_SECRET}),
    )
    .await;

    app.assert_accepted(&hs_token(
        "https://multi.test",
        "jane",
        json!({"org": "shared"}),
    ))
    .await;
    app.assert_refused(
        &hs_token("https://multi.test", "jane", json!({"org": "private"})),
        "tenant_issuer_mismatch",
    )
    .await;
    // A bound issuer ignores any tenant claim in its tokens.
    let (status, _) = app
        .call(&hs_token(
            "https://private.test",
            "jane",
            json!({"org": "shared"}),
        ))
        .await;
    assert_eq!(status, 200);
    let explained = app
        .explain(&hs_token(
            "https://private.test",
            "jane",
            json!({"org": "shared"}),
        ))
        .await;
    assert_eq!(explained["tenant"], "private");
}

#[tokio::test]
async fn tenant_admins_stay_inside_their_tenant() {
    let app = app_with_models(Backend::Sqlite).await;
    app.tenant_with_hs256_issuer("a", "https://a.test", "boss")
        .await;
    app.put_user("a", "boss", json!({"role": "admin"})).await;
    app.put_user("a", "worker", json!({})).await;
    app.tenant_with_hs256_issuer("b", "https://b.test", "other")
        .await;
    let boss = hs_token("https://a.test", "boss", json!({}));
    let worker = hs_token("https://a.test", "worker", json!({}));

    let call = |method: Method, path: &str, token: &str| {
        app.client
            .request(method, app.url(&format!("/admin/v1{path}")))
            .bearer_auth(token)
            .json(&json!({}))
            .send()
    };
    for (method, path) in [
        (Method::GET, "/tenants/a/users"),
        (Method::GET, "/tenants/a/users/worker"),
        (Method::GET, "/tenants/a"),
        (Method::PUT, "/tenants/a/users/newbie"),
        (Method::GET, "/tenants/a/quota"),
        (Method::PUT, "/tenants/a/users/worker/quota"),
        (Method::PUT, "/tenants/a/default-user-quota"),
    ] {
        let status = call(method.clone(), path, &boss).await.unwrap().status();
        assert!(status.is_success(), "{method} {path}: {status}");
    }
    for (method, path) in [
        (Method::GET, "/tenants/b/users"),
        (Method::PUT, "/tenants/b/users/intruder"),
        (Method::GET, "/tenants"),
        (Method::GET, "/issuers"),
        (Method::POST, "/auth/explain"),
        (Method::PUT, "/tenants/a/models"),
        (Method::PUT, "/tenants/a/quota"),
        (Method::PUT, "/tenants/b/users/other/quota"),
        (Method::DELETE, "/tenants/a"),
    ] {
        let (status, body) = json(call(method.clone(), path, &boss).await.unwrap()).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let (status, _) = json(
        call(Method::GET, "/tenants/a/users", &worker)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "a member is not an admin");
    let (status, _) = json(
        call(Method::GET, "/tenants/a/users", "garbage")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let (_, users) = json(
        app.admin(Method::GET, "/tenants/b/users")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        users.as_array().unwrap().len(),
        1,
        "nothing was written in b"
    );
}
