//! Azure OpenAI: OpenAI's body, a deployment in the path, `api-version` in the query and the key
//! in an `api-key` header.

use crate::client::HttpClient;
use crate::http::{Credential, Upstream};
use crate::openai::{self, Endpoint};
use crate::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Provider,
    ProviderError, ProviderSettings,
};

/// The GA API version used when the settings name none.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

#[derive(Debug, Clone)]
pub struct Azure {
    upstream: Upstream,
}

impl Azure {
    pub fn new(settings: ProviderSettings, client: HttpClient) -> Self {
        Self {
            upstream: Upstream::new(settings, client, Credential::Header("api-key")),
        }
    }

    /// `{base_url}/openai/deployments/{deployment}/{operation}?api-version=…`; the upstream model
    /// names the deployment.
    fn url(&self, deployment: &str, operation: &str) -> String {
        let version = self
            .upstream
            .settings()
            .api_version
            .as_deref()
            .unwrap_or(DEFAULT_API_VERSION);
        self.upstream.url(&format!(
            "/openai/deployments/{deployment}/{operation}?api-version={version}"
        ))
    }

    pub(crate) fn settings(&self) -> &ProviderSettings {
        self.upstream.settings()
    }

    /// A deployment's operation (see [`Azure::url`]) with the `api-key` header.
    pub(crate) fn endpoint(&self, deployment: &str, operation: &str) -> Endpoint<'_> {
        Endpoint {
            upstream: &self.upstream,
            url: self.url(deployment, operation),
        }
    }

    /// An operation Azure serves only on its OpenAI-style v1 surface, `{base_url}/openai/v1{path}`
    /// (the Responses API), where the body's `model` names the deployment.
    pub(crate) fn v1_endpoint(&self, path: &str) -> Endpoint<'_> {
        Endpoint {
            upstream: &self.upstream,
            url: self.upstream.url(&format!("/openai/v1{path}")),
        }
    }
}

impl Provider for Azure {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        let Endpoint { upstream, url } = self.endpoint(model, "chat/completions");
        openai::chat(upstream, &url, req, model).await
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        let Endpoint { upstream, url } = self.endpoint(model, "chat/completions");
        openai::chat_stream(upstream, &url, req, model).await
    }

    async fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let Endpoint { upstream, url } = self.endpoint(model, "embeddings");
        openai::embeddings(upstream, &url, req, model).await
    }
}
