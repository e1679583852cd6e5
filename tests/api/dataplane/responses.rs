//! OpenAI's Responses API on the data plane: native to an upstream that serves it (the request
//! and the events go through as sent), translated to chat completions for an OpenAI-compatible
//! server without it, in OpenAI's error envelope, and metered like chat.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate::metering::{Ending, UsageEvent};
use tollgate_testkit::{Step, Upstream};

use super::{DataPlane, PROVIDER_KEY, model, provider};

/// A gateway with `gpt` on an OpenAI upstream (which serves the Responses API) and `compat` on
/// an OpenAI-compatible one configured without it.
async fn plane(native: &Upstream, compat: &Upstream) -> DataPlane {
    let mut chat_only = provider("compat", &compat.base_url);
    chat_only.responses_api = Some(false);
    DataPlane::start(
        vec![provider("openai", &native.base_url), chat_only],
        vec![
            model("gpt", &[("openai", "gpt-real")], &[]),
            model("compat", &[("compat", "compat-real")], &[]),
        ],
        |config| config.metering.flush_interval = Duration::from_millis(20),
    )
    .await
}

async fn send(plane: &DataPlane, request_id: &str, body: &Value) -> reqwest::Response {
    plane.post_as("/v1/responses", request_id, body).await
}

fn hello(model: &str, stream: bool) -> Value {
    json!({"model": model, "input": "hi", "stream": stream})
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
        .filter(|(name, _)| name == "response.output_text.delta")
        .filter_map(|(_, data)| data["delta"].as_str())
        .collect()
}

/// The stored event bills exactly the usage the client was shown.
fn billed_as_told(event: &UsageEvent, usage: &Value) {
    let told = |field: &str| usage[field].as_i64().unwrap();
    assert_eq!(
        (
            event.tally.prompt_tokens,
            event.tally.cached_tokens,
            event.tally.completion_tokens,
            event.reasoning_tokens,
            event.tally.total_tokens
        ),
        (
            told("input_tokens"),
            usage["input_tokens_details"]["cached_tokens"]
                .as_i64()
                .unwrap(),
            told("output_tokens"),
            usage["output_tokens_details"]["reasoning_tokens"]
                .as_i64()
                .unwrap(),
            told("total_tokens")
        ),
        "{usage}"
    );
    assert!(!event.estimated);
}

#[tokio::test]
async fn a_native_upstream_gets_the_request_as_sent_and_its_answer_comes_back() {
    let (native, compat) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&native, &compat).await;
    let body = json!({
        "model": "gpt",
        "instructions": "Be terse.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                  {"type": "input_image", "file_id": "file-1"}]}],
        "previous_response_id": "resp_earlier",
        "store": true,
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
                  {"type": "web_search"}],
        "reasoning": {"effort": "high", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "max_output_tokens": 400,
        "api_base": "https://attacker.example/v1"
    });
    let response = send(&plane, "native-json", &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "response");
    assert_eq!(answer["model"], "gpt", "the alias, not the upstream's name");
    assert_eq!(
        answer["output"][0]["content"][0]["text"],
        "Hello from gpt-real"
    );
    assert_eq!(answer["output"][1]["call_id"], "call_1");
    assert_eq!(answer["previous_response_id"], "resp_earlier");

    let seen = &native.recorded()[0];
    assert_eq!(seen.path, "/v1/responses");
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
    assert_eq!((event.tally.prompt_tokens, event.reasoning_tokens), (11, 2));
    assert!(!event.streamed);
}

#[tokio::test]
async fn a_native_stream_is_relayed_event_by_event() {
    let (native, compat) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&native, &compat).await;
    let response = send(&plane, "native-stream", &hello("gpt", true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = events(response).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.output_item.done",
            "response.completed",
        ],
        "every upstream event, in order, and nothing else (no [DONE])"
    );
    assert_eq!(events[0].1["response"]["model"], "gpt");
    assert_eq!(text_of(&events), "Hello from upstream");
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["model"], "gpt");
    assert_eq!(native.recorded()[0].body["stream"], true);
    let event = plane.stored("native-stream").await;
    billed_as_told(&event, &completed["usage"]);
    assert!(event.streamed);
}

#[tokio::test]
async fn a_server_without_the_responses_api_gets_chat_both_ways() {
    let (native, compat) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&native, &compat).await;
    let body = json!({
        "model": "compat", "instructions": "Be brief.", "max_output_tokens": 64,
        "input": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
        "store": false
    });
    let response = send(&plane, "translated-json", &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "response");
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["model"], "compat");
    assert_eq!(answer["output"][0]["type"], "function_call");
    assert_eq!(answer["output"][0]["call_id"], "call_1");
    assert_eq!(answer["output"][0]["name"], "get_weather");
    assert_eq!(answer["output"][0]["arguments"], "{\"city\":\"Paris\"}");
    let seen = &compat.recorded()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.body["model"], "compat-real");
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "system", "content": "Be brief."},
               {"role": "user", "content": "weather in Paris?"}])
    );
    assert_eq!(seen.body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(seen.body["max_tokens"], 64);
    assert_eq!(seen.body["response_format"]["type"], "json_schema");
    let event = plane.stored("translated-json").await;
    billed_as_told(&event, &answer["usage"]);
    assert_eq!(
        (event.tally.prompt_tokens, event.tally.completion_tokens),
        (7, 3)
    );

    let response = send(&plane, "translated-stream", &hello("compat", true)).await;
    assert_eq!(response.status(), 200);
    let events = events(response).await;
    assert_eq!(events.first().unwrap().0, "response.created");
    assert_eq!(events.last().unwrap().0, "response.completed");
    assert_eq!(text_of(&events), "Hello from upstream");
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "{data}");
    }
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["model"], "compat");
    assert_eq!(
        completed["output"][0]["content"][0]["text"],
        "Hello from upstream"
    );
    let seen = &compat.recorded()[1];
    assert_eq!(seen.body["stream_options"]["include_usage"], true);
    let event = plane.stored("translated-stream").await;
    billed_as_told(&event, &completed["usage"]);
    assert!(event.streamed);
}

#[tokio::test]
async fn state_on_a_translated_route_is_a_400_naming_the_field() {
    let (native, compat) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&native, &compat).await;
    for (field, value) in [
        ("previous_response_id", json!("resp_1")),
        ("store", json!(true)),
    ] {
        let mut body = hello("compat", false);
        body[field] = value;
        let response = send(&plane, &format!("stateful-{field}"), &body).await;
        assert_eq!(response.status(), 400, "{field}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert_eq!(body["error"]["param"], field, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    assert_eq!(compat.hits(), 0, "nothing was sent upstream");
    let event = plane.stored("stateful-store").await;
    assert_eq!(event.status, Ending::Rejected);
    assert_eq!(event.tally.total_tokens, 0);
}

#[tokio::test]
async fn max_output_tokens_is_the_output_cap() {
    let (native, compat) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&native, &compat).await;
    let mut body = hello("gpt", false);
    body["max_output_tokens"] = json!(1u64 << 30);
    let response = send(&plane, "too-long", &body).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "max_output_tokens", "{body}");
    assert_eq!(native.hits(), 0);
}

#[tokio::test]
async fn a_quota_refusal_is_openais_429() {
    let (native, compat) = (Upstream::healthy().await, Upstream::healthy().await);
    let plane = plane(&native, &compat).await;
    plane
        .app
        .put_user_quota("acme", "jane", json!({"requests_per_minute": 1}))
        .await;
    assert_eq!(send(&plane, "q1", &hello("gpt", false)).await.status(), 200);
    let refused = send(&plane, "q2", &hello("gpt", true)).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(native.hits(), 1);
}

#[tokio::test]
async fn a_client_leaving_a_responses_stream_is_billed() {
    let slow = Step::Slow(Duration::from_millis(300));
    let (native, compat) = (
        Upstream::always(slow.clone()).await,
        Upstream::always(slow).await,
    );
    let plane = plane(&native, &compat).await;
    for (model, upstream) in [("gpt", &native), ("compat", &compat)] {
        let id = format!("leaver-{model}");
        let response = send(&plane, &id, &hello(model, true)).await;
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let mut received = String::new();
        while !received.contains("Hello") {
            let chunk = stream.next().await.unwrap().unwrap();
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
        drop(stream);
        let event = plane.stored(&id).await;
        assert_eq!(event.status, Ending::ClientDisconnected, "{model}");
        assert!(
            event.tally.prompt_tokens >= 1,
            "the prompt is billed: {event:?}"
        );
        assert!(
            event.tally.completion_tokens >= 1,
            "what it got is billed: {event:?}"
        );
        assert!(event.estimated, "{event:?}");
        assert!(upstream.wait_for_disconnect(Duration::from_secs(5)).await);
    }
}

#[tokio::test]
async fn a_stream_broken_midway_ends_with_a_responses_error_event() {
    let native = Upstream::always(Step::DieAfter(2)).await;
    let compat = Upstream::healthy().await;
    let plane = plane(&native, &compat).await;
    let response = send(&plane, "broken", &hello("gpt", true)).await;
    assert_eq!(response.status(), 200);
    let events = events(response).await;
    let (name, error) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "upstream_error");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        error["sequence_number"],
        events.len() - 1,
        "numbered after the events relayed"
    );
    assert_eq!(text_of(&events), "Hello from");
    let event = plane.stored("broken").await;
    assert_eq!(event.status, Ending::UpstreamError);
}
