//! OpenAI's Responses API as a dialect clients speak to the gateway (`POST /v1/responses`),
//! stateless: tollgate stores no response and no conversation.
//!
//! An upstream that serves the Responses API (OpenAI and Azure, unless their settings say
//! otherwise: [`crate::ProviderSettings::responses_api`]) gets the request as the client sent
//! it (`native`). Every other upstream speaks chat completions, so the request is translated
//! to a [`ChatRequest`](crate::ChatRequest) ([`to_chat`]), and the answer back: a whole
//! `chat.completion` with [`from_chat`], a stream of chunks with [`to_events`].

mod answer;
mod events;
mod native;
mod request;
#[cfg(test)]
mod tests;

pub use answer::from_chat;
pub use events::to_events;
pub use request::{ResponsesRequest, to_chat};

use crate::openai::Endpoint;
use crate::{AnyProvider, ChatResponse, ChatStream, Provider, ProviderError};

// === impl AnyProvider ===

impl AnyProvider {
    /// A Responses request, whole answer: as sent to an upstream that serves the Responses
    /// API, translated to chat completions (and the answer back) for any other.
    pub async fn responses(
        &self,
        req: &ResponsesRequest,
        model: &str,
    ) -> Result<ChatResponse, ProviderError> {
        if let Some(endpoint) = self.responses_endpoint() {
            return native::responses(endpoint, req, model).await;
        }
        let answer = self.chat(&to_chat(req)?, model).await?;
        Ok(ChatResponse {
            body: from_chat(&answer.body, req, answer.usage.as_ref())?,
            usage: answer.usage,
        })
    }

    /// A Responses request, streamed: the upstream's events relayed, or chat chunks turned into
    /// them.
    pub async fn responses_stream(
        &self,
        req: &ResponsesRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        if let Some(endpoint) = self.responses_endpoint() {
            return native::responses_stream(endpoint, req, model).await;
        }
        let chunks = self.chat_stream(&to_chat(req)?, model).await?;
        Ok(to_events(chunks, req))
    }

    /// Where this upstream serves the Responses API, if it does.
    fn responses_endpoint(&self) -> Option<Endpoint<'_>> {
        match self {
            Self::OpenAi(openai) if openai.settings().responses_api => {
                Some(openai.endpoint("/responses"))
            }
            Self::Azure(azure) if azure.settings().responses_api => {
                Some(azure.v1_endpoint("/responses"))
            }
            _ => None,
        }
    }
}
