//! Admission against numbers a client picks: an output cap near 2^64 must not wrap the
//! reservation round to something small, and `n` choices reserve `n` times the cap.

use reqwest::Method;
use serde_json::{Value, json};

use super::gateway::{self, MOCK};
use crate::support::{TestApp, error_code, json};

async fn limit_jane(app: &TestApp, tokens_per_day: i64) {
    let response = app
        .admin(Method::PUT, "/tenants/acme/users/jane/quota")
        .json(&json!({ "tokens_per_day": tokens_per_day }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn chat(app: &TestApp, key: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "Hi there"}]});
    for (field, value) in extra.as_object().unwrap() {
        body[field] = value.clone();
    }
    json(gateway::chat(app, key, "admission", &body).await).await
}

#[tokio::test]
async fn an_output_cap_near_two_to_the_64_is_refused_naming_the_field() {
    let (app, store, key) = gateway::gateway(MOCK).await;
    limit_jane(&app, 20).await;
    for (field, value) in [
        ("max_completion_tokens", u64::MAX),
        ("max_completion_tokens", u64::MAX - 1),
        ("max_tokens", u64::MAX),
        ("max_tokens", u64::MAX - 1),
        ("max_tokens", 1_048_577),
    ] {
        let (status, body) = chat(&app, &key, json!({ field: value })).await;
        assert_eq!(status, 400, "{field} = {value}: {body}");
        assert_eq!(error_code(&body), "invalid_request");
        assert_eq!(body["error"]["param"], field, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    // At the maximum the cap is a number admission can count: over a 20-token quota, a 429.
    let (status, body) = chat(&app, &key, json!({"max_tokens": 1_048_576})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(error_code(&body), "quota_exceeded");
    assert_eq!(store.usage_count().await.unwrap(), 0, "nothing was served");
}

#[tokio::test]
async fn n_choices_reserve_n_times_the_output_cap() {
    let (app, _store, key) = gateway::gateway(MOCK).await;
    limit_jane(&app, 100).await;
    // 100 choices of 30 tokens cannot fit a 100-token day.
    let (status, body) = chat(&app, &key, json!({"n": 100, "max_tokens": 30})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(error_code(&body), "quota_exceeded");
    // Nor can 4 (120 tokens of output); 2 can (60 + the prompt's few).
    let (status, _) = chat(&app, &key, json!({"n": 4, "max_tokens": 30})).await;
    assert_eq!(status, 429);
    let (status, body) = chat(&app, &key, json!({"n": 2, "max_tokens": 30})).await;
    assert_eq!(status, 200, "{body}");
    for n in [0, 129] {
        let (status, body) = chat(&app, &key, json!({"n": n})).await;
        assert_eq!(status, 400, "n = {n}: {body}");
        assert_eq!(body["error"]["param"], "n");
    }
}
