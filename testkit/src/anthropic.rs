//! Anthropic's Messages API: a `message`, its events from `message_start` to `message_stop`, its
//! error envelope.

use serde_json::{Value, json};

use crate::{Answer, Frames, Usage};

/// A whole `message`: the text, or "Let me check." and a `tool_use` of the answer's tool.
pub fn message(answer: &Answer) -> Value {
    let (content, stop) = match &answer.tool {
        Some(name) => (
            json!([{"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": name, "input": {"city": "Paris"}}]),
            "tool_use",
        ),
        None => (json!([{"type": "text", "text": answer.text}]), "end_turn"),
    };
    json!({"id": "msg_upstream", "type": "message", "role": "assistant", "model": answer.model,
           "content": content, "stop_reason": stop, "stop_sequence": null,
           "usage": usage(answer.usage.unwrap_or_default())})
}

/// A streamed message: `message_start` (with the input counts), a `ping`, a text block with a
/// delta per piece, then a `tool_use` block if the answer has a tool, `message_delta` (with the
/// output count) and `message_stop`.
pub fn events(answer: &Answer) -> Frames {
    let counts = answer.usage.unwrap_or_default();
    let start = json!({"type": "message_start", "message": {
        "id": "msg_upstream", "type": "message", "role": "assistant", "model": answer.model,
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": usage(Usage { completion: 1, ..counts })}});
    let head = vec![
        event("message_start", start),
        event("ping", json!({"type": "ping"})),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    let pieces = answer
        .pieces
        .iter()
        .map(|piece| {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": piece}}),
            )
        })
        .collect();
    let mut tail = vec![event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    )];
    let stop = match &answer.tool {
        Some(name) => {
            tail.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block":
                       {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}}),
            ));
            for part in ["{\"city\": ", "\"Paris\"}"] {
                tail.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 1,
                           "delta": {"type": "input_json_delta", "partial_json": part}}),
                ));
            }
            tail.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ));
            "tool_use"
        }
        None => "end_turn",
    };
    tail.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
               "usage": {"output_tokens": counts.completion}}),
    ));
    tail.push(event("message_stop", json!({"type": "message_stop"})));
    Frames { head, pieces, tail }
}

/// `input_tokens` (the fresh ones: Anthropic counts cache reads and writes apart),
/// `output_tokens`, and the cache counts when there are any.
pub fn usage(usage: Usage) -> Value {
    let fresh = usage
        .prompt
        .saturating_sub(usage.cached + usage.cache_write);
    let mut doc = json!({"input_tokens": fresh, "output_tokens": usage.completion});
    if usage.cached > 0 {
        doc["cache_read_input_tokens"] = json!(usage.cached);
    }
    if usage.cache_write > 0 {
        doc["cache_creation_input_tokens"] = json!(usage.cache_write);
    }
    doc
}

/// Anthropic's error envelope, its `type` named after the status.
pub fn error(status: u16, message: &str) -> Value {
    let kind = match status {
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400 => "invalid_request_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// One SSE event, named.
pub fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}
