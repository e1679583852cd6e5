//! OpenAI's legacy completions on the data plane: passed through to an OpenAI upstream,
//! translated to chat completions for any other (here an Anthropic one), framed like chat when
//! streamed, and metered like chat.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate::metering::{Ending, UsageEvent};
use tollgate_testkit::{Step, Upstream};

use super::{DataPlane, PROVIDER_KEY, model, provider};

/// A gateway with `gpt` on an OpenAI upstream and `claude` on an Anthropic one.
async fn plane(openai: &Upstream, anthropic: &Upstream) -> DataPlane {
    let mut claude = provider("anthropic", &anthropic.root_url());
    claude.kind = "anthropic".into();
    DataPlane::start(
        vec![provider("openai", &openai.base_url), claude],
        vec![
            model("gpt", &[("openai", "gpt-real")], &[]),
            model("claude", &[("anthropic", "claude-real")], &[]),
        ],
        |config| config.metering.flush_interval = Duration::from_millis(20),
    )
    .await
}

async fn send(plane: &DataPlane, request_id: &str, body: &Value) -> reqwest::Response {
    plane.post_as("/v1/completions", request_id, body).await
}

fn prompt(model: &str, stream: bool) -> Value {
    json!({"model": model, "prompt": "Say hi", "max_tokens": 20, "stream": stream})
}

/// The chunks of a stream (`data:` payloads, `[DONE]` included) in order.
async fn payloads(response: reqwest::Response) -> Vec<String> {
    super::events(response)
        .await
        .iter()
        .filter_map(|event| event.strip_prefix("data: ").map(str::to_owned))
        .collect()
}

/// The text of the streamed chunks, and the usage chunk's usage if one came.
fn read(chunks: &[String]) -> (String, Option<Value>) {
    let mut text = String::new();
    let mut usage = None;
    for chunk in chunks.iter().filter(|chunk| *chunk != "[DONE]") {
        let doc: Value = serde_json::from_str(chunk).unwrap();
        assert_eq!(doc["object"], "text_completion", "{doc}");
        if let Some(piece) = doc["choices"][0]["text"].as_str() {
            text.push_str(piece);
        }
        if !doc["usage"].is_null() {
            assert_eq!(
                doc["choices"],
                json!([]),
                "usage rides on a chunk of its own"
            );
            usage = Some(doc["usage"].clone());
        }
    }
    (text, usage)
}

/// The stored event bills exactly the usage the client was shown.
fn billed_as_told(event: &UsageEvent, usage: &Value) {
    let told = |field: &str| usage[field].as_i64().unwrap();
    assert_eq!(
        (
            event.tally.prompt_tokens,
            event.tally.completion_tokens,
            event.tally.total_tokens
        ),
        (
            told("prompt_tokens"),
            told("completion_tokens"),
            told("total_tokens")
        ),
        "{usage}"
    );
    assert!(!event.estimated);
}

#[tokio::test]
async fn an_openai_upstream_gets_the_request_as_sent_and_its_answer_comes_back() {
    let (openai, anthropic) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&openai, &anthropic).await;
    let body = json!({"model": "gpt", "prompt": ["Say hi"], "max_tokens": 20, "n": 2,
                      "echo": true, "suffix": "!", "logprobs": 1, "best_of": 2,
                      "api_base": "https://attacker.example/v1"});
    let response = send(&plane, "native-json", &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "text_completion");
    assert_eq!(answer["choices"][1]["text"], "Hello from gpt-real #1");
    let seen = &openai.recorded()[0];
    assert_eq!(seen.path, "/v1/completions");
    let mut expected = body.clone();
    expected["model"] = json!("gpt-real");
    expected.as_object_mut().unwrap().remove("api_base");
    assert_eq!(
        seen.body, expected,
        "everything but the model and steering goes as sent"
    );
    assert_eq!(
        seen.headers["authorization"],
        format!("Bearer {PROVIDER_KEY}")
    );
    let event = plane.stored("native-json").await;
    billed_as_told(&event, &answer["usage"]);
    assert!(!event.streamed);
}

#[tokio::test]
async fn an_openai_stream_is_passed_through_with_the_usage_chunk_only_when_asked() {
    let (openai, anthropic) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&openai, &anthropic).await;
    let mut asked = prompt("gpt", true);
    asked["stream_options"] = json!({"include_usage": true});
    let response = send(&plane, "native-usage", &asked).await;
    assert_eq!(response.status(), 200);
    let chunks = payloads(response).await;
    assert_eq!(chunks.last().unwrap(), "[DONE]");
    let (text, usage) = read(&chunks);
    assert_eq!(text, "Hello from upstream");
    let usage = usage.expect("the usage chunk the client asked for");
    billed_as_told(&plane.stored("native-usage").await, &usage);

    let response = send(&plane, "native-plain", &prompt("gpt", true)).await;
    let chunks = payloads(response).await;
    let (text, usage) = read(&chunks);
    assert_eq!(text, "Hello from upstream");
    assert_eq!(usage, None, "not asked for, not sent");
    assert_eq!(
        openai.recorded()[1].body["stream_options"]["include_usage"],
        true,
        "the gateway always asks"
    );
    let event = plane.stored("native-plain").await;
    assert_eq!(
        (event.tally.prompt_tokens, event.tally.completion_tokens),
        (5, 4)
    );
    assert!(event.streamed && !event.estimated);
}

#[tokio::test]
async fn another_upstream_gets_the_prompt_as_a_chat_message() {
    let (openai, anthropic) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&openai, &anthropic).await;
    let response = send(&plane, "translated-json", &prompt("claude", false)).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "text_completion");
    assert_eq!(answer["model"], "claude");
    assert_eq!(
        answer["choices"],
        json!([{"text": "Hello from claude-real", "index": 0, "logprobs": null,
                "finish_reason": "stop"}])
    );
    let seen = &anthropic.recorded()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Say hi"}]}])
    );
    assert_eq!(seen.body["max_tokens"], 20);
    let event = plane.stored("translated-json").await;
    billed_as_told(&event, &answer["usage"]);
    assert_eq!(
        (event.tally.prompt_tokens, event.tally.completion_tokens),
        (15, 5)
    );

    let mut streamed = prompt("claude", true);
    streamed["stream_options"] = json!({"include_usage": true});
    let response = send(&plane, "translated-stream", &streamed).await;
    assert_eq!(response.status(), 200);
    let chunks = payloads(response).await;
    assert_eq!(chunks.last().unwrap(), "[DONE]");
    let (text, usage) = read(&chunks);
    assert_eq!(text, "Hello from upstream");
    let last: Value = serde_json::from_str(&chunks[chunks.len() - 3]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["model"], "claude");
    let usage = usage.expect("the usage chunk the client asked for");
    let event = plane.stored("translated-stream").await;
    billed_as_told(&event, &usage);
    assert!(event.streamed);
}

#[tokio::test]
async fn what_chat_cannot_carry_is_a_400_naming_the_field() {
    let (openai, anthropic) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&openai, &anthropic).await;
    let mut body = prompt("claude", false);
    body["prompt"] = json!(["one", "two"]);
    let response = send(&plane, "two-prompts", &body).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["param"], "prompt", "{body}");
    assert_eq!(anthropic.hits(), 0);
}

#[tokio::test]
async fn max_tokens_and_n_are_checked_as_the_output_asked_for() {
    let (openai, anthropic) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&openai, &anthropic).await;
    for (field, value) in [("max_tokens", json!(1u64 << 30)), ("n", json!(0))] {
        let mut body = prompt("gpt", false);
        body[field] = value;
        let response = send(&plane, &format!("too-much-{field}"), &body).await;
        assert_eq!(response.status(), 400, "{field}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], field, "{body}");
    }
    assert_eq!(openai.hits(), 0);
}

#[tokio::test]
async fn a_quota_refusal_is_openais_429() {
    let (openai, anthropic) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&openai, &anthropic).await;
    plane
        .app
        .put_user_quota("acme", "jane", json!({"requests_per_minute": 1}))
        .await;
    assert_eq!(
        send(&plane, "q1", &prompt("gpt", false)).await.status(),
        200
    );
    let refused = send(&plane, "q2", &prompt("claude", false)).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(anthropic.hits(), 0);
}

#[tokio::test]
async fn a_client_leaving_a_completions_stream_is_billed() {
    let openai = Upstream::always(Step::Slow(Duration::from_millis(300))).await;
    let anthropic = Upstream::healthy().await;
    let plane = plane(&openai, &anthropic).await;
    let response = send(&plane, "leaver", &prompt("gpt", true)).await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut received = String::new();
    while !received.contains("Hello") {
        let chunk = stream.next().await.unwrap().unwrap();
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(stream);
    let event = plane.stored("leaver").await;
    assert_eq!(event.status, Ending::ClientDisconnected);
    assert!(
        event.tally.prompt_tokens >= 1,
        "the prompt is billed: {event:?}"
    );
    assert!(
        event.tally.completion_tokens >= 1,
        "what it got is billed: {event:?}"
    );
    assert!(openai.wait_for_disconnect(Duration::from_secs(5)).await);
}
