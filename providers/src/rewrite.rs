//! A chat completion, whole or streamed, read for rewriting into a dialect a client spoke
//! (Anthropic's Messages, OpenAI's Responses or legacy completions) when the upstream only
//! speaks chat completions. Only what those rewrites read is typed.

use std::borrow::Cow;

use futures_util::StreamExt;
use serde::Deserialize;

use crate::{ChatStream, ProviderError, StreamEvent};

/// A whole `chat.completion`.
#[derive(Deserialize)]
pub(crate) struct Completion {
    #[serde(default)]
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) choices: Vec<Choice>,
}

#[derive(Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub(crate) index: u64,
    #[serde(default)]
    pub(crate) message: Message,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
pub(crate) struct Message {
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default)]
    pub(crate) refusal: Option<String>,
    #[serde(default)]
    pub(crate) tool_calls: Vec<Call>,
}

#[derive(Deserialize)]
pub(crate) struct Call {
    #[serde(default)]
    pub(crate) id: String,
    pub(crate) function: Function,
}

#[derive(Deserialize)]
pub(crate) struct Function {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) arguments: String,
}

/// One `chat.completion.chunk`, borrowed from the event's bytes.
#[derive(Deserialize)]
pub(crate) struct Chunk<'a> {
    #[serde(default, borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) choices: Vec<ChunkChoice<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct ChunkChoice<'a> {
    #[serde(default)]
    pub(crate) index: u64,
    #[serde(default, borrow)]
    pub(crate) delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    pub(crate) finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct Delta<'a> {
    #[serde(default, borrow)]
    pub(crate) content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) tool_calls: Vec<ToolDelta<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct ToolDelta<'a> {
    #[serde(default)]
    pub(crate) index: u64,
    #[serde(default, borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct FunctionDelta<'a> {
    #[serde(default, borrow)]
    pub(crate) name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) arguments: Option<Cow<'a, str>>,
}

// === impl Completion, Chunk ===

impl Completion {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ProviderError> {
        serde_json::from_slice(body).map_err(|e| ProviderError::decode("chat completion", e))
    }
}

impl<'a> Chunk<'a> {
    pub(crate) fn parse(event: &'a StreamEvent) -> Result<Self, ProviderError> {
        serde_json::from_slice(&event.data)
            .map_err(|e| ProviderError::decode("chat completion chunk", e))
    }
}

/// Turns chat completion chunks into another dialect's events, as they come.
pub(crate) trait Rewrite: Send + 'static {
    /// Reads one upstream chunk, queueing the events it makes.
    fn chunk(&mut self, chunk: &StreamEvent) -> Result<(), ProviderError>;
    /// The upstream's stream is over: queues the closing events.
    fn finish(&mut self);
    /// The next queued event.
    fn next(&mut self) -> Option<StreamEvent>;
}

/// The events `rewrite` makes of `chunks`, in order; an upstream error ends them.
pub(crate) fn rewrite(chunks: ChatStream, rewrite: impl Rewrite) -> ChatStream {
    let state = (Some(chunks), rewrite);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut chunks, mut rewrite)| async move {
            loop {
                if let Some(event) = rewrite.next() {
                    return Some((Ok(event), (chunks, rewrite)));
                }
                // `None` once the upstream's stream is over and its closing events are out.
                let upstream = chunks.as_mut()?;
                let failed = match upstream.next().await {
                    Some(Ok(chunk)) => rewrite.chunk(&chunk).err(),
                    Some(Err(error)) => Some(error),
                    None => {
                        chunks = None;
                        rewrite.finish();
                        None
                    }
                };
                if let Some(error) = failed {
                    return Some((Err(error), (None, rewrite)));
                }
            }
        },
    ))
}
