//! OpenAI chat request → Anthropic Messages request.

use serde_json::{Map, Value, json};

use crate::shape::parse_data_url;
use crate::wire::ChatMessage;
use crate::{ChatRequest, ProviderError};

/// Anthropic requires `max_tokens`; this is sent when the client gave none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The Messages API body for `req`, addressed to `model`.
///
/// System (and `developer`) messages are hoisted into `system`; tool results become
/// `tool_result` blocks in a user turn; consecutive turns of one role are merged because
/// Anthropic wants user and assistant to alternate.
pub fn to_wire(req: &ChatRequest, model: &str, stream: bool) -> Result<Value, ProviderError> {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for message in &req.messages {
        match message.role.as_str() {
            "system" | "developer" => {
                let text = message.text();
                if !text.is_empty() {
                    system.push(text);
                }
            }
            "user" => push_turn(&mut messages, "user", user_blocks(message)?),
            "assistant" => push_turn(&mut messages, "assistant", assistant_blocks(message)?),
            "tool" => push_turn(&mut messages, "user", vec![tool_result(message)?]),
            other => {
                return Err(ProviderError::unsupported(format!(
                    "message role {other:?} for Anthropic"
                )));
            }
        }
    }

    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    body.insert(
        "max_tokens".into(),
        req.max_output_tokens().unwrap_or(DEFAULT_MAX_TOKENS).into(),
    );
    if !system.is_empty() {
        body.insert("system".into(), system.join("\n\n").into());
    }
    if stream {
        body.insert("stream".into(), true.into());
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), p.into());
    }
    let stop = req.stop_sequences();
    if !stop.is_empty() {
        body.insert("stop_sequences".into(), stop.into());
    }
    if let Some(tools) = &req.tools {
        let tools = tools.iter().map(tool).collect::<Result<Vec<_>, _>>()?;
        body.insert("tools".into(), tools.into());
    }
    let parallel = req
        .extra
        .get("parallel_tool_calls")
        .and_then(Value::as_bool);
    if let Some(choice) = tool_choice(req.tool_choice.as_ref(), parallel)? {
        body.insert("tool_choice".into(), choice);
    }
    if let Some(user) = req.extra.get("user").and_then(Value::as_str) {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    Ok(Value::Object(body))
}

/// Appends blocks to the last turn when it has the same role, else starts a new turn.
fn push_turn(messages: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return; // Anthropic rejects empty turns; an empty message carries nothing anyway
    }
    if let Some(last) = messages.last_mut()
        && last["role"] == role
        && let Some(content) = last["content"].as_array_mut()
    {
        content.extend(blocks);
        return;
    }
    messages.push(json!({ "role": role, "content": blocks }));
}

fn text_block(text: &str) -> Option<Value> {
    // Anthropic rejects empty text blocks.
    (!text.is_empty()).then(|| json!({ "type": "text", "text": text }))
}

fn user_blocks(message: &ChatMessage) -> Result<Vec<Value>, ProviderError> {
    match &message.content {
        Some(Value::Array(parts)) => parts.iter().filter_map(part_block).collect(),
        _ => Ok(text_block(&message.text()).into_iter().collect()),
    }
}

/// One OpenAI content part as an Anthropic block; `None` for an empty text part.
fn part_block(part: &Value) -> Option<Result<Value, ProviderError>> {
    match part["type"].as_str() {
        Some("text") => text_block(part["text"].as_str().unwrap_or_default()).map(Ok),
        Some("image_url") => {
            let url = part["image_url"]["url"]
                .as_str()
                .or_else(|| part["image_url"].as_str())
                .unwrap_or_default();
            let source = match parse_data_url(url) {
                Some((media_type, data)) => {
                    json!({ "type": "base64", "media_type": media_type, "data": data })
                }
                None => json!({ "type": "url", "url": url }),
            };
            Some(Ok(json!({ "type": "image", "source": source })))
        }
        other => Some(Err(ProviderError::unsupported(format!(
            "content part {:?} for Anthropic",
            other.unwrap_or("<untyped>")
        )))),
    }
}

fn assistant_blocks(message: &ChatMessage) -> Result<Vec<Value>, ProviderError> {
    let mut blocks: Vec<Value> = text_block(&message.text()).into_iter().collect();
    for call in message.tool_calls.iter().flatten() {
        let input: Value = if call.function.arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&call.function.arguments).map_err(|_| {
                ProviderError::unsupported(format!(
                    "tool call {} has arguments that are not JSON",
                    call.id
                ))
            })?
        };
        blocks.push(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": input,
        }));
    }
    Ok(blocks)
}

fn tool_result(message: &ChatMessage) -> Result<Value, ProviderError> {
    let id = message
        .tool_call_id
        .as_deref()
        .ok_or_else(|| ProviderError::unsupported("tool message without tool_call_id".into()))?;
    Ok(json!({ "type": "tool_result", "tool_use_id": id, "content": message.text() }))
}

/// An OpenAI function tool as an Anthropic tool.
fn tool(tool: &Value) -> Result<Value, ProviderError> {
    let function = &tool["function"];
    let name = function["name"].as_str().ok_or_else(|| {
        ProviderError::unsupported("only function tools can be sent to Anthropic".into())
    })?;
    let mut out = json!({
        "name": name,
        "input_schema": match &function["parameters"] {
            Value::Null => json!({ "type": "object", "properties": {} }),
            schema => schema.clone(),
        },
    });
    if let Some(description) = function["description"].as_str() {
        out["description"] = description.into();
    }
    Ok(out)
}

fn tool_choice(
    choice: Option<&Value>,
    parallel: Option<bool>,
) -> Result<Option<Value>, ProviderError> {
    let mut out = match choice {
        None => {
            if parallel != Some(false) {
                return Ok(None);
            }
            json!({ "type": "auto" })
        }
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "required" => json!({ "type": "any" }),
            "none" => json!({ "type": "none" }),
            other => {
                return Err(ProviderError::unsupported(format!("tool_choice {other:?}")));
            }
        },
        Some(obj) => match obj["function"]["name"].as_str() {
            Some(name) => json!({ "type": "tool", "name": name }),
            None => {
                return Err(ProviderError::unsupported(
                    "tool_choice without a function name".into(),
                ));
            }
        },
    };
    if parallel == Some(false) && out["type"] != "none" {
        out["disable_parallel_tool_use"] = true.into();
    }
    Ok(Some(out))
}
