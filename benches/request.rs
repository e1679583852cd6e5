//! The per-request costs of reading a chat request: parsing the body the way every handler
//! does (field paths in errors), and the tokenizer's prompt estimate that admission reserves
//! when a token or cost limit applies.
//!
//! `cargo bench --bench request`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
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
    tokenizer::warm_for(["gpt-4o-mini"]);
    c.bench_function("prompt estimate (tiktoken) of that request", |b| {
        b.iter(|| tokenizer::estimate_prompt(&request))
    });
}

criterion_group!(benches, request);
criterion_main!(benches);
