//! A fault-injecting upstream on 127.0.0.1 port 0 that speaks OpenAI's chat completions,
//! embeddings, Responses API and legacy completions, and Anthropic's Messages API on `/v1/messages` (`root_url` is
//! its base URL for an `anthropic` provider). It counts and records every request, and answers each one with the
//! next step of its script (then the default step).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use tokio::sync::Notify;

mod anthropic;
mod completions;
mod responses;

/// How the upstream answers one request.
#[derive(Debug, Clone)]
pub enum Step {
    /// A proper answer: JSON, or SSE when the request streams; tool calls when it has tools.
    Answer,
    /// An error status with an OpenAI error body, and `Retry-After` seconds if given.
    Status(u16, Option<u64>),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Waits, then answers properly.
    Delay(Duration),
    /// Streams the role chunk and `n` content chunks, then closes the body mid-answer.
    DieAfter(usize),
    /// Streams with this pause before every chunk.
    Slow(Duration),
    /// Streams one chunk, then an SSE comment every 20 ms until the client goes away.
    Endless,
}

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

struct Shared {
    script: Mutex<VecDeque<Step>>,
    default: Step,
    hits: AtomicUsize,
    recorded: Mutex<Vec<Recorded>>,
    body_dropped: AtomicBool,
    notify: Notify,
}

pub struct Upstream {
    pub base_url: String,
    shared: Arc<Shared>,
}

impl Upstream {
    /// Answers with `script` in order, then with `default` forever.
    pub async fn start(script: Vec<Step>, default: Step) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            default,
            hits: AtomicUsize::new(0),
            recorded: Mutex::default(),
            body_dropped: AtomicBool::new(false),
            notify: Notify::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base_url, shared }
    }

    /// The base URL for an `anthropic` provider (which appends `/v1/messages` itself).
    pub fn root_url(&self) -> String {
        self.base_url.trim_end_matches("/v1").to_owned()
    }

    /// An upstream that always answers properly.
    pub async fn healthy() -> Self {
        Self::start(Vec::new(), Step::Answer).await
    }

    pub async fn always(step: Step) -> Self {
        Self::start(Vec::new(), step).await
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    /// Waits until the server dropped a streamed body, which hyper does when the client is gone.
    pub async fn wait_for_disconnect(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.notify.notified();
            if self.shared.body_dropped.load(Ordering::SeqCst) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.shared.body_dropped.load(Ordering::SeqCst);
            }
        }
    }
}

/// Set when a streamed body is dropped: the server gave up on the response.
struct DropGuard(Arc<Shared>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.body_dropped.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // Echoed in error bodies, as some upstreams do with a rejected key.
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    shared.recorded.lock().unwrap().push(Recorded {
        path: uri.path().to_owned(),
        headers,
        body: body.clone(),
    });
    let step = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| shared.default.clone());
    let streaming = body["stream"] == true;
    let embeddings = uri.path().ends_with("/embeddings");
    if uri.path().ends_with("/v1/messages/count_tokens") {
        return json_response(&json!({"input_tokens": 42}));
    }
    if uri.path().ends_with("/v1/messages") {
        return anthropic::answer(&shared, step, &body, streaming).await;
    }
    // OpenAI's own dialects fail the way chat does, below.
    let fails = matches!(step, Step::Status(..) | Step::Garbage);
    if uri.path().ends_with("/responses") && !fails {
        return responses::answer(&shared, step, &body, streaming).await;
    }
    if uri.path().ends_with("/v1/completions") && !fails {
        return completions::answer(&shared, step, &body, streaming).await;
    }
    match step {
        Step::Status(status, retry_after) => {
            let mut response = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            if let Some(seconds) = retry_after {
                response = response.header("retry-after", seconds.to_string());
            }
            let message = format!("injected {status}; you sent {auth}");
            let error =
                json!({"error": {"message": message, "type": "server_error", "code": null}});
            response.body(Body::from(error.to_string())).unwrap()
        }
        Step::Garbage => Response::builder()
            .header("content-type", "application/json")
            .body(Body::from("<html>502 Bad Gateway</html>"))
            .unwrap(),
        Step::Delay(delay) => {
            tokio::time::sleep(delay).await;
            answer(&shared, &body, streaming, embeddings, None)
        }
        Step::Answer => answer(&shared, &body, streaming, embeddings, None),
        Step::Slow(gap) => answer(&shared, &body, streaming, embeddings, Some(gap)),
        Step::DieAfter(n) => {
            let mut chunks = vec![chunk(
                &body,
                json!({"role": "assistant", "content": ""}),
                None,
            )];
            chunks.extend(
                (0..n).map(|i| chunk(&body, json!({"content": format!("part{i} ")}), None)),
            );
            sse(&shared, chunks, None, Tail::End)
        }
        Step::Endless => {
            let chunks = vec![chunk(
                &body,
                json!({"role": "assistant", "content": "thinking"}),
                None,
            )];
            sse(&shared, chunks, None, Tail::Comments)
        }
    }
}

fn answer(
    shared: &Arc<Shared>,
    body: &Value,
    streaming: bool,
    embeddings: bool,
    gap: Option<Duration>,
) -> Response {
    let model = body["model"].as_str().unwrap_or("unknown");
    if embeddings {
        let inputs = match &body["input"] {
            Value::Array(items) => items.len(),
            _ => 1,
        };
        let data: Vec<Value> = (0..inputs)
            .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}))
            .collect();
        let doc = json!({"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": 3, "total_tokens": 3}});
        return json_response(&doc);
    }
    let tool = body["tools"][0]["function"]["name"].as_str();
    if !streaming {
        let (message, finish) = match tool {
            Some(name) => (
                json!({"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": name, "arguments": "{\"city\":\"Paris\"}"}}]}),
                "tool_calls",
            ),
            None => (
                json!({"role": "assistant", "content": format!("Hello from {model}")}),
                "stop",
            ),
        };
        let doc = json!({
            "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        });
        return json_response(&doc);
    }
    let mut chunks = vec![chunk(
        body,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    let finish = match tool {
        // A tool call streams its name first, then its arguments in pieces.
        Some(name) => {
            let call = json!({"index": 0, "id": "call_1", "type": "function",
                              "function": {"name": name, "arguments": ""}});
            chunks.push(chunk(body, json!({"tool_calls": [call]}), None));
            for part in ["{\"city\":", "\"Paris\"}"] {
                let call = json!({"index": 0, "function": {"arguments": part}});
                chunks.push(chunk(body, json!({"tool_calls": [call]}), None));
            }
            "tool_calls"
        }
        None => {
            for word in ["Hello", " from", " upstream"] {
                chunks.push(chunk(body, json!({"content": word}), None));
            }
            "stop"
        }
    };
    chunks.push(chunk(body, json!({}), Some(finish)));
    if body["stream_options"]["include_usage"] == true {
        let usage = json!({"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}});
        chunks.push(format!("data: {usage}\n\n"));
    }
    chunks.push("data: [DONE]\n\n".to_owned());
    sse(shared, chunks, gap, Tail::End)
}

/// One `data:` line with an OpenAI chunk.
fn chunk(body: &Value, delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1,
        "model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

pub(super) fn json_response(doc: &Value) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(doc.to_string()))
        .unwrap()
}

enum Tail {
    End,
    Comments,
}

fn sse(shared: &Arc<Shared>, chunks: Vec<String>, gap: Option<Duration>, tail: Tail) -> Response {
    let guard = DropGuard(shared.clone());
    let head = stream::iter(chunks).then(move |chunk| async move {
        if let Some(gap) = gap {
            tokio::time::sleep(gap).await;
        }
        Ok::<_, Infallible>(Bytes::from(chunk))
    });
    let tail = match tail {
        Tail::End => stream::empty().boxed(),
        Tail::Comments => stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok(Bytes::from_static(b": ping\n\n")), ()))
        })
        .boxed(),
    };
    // The guard lives inside the body, so it drops exactly when hyper drops the body.
    let body = head.chain(tail).map(move |chunk| {
        let _alive = &guard;
        chunk
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}
