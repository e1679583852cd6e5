//! A provider without a network, for demos and load tests: deterministic answers, realistic usage.
//!
//! The answer echoes the last user message ("You said: …"). Prompt tokens are the characters of
//! all messages / 4 (rounded up, at least 1), completion tokens the words emitted. `max_tokens`
//! truncates the answer to that many words with `finish_reason: "length"`.

use serde_json::{Value, json};

use crate::shape::{self, Chunks, Encoding};
use crate::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Provider,
    ProviderError, Usage,
};

/// Length of the vectors the mock's embeddings return.
pub const EMBEDDING_DIMENSIONS: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct Mock;

/// What the mock says to one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MockAnswer {
    pub(crate) words: Vec<String>,
    pub(crate) finish_reason: &'static str,
    pub(crate) usage: Usage,
}

impl Mock {
    pub fn new() -> Self {
        Self
    }
}

impl Provider for Mock {
    async fn chat(&self, req: &ChatRequest, _model: &str) -> Result<ChatResponse, ProviderError> {
        let answer = answer(req);
        let message = shape::assistant_message(&answer.words.join(" "), Vec::new());
        let body = shape::completion(
            &shape::fresh_id("chatcmpl-mock-"),
            &req.model,
            message,
            answer.finish_reason,
            Some(&answer.usage),
        );
        Ok(ChatResponse {
            body,
            usage: Some(answer.usage),
        })
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
        _model: &str,
    ) -> Result<ChatStream, ProviderError> {
        let answer = answer(req);
        let chunks = Chunks::new(shape::fresh_id("chatcmpl-mock-"), req.model.clone());
        let mut events = vec![chunks.delta(json!({"role": "assistant", "content": ""}), None)];
        for (i, word) in answer.words.iter().enumerate() {
            let piece = if i == 0 {
                word.clone()
            } else {
                format!(" {word}")
            };
            events.push(chunks.delta(json!({"content": piece}), None));
        }
        events.push(chunks.delta(json!({}), Some(answer.finish_reason)));
        events.push(chunks.usage(answer.usage));
        Ok(Box::pin(futures_util::stream::iter(
            events.into_iter().map(Ok),
        )))
    }

    async fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        _model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let inputs: Vec<String> = match &req.input {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect(),
            other => vec![other.to_string()],
        };
        let prompt_tokens = inputs
            .iter()
            .map(|s| estimate_tokens(s.chars().count()))
            .sum();
        let usage = Usage {
            prompt_tokens,
            total_tokens: prompt_tokens,
            ..Usage::default()
        };
        let vectors = inputs.iter().map(|s| Value::from(embed(s))).collect();
        Ok(EmbeddingsResponse {
            body: shape::embeddings(&req.model, vectors, Encoding::of(req), Some(&usage))?,
            usage: Some(usage),
        })
    }
}

pub(crate) fn answer(req: &ChatRequest) -> MockAnswer {
    let last_user = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.text())
        .unwrap_or_default();
    let text = if last_user.trim().is_empty() {
        "Hello from the mock provider.".to_owned()
    } else {
        format!("You said: {last_user}")
    };
    let mut words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    let mut finish_reason = "stop";
    if let Some(limit) = req.max_output_tokens() {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if words.len() > limit {
            words.truncate(limit);
            finish_reason = "length";
        }
    }
    let chars: usize = req.messages.iter().map(|m| m.text().chars().count()).sum();
    let prompt_tokens = estimate_tokens(chars);
    let completion_tokens = words.len() as u64;
    MockAnswer {
        words,
        finish_reason,
        usage: Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            ..Usage::default()
        },
    }
}

/// About four characters per token, never zero.
fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

/// A unit vector derived from the text alone (FNV-1a per dimension), so equal inputs embed equally.
fn embed(text: &str) -> Vec<f64> {
    let raw: Vec<f64> = (0..EMBEDDING_DIMENSIONS as u64)
        .map(|dim| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ dim;
            for byte in text.bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            (hash % 2001) as f64 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        return raw;
    }
    raw.into_iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ChatMessage;

    fn request(text: &str, max_tokens: Option<u64>) -> ChatRequest {
        ChatRequest {
            model: "mock".into(),
            messages: vec![ChatMessage {
                role: "user".into(),
                content: Some(Value::from(text)),
                ..ChatMessage::default()
            }],
            max_tokens,
            ..ChatRequest::default()
        }
    }

    #[test]
    fn answer_echoes_and_counts() {
        let a = answer(&request("hello big world", None));
        assert_eq!(a.words.join(" "), "You said: hello big world");
        assert_eq!(a.finish_reason, "stop");
        // 15 characters → 4 prompt tokens; 5 words emitted
        assert_eq!(
            (
                a.usage.prompt_tokens,
                a.usage.completion_tokens,
                a.usage.total_tokens
            ),
            (4, 5, 9)
        );
    }

    #[test]
    fn max_tokens_truncates_with_length() {
        let a = answer(&request("one two three four", Some(2)));
        assert_eq!(a.words, vec!["You", "said:"]);
        assert_eq!(a.finish_reason, "length");
        assert_eq!(a.usage.completion_tokens, 2);
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("cat");
        assert_eq!(a, embed("cat"));
        assert_ne!(a, embed("dog"));
        assert_eq!(a.len(), EMBEDDING_DIMENSIONS);
        let norm: f64 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-9);
    }
}
