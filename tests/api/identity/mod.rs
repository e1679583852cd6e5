//! Tenant-scoped identity, black-box: real keys, a JWKS endpoint on loopback, crafted tokens.

mod admin_effects;
mod failures;
mod forgeries;
pub(crate) mod idp;
mod isolation;
mod jwks;
mod outage;
mod reasons;
mod tools;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, json};

pub const AUD: &str = "tollgate";
pub const HS_SECRET: &str = "an-hs256-secret-that-is-long-enough-0123";

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
        let response = self
            .client
            .get(self.url("/v1/models"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 401 {
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
        }
        (status, response.text().await.unwrap())
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
