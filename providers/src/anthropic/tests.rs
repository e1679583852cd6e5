//! Translation tests on fixtures shaped after Anthropic's documented requests and events.

use serde_json::{Value, json};

use super::*;
use crate::framing::Flow;
use crate::{ChatRequest, Reported, StreamEvent, Usage};

fn request(raw: Value) -> ChatRequest {
    serde_json::from_value(raw).unwrap()
}

#[test]
fn request_hoists_system_merges_tool_results_and_maps_tools() {
    let req = request(json!({
        "model": "alias",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome? See"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "24C"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required",
        "stop": "END",
        "temperature": 0.2
    }));
    let wire = to_wire(&req, "claude-sonnet-4-5", true).unwrap();
    assert_eq!(wire["model"], "claude-sonnet-4-5");
    assert_eq!(wire["system"], "Be terse.");
    assert_eq!(wire["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(wire["stream"], true);
    assert_eq!(wire["stop_sequences"], json!(["END"]));
    assert_eq!(wire["tool_choice"], json!({"type": "any"}));
    assert_eq!(
        wire["tools"][0],
        json!({"name": "get_weather", "description": "Weather now",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}})
    );
    let messages = wire["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert_eq!(
        messages[0]["content"][1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}})
    );
    assert_eq!(
        messages[0]["content"][2]["source"],
        json!({"type": "url", "url": "https://example.com/a.jpg"})
    );
    assert_eq!(
        messages[1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    // Both tool results in one user turn.
    assert_eq!(messages[2]["role"], "user");
    assert_eq!(
        messages[2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C"}
        ])
    );
}

#[test]
fn request_uses_the_clients_max_tokens_and_rejects_garbled_arguments() {
    let ok = request(json!({"model": "m", "max_completion_tokens": 77,
                             "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(to_wire(&ok, "m", false).unwrap()["max_tokens"], 77);

    let bad = request(
        json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}),
    );
    assert!(to_wire(&bad, "m", false).is_err());
}

#[test]
fn response_with_text_and_tool_use_becomes_a_completion() {
    let body = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 100, "output_tokens": 20,
                  "cache_creation_input_tokens": 10, "cache_read_input_tokens": 50}
    });
    let (out, usage) = from_wire(body.to_string().as_bytes(), "alias").unwrap();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["object"], "chat.completion");
    assert_eq!(doc["model"], "alias", "the client's name, not Anthropic's");
    let choice = &doc["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Checking.");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    // prompt = input + cache read + cache creation; cached = cache read; writes apart
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 160,
            completion_tokens: 20,
            total_tokens: 180,
            cached_tokens: 50,
            reasoning_tokens: 0,
            cache_write_tokens: 10,
            reported: Reported::All,
        }
    );
    assert_eq!(doc["usage"]["prompt_tokens_details"]["cached_tokens"], 50);
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    assert_eq!(finish_reason(Some("end_turn")), "stop");
    assert_eq!(finish_reason(Some("stop_sequence")), "stop");
    assert_eq!(finish_reason(Some("max_tokens")), "length");
    assert_eq!(finish_reason(Some("tool_use")), "tool_calls");
}

fn run(events: &[Value]) -> (Vec<Value>, Vec<StreamEvent>, Flow) {
    let mut state = StreamState::new("alias");
    let mut out = Vec::new();
    let mut flow = Flow::Continue;
    for ev in events {
        flow = from_wire_event(&ev.to_string(), &mut state, &mut out).unwrap();
    }
    let docs = out
        .iter()
        .map(|e| serde_json::from_slice(&e.data).unwrap())
        .collect();
    (docs, out, flow)
}

#[test]
fn stream_with_text_and_a_tool_call_becomes_chunks() {
    let (docs, events, flow) = run(&[
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
               "model": "claude-sonnet-4-5", "content": [], "stop_reason": null,
               "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 5}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " check."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 42}}),
        json!({"type": "message_stop"}),
    ]);
    assert_eq!(flow, Flow::Done);
    assert!(
        docs.iter()
            .all(|d| d["id"] == "msg_1" && d["model"] == "alias")
    );
    assert_eq!(docs[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = docs
        .iter()
        .filter_map(|d| d["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check.");

    let tool_deltas: Vec<&Value> = docs
        .iter()
        .filter_map(|d| d["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(tool_deltas[0]["id"], "toolu_9");
    assert_eq!(tool_deltas[0]["function"]["name"], "get_weather");
    assert!(tool_deltas.iter().all(|t| t["index"] == 0));
    let args: String = tool_deltas
        .iter()
        .filter_map(|t| t["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );

    let finish = &docs[docs.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let last = events.last().unwrap();
    assert!(last.usage_only);
    assert_eq!(docs.last().unwrap()["choices"], json!([]));
    assert_eq!(
        last.usage.unwrap(),
        Usage {
            prompt_tokens: 30,
            completion_tokens: 42,
            total_tokens: 72,
            cached_tokens: 5,
            reasoning_tokens: 0,
            cache_write_tokens: 0,
            reported: Reported::All,
        }
    );
}

#[test]
fn message_start_passes_on_the_prompt_counts() {
    let (_, events, flow) = run(&[
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
               "model": "claude-sonnet-4-5", "content": [], "stop_reason": null,
               "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 500,
                         "cache_creation_input_tokens": 70}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
    ]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(
        events[0].usage,
        Some(Usage {
            prompt_tokens: 595,
            total_tokens: 595,
            cached_tokens: 500,
            cache_write_tokens: 70,
            reported: Reported::PromptOnly,
            ..Usage::default()
        }),
        "output_tokens: 1 is a placeholder, not the answer's count"
    );
    assert!(!events[0].usage_only);
    assert!(events[1..].iter().all(|e| e.usage.is_none()));
}

#[test]
fn stream_error_event_is_an_error() {
    let mut state = StreamState::new("alias");
    let err = from_wire_event(
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        &mut state,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("overloaded_error"));
    assert!(!err.retryable(), "after the first byte an error is final");
}
