//! SCIM 2.0, black-box: the request sequences Okta and Entra ID send, each followed by a
//! data-plane request showing its effect; the python-scim project's compliance checker against
//! a live gateway; and the door's own refusals.

mod compliance;
mod entra;
mod okta;
mod protocol;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// An identity provider's client for one tenant's SCIM endpoint.
pub struct Scim<'a> {
    app: &'a TestApp,
    tenant: String,
    pub token: String,
}

impl TestApp {
    /// A SCIM token for the tenant, from the admin API.
    pub async fn scim(&self, tenant: &str) -> Scim<'_> {
        let (status, created) = json(
            self.admin(Method::POST, &format!("/tenants/{tenant}/scim-tokens"))
                .json(&json!({"name": "idp"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        Scim {
            app: self,
            tenant: tenant.to_owned(),
            token: created["token"].as_str().unwrap().to_owned(),
        }
    }
}

impl Scim<'_> {
    pub fn url(&self, path: &str) -> String {
        self.app.url(&format!("/scim/v2/{}{path}", self.tenant))
    }

    /// One SCIM request: status and body. Every answer, error or not, is SCIM JSON.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        if status != 204 {
            assert_eq!(
                response.headers()["content-type"],
                "application/scim+json",
                "{path}"
            );
        }
        json(response).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    /// Creates a resource (`Users` or `Groups`); returns it.
    pub async fn create(&self, kind: &str, resource: Value) -> Value {
        let (status, created) = self
            .send(Method::POST, &format!("/{kind}"), Some(resource))
            .await;
        assert_eq!(status, 201, "{created}");
        created
    }

    /// PATCHes a resource with these operations; returns the resource after it.
    pub async fn patch(&self, kind: &str, id: &str, operations: Value) -> Value {
        let body = json!({"schemas": [PATCH_OP], "Operations": operations});
        let (status, patched) = self
            .send(Method::PATCH, &format!("/{kind}/{id}"), Some(body))
            .await;
        assert_eq!(status, 200, "{patched}");
        patched
    }

    pub async fn replace(&self, kind: &str, id: &str, resource: Value) -> Value {
        let (status, replaced) = self
            .send(Method::PUT, &format!("/{kind}/{id}"), Some(resource))
            .await;
        assert_eq!(status, 200, "{replaced}");
        replaced
    }

    pub async fn delete(&self, kind: &str, id: &str) {
        let (status, body) = self
            .send(Method::DELETE, &format!("/{kind}/{id}"), None)
            .await;
        assert_eq!(status, 204, "{body}");
    }

    /// `GET /Users?filter=userName eq "…"`: the ids found.
    pub async fn find_user(&self, user_name: &str) -> Vec<String> {
        let filter = format!("userName eq \"{user_name}\"");
        let url = format!(
            "/Users?filter={}&startIndex=1&count=100",
            crate::support::encode(&filter)
        );
        let (status, list) = self.get(&url).await;
        assert_eq!(status, 200, "{list}");
        list["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|user| user["id"].as_str().unwrap().to_owned())
            .collect()
    }
}
