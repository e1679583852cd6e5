//! Ollama's native API: `POST /api/chat` (NDJSON when streaming) and `POST /api/embed`.
//!
//! The native API rather than Ollama's OpenAI shim because only the native one reports
//! `prompt_eval_count`/`eval_count` on every answer and takes `options` such as `num_predict`.

use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::client::HttpClient;
use crate::framing::{self, Flow, NdjsonFraming, Translate};
use crate::http::{Credential, Upstream, read_body, read_json};
use crate::shape::{self, Chunks, Encoding, parse_data_url};
use crate::wire::ChatMessage;
use crate::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Provider,
    ProviderError, ProviderSettings, Reported, StreamEvent, Usage,
};

#[derive(Debug, Clone)]
pub struct Ollama {
    upstream: Upstream,
}

impl Ollama {
    pub fn new(settings: ProviderSettings, client: HttpClient) -> Self {
        Self {
            upstream: Upstream::new(settings, client, Credential::Bearer),
        }
    }
}

impl Provider for Ollama {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        let url = self.upstream.url("/api/chat");
        let body = to_wire(req, model, false)?;
        let resp = self.upstream.post_json(&url, &[], &body).await?;
        let (body, usage) = from_wire(&read_body(resp).await?, &req.model)?;
        Ok(ChatResponse {
            body,
            usage: Some(usage),
        })
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        let url = self.upstream.url("/api/chat");
        let body = to_wire(req, model, true)?;
        let resp = self.upstream.post_json(&url, &[], &body).await?;
        let body = framing::body_chunks(resp, self.upstream.settings().idle_timeout);
        Ok(framing::translate(
            body,
            NdjsonFraming,
            StreamState::new(&req.model),
        ))
    }

    async fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let mut body = json!({ "model": model, "input": req.input });
        if let Some(d) = req.extra.get("dimensions") {
            body["dimensions"] = d.clone();
        }
        let url = self.upstream.url("/api/embed");
        let resp = self.upstream.post_json(&url, &[], &body).await?;
        let (_, wire) = read_json::<WireEmbed>(resp, "Ollama embeddings").await?;
        let usage = prompt_usage(wire.prompt_eval_count, None, 0);
        Ok(EmbeddingsResponse {
            body: shape::embeddings(&req.model, wire.embeddings, Encoding::of(req), Some(&usage))?,
            usage: Some(usage),
        })
    }
}

// === translation ===

/// The `/api/chat` body for `req`. Tool results name their function (`tool_name`), found
/// through the assistant turn that made the call.
pub fn to_wire(req: &ChatRequest, model: &str, stream: bool) -> Result<Value, ProviderError> {
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        for call in m.tool_calls.iter().flatten() {
            call_names.insert(&call.id, &call.function.name);
        }
        messages.push(message(m, &call_names)?);
    }
    let mut options = Map::new();
    if let Some(max) = req.max_output_tokens() {
        options.insert("num_predict".into(), max.into());
    }
    if let Some(t) = req.temperature {
        options.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        options.insert("top_p".into(), p.into());
    }
    let stop = req.stop_sequences();
    if !stop.is_empty() {
        options.insert("stop".into(), stop.into());
    }
    if let Some(seed) = req.extra.get("seed") {
        options.insert("seed".into(), seed.clone());
    }
    let mut body = json!({ "model": model, "messages": messages, "stream": stream });
    if !options.is_empty() {
        body["options"] = options.into();
    }
    if let Some(tools) = &req.tools {
        body["tools"] = tools.clone().into(); // Ollama takes OpenAI's tool shape as is
    }
    match req
        .response_format
        .as_ref()
        .map(|f| (f["type"].as_str(), f))
    {
        Some((Some("json_object"), _)) => body["format"] = "json".into(),
        Some((Some("json_schema"), f)) => body["format"] = f["json_schema"]["schema"].clone(),
        _ => {}
    }
    Ok(body)
}

fn message(m: &ChatMessage, call_names: &HashMap<&str, &str>) -> Result<Value, ProviderError> {
    let mut out = json!({ "role": m.role, "content": m.text() });
    if let Some(Value::Array(parts)) = &m.content {
        let mut images = Vec::new();
        for part in parts.iter().filter(|p| p["type"] == "image_url") {
            let url = part["image_url"]["url"].as_str().unwrap_or_default();
            let (_, data) = parse_data_url(url).ok_or_else(|| {
                ProviderError::unsupported("Ollama takes images as data: URLs only".into())
            })?;
            images.push(Value::from(data));
        }
        if !images.is_empty() {
            out["images"] = images.into();
        }
    }
    if let Some(calls) = &m.tool_calls {
        let calls = calls
            .iter()
            .map(|c| {
                let args: Value =
                    serde_json::from_str(&c.function.arguments).unwrap_or_else(|_| json!({}));
                json!({ "function": { "name": c.function.name, "arguments": args } })
            })
            .collect::<Vec<_>>();
        out["tool_calls"] = calls.into();
    }
    if let Some(name) = m.tool_call_id.as_deref().and_then(|id| call_names.get(id)) {
        out["tool_name"] = (*name).into();
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
struct WireChat {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    /// Left out by older releases when the prompt came from the cache.
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    prompt_eval_cached_count: Option<u64>,
    #[serde(default)]
    eval_count: u64,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: String,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Debug, Deserialize)]
struct WireEmbed {
    #[serde(default)]
    embeddings: Vec<Value>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
}

impl WireChat {
    fn usage(&self) -> Usage {
        prompt_usage(
            self.prompt_eval_count,
            self.prompt_eval_cached_count,
            self.eval_count,
        )
    }
}

/// Ollama's counts, normalised. `prompt_eval_cached_count` is the part of the prompt served
/// from the cache, inside `prompt_eval_count` as OpenAI's cached tokens are inside its prompt.
/// Without `prompt_eval_count` the prompt is not reported (not zero): the gateway estimates it.
fn prompt_usage(prompt: Option<u64>, cached: Option<u64>, completion: u64) -> Usage {
    let prompt_tokens = prompt.unwrap_or(0);
    Usage {
        prompt_tokens,
        completion_tokens: completion,
        total_tokens: prompt_tokens + completion,
        cached_tokens: cached.unwrap_or(0),
        reported: match prompt {
            Some(_) => Reported::All,
            None => Reported::CompletionOnly,
        },
        ..Usage::default()
    }
}

/// `done_reason` → OpenAI `finish_reason`.
pub fn finish_reason(done_reason: Option<&str>, made_tool_calls: bool) -> &'static str {
    match done_reason {
        Some("length") => "length",
        _ if made_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Ollama's tool calls have no ids; OpenAI clients need one to answer a call.
fn tool_calls(calls: Vec<WireToolCall>) -> Vec<(String, String, String)> {
    calls
        .into_iter()
        .map(|c| {
            let args = if c.function.arguments.is_null() {
                json!({})
            } else {
                c.function.arguments
            };
            (shape::fresh_id("call_"), c.function.name, args.to_string())
        })
        .collect()
}

/// A whole `/api/chat` answer → an OpenAI `chat.completion` body naming `model` (the name the
/// client asked for), and its usage.
pub fn from_wire(body: &[u8], model: &str) -> Result<(Bytes, Usage), ProviderError> {
    let wire: WireChat =
        serde_json::from_slice(body).map_err(|e| ProviderError::decode("Ollama response", e))?;
    let usage = wire.usage();
    let message = wire.message.unwrap_or_default();
    let calls: Vec<Value> = tool_calls(message.tool_calls)
        .iter()
        .map(|(id, name, args)| shape::tool_call(id, name, args))
        .collect();
    let finish = finish_reason(wire.done_reason.as_deref(), !calls.is_empty());
    let body = shape::completion(
        &shape::fresh_id("chatcmpl-"),
        model,
        shape::assistant_message(&message.content, calls),
        finish,
        Some(&usage),
    );
    Ok((body, usage))
}

/// What an NDJSON stream has told us so far.
#[derive(Debug)]
pub struct StreamState {
    /// The name every chunk reports: the one the client asked for.
    model: String,
    chunks: Option<Chunks>,
    tool_calls: u64,
}

impl StreamState {
    /// Chunks will name `model`.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            chunks: None,
            tool_calls: 0,
        }
    }
}

/// One NDJSON line → OpenAI chunks; `Flow::Done` after the `done: true` line.
pub fn from_wire_event(
    line: &str,
    state: &mut StreamState,
    out: &mut Vec<StreamEvent>,
) -> Result<Flow, ProviderError> {
    let wire: WireChat =
        serde_json::from_str(line).map_err(|e| ProviderError::decode("Ollama chunk", e))?;
    if let Some(error) = wire.error {
        return Err(ProviderError::StreamError(crate::error::truncate(
            &error, 300,
        )));
    }
    let usage = wire.usage();
    let chunks = match &mut state.chunks {
        Some(chunks) => chunks,
        None => {
            let chunks = state.chunks.insert(Chunks::new(
                shape::fresh_id("chatcmpl-"),
                state.model.clone(),
            ));
            out.push(chunks.delta(json!({ "role": "assistant", "content": "" }), None));
            chunks
        }
    };
    let message = wire.message.unwrap_or_default();
    if !message.content.is_empty() {
        out.push(chunks.delta(json!({ "content": message.content }), None));
    }
    for (id, name, args) in tool_calls(message.tool_calls) {
        let call = json!({ "index": state.tool_calls, "id": id, "type": "function",
                           "function": { "name": name, "arguments": args } });
        state.tool_calls += 1;
        out.push(chunks.delta(json!({ "tool_calls": [call] }), None));
    }
    if !wire.done {
        return Ok(Flow::Continue);
    }
    let finish = finish_reason(wire.done_reason.as_deref(), state.tool_calls > 0);
    out.push(chunks.delta(json!({}), Some(finish)));
    out.push(chunks.usage(usage));
    Ok(Flow::Done)
}

impl Translate<String> for StreamState {
    fn frame(&mut self, line: String, out: &mut Vec<StreamEvent>) -> Result<Flow, ProviderError> {
        from_wire_event(&line, self, out)
    }

    fn end(&mut self, _: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        Err(ProviderError::InvalidResponse(
            "Ollama stream ended before done".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_moves_sampling_into_options_and_names_tool_results() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "alias", "max_tokens": 50, "temperature": 0.1, "stop": "x",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "18C"}
            ],
            "response_format": {"type": "json_object"}
        }))
        .unwrap();
        let wire = to_wire(&req, "llama3.2", true).unwrap();
        assert_eq!(wire["model"], "llama3.2");
        assert_eq!(wire["stream"], true);
        assert_eq!(
            wire["options"],
            json!({"num_predict": 50, "temperature": 0.1, "stop": ["x"]})
        );
        assert_eq!(wire["format"], "json");
        assert_eq!(wire["messages"][0]["images"], json!(["AAAA"]));
        assert_eq!(
            wire["messages"][1]["tool_calls"][0]["function"]["arguments"],
            json!({"city": "Paris"})
        );
        assert_eq!(wire["messages"][2]["tool_name"], "get_weather");
    }

    #[test]
    fn stream_lines_become_chunks_with_usage() {
        let lines = [
            r#"{"model":"llama3.2","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"Hi"},"done":false}"#,
            r#"{"model":"llama3.2","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},"done":false}"#,
            r#"{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":26,"eval_count":3}"#,
        ];
        let mut state = StreamState::new("alias");
        let mut out = Vec::new();
        let flows: Vec<Flow> = lines
            .iter()
            .map(|l| from_wire_event(l, &mut state, &mut out).unwrap())
            .collect();
        assert_eq!(flows, vec![Flow::Continue, Flow::Continue, Flow::Done]);
        let docs: Vec<Value> = out
            .iter()
            .map(|e| serde_json::from_slice(&e.data).unwrap())
            .collect();
        assert!(docs.iter().all(|d| d["model"] == "alias"), "{docs:?}");
        assert_eq!(docs[1]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(
            docs[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(docs[3]["choices"][0]["finish_reason"], "tool_calls");
        let last = out.last().unwrap();
        assert!(last.usage_only);
        assert_eq!(last.usage.unwrap().total_tokens, 29);
    }

    #[test]
    fn cached_and_missing_prompt_counts_are_told_apart() {
        let done = |counts: &str| {
            format!(
                r#"{{"model":"m","message":{{"role":"assistant","content":"Hi"}},"done":true,{counts}"eval_count":3}}"#
            )
        };
        let (_, usage) = from_wire(
            done(r#""prompt_eval_count":26,"prompt_eval_cached_count":20,"#).as_bytes(),
            "m",
        )
        .unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.cached_tokens, usage.reported),
            (26, 20, Reported::All)
        );
        let (_, usage) = from_wire(done("").as_bytes(), "m").unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens, usage.reported),
            (0, 3, Reported::CompletionOnly),
            "a prompt count left out is not a count of zero"
        );
    }

    #[test]
    fn error_line_is_an_error() {
        let err = from_wire_event(
            r#"{"error":"model not found"}"#,
            &mut StreamState::new("m"),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("model not found"));
    }
}
