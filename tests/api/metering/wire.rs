//! An upstream that speaks every provider's wire format with fixed, known usage, so a test can
//! compare what tollgate stored with what the upstream reported. Shaped after each provider's
//! documented responses.
//!
//! A base URL ending in `/broken` cuts an Anthropic or Gemini stream after its first text,
//! before the final usage, as an upstream that dies mid-answer does. For Ollama, `/old` leaves
//! `prompt_eval_count` out (as older releases do for a cached prompt) and `/cached` adds
//! `prompt_eval_cached_count: 8`.

use axum::Router;
use axum::body::Body;
use axum::http::Uri;
use axum::response::Response;
use serde_json::{Value, json};

/// What each kind reports, normalised the way tollgate stores it: (prompt, completion, cached).
pub const OPENAI: (u64, u64, u64) = (9, 4, 2);
/// Anthropic: input 21 + cache read 4 + cache creation 2 = 27 prompt tokens, 4 of them cached.
pub const ANTHROPIC: (u64, u64, u64) = (27, 7, 4);
pub const GEMINI: (u64, u64, u64) = (11, 5, 3);
pub const OLLAMA: (u64, u64, u64) = (13, 6, 0);

pub async fn start() -> String {
    let app = Router::new().fallback(handle);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn handle(uri: Uri, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path();
    let stream = request["stream"] == true || path.contains("streamGenerateContent");
    let broken = path.starts_with("/broken/");
    if path.ends_with("/v1/messages") {
        return match (stream, broken) {
            // message_start, the text block's start, a ping and the first text delta.
            (true, true) => sse(&anthropic_events()[..4]),
            (true, false) => sse(&anthropic_events()),
            (false, _) => json(anthropic()),
        };
    }
    if path.contains(":batchEmbedContents") {
        // Gemini reports no token counts for embeddings.
        let vectors: Vec<Value> = request["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|_| json!({"values": [0.25, -0.5]}))
            .collect();
        return json(json!({ "embeddings": vectors }));
    }
    if path.contains(":generateContent") || path.contains(":streamGenerateContent") {
        return match (stream, broken) {
            // The first chunk: text and the prompt's counts, no finish reason.
            (true, true) => sse(&gemini_events()[..1]),
            (true, false) => sse(&gemini_events()),
            (false, _) => json(gemini()),
        };
    }
    if path.ends_with("/api/chat") {
        let (mut lines, mut answer) = (ollama_lines(), ollama());
        for last in [lines.last_mut().unwrap(), &mut answer] {
            if path.starts_with("/old/") {
                last.as_object_mut().unwrap().remove("prompt_eval_count");
            } else if path.starts_with("/cached/") {
                last["prompt_eval_cached_count"] = json!(8);
            }
        }
        return if stream { ndjson(&lines) } else { json(answer) };
    }
    // OpenAI-compatible (and Azure's deployment paths); `/bare/` reports no usage at all.
    let usage = !path.starts_with("/bare/");
    if stream {
        sse(&openai_events(
            usage && request["stream_options"]["include_usage"] == true,
        ))
    } else {
        let mut answer = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hello there, friend"}}],
        });
        if usage {
            answer["usage"] = openai_usage();
        }
        json(answer)
    }
}

fn openai_usage() -> Value {
    json!({"prompt_tokens": OPENAI.0, "completion_tokens": OPENAI.1,
           "total_tokens": OPENAI.0 + OPENAI.1,
           "prompt_tokens_details": {"cached_tokens": OPENAI.2}})
}

fn openai_events(usage: bool) -> Vec<(Option<&'static str>, Value)> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![
        (
            None,
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        ),
        (None, chunk(json!({"content": "Hello there,"}), Value::Null)),
        (None, chunk(json!({"content": " friend"}), Value::Null)),
        (None, chunk(json!({}), json!("stop"))),
    ];
    if usage {
        events.push((
            None,
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "created": 1, "model": "m", "choices": [], "usage": openai_usage()}),
        ));
    }
    events
}

fn anthropic() -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
           "content": [{"type": "text", "text": "Hello there"}],
           "stop_reason": "end_turn", "stop_sequence": null,
           "usage": {"input_tokens": 21, "output_tokens": 7,
                     "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2}})
}

fn anthropic_events() -> Vec<(Option<&'static str>, Value)> {
    vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 21, "output_tokens": 1,
                      "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2}}}),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        (Some("ping"), json!({"type": "ping"})),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": " there"}}),
        ),
        (
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            Some("message_delta"),
            json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 7}}),
        ),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ]
}

fn gemini() -> Value {
    json!({"candidates": [{"content": {"parts": [{"text": "Hello there"}], "role": "model"},
                           "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 5,
                             "totalTokenCount": 16, "cachedContentTokenCount": 3},
           "modelVersion": "gemini-x"})
}

fn gemini_events() -> Vec<(Option<&'static str>, Value)> {
    vec![
        (
            None,
            json!({"candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"},
            "index": 0}], "usageMetadata": {"promptTokenCount": 11, "totalTokenCount": 11,
                                            "cachedContentTokenCount": 3}}),
        ),
        (
            None,
            json!({"candidates": [{"content": {"parts": [{"text": " there"}], "role": "model"},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 5,
                              "totalTokenCount": 16, "cachedContentTokenCount": 3}}),
        ),
    ]
}

fn ollama() -> Value {
    json!({"model": "llama3", "created_at": "2026-11-30T00:00:00Z",
           "message": {"role": "assistant", "content": "Hello there"},
           "done": true, "done_reason": "stop", "prompt_eval_count": 13, "eval_count": 6})
}

fn ollama_lines() -> Vec<Value> {
    vec![
        json!({"model": "llama3", "created_at": "2026-11-30T00:00:00Z",
               "message": {"role": "assistant", "content": "Hello"}, "done": false}),
        json!({"model": "llama3", "created_at": "2026-11-30T00:00:00Z",
               "message": {"role": "assistant", "content": " there"}, "done": false}),
        json!({"model": "llama3", "created_at": "2026-11-30T00:00:00Z",
               "message": {"role": "assistant", "content": ""}, "done": true,
               "done_reason": "stop", "prompt_eval_count": 13, "eval_count": 6}),
    ]
}

fn json(value: Value) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .unwrap()
}

fn sse(events: &[(Option<&'static str>, Value)]) -> Response {
    let mut text = String::new();
    for (name, data) in events {
        if let Some(name) = name {
            text.push_str(&format!("event: {name}\n"));
        }
        text.push_str(&format!("data: {data}\n\n"));
    }
    if events.iter().all(|(name, _)| name.is_none()) && !text.contains("candidates") {
        text.push_str("data: [DONE]\n\n");
    }
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(text))
        .unwrap()
}

fn ndjson(lines: &[Value]) -> Response {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from(text))
        .unwrap()
}
