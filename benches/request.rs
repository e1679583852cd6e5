//! The per-request costs of reading a chat request: parsing the body the way every handler
//! does (field paths in errors), and the tokenizer's prompt estimate that admission reserves
//! when a token or cost limit applies — for a typical request, and for a long chat the first
//! time its history is seen and the next time (long texts' counts are remembered).
//!
//! `cargo bench --bench request`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::json;
use tollgate::api::json;
use tollgate::metering::tokenizer;
use tollgate_providers::ChatRequest;

/// A typical SDK request: a system prompt, a short conversation, a tool, sampling options.
const BODY: &str = r#"{
  "model": "gpt-4o-mini",
  "messages": [
    {"role": "system", "content": "You are a concise assistant for a travel company. Answer in two sentences at most and never invent prices."},
    {"role": "user", "content": "Which month is best for hiking in the Dolomites?"},
    {"role": "assistant", "content": "Late June to mid-September: the huts are open and the high trails are free of snow."},
    {"role": "user", "content": "And if I want fewer people on the trails?"}
  ],
  "tools": [{"type": "function", "function": {"name": "search_huts", "description": "Find mountain huts with free beds", "parameters": {"type": "object", "properties": {"region": {"type": "string"}, "date": {"type": "string"}}, "required": ["region"]}}}],
  "temperature": 0.3,
  "max_tokens": 200,
  "user": "customer-4711"
}"#;

fn request(c: &mut Criterion) {
    c.bench_function("request parse: chat body -> ChatRequest", |b| {
        b.iter(|| json::parse::<ChatRequest>(BODY.as_bytes()).unwrap())
    });
    let request: ChatRequest = json::parse(BODY.as_bytes()).unwrap();
    tokenizer::load_for(["gpt-4o-mini"]);
    c.bench_function("prompt estimate (tiktoken) of that request", |b| {
        b.iter(|| tokenizer::estimate_prompt(&request))
    });

    // Ten turns of ~1 KB each (~2,500 tokens in all).
    let chat = |tag: u64| -> ChatRequest {
        let turns: Vec<_> = (0..10)
            .map(|turn| {
                let text = format!("Turn {turn} of chat {tag}: ")
                    + &"the huts above Cortina open in late June and close in September; "
                        .repeat(16);
                json!({"role": if turn % 2 == 0 { "user" } else { "assistant" }, "content": text})
            })
            .collect();
        serde_json::from_value(json!({"model": "gpt-4o-mini", "messages": turns})).unwrap()
    };
    let mut fresh = 0;
    c.bench_function(
        "prompt estimate of a 10-turn chat, history never seen",
        |b| {
            b.iter_batched(
                || {
                    fresh += 1;
                    chat(fresh)
                },
                |request| tokenizer::estimate_prompt(&request),
                BatchSize::SmallInput,
            )
        },
    );
    let seen = chat(0);
    tokenizer::estimate_prompt(&seen);
    c.bench_function(
        "prompt estimate of a 10-turn chat, history seen before",
        |b| b.iter(|| tokenizer::estimate_prompt(&seen)),
    );
}

criterion_group!(benches, request);
criterion_main!(benches);
