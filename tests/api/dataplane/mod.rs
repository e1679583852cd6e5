//! The OpenAI-compatible data plane, black-box: a gateway on port 0 in front of mock upstreams
//! on port 0. The data plane reads no SQL beyond authentication, so these run on SQLite only.

use std::time::Duration;

use serde_json::Value;
use tollgate::config::{Config, ModelConfig, ProviderConfig, TargetConfig};
use tollgate::routing::ProviderKeys;

use crate::support::{Backend, TestApp};

mod busy_poll;
mod compat;
mod completions;
mod errors;
mod messages;
mod responses;
mod routing;
mod sdk;
mod slow_clients;

mod observability;
mod streaming;

/// The API key every test provider is configured with; it must never reach a client.
pub const PROVIDER_KEY: &str = "sk-upstream-secret-0123456789abcdef";

/// A gateway with a tenant `acme`, a user and an API key.
pub struct DataPlane {
    pub app: TestApp,
    pub key: String,
}

/// An OpenAI-kind provider at `base_url` with short deadlines for tests.
pub fn provider(name: &str, base_url: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        kind: "openai".to_owned(),
        base_url: Some(base_url.to_owned()),
        api_key_env: None,
        api_key_file: None,
        api_version: None,
        timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
        first_byte_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        responses_api: None,
    }
}

/// A built-in mock provider (no upstream): a translating adapter that answers offline.
pub fn mock_provider(name: &str) -> ProviderConfig {
    ProviderConfig {
        kind: "mock".to_owned(),
        base_url: None,
        ..provider(name, "http://unused.invalid")
    }
}

/// A model routed to `(provider, upstream model)` targets, weight 1 each.
pub fn model(name: &str, targets: &[(&str, &str)], fallbacks: &[&str]) -> ModelConfig {
    ModelConfig {
        name: name.to_owned(),
        targets: targets
            .iter()
            .map(|(provider, model)| TargetConfig {
                provider: (*provider).to_owned(),
                model: (*model).to_owned(),
                weight: 1,
            })
            .collect(),
        fallbacks: fallbacks.iter().map(|f| (*f).to_owned()).collect(),
        price: None,
    }
}

impl DataPlane {
    /// Starts a gateway with these providers and models (each provider keyed with
    /// [`PROVIDER_KEY`]), fast retries, and whatever `adjust` changes.
    pub async fn start(
        providers: Vec<ProviderConfig>,
        models: Vec<ModelConfig>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let keys: ProviderKeys = providers
            .iter()
            .map(|p| (p.name.clone(), PROVIDER_KEY.to_owned()))
            .collect();
        let app = TestApp::spawn_with_keys(Backend::Sqlite, keys, |config| {
            config.providers = providers;
            config.models = models;
            config.routing.backoff_base = Duration::from_millis(5);
            config.routing.backoff_max = Duration::from_millis(20);
            adjust(config);
        })
        .await;
        let key = app.api_key("acme", "jane").await;
        Self { app, key }
    }

    /// One model `m` on one healthy-or-not upstream.
    pub async fn single(base_url: &str) -> Self {
        Self::start(
            vec![provider("up", base_url)],
            vec![model("m", &[("up", "real-m")], &[])],
            |_| {},
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_with(&self.key, path, body).await
    }

    /// [`DataPlane::post`] with another bearer credential (someone else's, or none that works).
    pub async fn post_with(&self, bearer: &str, path: &str, body: &Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url(path))
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn chat(&self, body: &Value) -> reqwest::Response {
        self.post("/v1/chat/completions", body).await
    }

    /// [`DataPlane::post`], with `request_id` as the `x-request-id` to find its usage by.
    pub async fn post_as(&self, path: &str, request_id: &str, body: &Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.key)
            .header("x-request-id", request_id)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The usage event of `request_id`, once the writer has stored it.
    pub async fn stored(&self, request_id: &str) -> tollgate::metering::UsageEvent {
        let store = tollgate::store::Store::connect(&self.app.config.database.url, 2)
            .await
            .unwrap();
        crate::metering::gateway::stored(&store, request_id).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
    }
}

/// A chat request for `model`.
pub fn ask(model: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// A streaming chat request for `model`.
pub fn ask_stream(model: &str) -> Value {
    let mut body = ask(model);
    body["stream"] = Value::Bool(true);
    body
}

/// The SSE events of a whole response body (blank-line separated, keep-alives included).
pub async fn events(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads a streamed answer until `text` arrived, then hangs up, as a client that leaves
/// mid-answer does.
pub async fn leave_after(response: reqwest::Response, text: &str) {
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream();
    let mut received = String::new();
    while !received.contains(text) {
        let chunk = stream.next().await.unwrap().unwrap();
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
}
