//! Gemini answers → OpenAI completions and chunks.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::framing::{Flow, SseEvent, Translate};
use crate::shape::{self, Chunks};
use crate::{ProviderError, Reported, StreamEvent, Usage};

/// `finishReason` → OpenAI `finish_reason`. A normal stop that made function calls is
/// `tool_calls`, which is what OpenAI clients wait for before running tools.
pub fn finish_reason(reason: &str, made_tool_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if made_tool_calls => "tool_calls",
        _ => "stop",
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    response_id: Option<String>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    text: Option<String>,
    /// Thought summaries are not part of the answer.
    #[serde(default)]
    thought: bool,
    #[serde(default)]
    function_call: Option<FunctionCall>,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    args: Value,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    total_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
}

impl UsageMetadata {
    /// Thinking tokens are billed as output, so they count as completion (as OpenAI's reasoning
    /// tokens do); cached tokens are already inside `promptTokenCount`.
    fn normalise(self) -> Usage {
        let completion = self.candidates_token_count + self.thoughts_token_count;
        let total = if self.total_token_count > 0 {
            self.total_token_count
        } else {
            self.prompt_token_count + completion
        };
        Usage {
            prompt_tokens: self.prompt_token_count,
            completion_tokens: completion,
            total_tokens: total,
            cached_tokens: self.cached_content_token_count,
            reasoning_tokens: self.thoughts_token_count,
            cache_write_tokens: 0,
            reported: Reported::All,
        }
    }
}

/// The answer's text and tool calls, one OpenAI tool call per `functionCall` part.
fn split_parts(parts: Vec<Part>) -> (String, Vec<(String, String, String)>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in parts {
        if let Some(call) = part.function_call {
            // Gemini gives ids only sometimes; OpenAI clients need one to answer the call.
            let id = call.id.unwrap_or_else(|| shape::fresh_id("call_"));
            let args = if call.args.is_null() {
                json!({})
            } else {
                call.args
            };
            calls.push((id, call.name, args.to_string()));
        } else if let Some(t) = part.text.filter(|_| !part.thought) {
            text.push_str(&t);
        }
    }
    (text, calls)
}

/// A whole `generateContent` answer → an OpenAI `chat.completion` body naming `model` (the
/// name the client asked for, not Gemini's `modelVersion`), and its usage.
pub fn from_wire(body: &[u8], model: &str) -> Result<(Bytes, Usage), ProviderError> {
    let resp: WireResponse =
        serde_json::from_slice(body).map_err(|e| ProviderError::decode("Gemini response", e))?;
    let usage = resp.usage_metadata.unwrap_or_default().normalise();
    let blocked = resp.prompt_feedback.and_then(|f| f.block_reason).is_some();
    let candidate = resp.candidates.into_iter().next();
    let reason = candidate.as_ref().and_then(|c| c.finish_reason.clone());
    let parts = candidate
        .and_then(|c| c.content)
        .map(|c| c.parts)
        .unwrap_or_default();
    let (text, calls) = split_parts(parts);
    let finish = match reason {
        Some(reason) => finish_reason(&reason, !calls.is_empty()),
        None if blocked => "content_filter",
        None => finish_reason("STOP", !calls.is_empty()),
    };
    let tool_calls = calls
        .iter()
        .map(|(id, name, args)| shape::tool_call(id, name, args))
        .collect();
    let id = resp
        .response_id
        .unwrap_or_else(|| shape::fresh_id("chatcmpl-"));
    let body = shape::completion(
        &id,
        model,
        shape::assistant_message(&text, tool_calls),
        finish,
        Some(&usage),
    );
    Ok((body, usage))
}

// === streaming ===

/// What a stream has told us so far. Gemini has no end marker: the body just ends, so the
/// usage chunk is emitted then, if a finish reason was seen.
#[derive(Debug)]
pub struct StreamState {
    model: String,
    chunks: Option<Chunks>,
    usage: UsageMetadata,
    tool_calls: u64,
    finished: bool,
}

impl StreamState {
    /// Chunks will name `model` (the name the client asked for, not Gemini's `modelVersion`).
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            chunks: None,
            usage: UsageMetadata::default(),
            tool_calls: 0,
            finished: false,
        }
    }
}

/// One streamed `GenerateContentResponse` → OpenAI chunks.
pub fn from_wire_event(
    data: &str,
    state: &mut StreamState,
    out: &mut Vec<StreamEvent>,
) -> Result<(), ProviderError> {
    let resp: WireResponse =
        serde_json::from_str(data).map_err(|e| ProviderError::decode("Gemini chunk", e))?;
    let first = out.len();
    // Early chunks carry the prompt's counts (and a partial answer count, which the final
    // chunk supersedes): passed on with this chunk's first event so that a stream that breaks
    // before its finish is still billed them. The first chunk always makes an event.
    let prompt_report = resp
        .usage_metadata
        .filter(|usage| usage.prompt_token_count > 0)
        .map(|usage| usage.normalise().prompt_only());
    if let Some(usage) = resp.usage_metadata {
        state.usage = usage;
    }
    translate_chunk(resp, state, out);
    if let (Some(event), Some(usage)) = (out.get_mut(first), prompt_report) {
        event.usage = Some(usage);
    }
    Ok(())
}

/// The events of one chunk, once its usage is noted.
fn translate_chunk(resp: WireResponse, state: &mut StreamState, out: &mut Vec<StreamEvent>) {
    let chunks = match &mut state.chunks {
        Some(chunks) => chunks,
        None => {
            let id = resp
                .response_id
                .unwrap_or_else(|| shape::fresh_id("chatcmpl-"));
            let chunks = state.chunks.insert(Chunks::new(id, state.model.clone()));
            out.push(chunks.delta(json!({ "role": "assistant", "content": "" }), None));
            chunks
        }
    };
    let Some(candidate) = resp.candidates.into_iter().next() else {
        if resp.prompt_feedback.and_then(|f| f.block_reason).is_some() {
            out.push(chunks.delta(json!({}), Some("content_filter")));
            state.finished = true;
        }
        return;
    };
    let (text, calls) = split_parts(candidate.content.map(|c| c.parts).unwrap_or_default());
    if !text.is_empty() {
        out.push(chunks.delta(json!({ "content": text }), None));
    }
    // Gemini sends each function call whole, so one delta carries id, name and arguments.
    for (id, name, args) in calls {
        let call = json!({ "index": state.tool_calls, "id": id, "type": "function",
                           "function": { "name": name, "arguments": args } });
        state.tool_calls += 1;
        out.push(chunks.delta(json!({ "tool_calls": [call] }), None));
    }
    if let Some(reason) = candidate.finish_reason {
        let finish = finish_reason(&reason, state.tool_calls > 0);
        out.push(chunks.delta(json!({}), Some(finish)));
        state.finished = true;
    }
}

impl Translate<SseEvent> for StreamState {
    fn frame(&mut self, ev: SseEvent, out: &mut Vec<StreamEvent>) -> Result<Flow, ProviderError> {
        from_wire_event(&ev.data, self, out)?;
        Ok(Flow::Continue)
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        match (&self.chunks, self.finished) {
            (Some(chunks), true) => {
                out.push(chunks.usage(self.usage.normalise()));
                Ok(())
            }
            _ => Err(ProviderError::InvalidResponse(
                "Gemini stream ended before a finish reason".into(),
            )),
        }
    }
}
