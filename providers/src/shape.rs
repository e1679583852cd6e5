//! OpenAI response shapes for adapters that synthesise them (Anthropic, Gemini, Ollama, mock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::{EmbeddingsRequest, ProviderError, StreamEvent, Usage};

/// Seconds since the epoch, for `created`.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An id unique within this process and unlikely to repeat across restarts, for upstreams
/// that give none (Gemini tool calls, Ollama responses).
pub(crate) fn fresh_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{nanos:08x}{n:x}", now_secs())
}

/// `upstream`'s id as a dialect spells its ids (`msg_…`, `resp_…`): prefixed unless it already
/// is, a fresh one when the upstream gave none.
pub(crate) fn prefixed_id(prefix: &str, upstream: &str) -> String {
    if upstream.starts_with(prefix) {
        upstream.to_owned()
    } else if upstream.is_empty() {
        fresh_id(prefix)
    } else {
        format!("{prefix}{upstream}")
    }
}

/// A `chat.completion` document with one choice.
pub(crate) fn completion(
    id: &str,
    model: &str,
    message: Value,
    finish_reason: &str,
    usage: Option<&Usage>,
) -> Bytes {
    let mut doc = json!({
        "id": id,
        "object": "chat.completion",
        "created": now_secs(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
    });
    if let Some(usage) = usage {
        doc["usage"] = usage.to_openai_json();
    }
    Bytes::from(doc.to_string())
}

/// An assistant message with optional text and tool calls, as OpenAI writes it: `refusal` is
/// always there, null (the openai SDKs' typed message expects the key).
pub(crate) fn assistant_message(text: &str, tool_calls: Vec<Value>) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { Value::from(text) },
        "refusal": null,
    });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    message
}

/// One OpenAI tool call.
pub(crate) fn tool_call(id: &str, name: &str, arguments: &str) -> Value {
    json!({
        "id": id,
        "type": "function",
        "function": { "name": name, "arguments": arguments },
    })
}

/// How an embeddings answer writes its vectors: OpenAI's `encoding_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Arrays of numbers, OpenAI's default.
    Float,
    /// Each vector as little-endian f32s in standard base64 (the Node SDK asks for it unasked).
    Base64,
}

impl Encoding {
    /// The one the client asked for; anything but `"base64"` gets floats.
    pub(crate) fn of(req: &EmbeddingsRequest) -> Self {
        match req.extra.get("encoding_format").and_then(Value::as_str) {
            Some("base64") => Self::Base64,
            _ => Self::Float,
        }
    }
}

/// An embeddings `list` document, its vectors written as `encoding` says.
pub(crate) fn embeddings(
    model: &str,
    vectors: Vec<Value>,
    encoding: Encoding,
    usage: Option<&Usage>,
) -> Result<Bytes, ProviderError> {
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| {
            let embedding = match encoding {
                Encoding::Float => embedding,
                Encoding::Base64 => Value::String(base64_vector(&embedding)?),
            };
            Ok(json!({"object": "embedding", "index": index, "embedding": embedding}))
        })
        .collect::<Result<Vec<Value>, ProviderError>>()?;
    let mut doc = json!({"object": "list", "data": data, "model": model});
    if let Some(usage) = usage {
        doc["usage"] =
            json!({"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens});
    }
    Ok(Bytes::from(doc.to_string()))
}

/// An array of numbers as little-endian f32s in standard base64, as OpenAI encodes them.
fn base64_vector(embedding: &Value) -> Result<String, ProviderError> {
    let not_numbers =
        || ProviderError::InvalidResponse("an embedding is not a list of numbers".into());
    let numbers = embedding.as_array().ok_or_else(not_numbers)?;
    let mut bytes = Vec::with_capacity(numbers.len() * 4);
    for number in numbers {
        let x = number.as_f64().ok_or_else(not_numbers)?;
        bytes.extend_from_slice(&(x as f32).to_le_bytes());
    }
    Ok(STANDARD.encode(bytes))
}

/// Builds the `chat.completion.chunk`s of one streamed answer.
#[derive(Debug, Clone)]
pub(crate) struct Chunks {
    pub(crate) id: String,
    pub(crate) model: String,
    created: u64,
}

impl Chunks {
    pub(crate) fn new(id: String, model: String) -> Self {
        Self {
            id,
            model,
            created: now_secs(),
        }
    }

    /// A chunk with one choice carrying `delta`.
    pub(crate) fn delta(&self, delta: Value, finish_reason: Option<&str>) -> StreamEvent {
        let doc = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
        });
        StreamEvent::new(Bytes::from(doc.to_string()), None, false)
    }

    /// The closing chunk: no choices, only usage (what OpenAI sends with `include_usage`).
    pub(crate) fn usage(&self, usage: Usage) -> StreamEvent {
        let doc = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage.to_openai_json(),
        });
        StreamEvent::new(Bytes::from(doc.to_string()), Some(usage), true)
    }
}

/// Splits a `data:` URL into (media type, base64 payload).
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_split_into_type_and_payload() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAA="),
            Some(("image/png", "AAA="))
        );
        assert_eq!(parse_data_url("https://x/y.png"), None);
    }

    #[test]
    fn assistant_messages_carry_a_null_refusal() {
        for message in [
            assistant_message("hi", Vec::new()),
            assistant_message("", vec![tool_call("c", "f", "{}")]),
        ] {
            assert_eq!(message.get("refusal"), Some(&Value::Null), "{message}");
        }
    }

    #[test]
    fn base64_embeddings_are_little_endian_f32() {
        // 1.0f32 is 00 00 80 3f; -2.0f32 is 00 00 00 c0.
        assert_eq!(base64_vector(&json!([1.0, -2.0])).unwrap(), "AACAPwAAAMA=");
        assert_eq!(base64_vector(&json!([])).unwrap(), "");
        assert!(base64_vector(&json!(["x"])).is_err());
        assert!(base64_vector(&json!("AACAPw==")).is_err());
        let doc = embeddings(
            "m",
            vec![json!([1.0]), json!([-2.0])],
            Encoding::Base64,
            None,
        )
        .unwrap();
        let doc: Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(doc["data"][0]["embedding"], "AACAPw==");
        assert_eq!(doc["data"][1]["embedding"], "AAAAwA==");
        let floats = embeddings("m", vec![json!([1.0])], Encoding::Float, None).unwrap();
        let floats: Value = serde_json::from_slice(&floats).unwrap();
        assert_eq!(floats["data"][0]["embedding"], json!([1.0]));
    }

    #[test]
    fn only_base64_asks_for_base64() {
        let req = |extra: Value| -> EmbeddingsRequest {
            let mut raw = json!({"model": "m", "input": "x"});
            raw.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value(raw).unwrap()
        };
        assert_eq!(Encoding::of(&req(json!({}))), Encoding::Float);
        assert_eq!(
            Encoding::of(&req(json!({"encoding_format": "float"}))),
            Encoding::Float
        );
        assert_eq!(
            Encoding::of(&req(json!({"encoding_format": "base64"}))),
            Encoding::Base64
        );
    }

    #[test]
    fn fresh_ids_differ() {
        assert_ne!(fresh_id("call_"), fresh_id("call_"));
    }

    #[test]
    fn usage_chunk_has_no_choices() {
        let c = Chunks::new("id".into(), "m".into());
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
            total_tokens: 5,
            ..Usage::default()
        };
        let ev = c.usage(usage);
        let doc: Value = serde_json::from_slice(&ev.data).unwrap();
        assert_eq!(doc["choices"], json!([]));
        assert_eq!(doc["usage"]["total_tokens"], 5);
        assert!(ev.usage_only);
    }
}
