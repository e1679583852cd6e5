//! How to reach one upstream: the gateway builds this from its `[[providers]]` config.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ProviderError;
use crate::client::Proxy;

/// Which wire format an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI and every OpenAI-compatible server (vLLM, Mistral, Groq, DeepSeek, OpenRouter, …).
    #[serde(rename = "openai")]
    OpenAi,
    Azure,
    Anthropic,
    Gemini,
    Ollama,
    Mock,
}

/// One configured upstream.
#[derive(Clone)]
pub struct ProviderSettings {
    /// The name the config gives this provider; used in messages only.
    pub name: String,
    pub kind: ProviderKind,
    /// e.g. `https://api.openai.com/v1`, `https://api.anthropic.com`, `http://localhost:11434`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Azure's `api-version` query parameter.
    pub api_version: Option<String>,
    /// Deadline for the TCP connection.
    pub connect_timeout: Duration,
    /// Where connections go: by default as the environment's `*_PROXY` variables say.
    pub proxy: Proxy,
    /// Deadline for the response headers.
    pub first_byte_timeout: Duration,
    /// Deadline between two stream chunks.
    pub idle_timeout: Duration,
    /// Whether the upstream serves OpenAI's Responses API (`/responses`): OpenAI and Azure do,
    /// many OpenAI-compatible servers do not. When it does not, a Responses request is
    /// translated to chat completions.
    pub responses_api: bool,
}

// === impl ProviderKind ===

impl ProviderKind {
    pub const ALL: [ProviderKind; 6] = [
        Self::OpenAi,
        Self::Azure,
        Self::Anthropic,
        Self::Gemini,
        Self::Ollama,
        Self::Mock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Azure => "azure",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Ollama => "ollama",
            Self::Mock => "mock",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = ProviderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ProviderError::Config(format!(
                    "unknown provider kind {s:?}; expected openai|azure|anthropic|gemini|ollama|mock"
                ))
            })
    }
}

// === impl ProviderSettings ===

impl ProviderSettings {
    /// Settings with the default timeouts (10 s to connect, 60 s to first byte, 60 s between
    /// chunks), proxies from the environment; the
    /// Responses API is taken to be served by OpenAI and Azure upstreams.
    pub fn new(name: impl Into<String>, kind: ProviderKind, base_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind,
            base_url: base_url.into(),
            api_key: None,
            api_version: None,
            connect_timeout: Duration::from_secs(10),
            proxy: Proxy::FromEnv,
            first_byte_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            responses_api: matches!(kind, ProviderKind::OpenAi | ProviderKind::Azure),
        }
    }

    /// `base_url` without a trailing slash, so paths can be appended with `/`.
    pub(crate) fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}

/// Written by hand so the key can never reach a log line.
impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("api_version", &self.api_version)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("responses_api", &self.responses_api)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_serialise_by_their_lowercase_names() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>().unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ProviderKind>(&json).unwrap(), kind);
        }
        assert!("OpenAI".parse::<ProviderKind>().is_err());
    }

    #[test]
    fn openai_and_azure_serve_the_responses_api_unless_told_otherwise() {
        for kind in ProviderKind::ALL {
            let settings = ProviderSettings::new("p", kind, "http://x");
            let native = matches!(kind, ProviderKind::OpenAi | ProviderKind::Azure);
            assert_eq!(settings.responses_api, native, "{kind}");
        }
    }

    #[test]
    fn debug_redacts_the_key() {
        let mut s = ProviderSettings::new("p", ProviderKind::OpenAi, "http://x");
        s.api_key = Some("sk-very-secret".into());
        let shown = format!("{s:?}");
        assert!(!shown.contains("sk-very-secret"));
        assert!(shown.contains("[redacted]"));
    }
}
