//! OpenAI's legacy completions as a dialect clients speak to the gateway
//! (`POST /v1/completions`).
//!
//! An OpenAI or Azure upstream gets the request as the client sent it, with the model renamed,
//! and its answer and chunks come back as sent. Every other upstream speaks chat completions, so
//! the prompt becomes a user message ([`to_chat`]), and the answer comes back as a
//! `text_completion`: a whole `chat.completion` with [`from_chat`], a stream of chunks with
//! [`to_events`] (OpenAI framing, `data: [DONE]` at the end, as chat).

mod request;
#[cfg(test)]
mod tests;
mod text;

pub use request::{CompletionsRequest, to_chat};
pub use text::{from_chat, to_events};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::openai::{self, Endpoint};
use crate::wire::StreamOptions;
use crate::{AnyProvider, ChatResponse, ChatStream, Provider, ProviderError};

/// The request as sent upstream: the client's, borrowed, with the model replaced. Like chat, a
/// stream always asks for usage (the gateway drops the usage chunk when the client did not ask);
/// a whole answer never carries `stream_options`.
#[derive(Serialize)]
struct Wire<'a> {
    model: &'a str,
    prompt: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

fn wire<'a>(req: &'a CompletionsRequest, model: &'a str, stream: bool) -> Wire<'a> {
    Wire {
        model,
        prompt: &req.prompt,
        max_tokens: req.max_tokens,
        n: req.n,
        stream: if stream { Some(true) } else { req.stream },
        stream_options: stream.then(|| {
            let mut options = req.stream_options.clone().unwrap_or_default();
            options.include_usage = Some(true);
            options
        }),
        extra: &req.extra,
    }
}

// === impl AnyProvider ===

impl AnyProvider {
    /// A completions request, whole answer: as sent to an OpenAI or Azure upstream, translated
    /// to chat completions (and the answer back) for any other.
    pub async fn completions(
        &self,
        req: &CompletionsRequest,
        model: &str,
    ) -> Result<ChatResponse, ProviderError> {
        if let Some(Endpoint { upstream, url }) = self.completions_endpoint(model) {
            let wire = wire(req, model, false);
            return openai::answer(upstream, url, &wire, &req.model, "completion").await;
        }
        let answer = self.chat(&to_chat(req)?, model).await?;
        Ok(ChatResponse {
            body: from_chat(&answer.body, &req.model, answer.usage.as_ref())?,
            usage: answer.usage,
        })
    }

    /// A completions request, streamed: the upstream's chunks passed through, or chat chunks
    /// turned into `text_completion` chunks.
    pub async fn completions_stream(
        &self,
        req: &CompletionsRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        if let Some(Endpoint { upstream, url }) = self.completions_endpoint(model) {
            return openai::chunks(upstream, url, &wire(req, model, true), &req.model).await;
        }
        let chunks = self.chat_stream(&to_chat(req)?, model).await?;
        Ok(to_events(chunks, req.model.clone()))
    }

    /// Where an OpenAI-style upstream serves legacy completions for `model`.
    fn completions_endpoint(&self, model: &str) -> Option<Endpoint<'_>> {
        match self {
            Self::OpenAi(openai) => Some(openai.endpoint("/completions")),
            Self::Azure(azure) => Some(azure.endpoint(model, "completions")),
            _ => None,
        }
    }
}
