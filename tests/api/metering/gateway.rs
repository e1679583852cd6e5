//! Metering through the gateway: what each provider reported is what gets stored; quotas hold
//! under concurrency; a client that leaves is billed for what it got; a restart resets nothing.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tollgate::metering::{Ending, UsageEvent, tokenizer};
use tollgate::store::Store;
use tollgate_testkit::{Step, Upstream, Usage, Usages};

use crate::dataplane::leave_after;
use crate::support::{Backend, TestApp};

/// What the metering tests' upstream reports for each kind of provider, normalised the way
/// tollgate stores it.
pub(crate) const OPENAI: Usage = Usage::new(9, 4).cached(2);
/// Anthropic: input 21 + cache read 4 + cache creation 2 = 27 prompt tokens, 4 of them cached.
pub(crate) const ANTHROPIC: Usage = Usage::new(27, 7).cached(4).cache_write(2);
pub(crate) const GEMINI: Usage = Usage::new(11, 5).cached(3);
pub(crate) const OLLAMA: Usage = Usage::new(13, 6);
pub(crate) const REPORTED: Usages = Usages {
    chat: Some(OPENAI),
    messages: ANTHROPIC,
    gemini: GEMINI,
    ollama: OLLAMA,
    ..Usages::DEFAULT
};

/// An upstream for every kind of provider (OpenAI and Azure at its `base_url`, the others at
/// its `root_url()`) that answers with `step`, reporting `usage`.
pub(crate) async fn reporting(usage: Usages, step: Step) -> Upstream {
    Upstream::scripted(usage, Vec::new(), step).await
}

/// A gateway whose writer flushes fast, with the given providers and models (TOML).
pub(crate) async fn gateway(models_toml: &str) -> (TestApp, Store, String) {
    let upstreams = tollgate::Config::from_toml(models_toml).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.providers = upstreams.providers;
        config.models = upstreams.models;
        config.metering.flush_interval = Duration::from_millis(20);
    })
    .await;
    let store = Store::connect(&app.config.database.url, 2).await.unwrap();
    let key = app.api_key("acme", "jane").await;
    (app, store, key)
}

/// The event of `request_id`, once the writer has stored it.
pub(crate) async fn stored(store: &Store, request_id: &str) -> UsageEvent {
    for _ in 0..250 {
        if let Some(event) = store.usage_event(request_id).await.unwrap() {
            return event;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no usage event for {request_id}");
}

pub(crate) async fn chat(
    app: &TestApp,
    key: &str,
    request_id: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-request-id", request_id)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The usage a client was shown: the JSON answer's, or a stream's usage chunk.
pub(crate) async fn usage_seen(response: reqwest::Response, stream: bool) -> (Value, String) {
    let text = response.text().await.unwrap();
    if !stream {
        let body: Value = serde_json::from_str(&text).unwrap();
        let content = body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return (body["usage"].clone(), content);
    }
    let mut usage = Value::Null;
    let mut content = String::new();
    for data in text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        if !chunk["usage"].is_null() {
            usage = chunk["usage"].clone();
        }
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            content.push_str(text);
        }
    }
    (usage, content)
}

#[tokio::test]
async fn stored_usage_equals_what_each_provider_reported() {
    let base = reporting(REPORTED, Step::Answer).await.root_url();
    // An OpenAI upstream that reports no usage at all.
    let bare = reporting(
        Usages {
            chat: None,
            ..REPORTED
        },
        Step::Answer,
    )
    .await
    .base_url;
    let (app, store, key) = gateway(&format!(
        r#"
        [[providers]]
        name = "openai"
        kind = "openai"
        base_url = "{base}/v1"
        [[providers]]
        name = "azure"
        kind = "azure"
        base_url = "{base}"
        [[providers]]
        name = "anthropic"
        kind = "anthropic"
        base_url = "{base}"
        [[providers]]
        name = "gemini"
        kind = "gemini"
        base_url = "{base}"
        [[providers]]
        name = "ollama"
        kind = "ollama"
        base_url = "{base}"
        [[providers]]
        name = "bare"
        kind = "openai"
        base_url = "{bare}"
        [[models]]
        name = "m-openai"
        targets = [{{ provider = "openai", model = "gpt-x" }}]
        [[models]]
        name = "m-azure"
        targets = [{{ provider = "azure", model = "deployment-x" }}]
        [[models]]
        name = "m-anthropic"
        targets = [{{ provider = "anthropic", model = "claude-x" }}]
        [[models]]
        name = "m-gemini"
        targets = [{{ provider = "gemini", model = "gemini-x" }}]
        [[models]]
        name = "m-ollama"
        targets = [{{ provider = "ollama", model = "llama-x" }}]
        [[models]]
        name = "m-bare"
        targets = [{{ provider = "bare", model = "plain-x" }}]
        "#
    ))
    .await;

    let cases = [
        ("m-openai", Some(OPENAI)),
        ("m-azure", Some(OPENAI)),
        ("m-anthropic", Some(ANTHROPIC)),
        ("m-gemini", Some(GEMINI)),
        ("m-ollama", Some(OLLAMA)),
        ("m-bare", None),
    ];
    for (model, expected) in cases {
        for stream in [false, true] {
            let body = json!({
                "model": model,
                "messages": [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "Say hello to me, please"}],
                "stream": stream,
                "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
            });
            let id = format!("{model}-{stream}-{}", uuid::Uuid::new_v4());
            let response = chat(&app, &key, &id, &body).await;
            assert_eq!(response.status(), 200, "{model} stream={stream}");
            let (seen, content) = usage_seen(response, stream).await;
            let event = stored(&store, &id).await;
            let case = format!("{model} stream={stream}: {event:?}");
            assert_eq!(event.status, Ending::Ok, "{case}");
            assert_eq!(event.streamed, stream, "{case}");
            assert_eq!(event.tenant_id, "acme");
            assert_eq!(event.subject, "jane");
            match expected {
                Some(Usage {
                    prompt,
                    completion,
                    cached,
                    ..
                }) => {
                    assert!(!event.estimated, "{case}");
                    assert_eq!(event.tally.prompt_tokens, prompt as i64, "{case}");
                    assert_eq!(event.tally.completion_tokens, completion as i64, "{case}");
                    assert_eq!(event.tally.cached_tokens, cached as i64, "{case}");
                    assert_eq!(
                        event.tally.total_tokens,
                        (prompt + completion) as i64,
                        "{case}"
                    );
                    assert_eq!(
                        seen["prompt_tokens"], prompt,
                        "the client saw the same: {case}"
                    );
                    assert_eq!(seen["completion_tokens"], completion, "{case}");
                }
                None => {
                    assert!(event.estimated, "no usage reported: estimated ({case})");
                    let request: tollgate_providers::ChatRequest =
                        serde_json::from_value(body.clone()).unwrap();
                    assert_eq!(
                        event.tally.prompt_tokens as u64,
                        tokenizer::estimate_prompt(&request),
                        "{case}"
                    );
                    assert_eq!(
                        event.tally.completion_tokens as u64,
                        tokenizer::count_text(model, &content),
                        "{case}"
                    );
                    assert!(event.tally.completion_tokens > 0);
                }
            }
        }
    }
}

pub(crate) const MOCK: &str = r#"
    [[providers]]
    name = "mock"
    kind = "mock"
    [[models]]
    name = "m"
    targets = [{ provider = "mock", model = "mock-1" }]
    price = { input_per_mtok = 2.5, output_per_mtok = 10.0 }
"#;

fn ask(max_tokens: Option<u64>) -> Value {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "Tell me about the weather in spring"}]});
    if let Some(max) = max_tokens {
        body["max_tokens"] = json!(max);
    }
    body
}

/// Fires `n` requests at once as `keys` (round robin); returns how many were admitted.
async fn burst(app: &TestApp, keys: &[String], n: usize, body: &Value) -> usize {
    let requests = (0..n).map(|i| {
        let key = keys[i % keys.len()].clone();
        async move {
            let response = app
                .client
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&key)
                .json(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            if status == 429 {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "quota_exceeded");
            }
            assert!(status == 200 || status == 429, "{status}");
            status == 200
        }
    });
    futures_util::future::join_all(requests)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}

async fn billed(store: &Store, admitted: usize) -> i64 {
    for _ in 0..250 {
        if store.usage_count().await.unwrap() >= admitted as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store.usage_count().await.unwrap(),
        admitted as i64,
        "one event per admitted request"
    );
    store.usage_event_sums().await.unwrap().total_tokens
}

/// The most one request of `body` can reserve: the prompt estimate with its margin, plus the
/// completion reservation.
fn reservation(body: &Value, default_max: u64) -> u64 {
    let request: tollgate_providers::ChatRequest = serde_json::from_value(body.clone()).unwrap();
    let prompt = tokenizer::estimate_prompt(&request);
    prompt + (prompt * 20).div_ceil(100) + request.max_output_tokens().unwrap_or(default_max)
}

#[tokio::test]
async fn concurrent_requests_never_overshoot_a_user_limit() {
    let (app, store, key) = gateway(MOCK).await;
    let limit = 600;
    app.admin(Method::PUT, "/tenants/acme/users/jane/quota")
        .json(&json!({"tokens_per_day": limit}))
        .send()
        .await
        .unwrap();
    let body = ask(Some(5));
    let admitted = burst(&app, &[key], 200, &body).await;
    let billed = billed(&store, admitted).await;
    assert!(billed <= limit, "billed {billed} > limit {limit}");
    let per_request = reservation(&body, 1024) as i64;
    assert!(
        admitted as i64 >= limit / per_request,
        "the requests that fit are admitted: {admitted} admitted, {per_request} reserved each"
    );
}

#[tokio::test]
async fn without_max_tokens_the_default_reservation_bounds_the_overshoot() {
    let (app, store, key) = gateway(MOCK).await;
    let limit = 5000;
    app.admin(Method::PUT, "/tenants/acme/users/jane/quota")
        .json(&json!({"tokens_per_day": limit}))
        .send()
        .await
        .unwrap();
    let admitted = burst(&app, &[key], 200, &ask(None)).await;
    let billed = billed(&store, admitted).await;
    // Each reservation holds `quota.default_max_tokens` (1024) for the completion; the mock's
    // answers are shorter, so the limit holds outright (the documented bound is one default
    // reservation per request in flight).
    assert!(billed <= limit, "billed {billed} > limit {limit}");
    assert!(admitted >= 4, "{admitted}");
}

#[tokio::test]
async fn a_tenant_limit_holds_across_its_users() {
    let (app, store, jane) = gateway(MOCK).await;
    let mut keys = vec![jane];
    for user in ["ann", "bob", "cyd"] {
        keys.push(app.user_key("acme", user).await);
    }
    let limit = 800;
    app.admin(Method::PUT, "/tenants/acme/quota")
        .json(&json!({"tokens_per_month": limit}))
        .send()
        .await
        .unwrap();
    let admitted = burst(&app, &keys, 200, &ask(Some(8))).await;
    let billed = billed(&store, admitted).await;
    assert!(billed <= limit, "billed {billed} > tenant limit {limit}");
    assert!(admitted > 0);
}

#[tokio::test]
async fn a_user_at_the_limit_is_still_refused_after_a_restart() {
    let (mut app, store, key) = gateway(MOCK).await;
    app.admin(Method::PUT, "/tenants/acme/users/jane/quota")
        .json(&json!({"tokens_per_day": 60, "cost_usd_per_month": 1.0}))
        .send()
        .await
        .unwrap();
    let mut admitted = 0;
    while burst(&app, std::slice::from_ref(&key), 1, &ask(Some(5))).await == 1 {
        admitted += 1;
    }
    let used = billed(&store, admitted).await;
    assert!(used > 0);
    app.restart().await;
    let response = chat(&app, &key, "after-restart", &ask(Some(5))).await;
    assert_eq!(
        response.status(),
        429,
        "the day's count survived the restart"
    );
    assert!(response.headers().contains_key("retry-after"));
    let (_, quota) = crate::support::json(
        app.admin(Method::GET, "/tenants/acme/users/jane/quota")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let day = quota["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["limit"] == "tokens_per_day")
        .unwrap();
    assert_eq!(day["used"], used, "{quota}");
}

#[tokio::test]
async fn per_minute_limits_answer_rate_limited_with_headers() {
    let (app, _store, key) = gateway(MOCK).await;
    app.admin(Method::PUT, "/tenants/acme/users/jane/quota")
        .json(&json!({"requests_per_minute": 3}))
        .send()
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for i in 0..5 {
        let response = chat(&app, &key, &format!("rpm-{i}"), &ask(Some(3))).await;
        let status = response.status().as_u16();
        if status == 200 {
            assert_eq!(response.headers()["x-ratelimit-limit-requests"], "3");
            assert!(
                response
                    .headers()
                    .contains_key("x-ratelimit-remaining-requests")
            );
        } else {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry));
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
        statuses.push(status);
    }
    // Three fit in a calendar minute (unless the test straddled a minute boundary).
    assert!(
        statuses.iter().filter(|s| **s == 200).count() >= 3,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429) || statuses.iter().filter(|s| **s == 200).count() <= 6);
}

/// A client may choose its `x-request-id`, and reuse it: every request is still billed.
#[tokio::test]
async fn two_requests_with_one_request_id_are_both_billed() {
    let (app, store, key) = gateway(MOCK).await;
    for _ in 0..2 {
        let response = chat(&app, &key, "my-fixed-id", &ask(Some(5))).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-request-id"], "my-fixed-id");
    }
    billed(&store, 2).await;
    let rollup = store.usage_rollup_sums().await.unwrap();
    assert_eq!(rollup.requests, 2);
    assert_eq!(rollup, store.usage_event_sums().await.unwrap());
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_is_billed_for_what_it_got() {
    let upstream = Upstream::always(Step::Slow(Duration::from_millis(400))).await;
    let (app, store, key) = gateway(&format!(
        r#"
        [[providers]]
        name = "up"
        kind = "openai"
        base_url = "{}"
        [[models]]
        name = "m"
        targets = [{{ provider = "up", model = "real-m" }}]
        "#,
        upstream.base_url
    ))
    .await;
    let body = json!({"model": "m", "stream": true,
                      "messages": [{"role": "user", "content": "Count slowly for me"}]});
    let response = chat(&app, &key, "leaver", &body).await;
    assert_eq!(response.status(), 200);
    leave_after(response, "Hello").await;
    let event = stored(&store, "leaver").await;
    assert_eq!(event.status, Ending::ClientDisconnected);
    assert!(event.estimated, "the upstream never got to report usage");
    let request: tollgate_providers::ChatRequest = serde_json::from_value(body).unwrap();
    assert_eq!(
        event.tally.prompt_tokens as u64,
        tokenizer::estimate_prompt(&request),
        "the prompt is billed"
    );
    let got = tokenizer::count_text("m", "Hello");
    assert!(
        event.tally.completion_tokens as u64 >= got,
        "at least what the client read: {event:?}"
    );
    let all = tokenizer::count_text("m", "Hello from upstream");
    assert!(
        event.tally.completion_tokens as u64 <= all,
        "no more than was generated: {event:?}"
    );
    assert!(upstream.wait_for_disconnect(Duration::from_secs(5)).await);
}

/// A request is stored as it ended: one that timed out says `upstream_timeout`, as its log line
/// and its metrics do.
#[tokio::test]
async fn a_request_that_timed_out_is_stored_as_a_timeout() {
    let upstream = Upstream::always(Step::Delay(Duration::from_secs(3))).await;
    let (app, store, key) = gateway(&format!(
        r#"
        [[providers]]
        name = "up"
        kind = "openai"
        base_url = "{}"
        first_byte_timeout = "200ms"
        [[models]]
        name = "m"
        targets = [{{ provider = "up", model = "real-m" }}]
        "#,
        upstream.base_url
    ))
    .await;
    let response = chat(&app, &key, "slow", &ask(Some(5))).await;
    assert_eq!(response.status(), 504);
    let event = stored(&store, "slow").await;
    assert_eq!(
        (event.status, event.http_status),
        (Ending::UpstreamTimeout, 504)
    );
    assert_eq!(
        event.tally.total_tokens, 0,
        "nothing answered, nothing billed"
    );
}
