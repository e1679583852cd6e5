//! The conformance cases. Each takes a provider kind and runs against that kind's mock upstream.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate_providers::{
    AnyProvider, ChatRequest, ChatStream, EmbeddingsRequest, Provider, ProviderError, ProviderKind,
    ProviderSettings, StreamEvent,
};

use tollgate_testkit::{Recorded, Reply, Stream, Then, Upstream};

use crate::fixtures::{self, Fixture, TEXT, TOOL, TOOL_ARGS, expected_usage};

pub const API_KEY: &str = "sk-test-4f9a1c77e2";
pub const UPSTREAM_MODEL: &str = "upstream-model";
/// What the client asked for; every answer must name it, never the upstream's model.
pub const CLIENT_MODEL: &str = "client-alias";

// === helpers ===

pub fn provider(
    kind: ProviderKind,
    base_url: &str,
    tweak: impl FnOnce(&mut ProviderSettings),
) -> AnyProvider {
    let mut settings = ProviderSettings::new("test", kind, base_url);
    settings.api_key = Some(API_KEY.into());
    settings.first_byte_timeout = Duration::from_secs(5);
    settings.idle_timeout = Duration::from_secs(5);
    tweak(&mut settings);
    AnyProvider::from_settings(settings).unwrap()
}

pub fn request(tools: bool) -> ChatRequest {
    let mut raw = json!({
        "model": CLIENT_MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"}
        ],
        "max_tokens": 64
    });
    if tools {
        raw["tools"] = json!([{"type": "function", "function": {
            "name": TOOL, "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    }
    serde_json::from_value(raw).unwrap()
}

fn ok_json(body: &str) -> Reply {
    Reply::body(200, body.to_owned())
}

fn streamed(fixture: &Fixture, frames: &[String], then: Then) -> Reply {
    Reply::Stream(Stream::new(fixture.content_type, frames.to_vec()).then(then))
}

pub async fn collect(stream: ChatStream) -> Vec<Result<StreamEvent, ProviderError>> {
    stream.collect().await
}

pub fn docs(events: &[StreamEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| serde_json::from_slice(&e.data).unwrap())
        .collect()
}

pub fn streamed_text(docs: &[Value]) -> String {
    docs.iter()
        .filter_map(|d| d["choices"][0]["delta"]["content"].as_str())
        .collect()
}

fn finish_reasons(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .filter_map(|d| d["choices"][0]["finish_reason"].as_str().map(str::to_owned))
        .collect()
}

/// The answer's message has `"refusal": null`, as OpenAI's has when nothing was refused.
pub fn assert_null_refusal(doc: &Value) {
    let message = doc["choices"][0]["message"].as_object().unwrap();
    assert_eq!(message.get("refusal"), Some(&Value::Null), "{doc}");
}

#[derive(Clone, Copy)]
enum Op {
    Chat,
    Stream,
    Embed,
}

fn expected_path(kind: ProviderKind, op: Op) -> String {
    let azure =
        |what: &str| format!("/openai/deployments/{UPSTREAM_MODEL}/{what}?api-version=2024-10-21");
    match (kind, op) {
        (ProviderKind::OpenAi, Op::Embed) => "/embeddings".into(),
        (ProviderKind::OpenAi, _) => "/chat/completions".into(),
        (ProviderKind::Azure, Op::Embed) => azure("embeddings"),
        (ProviderKind::Azure, _) => azure("chat/completions"),
        (ProviderKind::Anthropic, _) => "/v1/messages".into(),
        (ProviderKind::Gemini, Op::Chat) => {
            format!("/v1beta/models/{UPSTREAM_MODEL}:generateContent")
        }
        (ProviderKind::Gemini, Op::Stream) => {
            format!("/v1beta/models/{UPSTREAM_MODEL}:streamGenerateContent?alt=sse")
        }
        (ProviderKind::Gemini, Op::Embed) => {
            format!("/v1beta/models/{UPSTREAM_MODEL}:batchEmbedContents")
        }
        (ProviderKind::Ollama, Op::Embed) => "/api/embed".into(),
        (ProviderKind::Ollama, _) => "/api/chat".into(),
        (ProviderKind::Mock, _) => unreachable!(),
    }
}

/// The credential reached the upstream in that provider's header, and the upstream model (not the
/// client's alias) is what the upstream was asked for.
fn assert_sent_upstream(kind: ProviderKind, rec: &Recorded, op: Op) {
    let (name, value) = match kind {
        ProviderKind::OpenAi | ProviderKind::Ollama => {
            ("authorization", format!("Bearer {API_KEY}"))
        }
        ProviderKind::Azure => ("api-key", API_KEY.to_owned()),
        ProviderKind::Anthropic => ("x-api-key", API_KEY.to_owned()),
        ProviderKind::Gemini => ("x-goog-api-key", API_KEY.to_owned()),
        ProviderKind::Mock => unreachable!(),
    };
    assert_eq!(
        rec.headers.get(name).and_then(|v| v.to_str().ok()),
        Some(value.as_str()),
        "{name}"
    );
    if kind == ProviderKind::Anthropic {
        assert_eq!(rec.headers["anthropic-version"], "2023-06-01");
    }
    assert_eq!(rec.path_and_query(), expected_path(kind, op));
    match (kind, op) {
        (ProviderKind::Gemini, Op::Embed) => {
            assert_eq!(
                rec.body["requests"][0]["model"],
                format!("models/{UPSTREAM_MODEL}")
            );
        }
        (ProviderKind::Gemini, _) => assert!(rec.body.get("model").is_none()),
        _ => assert_eq!(rec.body["model"], UPSTREAM_MODEL),
    }
    assert!(!rec.body.to_string().contains(CLIENT_MODEL));
}

/// Where each wire format puts the name of the first declared tool.
fn upstream_tool_name(kind: ProviderKind, body: &Value) -> Option<&str> {
    match kind {
        ProviderKind::Anthropic => body["tools"][0]["name"].as_str(),
        ProviderKind::Gemini => body["tools"][0]["functionDeclarations"][0]["name"].as_str(),
        _ => body["tools"][0]["function"]["name"].as_str(),
    }
}

/// Splits frames into 7-byte pieces so that events straddle reads.
fn rechunk(frames: &[String]) -> Vec<String> {
    let all = frames.concat().into_bytes();
    all.chunks(7)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

fn ok_events(items: Vec<Result<StreamEvent, ProviderError>>) -> Vec<StreamEvent> {
    items.into_iter().map(|r| r.unwrap()).collect()
}

// === cases ===

pub async fn chat_text(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let upstream = Upstream::replying(ok_json(&fixture.chat)).await;
    let resp = provider(kind, &upstream.root_url(), |_| {})
        .chat(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap();
    assert_sent_upstream(kind, &upstream.request(), Op::Chat);
    // Built once for a plain-HTTP upstream: one `Host`, with the port.
    let hosts: Vec<_> = upstream
        .request()
        .headers
        .get_all("host")
        .iter()
        .cloned()
        .collect();
    assert_eq!(hosts, [upstream.addr().to_string()]);
    let doc: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(doc["object"], "chat.completion");
    assert_eq!(doc["model"], CLIENT_MODEL);
    assert_eq!(doc["choices"][0]["message"]["content"], TEXT);
    assert_null_refusal(&doc);
    assert_eq!(doc["choices"][0]["finish_reason"], "stop");
    assert_eq!(resp.usage, Some(expected_usage(kind)));
    assert_eq!(doc["usage"]["prompt_tokens"], 12);
    if matches!(kind, ProviderKind::OpenAi | ProviderKind::Azure) {
        let renamed = fixture.chat.replacen(
            r#""model":"gpt-4o-2024-08-06""#,
            &format!(r#""model":"{CLIENT_MODEL}""#),
            1,
        );
        assert_ne!(renamed, fixture.chat);
        assert_eq!(
            resp.body,
            renamed.as_bytes(),
            "OpenAI bodies pass through unchanged but for the model's name"
        );
    }
}

pub async fn chat_stream_text(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let upstream =
        Upstream::replying(streamed(&fixture, &rechunk(&fixture.stream), Then::End)).await;
    let stream = provider(kind, &upstream.root_url(), |_| {})
        .chat_stream(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap();
    let events = ok_events(collect(stream).await);
    let rec = upstream.request();
    assert_sent_upstream(kind, &rec, Op::Stream);
    match kind {
        ProviderKind::OpenAi | ProviderKind::Azure => {
            assert_eq!(rec.body["stream"], true);
            assert_eq!(rec.body["stream_options"]["include_usage"], true);
        }
        ProviderKind::Anthropic | ProviderKind::Ollama => assert_eq!(rec.body["stream"], true),
        _ => {}
    }
    let docs = docs(&events);
    assert!(
        docs.iter()
            .all(|d| d["object"] == "chat.completion.chunk" && d["model"] == CLIENT_MODEL),
        "{docs:#?}"
    );
    assert_eq!(streamed_text(&docs), TEXT);
    assert_eq!(finish_reasons(&docs), vec!["stop"]);
    let usage_only: Vec<&StreamEvent> = events.iter().filter(|e| e.usage_only).collect();
    assert_eq!(usage_only.len(), 1, "exactly one usage chunk");
    let last = events.last().unwrap();
    assert!(last.usage_only, "the usage chunk comes last");
    assert_eq!(last.usage, Some(expected_usage(kind)));
    assert_eq!(docs.last().unwrap()["choices"], json!([]));
}

pub async fn chat_tool_call(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let upstream = Upstream::replying(ok_json(&fixture.tool_chat)).await;
    let resp = provider(kind, &upstream.root_url(), |_| {})
        .chat(&request(true), UPSTREAM_MODEL)
        .await
        .unwrap();
    assert_eq!(
        upstream_tool_name(kind, &upstream.request().body),
        Some(TOOL)
    );
    let doc: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(doc["model"], CLIENT_MODEL);
    if !matches!(kind, ProviderKind::OpenAi | ProviderKind::Azure) {
        assert_null_refusal(&doc); // the OpenAI fixture leaves it out, and is passed through
    }
    let choice = &doc["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert!(!call["id"].as_str().unwrap().is_empty());
    assert_eq!(call["function"]["name"], TOOL);
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, serde_json::from_str::<Value>(TOOL_ARGS).unwrap());
}

pub async fn stream_tool_call(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let upstream = Upstream::replying(streamed(&fixture, &fixture.tool_stream, Then::End)).await;
    let stream = provider(kind, &upstream.root_url(), |_| {})
        .chat_stream(&request(true), UPSTREAM_MODEL)
        .await
        .unwrap();
    let events = ok_events(collect(stream).await);
    assert_eq!(
        upstream_tool_name(kind, &upstream.request().body),
        Some(TOOL)
    );
    let docs = docs(&events);
    assert!(docs.iter().all(|d| d["model"] == CLIENT_MODEL), "{docs:#?}");
    let deltas: Vec<&Value> = docs
        .iter()
        .filter_map(|d| d["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert!(!deltas.is_empty(), "{docs:#?}");
    assert!(deltas.iter().all(|d| d["index"] == 0));
    assert!(!deltas[0]["id"].as_str().unwrap().is_empty());
    assert_eq!(deltas[0]["function"]["name"], TOOL);
    let args: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        serde_json::from_str::<Value>(TOOL_ARGS).unwrap()
    );
    assert_eq!(finish_reasons(&docs), vec!["tool_calls"]);
    assert!(events.last().unwrap().usage_only);
}

pub async fn rate_limited_is_retryable_with_retry_after(kind: ProviderKind) {
    let upstream = Upstream::replying(Reply::Json {
        status: 429,
        headers: vec![("retry-after", "7".into())],
        body: r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#.into(),
    })
    .await;
    let err = provider(kind, &upstream.root_url(), |_| {})
        .chat(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert!(err.retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(err.code(), "status_429");
    assert!(err.to_string().contains("Rate limit reached"));
}

pub async fn server_error_is_retryable(kind: ProviderKind) {
    let upstream = Upstream::replying(Reply::body(
        500,
        r#"{"error":{"message":"internal","type":"api_error"}}"#,
    ))
    .await;
    let err = match provider(kind, &upstream.root_url(), |_| {})
        .chat_stream(&request(false), UPSTREAM_MODEL)
        .await
    {
        Ok(_) => panic!("a 500 must fail before any chunk"),
        Err(err) => err,
    };
    assert_eq!(err.status(), Some(500));
    assert!(err.retryable());
    assert_eq!(err.code(), "status_5xx");
}

pub async fn client_error_is_final_and_hides_the_key(kind: ProviderKind) {
    let upstream = Upstream::replying(Reply::body(
        401,
        format!(r#"{{"error":{{"message":"Incorrect API key provided: {API_KEY}"}}}}"#),
    ))
    .await;
    let err = provider(kind, &upstream.root_url(), |_| {})
        .chat(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.retryable());
    assert_eq!(err.code(), "status_4xx");
    assert!(!err.to_string().contains(API_KEY), "{err}");
    assert!(!format!("{err:?}").contains(API_KEY));
}

/// One error item, after which the stream ends; no panic.
fn assert_single_error_at_end(items: &[Result<StreamEvent, ProviderError>], code: &str) {
    let errors: Vec<&ProviderError> = items.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{items:#?}");
    assert!(items.last().unwrap().is_err(), "the error is the last item");
    assert_eq!(errors[0].code(), code, "{}", errors[0]);
    assert!(
        !errors[0].retryable(),
        "after the first byte nothing is retried"
    );
}

pub async fn malformed_stream_fails_cleanly(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let upstream = Upstream::replying(streamed(&fixture, &fixture.malformed, Then::End)).await;
    let stream = provider(kind, &upstream.root_url(), |_| {})
        .chat_stream(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap();
    let items = collect(stream).await;
    assert!(items[0].is_ok(), "the valid first frame is forwarded");
    assert_single_error_at_end(&items, "decode");
}

pub async fn truncated_stream_fails_cleanly(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let upstream = Upstream::replying(streamed(&fixture, &fixture.truncated, Then::End)).await;
    let stream = provider(kind, &upstream.root_url(), |_| {})
        .chat_stream(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap();
    let items = collect(stream).await;
    assert!(items.iter().any(|r| r.is_ok()));
    assert!(
        !items.iter().any(|r| r.as_ref().is_ok_and(|e| e.usage_only)),
        "no usage for a cut answer"
    );
    assert_single_error_at_end(&items, "decode");
}

pub async fn first_byte_timeout_is_retryable(kind: ProviderKind) {
    let upstream = Upstream::replying(ok_json("{}").after(Duration::from_secs(3))).await;
    let started = Instant::now();
    let err = provider(kind, &upstream.root_url(), |s| {
        s.first_byte_timeout = Duration::from_millis(200)
    })
    .chat(&request(false), UPSTREAM_MODEL)
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.is_timeout());
    assert!(err.retryable());
    assert_eq!(err.code(), "timeout");
}

pub async fn idle_stream_times_out(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let upstream = Upstream::replying(streamed(&fixture, &fixture.stream[..1], Then::Stall)).await;
    let stream = provider(kind, &upstream.root_url(), |s| {
        s.idle_timeout = Duration::from_millis(200)
    })
    .chat_stream(&request(false), UPSTREAM_MODEL)
    .await
    .unwrap();
    let items = tokio::time::timeout(Duration::from_secs(3), collect(stream))
        .await
        .unwrap();
    assert!(items[0].is_ok());
    assert_single_error_at_end(&items, "timeout");
    assert!(items.last().unwrap().as_ref().unwrap_err().is_timeout());
}

pub async fn dropping_the_stream_closes_the_upstream(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let reply = streamed(
        &fixture,
        &fixture.stream[..1],
        Then::KeepAlive(Bytes::from_static(fixture.keep_alive.as_bytes())),
    );
    let upstream = Upstream::replying(reply).await;
    let mut stream = provider(kind, &upstream.root_url(), |_| {})
        .chat_stream(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap();
    stream.next().await.unwrap().unwrap();
    assert!(
        !upstream
            .wait_for_disconnect(Duration::from_millis(100))
            .await,
        "the upstream keeps streaming while the client reads"
    );
    drop(stream);
    assert!(
        upstream.wait_for_disconnect(Duration::from_secs(3)).await,
        "upstream never saw the disconnect"
    );
}

pub async fn embeddings(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let embeddings = fixture.embeddings.clone();
    let upstream = Upstream::replying(ok_json(embeddings.as_deref().unwrap_or("{}"))).await;
    let req: EmbeddingsRequest =
        serde_json::from_value(json!({"model": CLIENT_MODEL, "input": ["first", "second"]}))
            .unwrap();
    let result = provider(kind, &upstream.root_url(), |_| {})
        .embeddings(&req, UPSTREAM_MODEL)
        .await;
    if embeddings.is_none() {
        assert_eq!(result.unwrap_err().code(), "unsupported");
        return;
    }
    let resp = result.unwrap();
    assert_sent_upstream(kind, &upstream.request(), Op::Embed);
    let doc: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(doc["object"], "list");
    assert_eq!(doc["model"], CLIENT_MODEL);
    assert_eq!(doc["data"].as_array().unwrap().len(), 2);
    assert_eq!(doc["data"][1]["index"], 1);
    assert_eq!(doc["data"][1]["embedding"], json!([0.3, 0.4]));
    assert_eq!(
        resp.usage.map(|u| u.prompt_tokens),
        fixtures::expected_embedding_usage(kind)
    );
}

/// Little-endian f32s, standard base64: what OpenAI sends for `encoding_format: "base64"`.
pub fn unpack(embedding: &Value) -> Vec<f32> {
    let packed = embedding.as_str().expect("a base64 string");
    STANDARD
        .decode(packed)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

pub async fn embeddings_base64(kind: ProviderKind) {
    let fixture = fixtures::fixture(kind);
    let embeddings = fixture.embeddings.clone();
    let upstream = Upstream::replying(ok_json(embeddings.as_deref().unwrap_or("{}"))).await;
    let req: EmbeddingsRequest = serde_json::from_value(json!({
        "model": CLIENT_MODEL, "input": ["first", "second"], "encoding_format": "base64"
    }))
    .unwrap();
    let result = provider(kind, &upstream.root_url(), |_| {})
        .embeddings(&req, UPSTREAM_MODEL)
        .await;
    if embeddings.is_none() {
        assert_eq!(result.unwrap_err().code(), "unsupported");
        return;
    }
    let doc: Value = serde_json::from_slice(&result.unwrap().body).unwrap();
    let sent = upstream.request().body;
    if matches!(kind, ProviderKind::OpenAi | ProviderKind::Azure) {
        // OpenAI packs the vectors itself; its answer passes through as it came.
        assert_eq!(
            sent["encoding_format"], "base64",
            "forwarded as the client sent it"
        );
        return;
    }
    assert!(
        !sent.to_string().contains("encoding_format"),
        "not an option this upstream knows: {sent}"
    );
    assert_eq!(unpack(&doc["data"][0]["embedding"]), [0.1f32, -0.2]);
    assert_eq!(unpack(&doc["data"][1]["embedding"]), [0.3f32, 0.4]);
    assert_eq!(doc["data"][1]["index"], 1);
    assert_eq!(doc["model"], CLIENT_MODEL);
}
