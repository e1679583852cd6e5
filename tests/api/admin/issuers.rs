//! `/admin/v1/issuers`: every way an issuer can be wrong is refused before it is stored.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, error_code, fixture, json, on_both_backends};

on_both_backends!(
    issuers_are_registered_listed_and_deleted,
    bad_issuers_are_refused
);

const SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn post(app: &TestApp, body: &Value) -> (u16, Value) {
    json(
        app.admin(Method::POST, "/issuers")
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn issuers_are_registered_listed_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;

    let (status, hs) = post(
        &app,
        &json!({"issuer": "https://hs.example.com", "tenant": "acme",
                "audiences": ["tollgate"], "hs256_secret": SECRET}),
    )
    .await;
    assert_eq!(status, 201, "{hs}");
    assert_eq!(hs["key_source"], "hs256_secret");
    assert_eq!(hs["algorithms"], json!(["HS256"]));
    assert_eq!(hs["subject_claim"], "sub");
    assert_eq!(hs["subject_case"], "exact");
    assert_eq!(hs["leeway_seconds"], 30);
    assert!(
        !hs.to_string().contains(SECRET),
        "the secret is never shown"
    );

    let (status, pem) = post(
        &app,
        &json!({"issuer": "https://pem.example.com", "tenant_claim": "org_id",
                "audiences": ["a", "b"], "public_key_pem": fixture("keys/rsa_public.pem"),
                "algorithms": ["RS256", "PS256"], "subject_claim": "email",
                "subject_case": "lowercase", "jit_provisioning": true, "leeway_seconds": 5}),
    )
    .await;
    assert_eq!(status, 201, "{pem}");
    assert_eq!(pem["tenant_claim"], "org_id");
    assert_eq!(pem["tenant"], Value::Null);
    assert_eq!(pem["jit_provisioning"], true);

    for key in ["keys/ec_public.pem", "keys/ed_public.pem"] {
        let (status, body) = post(
            &app,
            &json!({"issuer": format!("https://{key}.example.com"), "tenant": "acme",
                    "audiences": ["x"], "public_key_pem": fixture(key)}),
        )
        .await;
        assert_eq!(status, 201, "{key}: {body}");
    }

    let (status, jwks) = post(
        &app,
        &json!({"issuer": "https://jwks.example.com/", "tenant": "acme",
                "audiences": ["x"], "jwks_url": "https://jwks.example.com/.well-known/jwks.json"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        jwks["jwks_url"],
        "https://jwks.example.com/.well-known/jwks.json"
    );

    let (status, body) = post(
        &app,
        &json!({"issuer": "https://hs.example.com", "tenant": "acme",
                "audiences": ["x"], "hs256_secret": SECRET}),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    let (_, list) = json(app.admin(Method::GET, "/issuers").send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert!(!list.to_string().contains(SECRET));

    let id = hs["id"].as_str().unwrap();
    let (status, one) = json(
        app.admin(Method::GET, &format!("/issuers/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["issuer"], "https://hs.example.com");
    let deleted = app
        .admin(Method::DELETE, &format!("/issuers/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, body) = json(
        app.admin(Method::DELETE, &format!("/issuers/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "not_found");
    let (_, list) = json(app.admin(Method::GET, "/issuers").send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 4);
}

async fn bad_issuers_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    let base = json!({"issuer": "https://idp.example.com", "tenant": "acme",
                      "audiences": ["tollgate"], "hs256_secret": SECRET});
    let with = |changes: Value| {
        let mut body = base.clone();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(json!({"tenant_claim": "org"})),
            "exactly one of `tenant`",
        ),
        (with(json!({"tenant": null})), "exactly one of `tenant`"),
        (
            with(json!({"hs256_secret": null})),
            "exactly one key source",
        ),
        (
            with(json!({"jwks_url": "https://idp.example.com/jwks"})),
            "exactly one key source",
        ),
        (
            with(json!({"hs256_secret": "too-short-secret"})),
            "at least 32 bytes",
        ),
        (
            with(
                json!({"hs256_secret": null, "public_key_pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}),
            ),
            "`public_key_pem`",
        ),
        (
            with(json!({"hs256_secret": null, "jwks_url": "ftp://idp.example.com/jwks"})),
            "`jwks_url`",
        ),
        (
            with(json!({"hs256_secret": null, "jwks_url": "not a url"})),
            "`jwks_url`",
        ),
        (with(json!({"algorithms": ["none"]})), "`algorithms[0]`"),
        (with(json!({"algorithms": ["RS256"]})), "cannot be verified"),
        (with(json!({"algorithms": []})), "`algorithms`"),
        (with(json!({"audiences": []})), "`audiences`"),
        (with(json!({"audiences": ["ok", 5]})), "`audiences[1]`"),
        (with(json!({"leeway_seconds": 3600})), "`leeway_seconds`"),
        (with(json!({"subject_case": "upper"})), "`subject_case`"),
        (
            with(json!({"jit_provisioning": "yes"})),
            "`jit_provisioning`",
        ),
        (with(json!({"issuer": "x".repeat(2000)})), "`issuer`"),
        (
            with(json!({"issuer": "https://idp\u{0}.example.com"})),
            "`issuer`",
        ),
        (with(json!({"tenant": "bad/tenant"})), "`tenant`"),
        (with(json!({"kid": "k1"})), "unknown field `kid`"),
        (
            with(json!({"audiences": null})),
            "missing field `audiences`",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = post(&app, &body).await;
        assert_eq!(status, 400, "{body} → {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body} → {message}");
        assert!(!message.contains(SECRET));
    }
    let (status, answer) = post(&app, &with(json!({"tenant": "nobody"}))).await;
    assert_eq!(status, 404, "{answer}");

    let (_, list) = json(app.admin(Method::GET, "/issuers").send().await.unwrap()).await;
    assert_eq!(list, json!([]), "nothing was written");
}
