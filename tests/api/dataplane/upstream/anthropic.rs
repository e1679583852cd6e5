//! Anthropic's wire format: a message, its events, its error envelope.

use super::*;

/// The usage every answer reports: 9 fresh input tokens, 4 read from the cache, 2 written
/// to it, 5 output tokens.
pub const USAGE: (u64, u64, u64, u64) = (9, 4, 2, 5);

pub(super) async fn answer(
    shared: &Arc<Shared>,
    step: Step,
    body: &Value,
    streaming: bool,
) -> Response {
    match step {
        Step::Status(status, retry_after) => {
            let kind = match status {
                429 => "rate_limit_error",
                529 => "overloaded_error",
                400 => "invalid_request_error",
                _ => "api_error",
            };
            let mut response = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            if let Some(seconds) = retry_after {
                response = response.header("retry-after", seconds.to_string());
            }
            let error = json!({"type": "error", "error": {"type": kind, "message": format!("injected {status}")}});
            response.body(Body::from(error.to_string())).unwrap()
        }
        Step::Garbage => json_response(&json!({"unexpected": true})),
        Step::Delay(delay) => {
            tokio::time::sleep(delay).await;
            whole(shared, body, streaming, None, None)
        }
        Step::Answer | Step::Endless => whole(shared, body, streaming, None, None),
        Step::Slow(gap) => whole(shared, body, streaming, Some(gap), None),
        Step::DieAfter(n) => whole(shared, body, true, None, Some(n)),
    }
}

fn whole(
    shared: &Arc<Shared>,
    body: &Value,
    streaming: bool,
    gap: Option<Duration>,
    die_after: Option<usize>,
) -> Response {
    let model = body["model"].as_str().unwrap_or("unknown");
    let tool = body["tools"][0]["name"].as_str();
    let (input, cache_read, cache_write, output) = USAGE;
    let usage = json!({"input_tokens": input, "cache_read_input_tokens": cache_read,
                       "cache_creation_input_tokens": cache_write, "output_tokens": output});
    if !streaming {
        let (content, stop) = match tool {
            Some(name) => (
                json!([{"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": name, "input": {"city": "Paris"}}]),
                "tool_use",
            ),
            None => (
                json!([{"type": "text", "text": format!("Hello from {model}")}]),
                "end_turn",
            ),
        };
        return json_response(
            &json!({"id": "msg_upstream", "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": usage}),
        );
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {
        "id": "msg_upstream", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "cache_read_input_tokens": cache_read,
                  "cache_creation_input_tokens": cache_write, "output_tokens": 1}}}),
    )];
    events.push(event("ping", json!({"type": "ping"})));
    events.push(event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}}),
    ));
    let words = ["Hello", " from", " upstream"];
    for (i, word) in words.iter().enumerate() {
        if die_after == Some(i) {
            return sse(shared, events, gap, Tail::End);
        }
        events.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": word}}),
        ));
    }
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    let stop = if let Some(name) = tool {
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}}),
        ));
        for part in ["{\"city\": ", "\"Paris\"}"] {
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ));
        "tool_use"
    } else {
        "end_turn"
    };
    events.push(event(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": output}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    sse(shared, events, gap, Tail::End)
}
