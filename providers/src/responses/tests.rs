use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::*;
use crate::{StreamEvent, Usage};

fn request(body: Value) -> ResponsesRequest {
    serde_json::from_value(body).unwrap()
}

fn param(error: &ProviderError) -> Option<&str> {
    match error {
        ProviderError::Unsupported { param, .. } => param.as_deref(),
        _ => None,
    }
}

#[test]
fn a_conversation_with_tools_translates_to_chat() {
    let req = request(json!({
        "model": "gpt", "stream": true, "max_output_tokens": 300, "temperature": 0.2,
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": "weather in Paris?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": "{\"city\":\"Lyon\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "rain"}]},
            {"type": "message", "role": "developer", "content": [
                {"type": "input_text", "text": "and this? "},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]}
        ],
        "tools": [{"type": "function", "name": "weather", "description": "d",
                   "parameters": {"type": "object"}, "strict": true}],
        "tool_choice": {"type": "function", "name": "weather"},
        "parallel_tool_calls": false,
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true},
                 "verbosity": "low"},
        "reasoning": {"effort": "low", "summary": "auto"},
        "user": "u1",
        "include": ["reasoning.encrypted_content"],
        "store": false
    }));
    let chat = serde_json::to_value(to_chat(&req).unwrap()).unwrap();
    let messages = chat["messages"].as_array().unwrap();
    assert_eq!(
        messages[0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        messages[1],
        json!({"role": "user", "content": "weather in Paris?"})
    );
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["content"], "Checking.");
    let calls = messages[2]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "one turn's calls are one assistant message");
    assert_eq!(
        calls[1],
        json!({"id": "call_2", "type": "function",
               "function": {"name": "weather", "arguments": "{\"city\":\"Lyon\"}"}})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "content": "sunny", "tool_call_id": "call_1"})
    );
    assert_eq!(messages[4]["content"], "rain");
    assert_eq!(messages[5]["role"], "developer");
    assert_eq!(
        messages[5]["content"],
        json!([{"type": "text", "text": "and this? "},
               {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}])
    );
    assert_eq!(messages.len(), 6, "the reasoning item is dropped");
    assert_eq!(
        chat["tools"][0],
        json!({"type": "function", "function": {"name": "weather", "description": "d",
               "parameters": {"type": "object"}, "strict": true}})
    );
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "weather"}})
    );
    assert_eq!(chat["parallel_tool_calls"], false);
    assert_eq!(
        chat["response_format"],
        json!({"type": "json_schema",
               "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(chat["verbosity"], "low");
    assert_eq!(chat["reasoning_effort"], "low");
    assert_eq!(chat["user"], "u1");
    assert_eq!(chat["max_tokens"], 300);
    assert_eq!(chat["temperature"], 0.2);
    assert_eq!(chat["stream_options"]["include_usage"], true);
    assert!(chat.get("include").is_none() && chat.get("store").is_none());
}

#[test]
fn a_string_input_is_one_user_message() {
    let chat = to_chat(&request(json!({"model": "m", "input": "hi"}))).unwrap();
    assert_eq!(chat.messages.len(), 1);
    assert_eq!(chat.messages[0].role, "user");
    assert_eq!(chat.messages[0].text(), "hi");
    assert!(chat.stream_options.is_none());
}

#[test]
fn state_and_what_chat_cannot_carry_are_refused_naming_the_field() {
    let cases = [
        (
            json!({"previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (json!({"store": true}), "store"),
        (json!({"conversation": "conv_1"}), "conversation"),
        (json!({"background": true}), "background"),
        (json!({"prompt": {"id": "pmpt_1"}}), "prompt"),
        (json!({"tools": [{"type": "web_search"}]}), "tools[0]"),
        (
            json!({"tool_choice": {"type": "file_search"}}),
            "tool_choice",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0]",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "input[0].content[0]",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
            "input[0].content[0]",
        ),
        (
            json!({"text": {"format": {"type": "json_schema"}}}),
            "text.format",
        ),
    ];
    for (fields, field) in cases {
        let mut body = json!({"model": "m", "input": "hi"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let error = to_chat(&request(body)).unwrap_err();
        assert_eq!(error.code(), "unsupported");
        assert_eq!(param(&error), Some(field), "{error}");
        assert!(error.to_string().contains(field), "{error}");
    }
}

#[test]
fn a_completion_becomes_a_response_naming_the_alias() {
    let req = request(
        json!({"model": "alias", "input": "hi", "instructions": "Be brief.",
                             "max_output_tokens": 50, "metadata": {"k": "v"}}),
    );
    let body = json!({"id": "chatcmpl-9", "object": "chat.completion", "model": "real",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": "Checking.", "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]}}]});
    let usage = Usage {
        prompt_tokens: 12,
        completion_tokens: 5,
        total_tokens: 17,
        cached_tokens: 4,
        reasoning_tokens: 2,
        ..Usage::default()
    };
    let answer = from_chat(body.to_string().as_bytes(), &req, Some(&usage)).unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["id"], "resp_chatcmpl-9");
    assert_eq!(answer["object"], "response");
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["model"], "alias");
    assert_eq!(answer["instructions"], "Be brief.");
    assert_eq!(answer["max_output_tokens"], 50);
    assert_eq!(answer["metadata"], json!({"k": "v"}));
    assert_eq!(answer["store"], false);
    let output = answer["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(
        output[0]["content"],
        json!([{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}])
    );
    assert_eq!(
        output[1],
        json!({"type": "function_call", "id": "fc_call_1", "call_id": "call_1",
               "name": "weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"})
    );
    assert_eq!(
        answer["usage"],
        json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
               "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
               "total_tokens": 17})
    );
}

#[test]
fn a_completion_cut_by_the_cap_is_incomplete() {
    let req = request(json!({"model": "m", "input": "hi"}));
    let body = json!({"id": "c", "choices": [{"index": 0, "finish_reason": "length",
        "message": {"role": "assistant", "content": "Once upon"}}]});
    let answer = from_chat(body.to_string().as_bytes(), &req, None).unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["status"], "incomplete");
    assert_eq!(
        answer["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(answer["usage"], Value::Null, "no usage is not zero usage");
}

fn chunk(delta: Value, finish: Option<&str>) -> Result<StreamEvent, ProviderError> {
    let data = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "real",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    Ok(StreamEvent::new(Bytes::from(data.to_string()), None, false))
}

/// `(event name, data)` of each translated event.
async fn translate(chunks: Vec<Result<StreamEvent, ProviderError>>) -> Vec<(String, Value, bool)> {
    let req = request(json!({"model": "alias", "input": "hi", "stream": true}));
    let events: Vec<_> = to_events(Box::pin(futures_util::stream::iter(chunks)), &req)
        .collect()
        .await;
    events
        .into_iter()
        .map(|event| {
            let event = event.unwrap();
            let text = String::from_utf8(event.data.to_vec()).unwrap();
            let (head, data) = text.trim_end().split_once('\n').unwrap();
            let name = head.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name);
            (name, data, event.usage.is_some())
        })
        .collect()
}

#[tokio::test]
async fn chunks_become_the_whole_event_sequence() {
    let usage = Usage {
        prompt_tokens: 7,
        completion_tokens: 3,
        total_tokens: 10,
        ..Usage::default()
    };
    let usage_chunk = json!({"id": "chatcmpl-1", "choices": [],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}});
    let events = translate(vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "weather", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        Ok(StreamEvent::new(
            Bytes::from(usage_chunk.to_string()),
            Some(usage),
            true,
        )),
    ])
    .await;
    let names: Vec<&str> = events.iter().map(|(name, ..)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (_, data, _)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "{data}");
    }
    let created = &events[0].1["response"];
    assert_eq!(
        (created["status"].as_str(), created["model"].as_str()),
        (Some("in_progress"), Some("alias"))
    );
    assert_eq!(events[6].1["text"], "Hello");
    assert_eq!(events[9].1["item"]["call_id"], "call_1");
    assert_eq!(events[9].1["output_index"], 1);
    assert_eq!(events[12].1["arguments"], "{\"city\":\"Paris\"}");
    let (_, completed, carries_usage) = &events[14];
    assert!(carries_usage, "the usage rides on the final event");
    let response = &completed["response"];
    assert_eq!(response["status"], "completed");
    assert_eq!(response["id"], created["id"]);
    assert_eq!(response["usage"]["input_tokens"], 7);
    assert_eq!(response["usage"]["output_tokens"], 3);
    assert_eq!(response["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(response["output"][1]["arguments"], "{\"city\":\"Paris\"}");
    assert!(events[..14].iter().all(|(_, _, usage)| !usage));
}

#[tokio::test]
async fn a_stream_cut_by_the_cap_ends_incomplete() {
    let events = translate(vec![
        chunk(json!({"content": "Once"}), None),
        chunk(json!({}), Some("length")),
    ])
    .await;
    let (name, data, _) = events.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(
        data["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}

#[tokio::test]
async fn an_upstream_error_ends_the_events() {
    let req = request(json!({"model": "m", "input": "hi", "stream": true}));
    let chunks = vec![
        chunk(json!({"content": "Hi"}), None),
        Err(ProviderError::StreamError("boom".into())),
    ];
    let events: Vec<_> = to_events(Box::pin(futures_util::stream::iter(chunks)), &req)
        .collect()
        .await;
    assert!(events.last().unwrap().is_err());
    assert!(events[..events.len() - 1].iter().all(Result::is_ok));
}
