//! OpenAI's Responses API: a `response`, and its events from `response.created` to
//! `response.completed`. Both echo what the request said of `previous_response_id`, `store` and
//! `tools`, as OpenAI does.

use serde_json::{Value, json};

use crate::{Answer, Frames, TOOL_ARGUMENTS, Usage};

/// A whole `response`: a message with the text, and a `function_call` of the answer's tool.
pub fn response(answer: &Answer, request: &Value) -> Value {
    let mut output = vec![message(&answer.text, "completed")];
    if let Some(name) = &answer.tool {
        output.push(
            json!({"type": "function_call", "id": "fc_upstream", "call_id": "call_1",
                   "name": name, "arguments": TOOL_ARGUMENTS, "status": "completed"}),
        );
    }
    document(
        answer,
        request,
        "completed",
        Value::Array(output),
        usage(answer.usage.unwrap_or_default()),
    )
}

/// A streamed response (text only): created, in progress, the message and its text part
/// added, a text delta per piece, the text and the message done, completed with the usage.
/// Every event has its `sequence_number`.
pub fn events(answer: &Answer, request: &Value) -> Frames {
    let mut sequence = 0;
    let mut event = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        format!("event: {name}\ndata: {data}\n\n")
    };
    let started = || document(answer, request, "in_progress", json!([]), Value::Null);
    let head = vec![
        event("response.created", json!({"response": started()})),
        event("response.in_progress", json!({"response": started()})),
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
    let pieces = answer
        .pieces
        .iter()
        .map(|piece| {
            event(
                "response.output_text.delta",
                json!({"item_id": "msg_upstream", "output_index": 0, "content_index": 0,
                       "delta": piece, "logprobs": []}),
            )
        })
        .collect();
    let text = answer.streamed_text();
    let item = message(&text, "completed");
    let tail = vec![
        event(
            "response.output_text.done",
            json!({"item_id": "msg_upstream", "output_index": 0, "content_index": 0,
                   "text": text, "logprobs": []}),
        ),
        event(
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        ),
        event(
            "response.completed",
            json!({"response": document(answer, request, "completed", json!([item]),
                                        usage(answer.usage.unwrap_or_default()))}),
        ),
    ];
    Frames { head, pieces, tail }
}

/// `input_tokens` (cached included), `output_tokens` (reasoning included), their details and
/// total.
pub fn usage(usage: Usage) -> Value {
    json!({"input_tokens": usage.prompt,
           "input_tokens_details": {"cached_tokens": usage.cached},
           "output_tokens": usage.completion,
           "output_tokens_details": {"reasoning_tokens": usage.reasoning},
           "total_tokens": usage.total()})
}

fn message(text: &str, status: &str) -> Value {
    json!({"type": "message", "id": "msg_upstream", "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn document(answer: &Answer, request: &Value, status: &str, output: Value, usage: Value) -> Value {
    json!({"id": "resp_upstream", "object": "response", "created_at": 1, "status": status,
           "model": answer.model, "output": output, "usage": usage,
           "previous_response_id": request["previous_response_id"], "store": request["store"],
           "parallel_tool_calls": true, "tool_choice": "auto", "tools": request["tools"]})
}
