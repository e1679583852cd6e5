//! Anthropic's Messages API as a dialect clients speak to the gateway (`POST /v1/messages`).
//!
//! An Anthropic upstream gets the request as the client sent it (see
//! [`crate::anthropic::Anthropic::messages`]). Every other upstream speaks OpenAI's chat
//! completions, so the request is translated to a [`ChatRequest`] ([`to_chat`]), and the answer
//! back: a whole `chat.completion` with [`from_chat`], a stream of chunks with [`to_events`].

mod answer;
mod events;
mod request;
#[cfg(test)]
mod tests;

pub use answer::{from_chat, stop_reason};
pub use events::to_events;
pub use request::{MessageParam, MessagesRequest, to_chat};

use crate::anthropic::Forwarded;
use crate::{AnyProvider, ChatResponse, ChatStream, Provider, ProviderError};

// === impl AnyProvider ===

impl AnyProvider {
    /// A Messages request, whole answer: as sent to an Anthropic upstream, translated to chat
    /// completions (and the answer back) for any other.
    pub async fn messages(
        &self,
        req: &MessagesRequest,
        model: &str,
        forwarded: &Forwarded,
    ) -> Result<ChatResponse, ProviderError> {
        if let Self::Anthropic(anthropic) = self {
            return anthropic.messages(req, model, forwarded).await;
        }
        let answer = self.chat(&to_chat(req)?, model).await?;
        Ok(ChatResponse {
            body: from_chat(&answer.body, &req.model, answer.usage.as_ref())?,
            usage: answer.usage,
        })
    }

    /// A Messages request, streamed: Anthropic's events relayed, or chat chunks turned into them.
    pub async fn messages_stream(
        &self,
        req: &MessagesRequest,
        model: &str,
        forwarded: &Forwarded,
    ) -> Result<ChatStream, ProviderError> {
        if let Self::Anthropic(anthropic) = self {
            return anthropic.messages_stream(req, model, forwarded).await;
        }
        let chunks = self.chat_stream(&to_chat(req)?, model).await?;
        Ok(to_events(chunks, req.model.clone()))
    }
}
