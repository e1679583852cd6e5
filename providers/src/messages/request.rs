//! The Messages request, and its translation to a chat completions request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::wire::{ChatMessage, FunctionCall, StreamOptions, ToolCall};
use crate::{ChatRequest, ProviderError};

/// A Messages API request. Only what the gateway reads or translates is typed; everything else
/// (`tools`, `thinking`, `metadata`, `cache_control`, fields added after this was written) stays
/// in `extra` and reaches an Anthropic upstream as sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<MessageParam>,
    /// Required by `/v1/messages`, absent from `/v1/messages/count_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// A string, or an array of text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One input message: `user` or `assistant`, with a string or an array of content blocks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageParam {
    pub role: String,
    pub content: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The same request for an upstream that speaks chat completions. Tool results become `tool`
/// messages, images data or plain URLs, tools functions. What chat completions cannot express
/// (documents, server tools) is refused rather than silently dropped; `thinking` blocks and
/// `cache_control` marks are dropped (the upstream thinks and caches on its own terms).
pub fn to_chat(req: &MessagesRequest) -> Result<ChatRequest, ProviderError> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        let text = joined_text(system, "system")?;
        if !text.is_empty() {
            messages.push(message("system", Value::String(text)));
        }
    }
    for (i, param) in req.messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        match param.role.as_str() {
            "user" => user(&param.content, &at, &mut messages)?,
            "assistant" => messages.push(assistant(&param.content, &at)?),
            other => {
                return Err(ProviderError::unsupported(format!(
                    "{at}.role `{other}`: expected `user` or `assistant`"
                )));
            }
        }
    }
    let extra = &req.extra;
    let number = |field: &str| extra.get(field).and_then(Value::as_f64);
    let mut chat = ChatRequest {
        model: req.model.clone(),
        messages,
        stream: req.stream,
        stream_options: (req.stream == Some(true)).then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        max_tokens: req.max_tokens,
        temperature: number("temperature"),
        top_p: number("top_p"),
        stop: extra.get("stop_sequences").cloned(),
        ..ChatRequest::default()
    };
    if let Some(tools) = extra.get("tools") {
        chat.tools = Some(functions(tools)?);
    }
    if let Some(choice) = extra.get("tool_choice") {
        let (choice, parallel) = tool_choice(choice)?;
        chat.tool_choice = choice;
        if parallel == Some(false) {
            chat.extra
                .insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    if let Some(user) = extra
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        chat.extra.insert("user".into(), Value::from(user));
    }
    Ok(chat)
}

fn message(role: &str, content: Value) -> ChatMessage {
    ChatMessage {
        role: role.to_owned(),
        content: Some(content),
        ..ChatMessage::default()
    }
}

fn block_type<'a>(block: &'a Value, at: &str) -> Result<&'a str, ProviderError> {
    block
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::unsupported(format!("{at}: a content block needs a `type`")))
}

fn text_field(block: &Value) -> &str {
    block
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A string, or the text of an array of text blocks joined.
fn joined_text(content: &Value, at: &str) -> Result<String, ProviderError> {
    match content {
        Value::String(text) => Ok(text.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for (i, block) in blocks.iter().enumerate() {
                match block_type(block, &format!("{at}[{i}]"))? {
                    "text" => text.push_str(text_field(block)),
                    other => {
                        return Err(ProviderError::unsupported(format!(
                            "{at}[{i}]: a `{other}` block cannot be sent to this model's upstream"
                        )));
                    }
                }
            }
            Ok(text)
        }
        Value::Null => Ok(String::new()),
        _ => Err(ProviderError::unsupported(format!(
            "{at}: expected a string or an array of blocks"
        ))),
    }
}

/// A user turn: its tool results first, as `tool` messages (chat completions wants them right
/// after the assistant's calls), then its text and images as one user message.
fn user(content: &Value, at: &str, out: &mut Vec<ChatMessage>) -> Result<(), ProviderError> {
    let blocks = match content {
        Value::String(text) => {
            out.push(message("user", Value::from(text.as_str())));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(ProviderError::unsupported(format!(
                "{at}.content: expected a string or an array of blocks"
            )));
        }
    };
    let mut parts = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{i}]");
        match block_type(block, &at)? {
            "text" => parts.push(json!({ "type": "text", "text": text_field(block) })),
            "image" => parts.push(image(block, &at)?),
            "tool_result" => {
                let id = block.get("tool_use_id").and_then(Value::as_str);
                let id = id.ok_or_else(|| {
                    ProviderError::unsupported(format!("{at}: missing `tool_use_id`"))
                })?;
                let text = joined_text(block.get("content").unwrap_or(&Value::Null), &at)?;
                out.push(ChatMessage {
                    tool_call_id: Some(id.to_owned()),
                    ..message("tool", Value::String(text))
                });
            }
            other => {
                return Err(ProviderError::unsupported(format!(
                    "{at}: a `{other}` block cannot be sent to this model's upstream"
                )));
            }
        }
    }
    let only_text = parts.iter().all(|part| part["type"] == "text");
    if only_text && !parts.is_empty() {
        let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        out.push(message("user", Value::String(text)));
    } else if !parts.is_empty() {
        out.push(message("user", Value::Array(parts)));
    }
    Ok(())
}

/// An image block as an `image_url` part: base64 data as a `data:` URL, or the URL itself.
fn image(block: &Value, at: &str) -> Result<Value, ProviderError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = source.get("media_type").and_then(Value::as_str);
            let data = source.get("data").and_then(Value::as_str);
            match (media, data) {
                (Some(media), Some(data)) => format!("data:{media};base64,{data}"),
                _ => {
                    return Err(ProviderError::unsupported(format!(
                        "{at}.source: needs media_type and data"
                    )));
                }
            }
        }
        Some("url") => match source.get("url").and_then(Value::as_str) {
            Some(url) => url.to_owned(),
            None => {
                return Err(ProviderError::unsupported(format!(
                    "{at}.source: needs a url"
                )));
            }
        },
        _ => {
            return Err(ProviderError::unsupported(format!(
                "{at}.source: only base64 and url images can be sent to this model's upstream"
            )));
        }
    };
    Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
}

/// An assistant turn: its text, and its `tool_use` blocks as tool calls. Thinking blocks are
/// the upstream's own and are left out.
fn assistant(content: &Value, at: &str) -> Result<ChatMessage, ProviderError> {
    let blocks = match content {
        Value::String(text) => return Ok(message("assistant", Value::from(text.as_str()))),
        Value::Array(blocks) => blocks,
        _ => {
            return Err(ProviderError::unsupported(format!(
                "{at}.content: expected a string or an array of blocks"
            )));
        }
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{i}]");
        match block_type(block, &at)? {
            "text" => text.push_str(text_field(block)),
            "tool_use" => {
                let field = |name: &str| block.get(name).and_then(Value::as_str);
                let (Some(id), Some(name)) = (field("id"), field("name")) else {
                    return Err(ProviderError::unsupported(format!(
                        "{at}: a tool_use needs an id and a name"
                    )));
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(ToolCall {
                    id: id.to_owned(),
                    kind: "function".to_owned(),
                    function: FunctionCall {
                        name: name.to_owned(),
                        arguments: input.to_string(),
                    },
                    extra: Map::new(),
                });
            }
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(ProviderError::unsupported(format!(
                    "{at}: a `{other}` block cannot be sent to this model's upstream"
                )));
            }
        }
    }
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    Ok(ChatMessage {
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..message("assistant", content)
    })
}

/// Client tools (`name`, `description`, `input_schema`) as OpenAI functions. Anthropic's server
/// tools (web search, code execution, …) run on Anthropic's side only.
fn functions(tools: &Value) -> Result<Vec<Value>, ProviderError> {
    let Some(tools) = tools.as_array() else {
        return Err(ProviderError::unsupported(
            "tools: expected an array".into(),
        ));
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("custom");
            let (Some(name), Some(schema), "custom") =
                (tool.get("name"), tool.get("input_schema"), kind)
            else {
                return Err(ProviderError::unsupported(format!(
                    "tools[{i}]: the `{kind}` tool runs only on Anthropic's own API"
                )));
            };
            let mut function = json!({ "name": name, "parameters": schema });
            if let Some(description) = tool.get("description") {
                function["description"] = description.clone();
            }
            Ok(json!({ "type": "function", "function": function }))
        })
        .collect()
}

/// `tool_choice` as OpenAI spells it, and whether parallel calls are allowed.
fn tool_choice(choice: &Value) -> Result<(Option<Value>, Option<bool>), ProviderError> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|disabled| !disabled);
    let mapped = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => Value::from("auto"),
        Some("any") => Value::from("required"),
        Some("none") => Value::from("none"),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => json!({ "type": "function", "function": { "name": name } }),
            None => {
                return Err(ProviderError::unsupported(
                    "tool_choice: `tool` needs a name".into(),
                ));
            }
        },
        _ => {
            return Err(ProviderError::unsupported(
                "tool_choice: unknown type".into(),
            ));
        }
    };
    Ok((Some(mapped), parallel))
}
