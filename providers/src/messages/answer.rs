//! A whole chat completion → a Messages API answer.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::rewrite::{Completion, Message};
use crate::shape::prefixed_id;
use crate::{ProviderError, Usage};

/// OpenAI `finish_reason` → Anthropic `stop_reason`.
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// The first choice of a `chat.completion` as an Anthropic `message` naming `model` (the alias
/// the client asked for). Tool call arguments become `input` objects; arguments that are not
/// JSON (a model that broke off mid-call) are kept as a string under `_raw`.
pub fn from_chat(body: &[u8], model: &str, usage: Option<&Usage>) -> Result<Bytes, ProviderError> {
    let completion = Completion::parse(body)?;
    let choice = completion.choices.into_iter().next();
    let (message, finish) = match choice {
        Some(choice) => (choice.message, choice.finish_reason),
        None => (Message::default(), None),
    };
    let mut content = Vec::with_capacity(1 + message.tool_calls.len());
    if let Some(text) = message.content.filter(|text| !text.is_empty()) {
        content.push(json!({ "type": "text", "text": text }));
    }
    for call in message.tool_calls {
        content.push(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": input(&call.function.arguments),
        }));
    }
    let doc = json!({
        "id": prefixed_id("msg_", &completion.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(finish.as_deref()),
        "stop_sequence": null,
        "usage": usage_json(&usage.copied().unwrap_or_default()),
    });
    Ok(Bytes::from(doc.to_string()))
}

/// Tool call arguments as an `input` object.
pub(crate) fn input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| json!({ "_raw": arguments }))
}

/// Usage as Anthropic reports it: `input_tokens` without the cache reads and writes, which it
/// counts apart.
pub(crate) fn usage_json(usage: &Usage) -> Value {
    let cached = usage.cached_tokens;
    let written = usage.cache_write_tokens;
    json!({
        "input_tokens": usage.prompt_tokens.saturating_sub(cached + written),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
    })
}
