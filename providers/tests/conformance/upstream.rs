//! A mock upstream: an axum server on 127.0.0.1 port 0 that records each request and answers
//! with a canned reply in the provider's own wire format.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde_json::Value;
use tokio::sync::Notify;

/// How the mock answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Json {
        status: u16,
        body: String,
        headers: Vec<(&'static str, String)>,
    },
    Stream {
        content_type: &'static str,
        chunks: Vec<Bytes>,
        then: Then,
    },
    /// Waits this long before answering at all.
    Delay(Duration),
}

/// What a streamed body does after its chunks.
#[derive(Debug, Clone, Copy)]
pub enum Then {
    End,
    /// Holds the connection open and sends nothing more.
    Stall,
    /// Keeps sending this filler every 20 ms until the client goes away.
    KeepAlive(&'static str),
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    reply: Reply,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    body_dropped: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

pub struct MockUpstream {
    pub base_url: String,
    shared: Shared,
}

impl MockUpstream {
    pub async fn start(reply: Reply) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Shared {
            reply,
            recorded: Arc::default(),
            body_dropped: Arc::default(),
            notify: Arc::default(),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base_url, shared }
    }

    /// The single request this mock received.
    pub fn request(&self) -> Recorded {
        let recorded = self.shared.recorded.lock().unwrap();
        assert_eq!(recorded.len(), 1, "expected exactly one upstream request");
        recorded[0].clone()
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

/// Set when the response body stream is dropped: the server gave up on this response.
struct DropGuard(Arc<AtomicBool>, Arc<Notify>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        self.1.notify_waiters();
    }
}

async fn handle(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.recorded.lock().unwrap().push(Recorded {
        path,
        headers,
        body,
    });

    match shared.reply.clone() {
        Reply::Json {
            status,
            body,
            headers,
        } => {
            let mut resp = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            for (name, value) in headers {
                resp = resp.header(name, value);
            }
            resp.body(Body::from(body)).unwrap()
        }
        Reply::Delay(delay) => {
            tokio::time::sleep(delay).await;
            Response::new(Body::from("{}"))
        }
        Reply::Stream {
            content_type,
            chunks,
            then,
        } => {
            let guard = DropGuard(shared.body_dropped.clone(), shared.notify.clone());
            let head = stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
            let tail = match then {
                Then::End => stream::empty().boxed(),
                Then::Stall => stream::pending().boxed(),
                Then::KeepAlive(filler) => stream::unfold((), move |()| async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some((Ok(Bytes::from_static(filler.as_bytes())), ()))
                })
                .boxed(),
            };
            // The guard lives inside the body stream, so it drops exactly when hyper drops it.
            let body = head.chain(tail).map(move |chunk| {
                let _alive = &guard;
                chunk
            });
            Response::builder()
                .header("content-type", content_type)
                .body(Body::from_stream(body))
                .unwrap()
        }
    }
}
