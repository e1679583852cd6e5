//! OpenAI's Responses API wire format: a `response`, and its events from `response.created` to
//! `response.completed`.

use super::*;

/// The usage every answer reports: 11 input tokens of which 3 cached, 6 output tokens of which
/// 2 reasoning.
pub const USAGE: (u64, u64, u64, u64) = (11, 3, 6, 2);

pub(super) async fn answer(
    shared: &Arc<Shared>,
    step: Step,
    body: &Value,
    streaming: bool,
) -> Response {
    match step {
        Step::Delay(delay) => {
            tokio::time::sleep(delay).await;
            whole(shared, body, streaming, None, None)
        }
        Step::Slow(gap) => whole(shared, body, streaming, Some(gap), None),
        Step::DieAfter(n) => whole(shared, body, true, None, Some(n)),
        _ => whole(shared, body, streaming, None, None),
    }
}

fn usage() -> Value {
    let (input, cached, output, reasoning) = USAGE;
    json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": cached},
           "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
           "total_tokens": input + output})
}

fn whole(
    shared: &Arc<Shared>,
    body: &Value,
    streaming: bool,
    gap: Option<Duration>,
    die_after: Option<usize>,
) -> Response {
    let model = body["model"].as_str().unwrap_or("unknown");
    let text = format!("Hello from {model}");
    let mut output = vec![
        json!({"type": "message", "id": "msg_upstream", "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]}),
    ];
    let tool = body["tools"][0]["name"].as_str();
    if let Some(name) = tool {
        output.push(
            json!({"type": "function_call", "id": "fc_upstream", "call_id": "call_1",
            "name": name, "arguments": "{\"city\":\"Paris\"}", "status": "completed"}),
        );
    }
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": "resp_upstream", "object": "response", "created_at": 1, "status": status,
            "model": model, "output": output, "usage": usage,
            "previous_response_id": body["previous_response_id"], "store": body["store"],
            "parallel_tool_calls": true, "tool_choice": "auto", "tools": body["tools"]})
    };
    if !streaming {
        return json_response(&response("completed", Value::Array(output), usage()));
    }
    let mut sequence = 0;
    let mut event = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        format!("event: {name}\ndata: {data}\n\n")
    };
    let mut events = vec![
        event(
            "response.created",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        event(
            "response.in_progress",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        event(
            "response.output_item.added",
            json!({"output_index": 0, "item": {"type": "message", "id": "msg_upstream",
                "status": "in_progress", "role": "assistant", "content": []}}),
        ),
        event(
            "response.content_part.added",
            json!({"item_id": "msg_upstream", "output_index": 0, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}}),
        ),
    ];
    for (i, word) in ["Hello", " from", " upstream"].iter().enumerate() {
        if die_after == Some(i) {
            return sse(shared, events, gap, Tail::End);
        }
        events.push(event(
            "response.output_text.delta",
            json!({"item_id": "msg_upstream", "output_index": 0, "content_index": 0,
                "delta": word, "logprobs": []}),
        ));
    }
    let streamed = json!([{"type": "message", "id": "msg_upstream", "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello from upstream", "annotations": []}]}]);
    events.push(event(
        "response.output_text.done",
        json!({"item_id": "msg_upstream", "output_index": 0, "content_index": 0,
            "text": "Hello from upstream", "logprobs": []}),
    ));
    events.push(event(
        "response.output_item.done",
        json!({"output_index": 0, "item": streamed[0]}),
    ));
    events.push(event(
        "response.completed",
        json!({"response": response("completed", streamed, usage())}),
    ));
    sse(shared, events, gap, Tail::End)
}
