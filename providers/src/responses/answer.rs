//! A whole chat completion → a Responses API `response` object; the object's parts that the
//! events repeat.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ResponsesRequest;
use crate::rewrite::{Completion, Message};
use crate::shape::{fresh_id, now_secs, prefixed_id};
use crate::{ProviderError, Reported, Usage};

/// The first choice of a `chat.completion` as a `response` naming the model the client asked
/// for: its text as a `message` item, its tool calls as `function_call` items.
pub fn from_chat(
    body: &[u8],
    req: &ResponsesRequest,
    usage: Option<&Usage>,
) -> Result<Bytes, ProviderError> {
    let completion = Completion::parse(body)?;
    let choice = completion.choices.into_iter().next();
    let (message, finish) = match choice {
        Some(choice) => (choice.message, choice.finish_reason),
        None => (Message::default(), None),
    };
    let mut output = Vec::with_capacity(1 + message.tool_calls.len());
    let refusal = message.refusal.filter(|refusal| !refusal.is_empty());
    let text = message.content.filter(|text| !text.is_empty());
    if text.is_some() || refusal.is_some() {
        let part = match (text, refusal) {
            (Some(text), _) => output_text(&text),
            (None, refusal) => json!({ "type": "refusal", "refusal": refusal }),
        };
        output.push(message_item(&fresh_id("msg_"), "completed", vec![part]));
    }
    for call in message.tool_calls {
        output.push(function_call_item(
            &call.id,
            &call.function.name,
            &call.function.arguments,
            "completed",
        ));
    }
    let id = prefixed_id("resp_", &completion.id);
    let doc = Echo::of(req).response(&id, now_secs(), finish.as_deref(), output, usage);
    Ok(Bytes::from(doc.to_string()))
}

/// What a `response` object repeats of its request (model, instructions, tools and other
/// settings), ready to be completed with an id, a status, the output and the usage.
#[derive(Debug, Clone)]
pub(crate) struct Echo(Map<String, Value>);

impl Echo {
    pub(crate) fn of(req: &ResponsesRequest) -> Self {
        let setting = |field: &str, default: Value| {
            req.extra
                .get(field)
                .filter(|value| !value.is_null())
                .cloned()
                .unwrap_or(default)
        };
        let doc = json!({
            "object": "response",
            "model": req.model,
            "instructions": setting("instructions", Value::Null),
            "max_output_tokens": req.max_output_tokens,
            "metadata": setting("metadata", json!({})),
            "parallel_tool_calls": setting("parallel_tool_calls", Value::Bool(true)),
            "previous_response_id": null,
            "reasoning": setting("reasoning", Value::Null),
            "store": false,
            "temperature": setting("temperature", Value::Null),
            "text": setting("text", json!({ "format": { "type": "text" } })),
            "tool_choice": setting("tool_choice", Value::from("auto")),
            "tools": setting("tools", json!([])),
            "top_p": setting("top_p", Value::Null),
            "truncation": setting("truncation", Value::from("disabled")),
            "user": setting("user", Value::Null),
            "background": false,
            "error": null,
        });
        match doc {
            Value::Object(map) => Self(map),
            _ => Self(Map::new()),
        }
    }

    /// The `response`, completed or incomplete as the chat `finish_reason` says.
    pub(crate) fn response(
        &self,
        id: &str,
        created_at: u64,
        finish: Option<&str>,
        output: Vec<Value>,
        usage: Option<&Usage>,
    ) -> Value {
        let mut doc = self.0.clone();
        let (status, incomplete) = status(finish);
        doc.insert("id".into(), Value::from(id));
        doc.insert("created_at".into(), Value::from(created_at));
        doc.insert("status".into(), Value::from(status));
        doc.insert("incomplete_details".into(), incomplete);
        doc.insert("output".into(), Value::Array(output));
        doc.insert("usage".into(), usage.map_or(Value::Null, usage_json));
        Value::Object(doc)
    }

    /// The same while the answer is being written.
    pub(crate) fn in_progress(&self, id: &str, created_at: u64) -> Value {
        let mut doc = self.response(id, created_at, None, Vec::new(), None);
        doc["status"] = Value::from("in_progress");
        doc
    }
}

/// The `status` and `incomplete_details` a chat `finish_reason` makes.
fn status(finish: Option<&str>) -> (&'static str, Value) {
    match finish {
        Some("length") => ("incomplete", json!({ "reason": "max_output_tokens" })),
        Some("content_filter") => ("incomplete", json!({ "reason": "content_filter" })),
        _ => ("completed", Value::Null),
    }
}

/// Whether a finished response is `response.completed` or `response.incomplete`.
pub(crate) fn final_event(finish: Option<&str>) -> &'static str {
    match status(finish).0 {
        "incomplete" => "response.incomplete",
        _ => "response.completed",
    }
}

/// An `output_text` content part.
pub(crate) fn output_text(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
}

/// An assistant `message` output item.
pub(crate) fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({ "type": "message", "id": id, "status": status, "role": "assistant", "content": content })
}

/// A `function_call` output item; its id is the call's, as Responses spells item ids.
pub(crate) fn function_call_item(
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({
        "type": "function_call",
        "id": prefixed_id("fc_", call_id),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    })
}

/// Usage as the Responses API reports it: input (cache reads and writes included), output
/// (reasoning included), and their details.
pub(crate) fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": { "reasoning_tokens": usage.reasoning_tokens },
        "total_tokens": usage.total_tokens,
    })
}

/// The Responses API's usage object as an upstream reports it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(wire: WireUsage) -> Self {
        let input = wire.input_tokens_details.unwrap_or_default();
        Usage {
            prompt_tokens: wire.input_tokens,
            completion_tokens: wire.output_tokens,
            total_tokens: wire
                .total_tokens
                .unwrap_or(wire.input_tokens + wire.output_tokens),
            cached_tokens: input.cached_tokens.unwrap_or(0),
            reasoning_tokens: wire
                .output_tokens_details
                .and_then(|details| details.reasoning_tokens)
                .unwrap_or(0),
            cache_write_tokens: input.cache_write_tokens.unwrap_or(0),
            reported: Reported::All,
        }
    }
}
