//! Tenant-scoped identity, black-box: real keys, a JWKS endpoint on loopback, crafted tokens.

mod admin_effects;
mod failures;
mod forgeries;
mod groups;
pub(crate) mod idp;
mod isolation;
mod jwks;
mod outage;
mod reasons;
mod scopes;
mod tools;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, error_code, json};

pub const AUD: &str = "tollgate";
pub const HS_SECRET: &str = "an-hs256-secret-that-is-long-enough-0123";

/// A gateway on `backend` with two offline models, `model-a` and `model-b`.
pub async fn app_with_models(backend: Backend) -> TestApp {
    let models = tollgate::Config::from_toml(
        r#"
        [[providers]]
        name = "mock"
        kind = "mock"
        [[models]]
        name = "model-a"
        targets = [{ provider = "mock", model = "model-a" }]
        [[models]]
        name = "model-b"
        targets = [{ provider = "mock", model = "model-b" }]
        "#,
    )
    .unwrap();
    TestApp::spawn_with(backend, |config| {
        config.providers = models.providers;
        config.models = models.models;
    })
    .await
}

impl TestApp {
    /// Registers an issuer; `fields` are merged over `{"issuer", "audiences": ["tollgate"]}`.
    pub async fn register_issuer(&self, iss: &str, fields: Value) -> Value {
        let mut body = json!({ "issuer": iss, "audiences": [AUD] });
        for (key, value) in fields.as_object().unwrap() {
            body[key] = value.clone();
        }
        let (status, issuer) = json(
            self.admin(Method::POST, "/issuers")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{issuer}");
        issuer
    }

    /// `GET /v1/models` with `bearer`: status and raw body.
    pub async fn call(&self, bearer: &str) -> (u16, String) {
        let response = self.get_as("/v1/models", bearer).await;
        let status = response.status().as_u16();
        if status == 401 {
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
        }
        (status, response.text().await.unwrap())
    }

    /// One chat completion asking `model`, as `bearer`: the status and the error code (empty
    /// when answered).
    pub async fn ask(&self, bearer: &str, model: &str) -> (u16, String) {
        let response = self
            .client
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(bearer)
            .json(&json!({"model": model, "max_tokens": 5,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let (status, body) = json(response).await;
        let code = if status == 200 { "" } else { error_code(&body) };
        (status, code.to_owned())
    }

    /// `PUT /admin/v1/tenants/{tenant}/groups/{group}` as the platform admin.
    pub async fn put_group(&self, tenant: &str, group: &str, policy: Value) -> (u16, Value) {
        json(
            self.admin(
                Method::PUT,
                &format!("/tenants/{tenant}/groups/{}", crate::support::encode(group)),
            )
            .json(&policy)
            .send()
            .await
            .unwrap(),
        )
        .await
    }

    /// `POST /admin/v1/auth/explain`.
    pub async fn explain(&self, token: &str) -> Value {
        let (status, body) = json(
            self.admin(Method::POST, "/auth/explain")
                .json(&json!({ "token": token }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Asserts the token is refused with one reason, both over HTTP (the generic 401) and in
    /// explain; returns the 401 body.
    pub async fn assert_refused(&self, token: &str, reason: &str) -> String {
        let (status, body) = self.call(token).await;
        assert_eq!(status, 401, "expected {reason}, got {status}: {body}");
        let explained = self.explain(token).await;
        assert_eq!(explained["accepted"], false, "{explained}");
        assert_eq!(explained["reason"], reason, "{explained:#}");
        body
    }

    pub async fn assert_accepted(&self, token: &str) {
        let (status, body) = self.call(token).await;
        if status != 200 {
            let explained = self.explain(token).await;
            panic!("expected 200, got {status}: {body}\n{explained:#}");
        }
    }

    /// A tenant with a user `subject`, and an HS256 issuer `iss` bound to it.
    pub async fn tenant_with_hs256_issuer(&self, tenant: &str, iss: &str, subject: &str) {
        self.create_tenant(tenant).await;
        self.register_issuer(iss, json!({ "tenant": tenant, "hs256_secret": HS_SECRET }))
            .await;
        assert!(
            self.put_user(tenant, subject, json!({}))
                .await
                .status()
                .is_success()
        );
    }
}

/// An HS256 token from `iss` for `sub`, valid now, with `extra` claims merged in.
pub fn hs_token(iss: &str, sub: &str, extra: Value) -> String {
    let mut claims = idp::claims(iss, sub);
    for (key, value) in extra.as_object().unwrap() {
        if value.is_null() {
            claims.remove(key);
        } else {
            claims.insert(key.clone(), value.clone());
        }
    }
    idp::sign_hs256(
        HS_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims,
    )
}
