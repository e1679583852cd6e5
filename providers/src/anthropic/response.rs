//! Anthropic answers → OpenAI completions and chunks.

use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::framing::{Flow, SseEvent, Translate};
use crate::shape::{self, Chunks};
use crate::{ProviderError, Reported, StreamEvent, Usage};

/// `stop_reason` → OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    }
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    id: String,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// thinking, redacted_thinking, server tool blocks: nothing OpenAI's shape can carry.
    #[serde(other)]
    Other,
}

/// Anthropic's usage; every field may be absent or null, and `message_delta` repeats some.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Later reports win, field by field.
    fn merge(&mut self, later: WireUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
    }

    /// Anthropic's `input_tokens` excludes cache reads and writes; OpenAI's prompt includes them.
    fn normalise(self) -> Usage {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
        let prompt = self.input_tokens.unwrap_or(0) + cached + cache_write;
        let completion = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            cached_tokens: cached,
            reasoning_tokens: 0,
            cache_write_tokens: cache_write,
            reported: Reported::All,
        }
    }
}

/// A whole Messages API answer → an OpenAI `chat.completion` body naming `model` (the name the
/// client asked for), and its usage.
pub fn from_wire(body: &[u8], model: &str) -> Result<(Bytes, Usage), ProviderError> {
    let msg: WireMessage =
        serde_json::from_slice(body).map_err(|e| ProviderError::decode("Anthropic message", e))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in msg.content {
        match block {
            Block::Text { text: t } => text.push_str(&t),
            Block::ToolUse { id, name, input } => {
                tool_calls.push(shape::tool_call(&id, &name, &input.to_string()));
            }
            Block::Other => {}
        }
    }
    let usage = msg.usage.normalise();
    let body = shape::completion(
        &msg.id,
        model,
        shape::assistant_message(&text, tool_calls),
        finish_reason(msg.stop_reason.as_deref()),
        Some(&usage),
    );
    Ok((body, usage))
}

// === streaming ===

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u64,
        delta: Delta,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    /// ping, content_block_stop and events added after this was written.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct StartMessage {
    id: String,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(other)]
    Other, // thinking_delta, signature_delta, citations_delta
}

#[derive(Debug, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

/// What a stream has told us so far.
#[derive(Debug)]
pub struct StreamState {
    /// The name every chunk reports: the one the client asked for.
    model: String,
    chunks: Option<Chunks>,
    usage: WireUsage,
    /// Content block index → OpenAI tool call index (tool calls are numbered from 0).
    tool_index: HashMap<u64, u64>,
}

impl StreamState {
    /// Chunks will name `model`.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            chunks: None,
            usage: WireUsage::default(),
            tool_index: HashMap::new(),
        }
    }

    fn chunks(&mut self) -> &Chunks {
        self.chunks
            .get_or_insert_with(|| Chunks::new(shape::fresh_id("msg_"), self.model.clone()))
    }
}

/// One Anthropic event → zero or more OpenAI chunks, in order. `Flow::Done` after `message_stop`.
pub fn from_wire_event(
    data: &str,
    state: &mut StreamState,
    out: &mut Vec<StreamEvent>,
) -> Result<Flow, ProviderError> {
    let event: WireEvent =
        serde_json::from_str(data).map_err(|e| ProviderError::decode("Anthropic event", e))?;
    match event {
        WireEvent::MessageStart { message } => {
            state.usage.merge(message.usage);
            let chunks = state
                .chunks
                .insert(Chunks::new(message.id, state.model.clone()));
            let mut role = chunks.delta(json!({ "role": "assistant", "content": "" }), None);
            // The prompt's counts are final here; its `output_tokens` is a placeholder. Passed
            // on now so that a stream that breaks before `message_stop` is still billed them.
            if message.usage.input_tokens.is_some() {
                role.usage = Some(state.usage.normalise().prompt_only());
            }
            out.push(role);
        }
        WireEvent::ContentBlockStart {
            index,
            content_block,
        } => match content_block {
            Block::Text { text } if !text.is_empty() => {
                out.push(state.chunks().delta(json!({ "content": text }), None));
            }
            Block::ToolUse { id, name, .. } => {
                // `input` is always `{}` here; the arguments follow as input_json_delta.
                let tool = state.tool_index.len() as u64;
                state.tool_index.insert(index, tool);
                let call = json!({ "index": tool, "id": id, "type": "function",
                                   "function": { "name": name, "arguments": "" } });
                out.push(state.chunks().delta(json!({ "tool_calls": [call] }), None));
            }
            _ => {}
        },
        WireEvent::ContentBlockDelta { index, delta } => match delta {
            Delta::Text { text } => {
                out.push(state.chunks().delta(json!({ "content": text }), None));
            }
            Delta::InputJson { partial_json } => {
                let tool = state.tool_index.get(&index).copied().ok_or_else(|| {
                    ProviderError::InvalidResponse(format!(
                        "input_json_delta for unknown block {index}"
                    ))
                })?;
                let call = json!({ "index": tool, "function": { "arguments": partial_json } });
                out.push(state.chunks().delta(json!({ "tool_calls": [call] }), None));
            }
            Delta::Other => {}
        },
        WireEvent::MessageDelta { delta, usage } => {
            state.usage.merge(usage);
            let reason = finish_reason(delta.stop_reason.as_deref());
            out.push(state.chunks().delta(json!({}), Some(reason)));
        }
        WireEvent::MessageStop => {
            let usage = state.usage.normalise();
            out.push(state.chunks().usage(usage));
            return Ok(Flow::Done);
        }
        WireEvent::Error { error } => {
            return Err(ProviderError::StreamError(crate::error::truncate(
                &format!("{}: {}", error.kind, error.message),
                300,
            )));
        }
        WireEvent::Other => {}
    }
    Ok(Flow::Continue)
}

impl Translate<SseEvent> for StreamState {
    fn frame(&mut self, ev: SseEvent, out: &mut Vec<StreamEvent>) -> Result<Flow, ProviderError> {
        from_wire_event(&ev.data, self, out)
    }

    fn end(&mut self, _: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        Err(ProviderError::InvalidResponse(
            "Anthropic stream ended before message_stop".into(),
        ))
    }
}
