//! Lenient OpenAI-shaped request types and the normalised [`Usage`].
//!
//! Only what an adapter translates is typed; everything else lands in `extra` and is forwarded
//! verbatim to OpenAI-style upstreams, so a client can use a field this crate has never heard of.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An OpenAI chat completions request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// How many choices to generate; each may use the whole output cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// A string or an array of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Value>,
    /// OpenAI tool definitions, kept as JSON: non-function tools pass through to OpenAI untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One message. `role` is a free string so that new roles (`developer`, …) are not rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    /// A string, an array of content parts, or null (assistant messages with tool calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tool call made by the assistant, as OpenAI spells it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, exactly as the model produced it.
    #[serde(default)]
    pub arguments: String,
}

fn function_type() -> String {
    "function".to_owned()
}

/// An OpenAI embeddings request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    /// A string, an array of strings, or token arrays.
    pub input: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token usage, normalised across upstreams.
///
/// `prompt_tokens` always includes cached tokens and cache writes (Anthropic reports them apart;
/// we add them back) and `completion_tokens` includes reasoning tokens, as OpenAI counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Prompt tokens read from the upstream's cache.
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    /// Prompt tokens written to the upstream's cache (Anthropic's `cache_creation_input_tokens`),
    /// which some vendors price above plain input.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Which of these counts the upstream reported; the gateway estimates the others.
    #[serde(default)]
    pub reported: Reported,
}

/// Which counts of a [`Usage`] come from the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reported {
    #[default]
    All,
    /// The prompt's counts (prompt, cached, cache writes), sent before the answer (Anthropic's
    /// `message_start`, Gemini's early `usageMetadata`): what a stream that breaks before its
    /// final usage still knows. The completion counts are zero, not counted.
    PromptOnly,
    /// The answer's counts; the upstream left the prompt count out (older Ollama releases,
    /// for a cached prompt). Cached tokens, when given, are real.
    CompletionOnly,
}

// === impl ChatRequest ===

impl ChatRequest {
    /// The output cap the client asked for; `max_completion_tokens` supersedes `max_tokens`.
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// `stop` as a list, whether the client sent a string or an array.
    pub fn stop_sequences(&self) -> Vec<String> {
        match &self.stop {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
}

// === impl ChatMessage ===

impl ChatMessage {
    /// The text of the message: the string content, or its text parts joined.
    pub fn text(&self) -> String {
        match &self.content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        }
    }
}

// === impl Usage ===

impl Usage {
    /// Only the prompt's counts, for a report made before the answer.
    pub fn prompt_only(self) -> Self {
        Self {
            completion_tokens: 0,
            total_tokens: self.prompt_tokens,
            reasoning_tokens: 0,
            reported: Reported::PromptOnly,
            ..self
        }
    }

    /// Usage as OpenAI writes it in a response, details included.
    pub fn to_openai_json(&self) -> Value {
        serde_json::json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": { "cached_tokens": self.cached_tokens },
            "completion_tokens_details": { "reasoning_tokens": self.reasoning_tokens },
        })
    }
}

/// OpenAI's usage object as found in responses and chunks.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u
                .total_tokens
                .unwrap_or(u.prompt_tokens + u.completion_tokens),
            cached_tokens: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning_tokens: u
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
            reported: Reported::All,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let raw = serde_json::json!({
            "model": "m",
            "messages": [{"role": "developer", "content": "be brief", "cache_control": {"type": "x"}}],
            "seed": 7,
            "logit_bias": {"50256": -100},
            "stream_options": {"include_usage": true, "future": 1}
        });
        let req: ChatRequest = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(req.extra["seed"], 7);
        assert_eq!(serde_json::to_value(&req).unwrap(), raw);
    }

    #[test]
    fn openai_usage_details_are_normalised() {
        let u: OpenAiUsage = serde_json::from_value(serde_json::json!({
            "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}
        }))
        .unwrap();
        let u = Usage::from(u);
        assert_eq!(
            (u.cached_tokens, u.reasoning_tokens, u.total_tokens),
            (4, 2, 15)
        );
    }

    #[test]
    fn text_joins_text_parts_and_skips_images() {
        let m: ChatMessage = serde_json::from_value(serde_json::json!({
            "role": "user",
            "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "b"}]
        }))
        .unwrap();
        assert_eq!(m.text(), "ab");
    }
}
