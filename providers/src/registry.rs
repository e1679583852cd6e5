//! The closed set of adapters the gateway dispatches on. A new upstream is one module and one
//! variant here.

use crate::anthropic::Anthropic;
use crate::azure::Azure;
use crate::client::HttpClient;
use crate::gemini::Gemini;
use crate::mock::Mock;
use crate::ollama::Ollama;
use crate::openai::OpenAi;
use crate::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Provider,
    ProviderError, ProviderKind, ProviderSettings,
};

/// Any provider, chosen by [`ProviderKind`].
#[derive(Debug, Clone)]
pub enum AnyProvider {
    OpenAi(OpenAi),
    Azure(Azure),
    Anthropic(Anthropic),
    Gemini(Gemini),
    Ollama(Ollama),
    Mock(Mock),
}

impl AnyProvider {
    /// Builds the adapter `settings.kind` names, with a connection pool of its own.
    pub fn from_settings(settings: ProviderSettings) -> Result<Self, ProviderError> {
        if settings.kind == ProviderKind::Mock {
            return Ok(Self::Mock(Mock::new()));
        }
        let config = |message: String| {
            ProviderError::Config(format!("provider {}: base_url: {message}", settings.name))
        };
        let url: http::Uri = settings
            .base()
            .parse()
            .map_err(|e| config(format!("{e}")))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(config("must be an http:// or https:// URL".into()));
        }
        // A line break or other control character in a key (a secret file read with its
        // newline): refused here, at start, rather than on every request.
        if let Some(key) = &settings.api_key
            && http::HeaderValue::from_str(key).is_err()
        {
            return Err(ProviderError::Config(format!(
                "provider {}: the API key holds characters an HTTP header cannot carry",
                settings.name
            )));
        }
        let client = HttpClient::new(settings.base(), settings.connect_timeout, &settings.proxy)
            .map_err(|e| config(e.to_string()))?;
        Ok(match settings.kind {
            ProviderKind::OpenAi => Self::OpenAi(OpenAi::new(settings, client)),
            ProviderKind::Azure => Self::Azure(Azure::new(settings, client)),
            ProviderKind::Anthropic => Self::Anthropic(Anthropic::new(settings, client)),
            ProviderKind::Gemini => Self::Gemini(Gemini::new(settings, client)),
            ProviderKind::Ollama => Self::Ollama(Ollama::new(settings, client)),
            ProviderKind::Mock => Self::Mock(Mock::new()),
        })
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::OpenAi(_) => ProviderKind::OpenAi,
            Self::Azure(_) => ProviderKind::Azure,
            Self::Anthropic(_) => ProviderKind::Anthropic,
            Self::Gemini(_) => ProviderKind::Gemini,
            Self::Ollama(_) => ProviderKind::Ollama,
            Self::Mock(_) => ProviderKind::Mock,
        }
    }
}

/// Runs the same expression on whichever adapter this is.
macro_rules! dispatch {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            AnyProvider::OpenAi($p) => $call,
            AnyProvider::Azure($p) => $call,
            AnyProvider::Anthropic($p) => $call,
            AnyProvider::Gemini($p) => $call,
            AnyProvider::Ollama($p) => $call,
            AnyProvider::Mock($p) => $call,
        }
    };
}

impl Provider for AnyProvider {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        dispatch!(self, p => p.chat(req, model).await)
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        dispatch!(self, p => p.chat_stream(req, model).await)
    }

    async fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        dispatch!(self, p => p.embeddings(req, model).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_adapter_the_kind_names() {
        for kind in ProviderKind::ALL {
            let settings = ProviderSettings::new("p", kind, "http://127.0.0.1:1");
            let p = AnyProvider::from_settings(settings).unwrap();
            assert_eq!(p.kind(), kind);
        }
    }

    #[test]
    fn rejects_a_key_no_header_can_carry_and_never_shows_it() {
        let mut settings =
            ProviderSettings::new("p", ProviderKind::Anthropic, "http://127.0.0.1:1");
        settings.api_key = Some("sk-ant-secret\n".into());
        let err = AnyProvider::from_settings(settings).unwrap_err();
        assert_eq!(err.code(), "config");
        assert!(!err.to_string().contains("sk-ant-secret"), "{err}");
    }

    #[test]
    fn rejects_a_base_url_that_is_not_http() {
        let settings = ProviderSettings::new("p", ProviderKind::OpenAi, "ftp://x");
        let err = AnyProvider::from_settings(settings).unwrap_err();
        assert_eq!(err.code(), "config");
    }
}
