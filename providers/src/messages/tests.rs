use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::*;
use crate::{StreamEvent, Usage};

fn request(body: Value) -> MessagesRequest {
    serde_json::from_value(body).unwrap()
}

#[test]
fn a_conversation_with_tools_translates_to_chat() {
    let req = request(json!({
        "model": "claude", "max_tokens": 100, "stream": true,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "stop_sequences": ["END"], "temperature": 0.5,
        "metadata": {"user_id": "u1"},
        "tools": [{"name": "weather", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hm", "signature": "s"},
                {"type": "text", "text": "checking"},
                {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]},
                {"type": "text", "text": "and tomorrow?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA="}}]}
        ]
    }));
    let chat = serde_json::to_value(to_chat(&req).unwrap()).unwrap();
    assert_eq!(
        chat["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        chat["messages"][1],
        json!({"role": "user", "content": "weather?"})
    );
    assert_eq!(chat["messages"][2]["content"], "checking");
    assert_eq!(
        chat["messages"][2]["tool_calls"][0]["function"],
        json!({"name": "weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(
        chat["messages"][3],
        json!({"role": "tool", "content": "sunny", "tool_call_id": "t1"})
    );
    assert_eq!(
        chat["messages"][4]["content"][0],
        json!({"type": "text", "text": "and tomorrow?"})
    );
    assert_eq!(
        chat["messages"][4]["content"][1]["image_url"]["url"],
        "data:image/png;base64,AAA="
    );
    assert_eq!(
        chat["tools"][0]["function"]["parameters"],
        json!({"type": "object"})
    );
    assert_eq!(chat["tool_choice"], "required");
    assert_eq!(chat["parallel_tool_calls"], false);
    assert_eq!(chat["stop"], json!(["END"]));
    assert_eq!(chat["user"], "u1");
    assert_eq!(chat["max_tokens"], 100);
    assert_eq!(chat["stream_options"]["include_usage"], true);
}

#[test]
fn what_chat_cannot_carry_is_refused_not_dropped() {
    let server_tool = request(json!({"model": "m", "max_tokens": 1, "messages": [],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]}));
    let error = to_chat(&server_tool).unwrap_err();
    assert_eq!(error.code(), "unsupported");
    assert!(error.to_string().contains("tools[0]"), "{error}");
    let document = request(json!({"model": "m", "max_tokens": 1, "messages": [
        {"role": "user", "content": [{"type": "document", "source": {}}]}]}));
    assert!(
        to_chat(&document)
            .unwrap_err()
            .to_string()
            .contains("messages[0].content[0]")
    );
}

#[test]
fn a_chat_answer_becomes_a_message_naming_the_alias() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "let me see",
            "tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}]
    });
    let usage = Usage {
        prompt_tokens: 30,
        completion_tokens: 7,
        total_tokens: 37,
        cached_tokens: 10,
        ..Usage::default()
    };
    let message: Value = serde_json::from_slice(
        &from_chat(body.to_string().as_bytes(), "claude", Some(&usage)).unwrap(),
    )
    .unwrap();
    assert_eq!(message["model"], "claude");
    assert_eq!(message["id"], "msg_chatcmpl-1");
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(
        message["content"][0],
        json!({"type": "text", "text": "let me see"})
    );
    assert_eq!(message["content"][1]["input"], json!({"city": "Oslo"}));
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 20, "output_tokens": 7, "cache_read_input_tokens": 10,
               "cache_creation_input_tokens": 0})
    );
}

fn chunk(delta: Value, finish: Option<&str>) -> Result<StreamEvent, crate::ProviderError> {
    let doc =
        json!({"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    Ok(StreamEvent::new(Bytes::from(doc.to_string()), None, false))
}

#[tokio::test]
async fn streamed_chunks_become_the_whole_event_sequence() {
    let usage = Usage {
        prompt_tokens: 12,
        completion_tokens: 5,
        total_tokens: 17,
        ..Usage::default()
    };
    let doc = json!({"id": "c", "choices": [], "usage": {}});
    let chunks = vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "t1", "type": "function",
                                      "function": {"name": "f", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        Ok(StreamEvent::new(
            Bytes::from(doc.to_string()),
            Some(usage),
            true,
        )),
    ];
    let events: Vec<StreamEvent> = to_events(
        Box::pin(futures_util::stream::iter(chunks)),
        "claude".into(),
    )
    .map(Result::unwrap)
    .collect()
    .await;
    let parsed: Vec<(String, Value)> = events
        .iter()
        .map(|event| {
            let text = std::str::from_utf8(&event.data).unwrap();
            let (head, data) = text.trim_end().split_once('\n').unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            (head.strip_prefix("event: ").unwrap().to_owned(), data)
        })
        .collect();
    let names: Vec<&str> = parsed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for (name, data) in &parsed {
        assert_eq!(data["type"], name.as_str());
    }
    assert_eq!(parsed[0].1["message"]["model"], "claude");
    assert_eq!(
        parsed[5].1["content_block"],
        json!({"type": "tool_use", "id": "t1", "name": "f", "input": {}})
    );
    assert_eq!(
        parsed[6].1["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"a\":"})
    );
    assert_eq!(parsed[6].1["index"], 1);
    assert_eq!(parsed[9].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(parsed[9].1["usage"]["output_tokens"], 5);
    assert_eq!(parsed[9].1["usage"]["input_tokens"], 12);
    assert_eq!(events.iter().filter_map(|e| e.usage).last(), Some(usage));
}
