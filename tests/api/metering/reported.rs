//! What each upstream reported is billed as reported, and only what it left out is estimated:
//! cache writes at their own price, counts reported before a stream broke, Ollama's missing or
//! cached prompt counts, embeddings without usage.

use serde_json::{Value, json};
use tollgate::metering::{Ending, UsageEvent, tokenizer};
use tollgate_testkit::{Step, Usage, Usages};

use super::gateway::{OLLAMA, REPORTED, chat, gateway, reporting, stored, usage_seen};

/// One provider of `kind` at `base`, and a model `m` on it with `price` (TOML inline table).
fn one_model(kind: &str, base: &str, price: &str) -> String {
    format!(
        r#"
        [[providers]]
        name = "up"
        kind = "{kind}"
        base_url = "{base}"
        [[models]]
        name = "m"
        targets = [{{ provider = "up", model = "up-model" }}]
        price = {price}
        "#
    )
}

fn hello(stream: bool) -> Value {
    json!({
        "model": "m",
        "messages": [{"role": "user", "content": "Say hello to me, please"}],
        "stream": stream,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
    })
}

/// What an event was billed: prompt, cached and completion tokens, cost in micro-dollars, and
/// whether any count was estimated.
fn billed(event: &UsageEvent) -> (i64, i64, i64, i64, bool) {
    (
        event.tally.prompt_tokens,
        event.tally.cached_tokens,
        event.tally.completion_tokens,
        event.tally.cost_micro_usd,
        event.estimated,
    )
}

/// Anthropic's cache writes (2 of the mock's 27 prompt tokens) cost `cache_write_per_mtok`:
/// 21 input × 3 + 4 cache reads × 0.30 + 2 cache writes × 3.75 + 7 output × 15
/// = 63 + 1.2 + 7.5 + 105 = 176.7 micro-dollars → 177 (as plain input they made it 175).
#[tokio::test]
async fn anthropic_cache_writes_cost_the_cache_write_price() {
    let base = reporting(REPORTED, Step::Answer).await.root_url();
    let price = "{ input_per_mtok = 3.0, output_per_mtok = 15.0, cached_input_per_mtok = 0.30, \
                 cache_write_per_mtok = 3.75 }";
    let (app, store, key) = gateway(&one_model("anthropic", &base, price)).await;
    for stream in [false, true] {
        let id = format!("cache-write-{stream}");
        let response = chat(&app, &key, &id, &hello(stream)).await;
        assert_eq!(response.status(), 200);
        usage_seen(response, stream).await;
        let event = stored(&store, &id).await;
        let case = format!("stream={stream}: {event:?}");
        assert_eq!(billed(&event), (27, 4, 7, 177, false), "{case}");
    }
}

/// A stream cut after its first text ("Hello", one token) and before the final usage keeps
/// the prompt's counts the upstream sent first, with their cached split, and estimates only
/// the completion delivered.
#[tokio::test]
async fn a_broken_stream_keeps_the_prompt_counts_already_reported() {
    // Every stream dies after its first piece of text.
    let base = reporting(REPORTED, Step::DieAfter(1)).await.root_url();
    let cases = [
        // message_start: 21 input + 4 cache reads + 2 cache writes. At 3 / 15 USD/Mtok, reads
        // 0.30, writes 3.75: 63 + 1.2 + 7.5 + 1 × 15 = 86.7 micro-dollars → 87.
        (
            "anthropic",
            "{ input_per_mtok = 3.0, output_per_mtok = 15.0, cached_input_per_mtok = 0.30, \
             cache_write_per_mtok = 3.75 }",
            (27, 4),
            87,
        ),
        // The first chunk's usageMetadata: 11 prompt tokens, 3 of them cached. At 2 / 10
        // USD/Mtok, cached 0.50: 8 × 2 + 3 × 0.5 + 1 × 10 = 27.5 micro-dollars → 28.
        (
            "gemini",
            "{ input_per_mtok = 2.0, output_per_mtok = 10.0, cached_input_per_mtok = 0.50 }",
            (11, 3),
            28,
        ),
    ];
    for (kind, price, (prompt, cached), cost) in cases {
        let toml = one_model(kind, &base, price);
        let (app, store, key) = gateway(&toml).await;
        let id = format!("broken-{kind}");
        let response = chat(&app, &key, &id, &hello(true)).await;
        assert_eq!(response.status(), 200);
        let (_, content) = usage_seen(response, true).await;
        assert_eq!(content, "Hello");
        let event = stored(&store, &id).await;
        let case = format!("{kind}: {event:?}");
        assert_eq!(event.status, Ending::UpstreamError, "{case}");
        // The completion is an estimate.
        assert_eq!(billed(&event), (prompt, cached, 1, cost, true), "{case}");
        assert_eq!(event.tally.total_tokens, prompt + 1, "{case}");
    }
}

/// An Ollama that leaves `prompt_eval_count` out: the prompt is estimated (and the event says
/// so), the reported `eval_count` (6) is kept. At 1 / 2 USD/Mtok: prompt × 1 + 6 × 2.
#[tokio::test]
async fn ollama_without_a_prompt_count_has_its_prompt_estimated() {
    // Ollama leaves a zero count out.
    let old = Usages {
        ollama: Usage {
            prompt: 0,
            ..OLLAMA
        },
        ..REPORTED
    };
    let base = reporting(old, Step::Answer).await.root_url();
    let price = "{ input_per_mtok = 1.0, output_per_mtok = 2.0 }";
    let (app, store, key) = gateway(&one_model("ollama", &base, price)).await;
    for stream in [false, true] {
        let id = format!("ollama-old-{stream}");
        let response = chat(&app, &key, &id, &hello(stream)).await;
        assert_eq!(response.status(), 200);
        usage_seen(response, stream).await;
        let event = stored(&store, &id).await;
        let case = format!("stream={stream}: {event:?}");
        let request = serde_json::from_value(hello(stream)).unwrap();
        let prompt = tokenizer::estimate_prompt(&request) as i64;
        assert_eq!(prompt, 14, "the tokenizer's count of this prompt");
        assert_eq!(billed(&event), (14, 0, 6, 14 + 12, true), "{case}");
        assert_eq!(event.tally.total_tokens, 20, "{case}");
    }
}

/// Ollama's `prompt_eval_cached_count` (8 of the 13 prompt tokens) is cached input:
/// 5 × 1 + 8 × 0.25 + 6 × 2 = 19 micro-dollars (25 when charged as plain input).
#[tokio::test]
async fn ollama_cached_prompt_tokens_cost_the_cached_price() {
    let cached = Usages {
        ollama: OLLAMA.cached(8),
        ..REPORTED
    };
    let base = reporting(cached, Step::Answer).await.root_url();
    let price = "{ input_per_mtok = 1.0, output_per_mtok = 2.0, cached_input_per_mtok = 0.25 }";
    let (app, store, key) = gateway(&one_model("ollama", &base, price)).await;
    for stream in [false, true] {
        let id = format!("ollama-cached-{stream}");
        let response = chat(&app, &key, &id, &hello(stream)).await;
        assert_eq!(response.status(), 200);
        let (seen, _) = usage_seen(response, stream).await;
        let event = stored(&store, &id).await;
        let case = format!("stream={stream}: {event:?}");
        assert_eq!(billed(&event), (13, 8, 6, 19, false), "{case}");
        assert_eq!(seen["prompt_tokens_details"]["cached_tokens"], 8, "{case}");
    }
}

/// Gemini reports no usage for embeddings: the answer carries the estimate the event was
/// billed, marked `"estimated": true` like the event. At 1 USD/Mtok a token costs 1 µ$.
#[tokio::test]
async fn gemini_embeddings_answer_with_the_estimated_usage() {
    let base = reporting(REPORTED, Step::Answer).await.root_url();
    let price = "{ input_per_mtok = 1.0, output_per_mtok = 0.0 }";
    let (app, store, key) = gateway(&one_model("gemini", &base, price)).await;
    let input = json!(["Hello there", "General Kenobi, you are a bold one"]);
    let response = app
        .client
        .post(app.url("/v1/embeddings"))
        .bearer_auth(&key)
        .header("x-request-id", "gemini-embed")
        .json(&json!({"model": "m", "input": input}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let prompt = tokenizer::estimate_input("m", &input);
    assert_eq!(prompt, 11, "the tokenizer's count of the two inputs");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 11, "total_tokens": 11, "estimated": true})
    );
    assert_eq!(body["data"][1]["embedding"], json!([0.25, -0.5]));
    let event = stored(&store, "gemini-embed").await;
    assert!(event.estimated, "{event:?}");
    assert_eq!(
        (event.tally.prompt_tokens, event.tally.total_tokens),
        (11, 11)
    );
    assert_eq!(event.tally.cost_micro_usd, 11);
}
