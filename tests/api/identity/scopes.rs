//! An issuer's required scopes: a token that lacks one is refused with 403 `insufficient_scope`
//! and `WWW-Authenticate: Bearer error="insufficient_scope"` — never told which scope — while
//! the operator finds the reason in the log, the metric, the tenant's refusals and explain.

use reqwest::Method;
use serde_json::{Value, json};

use super::{HS_SECRET, hs_token};
use crate::support::{Backend, TestApp, json, on_both_backends, test_log_path};

on_both_backends!(
    a_token_without_the_required_scopes_is_refused_with_insufficient_scope,
    required_scopes_are_checked_when_an_issuer_is_registered,
);

const SCOPED: &str = "https://scoped.acme.test";
const OPEN: &str = "https://open.acme.test";

async fn a_token_without_the_required_scopes_is_refused_with_insufficient_scope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Every gateway of the test run logs to one file: a tenant of its own finds this test's lines.
    let tenant = format!("scopes-{}", uuid::Uuid::new_v4().simple());
    app.create_tenant(&tenant).await;
    let issuer = app
        .register_issuer(
            SCOPED,
            json!({"tenant": tenant, "hs256_secret": HS_SECRET, "required_scopes": ["llm.invoke"]}),
        )
        .await;
    assert_eq!(issuer["required_scopes"], json!(["llm.invoke"]));
    assert_eq!(issuer["groups_claim"], Value::Null);
    let open = app
        .register_issuer(OPEN, json!({"tenant": tenant, "hs256_secret": HS_SECRET}))
        .await;
    assert_eq!(open["required_scopes"], json!([]), "none by default");
    app.put_user(&tenant, "jane", json!({})).await;

    // Held, in either claim and shape.
    for claims in [
        json!({"scope": "openid llm.invoke"}),
        json!({"scp": ["llm.invoke"]}),
        json!({"scp": "profile llm.invoke"}),
    ] {
        app.assert_accepted(&hs_token(SCOPED, "jane", claims)).await;
    }
    // An issuer that requires none is unaffected.
    app.assert_accepted(&hs_token(OPEN, "jane", json!({})))
        .await;

    let lacking = [
        json!({}),
        json!({"scope": "openid profile"}),
        json!({"scp": ["llm.invoke.read"]}),
    ];
    for claims in &lacking {
        let token = hs_token(SCOPED, "jane", claims.clone());
        let response = app.get_as("/v1/models", &token).await;
        assert_eq!(response.status(), 403, "{claims}");
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer error="insufficient_scope""#
        );
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["code"], "insufficient_scope", "{body}");
        assert_eq!(body["error"]["type"], "permission_error", "{body}");
        assert!(
            !text.contains("llm.invoke"),
            "the caller is not told which scope: {text}"
        );

        let explained = app.explain(&token).await;
        assert_eq!(explained["accepted"], false, "{explained}");
        assert_eq!(explained["reason"], "insufficient_scope", "{explained:#}");
        let step = explained["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|step| step["step"] == "scope")
            .unwrap_or_else(|| panic!("a scope step: {explained:#}"));
        assert_eq!(step["ok"], false);
        assert!(
            step["detail"].as_str().unwrap().contains("llm.invoke"),
            "{step}"
        );
    }
    // The same refusal on the other data-plane doors (the admin API refuses it the same way).
    let token = hs_token(SCOPED, "jane", json!({"scope": "openid"}));
    let response = app
        .client
        .get(app.url(&format!("/admin/v1/tenants/{tenant}/users")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope""#
    );

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_auth_failures_total{reason="insufficient_scope"}"#),
        "counted in the metric"
    );
    let (status, failures) = json(
        app.admin(Method::GET, &format!("/tenants/{tenant}/auth-failures"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{failures}");
    let recent = failures["recent"].as_array().unwrap();
    assert_eq!(recent.len(), lacking.len() + 1, "{failures}");
    assert!(
        recent
            .iter()
            .all(|r| r["reason"] == "insufficient_scope" && r["subject"] == "jane"),
        "{failures}"
    );

    // One log line per refusal, with the reason, and the detail naming the missing scope.
    let log = std::fs::read_to_string(test_log_path()).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "authentication refused" && line["tenant"] == *tenant)
        .collect();
    assert_eq!(lines.len(), lacking.len() + 1, "{lines:#?}");
    for line in &lines {
        assert_eq!(line["reason"], "insufficient_scope", "{line}");
        assert_eq!(line["subject"], "jane", "{line}");
        assert_eq!(line["issuer"], SCOPED, "{line}");
        assert!(
            line["detail"].as_str().unwrap().contains("llm.invoke"),
            "{line}"
        );
    }
}

async fn required_scopes_are_checked_when_an_issuer_is_registered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    for (scopes, claim) in [
        (json!(["llm invoke"]), json!(null)),
        (json!([""]), json!(null)),
        (json!(["a\"b"]), json!(null)),
        (json!("llm.invoke"), json!(null)),
        (json!([]), json!("")),
    ] {
        let response = app
            .admin(Method::POST, "/issuers")
            .json(&json!({
                "issuer": SCOPED, "tenant": "acme", "audiences": [super::AUD],
                "hs256_secret": HS_SECRET, "required_scopes": scopes, "groups_claim": claim,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{scopes} {claim}");
    }
    let issuer = app
        .register_issuer(
            SCOPED,
            json!({"tenant": "acme", "hs256_secret": HS_SECRET, "groups_claim": "groups",
                   "required_scopes": ["llm.invoke", "api://tollgate/.default"]}),
        )
        .await;
    let (_, listed) = json(app.admin(Method::GET, "/issuers").send().await.unwrap()).await;
    assert_eq!(listed[0]["groups_claim"], "groups");
    assert_eq!(
        listed[0]["required_scopes"],
        json!(["llm.invoke", "api://tollgate/.default"])
    );
    assert_eq!(listed[0]["id"], issuer["id"]);
}
