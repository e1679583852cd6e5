//! Google Gemini (`generateContent`, `streamGenerateContent?alt=sse`, `batchEmbedContents`).
//!
//! Translation lives in free functions tested on fixtures: [`to_wire`] for the request,
//! [`from_wire`] for a whole answer and [`StreamState`] for server-sent events.

mod request;
mod response;
#[cfg(test)]
mod tests;

pub use request::to_wire;
pub use response::{StreamState, finish_reason, from_wire, from_wire_event};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::{HttpClient, Response};
use crate::framing::{self, SseFraming};
use crate::http::{Credential, Upstream, read_body, read_json};
use crate::shape::{self, Encoding};
use crate::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Provider,
    ProviderError, ProviderSettings,
};

#[derive(Debug, Clone)]
pub struct Gemini {
    upstream: Upstream,
}

impl Gemini {
    pub fn new(settings: ProviderSettings, client: HttpClient) -> Self {
        Self {
            upstream: Upstream::new(settings, client, Credential::Header("x-goog-api-key")),
        }
    }

    /// `{base_url}/v1beta/models/{model}:{method}`.
    fn url(&self, model: &str, method: &str) -> String {
        self.upstream
            .url(&format!("/v1beta/{}:{method}", model_path(model)))
    }

    async fn post(&self, url: &str, body: &Value) -> Result<Response, ProviderError> {
        self.upstream.post_json(url, &[], body).await
    }
}

/// `models/{model}`, unless the configured name already is a resource path.
fn model_path(model: &str) -> String {
    if model.starts_with("models/") || model.starts_with("tunedModels/") {
        model.to_owned()
    } else {
        format!("models/{model}")
    }
}

impl Provider for Gemini {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        let url = self.url(model, "generateContent");
        let resp = self.post(&url, &to_wire(req)?).await?;
        let (body, usage) = from_wire(&read_body(resp).await?, &req.model)?;
        Ok(ChatResponse {
            body,
            usage: Some(usage),
        })
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        let url = self.url(model, "streamGenerateContent?alt=sse");
        let resp = self.post(&url, &to_wire(req)?).await?;
        let body = framing::body_chunks(resp, self.upstream.settings().idle_timeout);
        Ok(framing::translate(
            body,
            SseFraming::default(),
            StreamState::new(&req.model),
        ))
    }

    /// Gemini reports no token counts for embeddings, so `usage` is `None`.
    async fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let texts: Vec<&str> = match &req.input {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str())
                .collect::<Option<_>>()
                .ok_or_else(|| ProviderError::unsupported("Gemini embeds text only".into()))?,
            _ => return Err(ProviderError::unsupported("Gemini embeds text only".into())),
        };
        let path = model_path(model);
        let dimensions = req.extra.get("dimensions").and_then(Value::as_u64);
        let requests: Vec<Value> = texts
            .iter()
            .map(|text| {
                let mut r = json!({ "model": path, "content": { "parts": [{ "text": text }] } });
                if let Some(d) = dimensions {
                    r["outputDimensionality"] = d.into();
                }
                r
            })
            .collect();
        let url = self.url(model, "batchEmbedContents");
        let resp = self.post(&url, &json!({ "requests": requests })).await?;
        let (_, batch) = read_json::<BatchEmbeddings>(resp, "Gemini embeddings").await?;
        let vectors = batch.embeddings.into_iter().map(|e| e.values).collect();
        Ok(EmbeddingsResponse {
            body: shape::embeddings(&req.model, vectors, Encoding::of(req), None)?,
            usage: None,
        })
    }
}

#[derive(Debug, Deserialize)]
struct BatchEmbeddings {
    #[serde(default)]
    embeddings: Vec<Embedding>,
}

#[derive(Debug, Deserialize)]
struct Embedding {
    values: Value,
}
