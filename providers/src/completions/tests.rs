use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::*;
use crate::{StreamEvent, Usage};

fn request(body: Value) -> CompletionsRequest {
    serde_json::from_value(body).unwrap()
}

#[test]
fn the_prompt_becomes_one_user_message() {
    let req = request(json!({
        "model": "m", "prompt": ["Once upon a time"], "max_tokens": 30, "n": 2,
        "temperature": 0.7, "stop": ["\n"], "seed": 4, "user": "u1", "presence_penalty": 0.5,
        "stream": true
    }));
    let chat = serde_json::to_value(to_chat(&req).unwrap()).unwrap();
    assert_eq!(
        chat["messages"],
        json!([{"role": "user", "content": "Once upon a time"}])
    );
    assert_eq!(chat["max_tokens"], 30);
    assert_eq!(chat["n"], 2);
    assert_eq!(chat["temperature"], 0.7);
    assert_eq!(chat["stop"], json!(["\n"]));
    assert_eq!(
        (&chat["seed"], &chat["user"], &chat["presence_penalty"]),
        (&json!(4), &json!("u1"), &json!(0.5))
    );
    assert_eq!(chat["stream_options"]["include_usage"], true);

    let plain = to_chat(&request(json!({"model": "m", "prompt": "hi"}))).unwrap();
    assert_eq!(plain.max_tokens, Some(16), "legacy completions' default");
}

#[test]
fn what_chat_cannot_carry_is_refused_naming_the_field() {
    let cases = [
        (json!({"prompt": ["a", "b"]}), "prompt"),
        (json!({"prompt": [[1, 2, 3]]}), "prompt"),
        (json!({"prompt": "a", "suffix": "z"}), "suffix"),
        (json!({"prompt": "a", "echo": true}), "echo"),
        (json!({"prompt": "a", "logprobs": 2}), "logprobs"),
        (json!({"prompt": "a", "best_of": 3}), "best_of"),
    ];
    for (mut body, field) in cases {
        body["model"] = json!("m");
        let error = to_chat(&request(body)).unwrap_err();
        let ProviderError::Unsupported { param, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(param.as_deref(), Some(field), "{error}");
    }
    let fine = request(json!({"model": "m", "prompt": "a", "echo": false, "best_of": 1}));
    assert!(to_chat(&fine).is_ok());
}

#[test]
fn a_completion_becomes_a_text_completion_with_every_choice() {
    let body = json!({"id": "chatcmpl-7", "object": "chat.completion", "model": "real", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "one"}},
        {"index": 1, "finish_reason": "length", "message": {"role": "assistant", "content": "two"}}]});
    let usage = Usage {
        prompt_tokens: 4,
        completion_tokens: 6,
        total_tokens: 10,
        ..Usage::default()
    };
    let answer = from_chat(body.to_string().as_bytes(), "alias", Some(&usage)).unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["id"], "cmpl-chatcmpl-7");
    assert_eq!(answer["object"], "text_completion");
    assert_eq!(answer["model"], "alias");
    assert_eq!(
        answer["choices"],
        json!([{"text": "one", "index": 0, "logprobs": null, "finish_reason": "stop"},
               {"text": "two", "index": 1, "logprobs": null, "finish_reason": "length"}])
    );
    assert_eq!(answer["usage"]["total_tokens"], 10);
}

fn event(
    data: Value,
    usage: Option<Usage>,
    usage_only: bool,
) -> Result<StreamEvent, ProviderError> {
    Ok(StreamEvent::new(
        Bytes::from(data.to_string()),
        usage,
        usage_only,
    ))
}

fn chunk(delta: Value, finish: Option<&str>) -> Result<StreamEvent, ProviderError> {
    let data = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "real",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    event(data, None, false)
}

#[tokio::test]
async fn chunks_become_text_completion_chunks_and_the_usage_chunk_stays_one() {
    let usage = Usage {
        prompt_tokens: 7,
        completion_tokens: 3,
        total_tokens: 10,
        ..Usage::default()
    };
    let chunks = vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(json!({}), Some("stop")),
        event(
            json!({"id": "chatcmpl-1", "choices": [],
                   "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}),
            Some(usage),
            true,
        ),
    ];
    let out: Vec<StreamEvent> =
        to_events(Box::pin(futures_util::stream::iter(chunks)), "alias".into())
            .map(Result::unwrap)
            .collect()
            .await;
    let docs: Vec<Value> = out
        .iter()
        .map(|event| serde_json::from_slice(&event.data).unwrap())
        .collect();
    assert_eq!(
        docs.len(),
        4,
        "the role-only chunk says nothing here: {docs:?}"
    );
    assert!(docs.iter().all(|doc| doc["object"] == "text_completion"));
    assert!(docs.iter().all(|doc| doc["model"] == "alias"));
    let text: String = docs
        .iter()
        .filter_map(|doc| doc["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello");
    assert_eq!(docs[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(docs[3]["choices"], json!([]));
    assert_eq!(docs[3]["usage"]["total_tokens"], 10);
    assert!(out[3].usage_only && out[3].usage == Some(usage));
    assert!(out[..3].iter().all(|event| event.usage.is_none()));
}

#[test]
fn the_native_request_is_the_clients_with_the_model_renamed() {
    let raw = json!({"model": "alias", "prompt": "hi", "max_tokens": 5, "n": 2, "echo": true,
                     "suffix": "!", "stream": false});
    let req = request(raw.clone());
    let mut expected = raw;
    expected["model"] = json!("real");
    assert_eq!(
        serde_json::to_value(wire(&req, "real", false)).unwrap(),
        expected
    );
    let streamed = serde_json::to_value(wire(&req, "real", true)).unwrap();
    assert_eq!(streamed["stream"], true);
    assert_eq!(streamed["stream_options"]["include_usage"], true);
}
