//! The mock provider has no upstream; it meets the parts of the contract that apply to it.

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate_providers::{EmbeddingsRequest, Provider, ProviderKind};

use crate::cases::{
    CLIENT_MODEL, UPSTREAM_MODEL, assert_null_refusal, docs, provider, request, streamed_text,
    unpack,
};

#[tokio::test]
async fn chat_and_stream_say_the_same_with_the_same_usage() {
    let mock = provider(ProviderKind::Mock, "", |_| {});
    let resp = mock.chat(&request(false), UPSTREAM_MODEL).await.unwrap();
    let doc: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(doc["model"], CLIENT_MODEL);
    assert_null_refusal(&doc);
    let text = doc["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(text, "You said: Say hello");
    let usage = resp.usage.unwrap();
    // "Be brief." + "Say hello" = 18 characters → 5 prompt tokens; 4 words answered.
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (5, 4, 9)
    );

    let events: Vec<_> = mock
        .chat_stream(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let docs = docs(&events);
    assert_eq!(streamed_text(&docs), text);
    assert!(docs.iter().all(|d| d["model"] == CLIENT_MODEL));
    let last = events.last().unwrap();
    assert!(last.usage_only);
    assert_eq!(last.usage, Some(usage));
}

#[tokio::test]
async fn max_tokens_truncates_with_length() {
    let mut req = request(false);
    req.max_tokens = Some(2);
    let mock = provider(ProviderKind::Mock, "", |_| {});
    let doc: Value = serde_json::from_slice(&mock.chat(&req, "m").await.unwrap().body).unwrap();
    assert_eq!(doc["choices"][0]["message"]["content"], "You said:");
    assert_eq!(doc["choices"][0]["finish_reason"], "length");
    assert_eq!(doc["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn embeddings_are_deterministic() {
    let mock = provider(ProviderKind::Mock, "", |_| {});
    let req: EmbeddingsRequest =
        serde_json::from_value(json!({"model": "m", "input": ["same", "other", "same"]})).unwrap();
    let resp = mock.embeddings(&req, "upstream").await.unwrap();
    let doc: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(doc["model"], "m");
    let data = doc["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["embedding"], data[2]["embedding"]);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert_eq!(
        data[0]["embedding"].as_array().unwrap().len(),
        tollgate_providers::mock::EMBEDDING_DIMENSIONS
    );
    assert!(resp.usage.unwrap().prompt_tokens >= 3);
}

#[tokio::test]
async fn embeddings_can_be_base64() {
    let mock = provider(ProviderKind::Mock, "", |_| {});
    let embed = |format: &str| -> EmbeddingsRequest {
        serde_json::from_value(
            json!({"model": "m", "input": ["a", "b"], "encoding_format": format}),
        )
        .unwrap()
    };
    let floats = mock.embeddings(&embed("float"), "m").await.unwrap();
    let packed = mock.embeddings(&embed("base64"), "m").await.unwrap();
    let floats: Value = serde_json::from_slice(&floats.body).unwrap();
    let packed: Value = serde_json::from_slice(&packed.body).unwrap();
    for i in 0..2 {
        let expected: Vec<f32> = floats["data"][i]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(unpack(&packed["data"][i]["embedding"]), expected);
    }
}
