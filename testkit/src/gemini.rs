//! Gemini's `generateContent`, `streamGenerateContent?alt=sse` and `batchEmbedContents`: a
//! response with its `usageMetadata`, a stream of such responses (framed with CRLF, as Gemini
//! frames them), embeddings without usage, the error envelope.

use serde_json::{Value, json};

use crate::{Answer, Frames, Usage};

/// The vector every input is embedded as.
pub const EMBEDDING: [f64; 2] = [0.25, -0.5];

/// A whole response: the text, finished, with the full usage.
pub fn response(answer: &Answer) -> Value {
    let usage = answer.usage.unwrap_or_default();
    chunk(answer, &answer.text, true, metadata(usage, true))
}

/// A stream: a response per piece, each with the prompt's counts; the last one finished and
/// with the full usage. Gemini has no end marker: a stream cut short ends without a
/// `finishReason`.
pub fn stream(answer: &Answer) -> Frames {
    let usage = answer.usage.unwrap_or_default();
    let last = answer.pieces.len().saturating_sub(1);
    let pieces = answer
        .pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let done = i == last;
            let frame = chunk(answer, piece, done, metadata(usage, done));
            format!("data: {frame}\r\n\r\n")
        })
        .collect();
    Frames {
        head: Vec::new(),
        pieces,
        tail: Vec::new(),
    }
}

/// `promptTokenCount` (cached included), the candidates' count once there is one, the total,
/// and the cached count when there is any.
fn metadata(usage: Usage, done: bool) -> Value {
    let mut doc = json!({"promptTokenCount": usage.prompt, "totalTokenCount": usage.prompt});
    if done {
        doc["candidatesTokenCount"] = json!(usage.completion);
        doc["totalTokenCount"] = json!(usage.total());
    }
    if usage.cached > 0 {
        doc["cachedContentTokenCount"] = json!(usage.cached);
    }
    doc
}

fn chunk(answer: &Answer, text: &str, done: bool, usage: Value) -> Value {
    let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"},
                               "index": 0});
    if done {
        candidate["finishReason"] = json!("STOP");
    }
    json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": answer.model})
}

/// `batchEmbedContents`' answer: an [`EMBEDDING`] per request, and no token counts (Gemini
/// reports none for embeddings).
pub fn embeddings(inputs: usize) -> Value {
    let vectors: Vec<Value> = (0..inputs).map(|_| json!({"values": EMBEDDING})).collect();
    json!({ "embeddings": vectors })
}

/// Gemini's error envelope.
pub fn error(status: u16, message: &str) -> Value {
    let code = match status {
        400 => "INVALID_ARGUMENT",
        401 | 403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    json!({"error": {"code": status, "message": message, "status": code}})
}
