//! Anthropic's Messages API (`POST {base_url}/v1/messages`).
//!
//! Translation lives in free functions tested on fixtures: [`to_wire`] for the request,
//! [`from_wire`] for a whole answer and [`StreamState`] for server-sent events.

mod native;
mod request;
mod response;
#[cfg(test)]
mod tests;

pub use native::Forwarded;
pub use request::{DEFAULT_MAX_TOKENS, to_wire};
pub use response::{StreamState, finish_reason, from_wire, from_wire_event};

use crate::client::{HttpClient, Response};
use crate::framing::{self, SseFraming};
use crate::http::{Credential, Upstream, read_body};
use crate::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Provider,
    ProviderError, ProviderSettings,
};

/// The API version this adapter speaks.
pub const API_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone)]
pub struct Anthropic {
    upstream: Upstream,
    /// `/v1/messages`, parsed once; `None` if the base URL does not parse (each call then
    /// reports it).
    messages_url: Option<http::Uri>,
}

impl Anthropic {
    pub fn new(settings: ProviderSettings, client: HttpClient) -> Self {
        let upstream = Upstream::new(settings, client, Credential::Header("x-api-key"));
        Self {
            messages_url: upstream.parsed_url(MESSAGES),
            upstream,
        }
    }

    async fn post(&self, body: &serde_json::Value) -> Result<Response, ProviderError> {
        self.post_to(MESSAGES, body, &[("anthropic-version", API_VERSION)])
            .await
    }

    /// POSTs `body` to `path` with Anthropic's key header.
    async fn post_to(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        headers: &[(&'static str, &str)],
    ) -> Result<Response, ProviderError> {
        match &self.messages_url {
            Some(url) if path == MESSAGES => self.upstream.post_json(url, headers, body).await,
            _ => {
                let url = self.upstream.url(path);
                self.upstream.post_json(url, headers, body).await
            }
        }
    }
}

/// The Messages API's path under the base URL.
const MESSAGES: &str = "/v1/messages";

impl Provider for Anthropic {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        let resp = self.post(&to_wire(req, model, false)?).await?;
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
        let resp = self.post(&to_wire(req, model, true)?).await?;
        let body = framing::body_chunks(resp, self.upstream.settings().idle_timeout);
        Ok(framing::translate(
            body,
            SseFraming::default(),
            StreamState::new(&req.model),
        ))
    }

    async fn embeddings(
        &self,
        _req: &EmbeddingsRequest,
        _model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        Err(ProviderError::unsupported(
            "Anthropic has no embeddings API".into(),
        ))
    }
}
