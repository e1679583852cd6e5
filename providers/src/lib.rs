//! Model provider adapters for tollgate.
//!
//! This crate knows nothing of tenants, HTTP servers or SQL: it takes an OpenAI-shaped request,
//! speaks one upstream's wire format, and hands back an OpenAI-shaped answer.
//!
//! - [`Provider`] is the contract; [`AnyProvider`] is the closed enum the gateway dispatches on.
//! - One module per upstream. OpenAI-compatible upstreams pass bytes through; Anthropic, Gemini and
//!   Ollama translate with small free functions (`to_wire`, `from_wire`, a stream translator).
//! - One module per other dialect clients speak ([`messages`], [`responses`], [`completions`]):
//!   sent as is to an upstream that speaks it, translated to chat completions (and the answer
//!   back, `rewrite`) for any other.
//! - [`ProviderError`] says where a failure came from and whether a retry is safe.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

pub mod anthropic;
pub mod azure;
mod client;
pub mod completions;
mod error;
mod framing;
pub mod gemini;
mod http;
pub mod messages;
pub mod mock;
pub mod ollama;
pub mod openai;
mod registry;
mod rename;
pub mod responses;
mod rewrite;
mod settings;
mod shape;
pub mod wire;

pub use client::{HttpClient, Proxy};
pub use error::{ProviderError, TimeoutPhase};
pub use framing::{Flow, named_event};
pub use registry::AnyProvider;
pub use settings::{ProviderKind, ProviderSettings};
pub use wire::{ChatRequest, EmbeddingsRequest, Reported, Usage};

/// A non-streaming chat answer.
#[derive(Debug, Clone)]
pub struct ChatResponse {
    /// An OpenAI `chat.completion` JSON document, ready to send to the client.
    pub body: Bytes,
    pub usage: Option<Usage>,
}

/// An embeddings answer.
#[derive(Debug, Clone)]
pub struct EmbeddingsResponse {
    /// An OpenAI embeddings `list` JSON document.
    pub body: Bytes,
    pub usage: Option<Usage>,
}

/// One streamed chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// One OpenAI `chat.completion.chunk` JSON object, without `data: ` framing.
    pub data: Bytes,
    pub usage: Option<Usage>,
    /// True for the final chunk that has no choices and only carries usage; the gateway drops it
    /// when the client did not ask for `stream_options.include_usage`.
    pub usage_only: bool,
}

/// Chunks as the upstream produces them. It ends (`None`) after the upstream's end marker; the
/// gateway writes `data: [DONE]` itself. Dropping it closes the upstream connection.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// What every upstream adapter does. `upstream_model` replaces `req.model` on the wire; every
/// answer, chunk and embeddings list names `req.model`, the name the client asked for, never
/// the upstream's.
pub trait Provider {
    fn chat(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> impl Future<Output = Result<ChatResponse, ProviderError>> + Send;

    /// Resolves once the upstream answered with a success status; chunks follow on the stream.
    fn chat_stream(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> impl Future<Output = Result<ChatStream, ProviderError>> + Send;

    fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        upstream_model: &str,
    ) -> impl Future<Output = Result<EmbeddingsResponse, ProviderError>> + Send;
}

// === impl StreamEvent ===

impl StreamEvent {
    pub fn new(data: Bytes, usage: Option<Usage>, usage_only: bool) -> Self {
        Self {
            data,
            usage,
            usage_only,
        }
    }
}
