//! The legacy completions request, and its translation to a chat completions request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::{ChatMessage, StreamOptions};
use crate::{ChatRequest, ProviderError};

/// OpenAI's default `max_tokens` for legacy completions; chat completions has none.
const DEFAULT_MAX_TOKENS: u64 = 16;

/// A legacy completions request. Only what the gateway reads is typed; everything else
/// (`stop`, `suffix`, `logprobs`, `echo`, `best_of`, penalties, `seed`, …) stays in `extra`
/// and reaches an OpenAI-style upstream as sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionsRequest {
    pub model: String,
    /// A string, an array of strings, or token arrays.
    #[serde(default)]
    pub prompt: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// How many completions to generate; each may use the whole output cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The same request for an upstream that speaks chat completions: the prompt as one user
/// message, `max_tokens` (16 unless given, as OpenAI's completions default it), `n`,
/// sampling, `stop`, penalties, `seed`, `user`. What has no chat equivalent is refused,
/// naming the field: several prompts in one request, token prompts, `suffix`, `echo`,
/// `logprobs`, `best_of` above 1.
pub fn to_chat(req: &CompletionsRequest) -> Result<ChatRequest, ProviderError> {
    let prompt = prompt_text(&req.prompt)?;
    let extra = &req.extra;
    let present = |field: &str| extra.get(field).is_some_and(|value| !value.is_null());
    for field in ["suffix", "logprobs"] {
        if present(field) {
            return Err(refused(field, "has no chat completions equivalent"));
        }
    }
    if extra.get("echo").and_then(Value::as_bool) == Some(true) {
        return Err(refused("echo", "has no chat completions equivalent"));
    }
    if extra.get("best_of").and_then(Value::as_u64).unwrap_or(1) > 1 {
        return Err(refused("best_of", "has no chat completions equivalent"));
    }
    let number = |field: &str| extra.get(field).and_then(Value::as_f64);
    let streaming = req.stream == Some(true);
    let mut chat = ChatRequest {
        model: req.model.clone(),
        messages: vec![ChatMessage {
            role: "user".to_owned(),
            content: Some(Value::String(prompt)),
            ..ChatMessage::default()
        }],
        stream: req.stream,
        stream_options: streaming.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        max_tokens: Some(req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
        n: req.n,
        temperature: number("temperature"),
        top_p: number("top_p"),
        stop: extra.get("stop").filter(|stop| !stop.is_null()).cloned(),
        ..ChatRequest::default()
    };
    // The same name and meaning in chat completions.
    for field in [
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "seed",
        "user",
    ] {
        if let Some(value) = extra.get(field).filter(|value| !value.is_null()) {
            chat.extra.insert(field.into(), value.clone());
        }
    }
    Ok(chat)
}

/// The one prompt, as text.
fn prompt_text(prompt: &Value) -> Result<String, ProviderError> {
    match prompt {
        Value::String(text) => Ok(text.clone()),
        Value::Array(items) => match items.as_slice() {
            [Value::String(text)] => Ok(text.clone()),
            [] => Ok(String::new()),
            [_] => Err(refused(
                "prompt",
                "a prompt of tokens cannot be sent to this model's upstream; send text",
            )),
            _ => Err(refused(
                "prompt",
                "this model's upstream takes one prompt per request",
            )),
        },
        _ => Err(refused("prompt", "expected a string")),
    }
}

fn refused(param: &str, message: &str) -> ProviderError {
    ProviderError::unsupported_field(param, message.to_owned())
}
