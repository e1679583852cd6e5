//! The audit log, black-box: every kind of change records exactly one event naming who made
//! it, in which request, with no secret in it; failed writes record nothing; the query API's
//! filters, its JSON Lines export, and what a tenant admin may read.

mod every_change;
mod failures;
mod query;

use reqwest::RequestBuilder;
use serde_json::Value;

use crate::support::{TestApp, json};

/// A response: the request id it carried, its status and its JSON body.
pub struct Sent {
    pub request_id: String,
    pub status: u16,
    pub body: Value,
    /// The `tg_session=…` pair, when the response starts a console session.
    pub session_cookie: Option<String>,
}

pub async fn send(request: RequestBuilder) -> Sent {
    let response = request.send().await.unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let session_cookie = crate::console::platform::session_cookie(&response);
    let (status, body) = json(response).await;
    Sent {
        request_id,
        status,
        body,
        session_cookie,
    }
}

impl TestApp {
    /// A new user with role `admin` in an existing tenant, and an API key for them.
    pub async fn tenant_admin_key(&self, tenant: &str, subject: &str) -> String {
        let created = self
            .put_user(tenant, subject, serde_json::json!({"role": "admin"}))
            .await;
        assert_eq!(created.status(), 201);
        self.user_key_of(tenant, subject).await
    }

    /// `GET /admin/v1/audit?{query}` as the platform admin: the events, oldest first.
    pub async fn audit(&self, query: &str) -> Vec<Value> {
        let (status, body) = json(
            self.admin(reqwest::Method::GET, &format!("/audit?{query}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().unwrap().clone()
    }
}
