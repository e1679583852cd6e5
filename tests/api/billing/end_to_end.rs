//! Reconciliation end to end: a randomised workload through the gateway — tenants, users,
//! models, providers, streams, disconnects, failures — then every export format adds up to the
//! usage events, which add up to the usage the clients were shown, to the token and the
//! micro-dollar.

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tollgate::store::Store;
use tollgate_testkit::{Step, Upstream};

use super::{Rng, export, export_sums};
use crate::metering::gateway::{REPORTED, gateway, reporting, usage_seen};

/// Price of every model here, in USD per million tokens.
const INPUT: f64 = 3.0;
const OUTPUT: f64 = 15.0;

#[tokio::test]
async fn exports_equal_events_equal_what_the_clients_received() {
    let base = reporting(REPORTED, Step::Answer).await.root_url();
    let failing = Upstream::always(Step::Status(500, None)).await;
    let slow = Upstream::always(Step::Slow(std::time::Duration::from_millis(300))).await;
    let price = format!("price = {{ input_per_mtok = {INPUT}, output_per_mtok = {OUTPUT} }}");
    let (app, store, jane) = gateway(&format!(
        r#"
        [routing]
        max_attempts = 1
        [[providers]]
        name = "mock"
        kind = "mock"
        [[providers]]
        name = "anthropic"
        kind = "anthropic"
        base_url = "{base}"
        [[providers]]
        name = "broken"
        kind = "openai"
        base_url = "{}"
        [[models]]
        name = "m-mock"
        targets = [{{ provider = "mock", model = "mock-1" }}]
        {price}
        [[models]]
        name = "m-claude"
        targets = [{{ provider = "anthropic", model = "claude-x" }}]
        {price}
        [[models]]
        name = "m-broken"
        targets = [{{ provider = "broken", model = "x" }}]
        {price}
        [[providers]]
        name = "slow"
        kind = "openai"
        base_url = "{}"
        [[models]]
        name = "m-slow"
        targets = [{{ provider = "slow", model = "y" }}]
        {price}
        "#,
        failing.base_url, slow.base_url
    ))
    .await;
    let bob = app.user_key("acme", "bob").await;
    app.create_tenant("globex").await;
    let ann = app.user_key("globex", "ann").await;
    let keys = [jane, bob, ann];

    let mut rng = Rng::new(7);
    let mut seen_tokens = 0i64;
    let mut seen_cost = 0i64;
    let mut requests = 0i64;
    for i in 0..60 {
        let key = &keys[rng.below(3) as usize];
        let model = ["m-mock", "m-claude", "m-broken", "m-slow"][rng.below(4) as usize];
        let stream = rng.below(2) == 1;
        // A slow stream's client always leaves after the first chunk.
        let leave = stream && model == "m-slow";
        let body = json!({
            "model": model, "stream": stream, "max_tokens": 1 + rng.below(20),
            "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
            "messages": [{"role": "user", "content": format!("request {i}: tell me a story about the number {}", rng.below(1000))}],
        });
        let response = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        requests += 1;
        if model == "m-broken" {
            // 502 while its upstream fails, 503 once its circuit breaker keeps it out.
            assert!(
                matches!(response.status().as_u16(), 502 | 503),
                "{}",
                response.status()
            );
            continue;
        }
        assert_eq!(response.status(), 200);
        if leave {
            let mut chunks = response.bytes_stream();
            let _ = chunks.next().await;
            continue; // billed from the tokenizer: not something the client was shown
        }
        let (usage, _) = usage_seen(response, stream).await;
        let prompt = usage["prompt_tokens"].as_i64().unwrap();
        let completion = usage["completion_tokens"].as_i64().unwrap();
        seen_tokens += usage["total_tokens"].as_i64().unwrap();
        seen_cost += cost(prompt, completion);
    }

    // Every request is an event, once the writer has caught up.
    for _ in 0..250 {
        if store.usage_count().await.unwrap() == requests {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(store.usage_count().await.unwrap(), requests);
    let events = store.usage_event_sums().await.unwrap();
    let disconnected = disconnected_sums(&store).await;
    assert!(
        disconnected.0 > 0,
        "the workload had a client that left mid-stream"
    );
    assert_eq!(
        events.total_tokens - disconnected.0,
        seen_tokens,
        "events (less the disconnected, whose usage no client saw) = what the clients saw"
    );
    assert_eq!(events.cost_micro_usd - disconnected.1, seen_cost);

    let today = tollgate::quota::Window::Day.start(tollgate::clock::Timestamp::now());
    let from = today.to_rfc3339();
    let to = tollgate::clock::Timestamp(today.millis() + 86_400_000).to_rfc3339();
    for format in ["csv", "jsonl", "focus"] {
        for group_by in ["tenant,user,model,day", "tenant", "model,provider,hour"] {
            let (status, body) = export(
                &app,
                &format!("from={from}&to={to}&format={format}&group_by={group_by}"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let sums = export_sums(format, &body);
            assert_eq!(sums.requests, requests, "{format} {group_by}");
            assert_eq!(
                sums.total_tokens, events.total_tokens,
                "{format} {group_by}"
            );
            assert_eq!(
                sums.cost_micro_usd, events.cost_micro_usd,
                "{format} {group_by}"
            );
        }
    }
    // A tenant's report adds up the same way.
    let (_, report) = crate::support::json(
        app.admin(
            Method::GET,
            &format!("/tenants/globex/usage?from={from}&to={to}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let (_, globex) = export(
        &app,
        &format!("from={from}&to={to}&format=jsonl&tenant=globex&group_by=tenant"),
    )
    .await;
    assert_eq!(
        report["totals"]["total_tokens"].as_i64().unwrap_or(0),
        export_sums("jsonl", &globex).total_tokens
    );
}

/// The price of a request in micro-dollars, as tollgate computes it (pico-dollars per token,
/// rounded half up once per request).
fn cost(prompt: i64, completion: i64) -> i64 {
    let pico = prompt * (INPUT * 1e6) as i64 + completion * (OUTPUT * 1e6) as i64;
    (pico + 500_000) / 1_000_000
}

/// Tokens and cost of the events of clients that left mid-stream.
async fn disconnected_sums(store: &Store) -> (i64, i64) {
    let Some(pool) = store.sqlite() else {
        return (0, 0);
    };
    sqlx::query_as(
        "SELECT COALESCE(SUM(total_tokens), 0), COALESCE(SUM(cost_micro_usd), 0) \
         FROM usage_events WHERE status = 'client_disconnected'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}
