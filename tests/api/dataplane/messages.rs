//! Anthropic's Messages API on the data plane: native to an Anthropic upstream (the request and
//! the events go through as sent), translated for an OpenAI-compatible one, with Anthropic's
//! error envelope, and metered like chat.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate::metering::Ending;
use tollgate_testkit::{Step, Upstream};

use super::{DataPlane, PROVIDER_KEY, leave_after, model, provider};

/// A gateway with `claude` on an Anthropic-kind upstream and `gpt` on an OpenAI-kind one.
async fn plane(anthropic: &Upstream, openai: &Upstream) -> DataPlane {
    let mut native = provider("anthropic", &anthropic.root_url());
    native.kind = "anthropic".into();
    DataPlane::start(
        vec![native, provider("openai", &openai.base_url)],
        vec![
            model("claude", &[("anthropic", "claude-real")], &[]),
            model("gpt", &[("openai", "gpt-real")], &[]),
        ],
        |config| config.metering.flush_interval = Duration::from_millis(20),
    )
    .await
}

/// `POST /v1/messages` with the key as `x-api-key`, as the anthropic SDK sends it.
async fn send(plane: &DataPlane, request_id: &str, body: &Value) -> reqwest::Response {
    plane
        .app
        .client
        .post(plane.app.url("/v1/messages"))
        .header("x-api-key", &plane.key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .header("x-request-id", request_id)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn hello(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

/// `(event name, data)` of each event of an SSE body.
async fn events(response: reqwest::Response) -> Vec<(String, Value)> {
    super::events(response)
        .await
        .iter()
        .filter(|event| !event.starts_with(':'))
        .map(|event| {
            let (head, data) = event.split_once('\n').unwrap();
            let data = data.strip_prefix("data: ").unwrap();
            (
                head.strip_prefix("event: ").unwrap().to_owned(),
                serde_json::from_str(data).unwrap(),
            )
        })
        .collect()
}

fn text_of(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter_map(|(_, data)| data["delta"]["text"].as_str())
        .collect()
}

#[tokio::test]
async fn an_anthropic_upstream_gets_the_request_as_sent_and_its_answer_comes_back() {
    let (anthropic, openai) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&anthropic, &openai).await;
    let body = json!({
        "model": "claude", "max_tokens": 512,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 256},
        "metadata": {"user_id": "jane-42"},
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"},
                   "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "text", "text": "weather?", "cache_control": {"type": "ephemeral"}}]}],
        "api_base": "https://attacker.example/v1"
    });
    let response = send(&plane, "native-json", &body).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["model"], "claude",
        "the alias, not the upstream's name"
    );
    assert_eq!(answer["content"][1]["input"], json!({"city": "Paris"}));
    assert_eq!(answer["stop_reason"], "tool_use");
    assert_eq!(
        answer["usage"],
        json!({"input_tokens": 9, "cache_read_input_tokens": 4,
               "cache_creation_input_tokens": 2, "output_tokens": 5})
    );

    let seen = &anthropic.recorded()[0];
    assert_eq!(seen.path, "/v1/messages");
    let mut expected = body.clone();
    expected["model"] = json!("claude-real");
    expected.as_object_mut().unwrap().remove("api_base");
    assert_eq!(
        seen.body, expected,
        "everything but the model and steering goes as sent"
    );
    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
    assert_eq!(seen.headers["anthropic-beta"], "prompt-caching-2024-07-31");
    assert_eq!(seen.headers["x-api-key"], PROVIDER_KEY);

    let event = plane.stored("native-json").await;
    assert_eq!(
        (
            event.tally.prompt_tokens,
            event.tally.cached_tokens,
            event.tally.completion_tokens
        ),
        (15, 4, 5),
        "input + cache reads + cache writes is the prompt"
    );
    assert!(!event.estimated);
    assert!(!event.streamed);
}

#[tokio::test]
async fn an_anthropic_stream_is_relayed_event_by_event() {
    let (anthropic, openai) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&anthropic, &openai).await;
    let mut body = hello("claude", true);
    body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    let response = send(&plane, "native-stream", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = events(response).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "every upstream event, in order, and nothing else"
    );
    assert_eq!(events[0].1["message"]["model"], "claude");
    assert_eq!(text_of(&events), "Hello from upstream");
    assert_eq!(events[8].1["delta"]["type"], "input_json_delta");
    let event = plane.stored("native-stream").await;
    assert_eq!(
        (
            event.tally.prompt_tokens,
            event.tally.cached_tokens,
            event.tally.completion_tokens
        ),
        (15, 4, 5)
    );
    assert!(event.streamed && !event.estimated);
}

#[tokio::test]
async fn an_openai_upstream_gets_a_translation_both_ways() {
    let (anthropic, openai) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&anthropic, &openai).await;
    let mut body = hello("gpt", false);
    body["system"] = json!("Be brief.");
    body["tools"] = json!([{"name": "get_weather", "description": "Weather",
                            "input_schema": {"type": "object"}}]);
    let response = send(&plane, "translated-json", &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["model"], "gpt");
    assert_eq!(answer["stop_reason"], "tool_use");
    assert_eq!(
        answer["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(answer["usage"]["input_tokens"], 7);
    assert_eq!(answer["usage"]["output_tokens"], 3);
    let seen = &openai.recorded()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(seen.body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(seen.body["max_tokens"], 64);

    let response = send(&plane, "translated-stream", &hello("gpt", true)).await;
    assert_eq!(response.status(), 200);
    let events = events(response).await;
    assert_eq!(events.first().unwrap().0, "message_start");
    assert_eq!(events.last().unwrap().0, "message_stop");
    assert_eq!(text_of(&events), "Hello from upstream");
    let delta = &events[events.len() - 2];
    assert_eq!(delta.0, "message_delta");
    assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta.1["usage"]["output_tokens"], 3);
    for id in ["translated-json", "translated-stream"] {
        let event = plane.stored(id).await;
        assert_eq!(
            (event.tally.prompt_tokens, event.tally.completion_tokens),
            (7, 3),
            "{id}"
        );
    }
}

#[tokio::test]
async fn errors_come_in_anthropics_envelope() {
    let anthropic = Upstream::start(vec![Step::Status(529, None)], Step::Answer).await;
    let openai = Upstream::healthy().await;
    let plane = plane(&anthropic, &openai).await;
    let request = |key: &str, body: &Value| {
        plane
            .app
            .client
            .post(plane.app.url("/v1/messages"))
            .header("x-api-key", key)
            .json(body)
            .send()
    };
    let cases = [
        (
            request("tg-not-a-key", &hello("claude", false))
                .await
                .unwrap(),
            401,
            "authentication_error",
        ),
        (
            request(&plane.key, &hello("nope", false)).await.unwrap(),
            404,
            "not_found_error",
        ),
        (
            request(&plane.key, &json!({"model": "claude", "messages": []}))
                .await
                .unwrap(),
            400,
            "invalid_request_error",
        ),
    ];
    for (response, status, kind) in cases {
        assert_eq!(response.status(), status);
        assert!(response.headers().contains_key("request-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Anthropic's 529 `overloaded_error` is retried like a 503.
    let response = send(&plane, "overloaded", &hello("claude", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(anthropic.hits(), 2);
}

#[tokio::test]
async fn a_quota_refusal_is_anthropics_429() {
    let (anthropic, openai) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&anthropic, &openai).await;
    plane
        .app
        .put_user_quota("acme", "jane", json!({"requests_per_minute": 1}))
        .await;
    assert_eq!(
        send(&plane, "q1", &hello("claude", false)).await.status(),
        200
    );
    let refused = send(&plane, "q2", &hello("claude", false)).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn a_client_leaving_a_messages_stream_is_billed() {
    let anthropic = Upstream::always(Step::Slow(Duration::from_millis(300))).await;
    let openai = Upstream::healthy().await;
    let plane = plane(&anthropic, &openai).await;
    let response = send(&plane, "leaver", &hello("claude", true)).await;
    assert_eq!(response.status(), 200);
    leave_after(response, "Hello").await;
    let event = plane.stored("leaver").await;
    assert_eq!(event.status, Ending::ClientDisconnected);
    assert_eq!(
        event.tally.prompt_tokens, 15,
        "message_start's counts are billed"
    );
    assert!(event.tally.completion_tokens >= 1, "{event:?}");
    assert!(anthropic.wait_for_disconnect(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn what_chat_completions_cannot_carry_is_a_400_not_an_upstream_failure() {
    let (anthropic, openai) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&anthropic, &openai).await;
    let mut body = hello("gpt", false);
    body["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    let response = send(&plane, "server-tool", &body).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tools[0]"),
        "{body}"
    );
    assert_eq!(openai.hits(), 0);
    let event = plane.stored("server-tool").await;
    assert_eq!(event.status, Ending::Rejected);
}
