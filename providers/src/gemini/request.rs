//! OpenAI chat request → Gemini `generateContent` request.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::shape::parse_data_url;
use crate::wire::ChatMessage;
use crate::{ChatRequest, ProviderError};

/// The `generateContent` body for `req` (the model travels in the URL).
///
/// Roles: assistant → `model`, system → `systemInstruction`, tool → a `functionResponse` part in
/// a user turn. Gemini names a function response by the function's name, not the call id, so
/// ids are resolved through the assistant turns that made the calls.
pub fn to_wire(req: &ChatRequest) -> Result<Value, ProviderError> {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for message in &req.messages {
        match message.role.as_str() {
            "system" | "developer" => {
                let text = message.text();
                if !text.is_empty() {
                    system.push(json!({ "text": text }));
                }
            }
            "user" => push_turn(&mut contents, "user", user_parts(message)?),
            "assistant" => {
                for call in message.tool_calls.iter().flatten() {
                    call_names.insert(&call.id, &call.function.name);
                }
                push_turn(&mut contents, "model", model_parts(message)?);
            }
            "tool" => {
                let name = message
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| call_names.get(id).copied())
                    .or(message.name.as_deref())
                    .ok_or_else(|| {
                        ProviderError::unsupported(
                            "tool message does not answer a known tool call".into(),
                        )
                    })?;
                push_turn(
                    &mut contents,
                    "user",
                    vec![function_response(name, message)],
                );
            }
            other => {
                return Err(ProviderError::unsupported(format!(
                    "message role {other:?} for Gemini"
                )));
            }
        }
    }

    let mut body = Map::new();
    body.insert("contents".into(), contents.into());
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    let config = generation_config(req);
    if !config.is_empty() {
        body.insert("generationConfig".into(), config.into());
    }
    if let Some(tools) = &req.tools {
        let declarations = tools
            .iter()
            .map(function_declaration)
            .collect::<Result<Vec<_>, _>>()?;
        body.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
    }
    if let Some(choice) = &req.tool_choice {
        body.insert("toolConfig".into(), tool_config(choice)?);
    }
    Ok(Value::Object(body))
}

fn push_turn(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut()
        && last["role"] == role
        && let Some(existing) = last["parts"].as_array_mut()
    {
        existing.extend(parts);
        return;
    }
    contents.push(json!({ "role": role, "parts": parts }));
}

fn user_parts(message: &ChatMessage) -> Result<Vec<Value>, ProviderError> {
    let Some(Value::Array(parts)) = &message.content else {
        let text = message.text();
        return Ok(if text.is_empty() {
            Vec::new()
        } else {
            vec![json!({ "text": text })]
        });
    };
    parts
        .iter()
        .map(|part| match part["type"].as_str() {
            Some("text") => Ok(json!({ "text": part["text"].as_str().unwrap_or_default() })),
            Some("image_url") => {
                let url = part["image_url"]["url"]
                    .as_str()
                    .or_else(|| part["image_url"].as_str())
                    .unwrap_or_default();
                Ok(match parse_data_url(url) {
                    Some((mime, data)) => {
                        json!({ "inlineData": { "mimeType": mime, "data": data } })
                    }
                    None => json!({ "fileData": { "fileUri": url } }),
                })
            }
            other => Err(ProviderError::unsupported(format!(
                "content part {:?} for Gemini",
                other.unwrap_or("<untyped>")
            ))),
        })
        .collect()
}

fn model_parts(message: &ChatMessage) -> Result<Vec<Value>, ProviderError> {
    let text = message.text();
    let mut parts = Vec::new();
    if !text.is_empty() {
        parts.push(json!({ "text": text }));
    }
    for call in message.tool_calls.iter().flatten() {
        let args: Value = if call.function.arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&call.function.arguments).map_err(|_| {
                ProviderError::unsupported(format!(
                    "tool call {} has arguments that are not JSON",
                    call.id
                ))
            })?
        };
        parts.push(json!({ "functionCall": { "name": call.function.name, "args": args } }));
    }
    Ok(parts)
}

/// Gemini wants an object as the response; a plain-text result is wrapped as `{"content": …}`.
fn function_response(name: &str, message: &ChatMessage) -> Value {
    let text = message.text();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(obj)) => Value::Object(obj),
        _ => json!({ "content": text }),
    };
    json!({ "functionResponse": { "name": name, "response": response } })
}

fn generation_config(req: &ChatRequest) -> Map<String, Value> {
    let mut config = Map::new();
    if let Some(max) = req.max_output_tokens() {
        config.insert("maxOutputTokens".into(), max.into());
    }
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        config.insert("topP".into(), p.into());
    }
    let stop = req.stop_sequences();
    if !stop.is_empty() {
        config.insert("stopSequences".into(), stop.into());
    }
    if let Some(seed) = req.extra.get("seed").filter(|s| s.is_number()) {
        config.insert("seed".into(), seed.clone());
    }
    let format = req
        .response_format
        .as_ref()
        .and_then(|f| f["type"].as_str());
    if matches!(format, Some("json_object" | "json_schema")) {
        config.insert("responseMimeType".into(), "application/json".into());
    }
    config
}

fn function_declaration(tool: &Value) -> Result<Value, ProviderError> {
    let function = &tool["function"];
    let name = function["name"].as_str().ok_or_else(|| {
        ProviderError::unsupported("only function tools can be sent to Gemini".into())
    })?;
    let mut out = json!({ "name": name });
    if let Some(description) = function["description"].as_str() {
        out["description"] = description.into();
    }
    if !function["parameters"].is_null() {
        out["parameters"] = function["parameters"].clone();
    }
    Ok(out)
}

fn tool_config(choice: &Value) -> Result<Value, ProviderError> {
    let config = match choice {
        Value::String(s) => match s.as_str() {
            "auto" => json!({ "mode": "AUTO" }),
            "required" => json!({ "mode": "ANY" }),
            "none" => json!({ "mode": "NONE" }),
            other => return Err(ProviderError::unsupported(format!("tool_choice {other:?}"))),
        },
        obj => match obj["function"]["name"].as_str() {
            Some(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
            None => {
                return Err(ProviderError::unsupported(
                    "tool_choice without a function name".into(),
                ));
            }
        },
    };
    Ok(json!({ "functionCallingConfig": config }))
}
