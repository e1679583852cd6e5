//! Every reason code of CONTRACT.md, produced by a crafted credential: the caller always gets
//! the same 401 body, the operator gets the precise code from explain and the metric.

use reqwest::Method;
use serde_json::{Value, json};

use super::idp::{self, JwksServer, sign, sign_as, sign_with_header};
use super::{HS_SECRET, hs_token};
use crate::support::{Backend, TestApp, json, on_both_backends};

on_both_backends!(every_reason_code_is_produced_explained_and_hidden_from_the_caller);

const ACME: &str = "https://idp.acme.test";

async fn every_reason_code_is_produced_explained_and_hidden_from_the_caller(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jwks = JwksServer::start(&["rsa-1", "ec-1", "ed-1"]).await;

    app.create_tenant("acme").await;
    app.register_issuer(ACME, json!({"tenant": "acme", "jwks_url": jwks.url()}))
        .await;
    app.register_issuer(
        "https://rs-only.test",
        json!({"tenant": "acme", "jwks_url": jwks.url(), "algorithms": ["RS256"]}),
    )
    .await;
    for subject in ["jane", "sus", "gone"] {
        app.put_user("acme", subject, json!({})).await;
    }
    app.put_user("acme", "sus", json!({"status": "suspended"}))
        .await;
    app.admin(Method::DELETE, "/tenants/acme/users/gone")
        .send()
        .await
        .unwrap();

    app.tenant_with_hs256_issuer("off", "https://off.test", "u")
        .await;
    app.admin(Method::PATCH, "/tenants/off")
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .unwrap();
    app.create_tenant("m1").await;
    app.put_user("m1", "u", json!({})).await;
    app.register_issuer(
        "https://multi.test",
        json!({"tenant_claim": "org", "hs256_secret": HS_SECRET}),
    )
    .await;

    // Accepted: every key type, through the JWKS and an HS256 secret.
    let jane = idp::claims(ACME, "jane");
    for kid in ["rsa-1", "ec-1", "ed-1"] {
        app.assert_accepted(&sign(kid, &jane)).await;
    }
    app.assert_accepted(&sign_as("rsa-1", jsonwebtoken::Algorithm::PS256, &jane))
        .await;
    app.assert_accepted(&hs_token("https://multi.test", "u", json!({"org": "m1"})))
        .await;
    let explained = app.explain(&sign("ec-1", &jane)).await;
    assert_eq!(explained["accepted"], true);
    assert_eq!(explained["tenant"], "acme");
    assert_eq!(explained["subject"], "jane");

    let with = |changes: Value| {
        let mut claims = idp::claims(ACME, "jane");
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.remove(key);
            } else {
                claims.insert(key.clone(), value.clone());
            }
        }
        sign("rsa-1", &claims)
    };
    let tampered = {
        let token = with(json!({}));
        let parts: Vec<&str> = token.split('.').collect();
        let evil = idp::b64_json(&Value::Object(idp::claims(ACME, "sus")));
        format!("{}.{evil}.{}", parts[0], parts[2])
    };

    // Revocations and keys need a little setup first.
    let revoked_jti = with(json!({"jti": "revoked-jti"}));
    app.admin(Method::POST, "/tenants/acme/revoked-tokens")
        .json(&json!({"jti": "revoked-jti", "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    let key = |body: Value| {
        let app = &app;
        async move {
            let (status, created) = json(
                app.admin(Method::POST, "/tenants/acme/users/jane/keys")
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 201);
            (
                created["key"].as_str().unwrap().to_owned(),
                created["id"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (good_key, _) = key(json!({"name": "good"})).await;
    app.assert_accepted(&good_key).await;
    let (revoked_key, revoked_id) = key(json!({"name": "revoked"})).await;
    app.admin(
        Method::DELETE,
        &format!("/tenants/acme/users/jane/keys/{revoked_id}"),
    )
    .send()
    .await
    .unwrap();
    let soon = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (expiring_key, _) = key(json!({"name": "expiring", "expires_at": soon})).await;
    app.assert_accepted(&expiring_key).await;
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;

    let cases: Vec<(&str, String)> = vec![
        ("malformed_token", "this-is.not-a.jwt".into()),
        (
            "unsupported_algorithm",
            sign("ec-1", &idp::claims("https://rs-only.test", "jane")),
        ),
        (
            "unknown_issuer",
            sign("rsa-1", &idp::claims("https://nobody.test", "jane")),
        ),
        (
            "unknown_key_id",
            sign_with_header("rsa-1", &json!({"alg": "RS256", "kid": "missing"}), &jane),
        ),
        ("bad_signature", tampered),
        (
            "expired",
            with(json!({"exp": idp::now() - 3600, "iat": idp::now() - 7200})),
        ),
        ("not_yet_valid", with(json!({"nbf": idp::now() + 3600}))),
        ("audience_mismatch", with(json!({"aud": ["someone-else"]}))),
        ("missing_subject", with(json!({"sub": null}))),
        (
            "tenant_claim_missing",
            hs_token("https://multi.test", "u", json!({})),
        ),
        (
            "unknown_tenant",
            hs_token("https://multi.test", "u", json!({"org": "ghost"})),
        ),
        (
            "tenant_disabled",
            hs_token("https://off.test", "u", json!({})),
        ),
        (
            "tenant_issuer_mismatch",
            hs_token("https://multi.test", "jane", json!({"org": "acme"})),
        ),
        ("unknown_user", with(json!({"sub": "nobody"}))),
        ("user_suspended", with(json!({"sub": "sus"}))),
        ("user_deleted", with(json!({"sub": "gone"}))),
        ("token_revoked", revoked_jti),
        ("unknown_api_key", format!("tg-{}", "A".repeat(43))),
        ("api_key_revoked", revoked_key),
        ("api_key_expired", expiring_key),
    ];
    let mut bodies = Vec::new();
    for (reason, token) in &cases {
        bodies.push(app.assert_refused(token, reason).await);
    }
    // No header at all, and a non-bearer scheme: the same answer.
    let bare = app.client.get(app.url("/v1/models")).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    bodies.push(bare.text().await.unwrap());
    let basic = app
        .client
        .get(app.url("/v1/models"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    bodies.push(basic.text().await.unwrap());
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "byte-identical 401 bodies: {bodies:#?}"
    );
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["error"]["code"], "invalid_credentials");

    // Every code of the contract was covered; `insufficient_scope`, the one refusal that is a
    // 403 and not this 401, has its own test (identity::scopes).
    let covered: Vec<&str> = cases.iter().map(|(reason, _)| *reason).collect();
    for reason in tollgate::auth::Reason::ALL {
        if reason == tollgate::auth::Reason::InsufficientScope {
            continue;
        }
        assert!(covered.contains(&reason.code()), "no case for {reason}");
    }
    // And the operator's metric counts each one.
    let metrics = app.metrics().await;
    for reason in covered {
        let label = format!("tollgate_auth_failures_total{{reason=\"{reason}\"}}");
        assert!(metrics.contains(&label), "{label} missing from /metrics");
    }
}
