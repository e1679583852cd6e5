//! Azure OpenAI: OpenAI's body, a deployment in the path, `api-version` in the query and the key
//! in an `api-key` header.

use crate::http::Upstream;
use crate::openai;
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
    pub fn new(settings: ProviderSettings, client: reqwest::Client) -> Self {
        Self {
            upstream: Upstream::new(settings, client),
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
}

impl Provider for Azure {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        let url = self.url(model, "chat/completions");
        let auth = self.upstream.key_header("api-key", "");
        openai::chat(&self.upstream, &url, auth, req, model).await
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        let url = self.url(model, "chat/completions");
        let auth = self.upstream.key_header("api-key", "");
        openai::chat_stream(&self.upstream, &url, auth, req, model).await
    }

    async fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let url = self.url(model, "embeddings");
        let auth = self.upstream.key_header("api-key", "");
        openai::embeddings(&self.upstream, &url, auth, req, model).await
    }
}
