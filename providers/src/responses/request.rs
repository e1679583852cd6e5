//! The Responses request, and its translation to a chat completions request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::wire::{ChatMessage, FunctionCall, StreamOptions, ToolCall};
use crate::{ChatRequest, ProviderError};

/// A Responses API request. Only what the gateway reads is typed; everything else
/// (`instructions`, `tools`, `text`, `reasoning`, `previous_response_id`, fields added after this
/// was written) stays in `extra` and reaches an upstream that serves the Responses API as sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    /// A string, or an array of input items; absent when a stored prompt or a conversation
    /// supplies it.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The same request for an upstream that speaks chat completions: `instructions` as the system
/// message, input items as messages (function calls as the assistant's tool calls, their
/// outputs as `tool` messages), function tools, `tool_choice`, `text.format` as
/// `response_format`, `reasoning.effort`.
///
/// What needs state kept on OpenAI's side (`previous_response_id`, `store: true`, a
/// `conversation`, `background`, a stored `prompt`, items by reference, images by file id) or
/// chat completions cannot express (hosted tools, files, audio) is refused, naming the field.
/// Reasoning items are dropped (the upstream reasons on its own terms), and so are settings
/// with no chat equivalent (`include`, `truncation`, `metadata`, `max_tool_calls`,
/// `top_logprobs`).
pub fn to_chat(req: &ResponsesRequest) -> Result<ChatRequest, ProviderError> {
    let extra = &req.extra;
    stateless(extra)?;
    let mut messages = Vec::new();
    match extra.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) if text.is_empty() => {}
        Some(Value::String(text)) => messages.push(message("system", Value::from(text.as_str()))),
        Some(_) => return Err(refused("instructions", "expected a string")),
    }
    match &req.input {
        Value::Null => {}
        Value::String(text) => messages.push(message("user", Value::from(text.as_str()))),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, &format!("input[{i}]"), &mut messages)?;
            }
        }
        _ => return Err(refused("input", "expected a string or an array of items")),
    }
    let number = |field: &str| extra.get(field).and_then(Value::as_f64);
    let streaming = req.stream == Some(true);
    let mut chat = ChatRequest {
        model: req.model.clone(),
        messages,
        stream: req.stream,
        stream_options: streaming.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        max_tokens: req.max_output_tokens,
        temperature: number("temperature"),
        top_p: number("top_p"),
        ..ChatRequest::default()
    };
    if let Some(tools) = extra.get("tools").filter(|tools| !tools.is_null()) {
        chat.tools = Some(functions(tools)?);
    }
    if let Some(choice) = extra.get("tool_choice").filter(|choice| !choice.is_null()) {
        chat.tool_choice = Some(tool_choice(choice)?);
    }
    if let Some(text) = extra.get("text") {
        if let Some(format) = text.get("format") {
            chat.response_format = response_format(format)?;
        }
        if let Some(verbosity) = text.get("verbosity").filter(|v| !v.is_null()) {
            chat.extra.insert("verbosity".into(), verbosity.clone());
        }
    }
    if let Some(effort) = extra
        .get("reasoning")
        .and_then(|reasoning| reasoning.get("effort"))
        .filter(|effort| !effort.is_null())
    {
        chat.extra.insert("reasoning_effort".into(), effort.clone());
    }
    // The same name and meaning in chat completions.
    for field in [
        "parallel_tool_calls",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
    ] {
        if let Some(value) = extra.get(field).filter(|value| !value.is_null()) {
            chat.extra.insert(field.into(), value.clone());
        }
    }
    Ok(chat)
}

/// tollgate keeps no conversation state, and a chat completions upstream keeps none either.
fn stateless(extra: &Map<String, Value>) -> Result<(), ProviderError> {
    let present = |field: &str| extra.get(field).is_some_and(|value| !value.is_null());
    let on = |field: &str| extra.get(field).and_then(Value::as_bool) == Some(true);
    if present("previous_response_id") {
        return Err(refused(
            "previous_response_id",
            "tollgate keeps no conversation state and this model's upstream does not serve the \
             Responses API; send the whole conversation in `input`",
        ));
    }
    if present("conversation") {
        return Err(refused(
            "conversation",
            "conversations live on OpenAI's side and this model's upstream does not serve the \
             Responses API; send the whole conversation in `input`",
        ));
    }
    if on("store") {
        return Err(refused(
            "store",
            "this model's upstream cannot store responses; leave `store` out or set it to false",
        ));
    }
    if on("background") {
        return Err(refused(
            "background",
            "this model's upstream cannot run a response in the background",
        ));
    }
    if present("prompt") {
        return Err(refused(
            "prompt",
            "stored prompts live on OpenAI's side; send the prompt's text in `input`",
        ));
    }
    Ok(())
}

fn refused(param: &str, message: &str) -> ProviderError {
    ProviderError::unsupported_field(param, message.to_owned())
}

fn message(role: &str, content: Value) -> ChatMessage {
    ChatMessage {
        role: role.to_owned(),
        content: Some(content),
        ..ChatMessage::default()
    }
}

fn str_field<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}

/// One input item, appended to `out` as chat messages.
fn input_item(item: &Value, at: &str, out: &mut Vec<ChatMessage>) -> Result<(), ProviderError> {
    // An easy input message (`{"role", "content"}`) has no type.
    let kind = match str_field(item, "type") {
        Some(kind) => kind,
        None if item.get("role").is_some() => "message",
        None => return Err(refused(at, "an input item needs a `type`")),
    };
    match kind {
        "message" => out.push(input_message(item, at)?),
        "function_call" => {
            let (Some(call_id), Some(name)) = (str_field(item, "call_id"), str_field(item, "name"))
            else {
                return Err(refused(at, "a function_call needs a call_id and a name"));
            };
            let call = ToolCall {
                id: call_id.to_owned(),
                kind: "function".to_owned(),
                function: FunctionCall {
                    name: name.to_owned(),
                    arguments: str_field(item, "arguments").unwrap_or("{}").to_owned(),
                },
                extra: Map::new(),
            };
            // Calls made in one turn are one assistant message, with that turn's text if any.
            match out.last_mut() {
                Some(last) if last.role == "assistant" => {
                    last.tool_calls.get_or_insert_with(Vec::new).push(call);
                }
                _ => out.push(ChatMessage {
                    tool_calls: Some(vec![call]),
                    ..message("assistant", Value::Null)
                }),
            }
        }
        "function_call_output" => {
            let Some(call_id) = str_field(item, "call_id") else {
                return Err(refused(at, "a function_call_output needs a call_id"));
            };
            let output = item.get("output").unwrap_or(&Value::Null);
            let text = text_of(output, &format!("{at}.output"))?;
            out.push(ChatMessage {
                tool_call_id: Some(call_id.to_owned()),
                ..message("tool", Value::String(text))
            });
        }
        // The model's own reasoning from an earlier turn: the upstream reasons on its own terms.
        "reasoning" => {}
        "item_reference" => {
            return Err(refused(
                at,
                "items by reference live on OpenAI's side; send the item itself",
            ));
        }
        other => {
            return Err(refused(
                at,
                &format!("a `{other}` item cannot be sent to this model's upstream"),
            ));
        }
    }
    Ok(())
}

/// A message item: the assistant's earlier output as text; anyone else's text and images as
/// one message of that role (`developer` stays `developer`, which chat completions knows).
fn input_message(item: &Value, at: &str) -> Result<ChatMessage, ProviderError> {
    let role = str_field(item, "role").unwrap_or_default();
    if !matches!(role, "user" | "system" | "developer" | "assistant") {
        return Err(refused(
            &format!("{at}.role"),
            &format!("`{role}` is not user, system, developer or assistant"),
        ));
    }
    let content = item.get("content").unwrap_or(&Value::Null);
    let parts = match content {
        Value::String(text) => return Ok(message(role, Value::from(text.as_str()))),
        Value::Array(parts) => parts,
        _ => {
            return Err(refused(
                &format!("{at}.content"),
                "expected a string or an array of parts",
            ));
        }
    };
    if role == "assistant" {
        return Ok(message(
            role,
            Value::String(text_of(content, &format!("{at}.content"))?),
        ));
    }
    let mut chat_parts = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        match str_field(part, "type") {
            Some("input_text" | "output_text") => chat_parts.push(
                json!({ "type": "text", "text": str_field(part, "text").unwrap_or_default() }),
            ),
            Some("input_image") => chat_parts.push(image(part, &at)?),
            Some(other) => {
                return Err(refused(
                    &at,
                    &format!("an `{other}` part cannot be sent to this model's upstream"),
                ));
            }
            None => return Err(refused(&at, "a content part needs a `type`")),
        }
    }
    if chat_parts.iter().all(|part| part["type"] == "text") {
        let text: String = chat_parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect();
        return Ok(message(role, Value::String(text)));
    }
    Ok(message(role, Value::Array(chat_parts)))
}

/// An `input_image` part as an `image_url` part. An image by `file_id` lives on OpenAI's side.
fn image(part: &Value, at: &str) -> Result<Value, ProviderError> {
    let Some(url) = str_field(part, "image_url") else {
        return Err(refused(
            at,
            "only images given by `image_url` can be sent to this model's upstream",
        ));
    };
    let mut image_url = json!({ "url": url });
    if let Some(detail) = part.get("detail").filter(|detail| !detail.is_null()) {
        image_url["detail"] = detail.clone();
    }
    Ok(json!({ "type": "image_url", "image_url": image_url }))
}

/// A string, or the text of an array of text parts (`input_text`, `output_text`, `refusal`).
fn text_of(content: &Value, at: &str) -> Result<String, ProviderError> {
    match content {
        Value::String(text) => Ok(text.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match str_field(part, "type") {
                    Some("input_text" | "output_text") => {
                        text.push_str(str_field(part, "text").unwrap_or_default());
                    }
                    Some("refusal") => {
                        text.push_str(str_field(part, "refusal").unwrap_or_default())
                    }
                    other => {
                        return Err(refused(
                            &format!("{at}[{j}]"),
                            &format!(
                                "a `{}` part cannot be sent to this model's upstream here",
                                other.unwrap_or("untyped")
                            ),
                        ));
                    }
                }
            }
            Ok(text)
        }
        _ => Err(refused(at, "expected a string or an array of parts")),
    }
}

/// Function tools (`{"type": "function", "name", "parameters", …}`) as chat completions nests
/// them. OpenAI's hosted tools (web search, file search, code interpreter, …) run on its
/// Responses API only.
fn functions(tools: &Value) -> Result<Vec<Value>, ProviderError> {
    let Some(tools) = tools.as_array() else {
        return Err(refused("tools", "expected an array"));
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let kind = str_field(tool, "type").unwrap_or("untyped");
            let at = format!("tools[{i}]");
            if kind != "function" {
                return Err(refused(
                    &at,
                    &format!("the `{kind}` tool runs only on OpenAI's own Responses API"),
                ));
            }
            let Some(name) = tool.get("name") else {
                return Err(refused(&at, "a function tool needs a name"));
            };
            let mut function = json!({ "name": name });
            for field in ["description", "parameters", "strict"] {
                if let Some(value) = tool.get(field).filter(|value| !value.is_null()) {
                    function[field] = value.clone();
                }
            }
            Ok(json!({ "type": "function", "function": function }))
        })
        .collect()
}

/// `tool_choice` as chat completions spells it.
fn tool_choice(choice: &Value) -> Result<Value, ProviderError> {
    match choice {
        Value::String(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => {
            Ok(choice.clone())
        }
        _ if str_field(choice, "type") == Some("function") => match str_field(choice, "name") {
            Some(name) => Ok(json!({ "type": "function", "function": { "name": name } })),
            None => Err(refused("tool_choice", "a function choice needs a name")),
        },
        _ => Err(refused(
            "tool_choice",
            "only auto, none, required or a function can be sent to this model's upstream",
        )),
    }
}

/// `text.format` as `response_format`; plain text needs none.
fn response_format(format: &Value) -> Result<Option<Value>, ProviderError> {
    match str_field(format, "type") {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({ "type": "json_object" }))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for field in ["name", "schema", "strict", "description"] {
                if let Some(value) = format.get(field).filter(|value| !value.is_null()) {
                    schema.insert(field.into(), value.clone());
                }
            }
            if !schema.contains_key("name") || !schema.contains_key("schema") {
                return Err(refused(
                    "text.format",
                    "a json_schema format needs a name and a schema",
                ));
            }
            Ok(Some(
                json!({ "type": "json_schema", "json_schema": schema }),
            ))
        }
        Some(other) => Err(refused(
            "text.format",
            &format!("the `{other}` format cannot be sent to this model's upstream"),
        )),
    }
}
