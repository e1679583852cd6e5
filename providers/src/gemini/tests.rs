//! Translation tests on fixtures shaped after Gemini's documented requests and responses.

use serde_json::{Value, json};

use super::*;
use crate::framing::Translate;
use crate::{ChatRequest, Reported, Usage};

fn request(raw: Value) -> ChatRequest {
    serde_json::from_value(raw).unwrap()
}

#[test]
fn request_maps_roles_tools_and_generation_config() {
    let req = request(json!({
        "model": "alias",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\":18}"},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 256, "temperature": 0.3, "top_p": 0.9, "stop": ["END"],
        "response_format": {"type": "json_object"}
    }));
    let wire = to_wire(&req).unwrap();
    assert_eq!(
        wire["systemInstruction"],
        json!({"parts": [{"text": "Be terse."}]})
    );
    assert_eq!(
        wire["generationConfig"],
        json!({"maxOutputTokens": 256, "temperature": 0.3, "topP": 0.9,
               "stopSequences": ["END"], "responseMimeType": "application/json"})
    );
    assert_eq!(
        wire["tools"],
        json!([{"functionDeclarations": [{"name": "get_weather", "description": "Weather now",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}])
    );
    assert_eq!(
        wire["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    let contents = wire["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3, "{contents:#?}");
    assert_eq!(contents[0]["role"], "user");
    assert_eq!(
        contents[0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}})
    );
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        contents[1]["parts"][0],
        json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}})
    );
    // The tool result names the function (looked up by call id) and shares a turn with "Thanks".
    assert_eq!(contents[2]["role"], "user");
    assert_eq!(
        contents[2]["parts"],
        json!([
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
            {"text": "Thanks"}
        ])
    );
}

#[test]
fn tool_result_for_an_unknown_call_is_refused() {
    let req = request(json!({"model": "m", "messages": [
        {"role": "tool", "tool_call_id": "nope", "content": "x"}]}));
    assert!(to_wire(&req).is_err());
}

#[test]
fn response_with_function_call_becomes_a_completion() {
    let body = json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "thinking about it", "thought": true},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
            ]},
            "finishReason": "STOP", "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 10, "totalTokenCount": 58,
                          "cachedContentTokenCount": 16, "thoughtsTokenCount": 8},
        "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"
    });
    let (out, usage) = from_wire(body.to_string().as_bytes(), "alias").unwrap();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["id"], "resp-1");
    assert_eq!(doc["model"], "alias", "the client's name, not modelVersion");
    let choice = &doc["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"]["content"],
        Value::Null,
        "thoughts are not the answer"
    );
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 40,
            completion_tokens: 18,
            total_tokens: 58,
            cached_tokens: 16,
            reasoning_tokens: 8,
            cache_write_tokens: 0,
            reported: Reported::All,
        }
    );
}

#[test]
fn finish_reasons_map() {
    assert_eq!(finish_reason("STOP", false), "stop");
    assert_eq!(finish_reason("MAX_TOKENS", false), "length");
    assert_eq!(finish_reason("SAFETY", false), "content_filter");
    assert_eq!(finish_reason("STOP", true), "tool_calls");
}

#[test]
fn stream_with_text_and_a_function_call_becomes_chunks() {
    let events = [
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Let me"}]}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}, "modelVersion": "gemini-2.5-flash", "responseId": "r9"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": " check."}]}, "index": 0}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [
                  {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
               "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21}}),
    ];
    let mut state = StreamState::new("alias");
    let mut out = Vec::new();
    for ev in &events {
        from_wire_event(&ev.to_string(), &mut state, &mut out).unwrap();
    }
    state.end(&mut out).unwrap();
    let docs: Vec<Value> = out
        .iter()
        .map(|e| serde_json::from_slice(&e.data).unwrap())
        .collect();
    assert!(docs.iter().all(|d| d["id"] == "r9"
        && d["object"] == "chat.completion.chunk"
        && d["model"] == "alias"));
    assert_eq!(docs[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = docs
        .iter()
        .filter_map(|d| d["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check.");
    let call = docs
        .iter()
        .find_map(|d| d["choices"][0]["delta"]["tool_calls"].get(0))
        .unwrap();
    assert_eq!(call["index"], 0);
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(
        docs[docs.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
    let last = out.last().unwrap();
    assert!(last.usage_only);
    assert_eq!(last.usage.unwrap().total_tokens, 21);
    assert_eq!(last.usage.unwrap().completion_tokens, 9);
}

#[test]
fn stream_that_ends_without_a_finish_reason_is_an_error() {
    let mut state = StreamState::new("m");
    let mut out = Vec::new();
    let chunk = json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]});
    from_wire_event(&chunk.to_string(), &mut state, &mut out).unwrap();
    assert!(state.end(&mut out).is_err());
}

#[test]
fn an_early_chunk_passes_on_the_prompt_counts() {
    let mut state = StreamState::new("m");
    let mut out = Vec::new();
    let chunk = json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}, "index": 0}],
                       "usageMetadata": {"promptTokenCount": 1290, "cachedContentTokenCount": 1024,
                                         "candidatesTokenCount": 1, "totalTokenCount": 1291}});
    from_wire_event(&chunk.to_string(), &mut state, &mut out).unwrap();
    assert_eq!(
        out[0].usage,
        Some(Usage {
            prompt_tokens: 1290,
            total_tokens: 1290,
            cached_tokens: 1024,
            reported: Reported::PromptOnly,
            ..Usage::default()
        }),
        "the answer's count so far is not the answer's count"
    );
    assert!(
        !out[0].usage_only,
        "the role chunk still goes to the client"
    );
    assert!(out[1..].iter().all(|e| e.usage.is_none()));
}
