//! The loopback server: binds 127.0.0.1 port 0 (TCP_NODELAY, so every frame leaves when it is
//! written), counts and records requests, and turns a [`Reply`] into a response whose streamed
//! body tells the upstream when the client went away.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde_json::Value;
use tokio::sync::Notify;

use crate::Usages;
use crate::script::{Script, Step};

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The path, without the query.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body as JSON; `null` when it is not.
    pub body: Value,
}

impl Recorded {
    /// The path and, if there is one, `?` and the query.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }
}

/// How the upstream answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole body with this status and `content-type: application/json` (whatever the body
    /// holds), and these headers.
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    },
    /// A streamed body.
    Stream(Stream),
    /// This reply, after a wait with nothing sent.
    After(Duration, Box<Reply>),
}

impl Reply {
    /// 200 with this JSON document.
    pub fn json(doc: &Value) -> Self {
        Self::body(200, doc.to_string())
    }

    /// This status with this body as `application/json`.
    pub fn body(status: u16, body: impl Into<Bytes>) -> Self {
        Self::Json {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same reply, `wait` later.
    pub fn after(self, wait: Duration) -> Self {
        Self::After(wait, Box::new(self))
    }
}

/// A streamed body: its frames, written one at a time, then what happens once they are out.
#[derive(Debug, Clone)]
pub struct Stream {
    pub content_type: &'static str,
    pub frames: Vec<Bytes>,
    pub pace: Pace,
    pub then: Then,
}

impl Stream {
    /// Server-sent events, sent as fast as the client reads, then the end of the body.
    pub fn sse(frames: impl IntoIterator<Item = impl Into<Bytes>>) -> Self {
        Self::new("text/event-stream", frames)
    }

    /// Newline-delimited JSON (Ollama's streams), sent as fast as the client reads.
    pub fn ndjson(frames: impl IntoIterator<Item = impl Into<Bytes>>) -> Self {
        Self::new("application/x-ndjson", frames)
    }

    pub fn new(
        content_type: &'static str,
        frames: impl IntoIterator<Item = impl Into<Bytes>>,
    ) -> Self {
        Self {
            content_type,
            frames: frames.into_iter().map(Into::into).collect(),
            pace: Pace::Free,
            then: Then::End,
        }
    }

    pub fn paced(self, pace: Pace) -> Self {
        Self { pace, ..self }
    }

    pub fn then(self, then: Then) -> Self {
        Self { then, ..self }
    }
}

/// When a stream's frames go out.
#[derive(Debug, Clone, Default)]
pub enum Pace {
    /// As soon as the client reads them.
    #[default]
    Free,
    /// This long before every frame, the first too.
    Before(Duration),
    /// This long between frames: the first goes at once.
    Between(Duration),
    /// The first frame at once, the rest once the gate is open.
    Held(Arc<Gate>),
}

/// What a stream does after its frames.
#[derive(Debug, Clone)]
pub enum Then {
    /// Ends the body.
    End,
    /// Keeps the connection open and sends nothing more.
    Stall,
    /// Sends this filler every 20 ms until the client goes away.
    KeepAlive(Bytes),
}

/// Holds [`Pace::Held`] streams after their first frame while it is closed.
#[derive(Debug)]
pub struct Gate {
    closed: AtomicBool,
    opened: Notify,
}

impl Gate {
    pub fn closed() -> Arc<Self> {
        Arc::new(Self {
            closed: AtomicBool::new(true),
            opened: Notify::new(),
        })
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Lets every held stream go on, and any stream that reaches the gate later.
    pub fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        self.opened.notify_waiters();
    }

    async fn pass(&self) {
        // Made before the check, so an `open` between the two is not missed.
        let opened = self.opened.notified();
        if self.closed.load(Ordering::SeqCst) {
            opened.await;
        }
    }
}

/// What an upstream keeps of the requests it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// Every request, for [`Upstream::recorded`].
    On,
    /// Only their number: for load, where a log would only grow.
    Off,
}

type Respond = dyn Fn(&Recorded) -> Reply + Send + Sync;

struct Shared {
    respond: Box<Respond>,
    recording: Recording,
    hits: AtomicUsize,
    recorded: Mutex<Vec<Recorded>>,
    body_dropped: AtomicBool,
    dropped: Notify,
}

impl Shared {
    fn recorded(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A mock upstream on 127.0.0.1 port 0, serving until the process ends.
pub struct Upstream {
    /// The base URL of an OpenAI-style provider: `http://127.0.0.1:port/v1`.
    pub base_url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Upstream {
    /// Answers with `script` in order, then with `then` forever, reporting
    /// [`Usages::DEFAULT`].
    pub async fn start(script: Vec<Step>, then: Step) -> Self {
        Self::scripted(Usages::DEFAULT, script, then).await
    }

    /// An upstream that always answers properly.
    pub async fn healthy() -> Self {
        Self::start(Vec::new(), Step::Answer).await
    }

    pub async fn always(step: Step) -> Self {
        Self::start(Vec::new(), step).await
    }

    /// Answers with `script` in order, then with `then` forever, reporting `usage`.
    pub async fn scripted(usage: Usages, script: Vec<Step>, then: Step) -> Self {
        let script = Script::new(usage, script, then);
        Self::serve(Recording::On, move |request| script.respond(request)).await
    }

    /// Answers every request with `reply`.
    pub async fn replying(reply: Reply) -> Self {
        Self::serve(Recording::On, move |_| reply.clone()).await
    }

    /// Answers every request with what `respond` makes of it.
    pub async fn serve(
        recording: Recording,
        respond: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("a mock upstream cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("a mock upstream has no address: {e}"));
        let shared = Arc::new(Shared {
            respond: Box::new(respond),
            recording,
            hits: AtomicUsize::new(0),
            recorded: Mutex::default(),
            body_dropped: AtomicBool::new(false),
            dropped: Notify::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(e) = axum::serve(listener, app).await {
                panic!("a mock upstream stopped: {e}");
            }
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            addr,
            shared,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`: the base URL of an Anthropic, Azure, Gemini or Ollama provider,
    /// which append their whole paths themselves.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// The requests received so far, in order (none with [`Recording::Off`]).
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.recorded().clone()
    }

    /// The one request this upstream received; panics if it got none or several.
    pub fn request(&self) -> Recorded {
        let recorded = self.shared.recorded();
        match recorded.as_slice() {
            [request] => request.clone(),
            other => panic!("expected exactly one upstream request, got {}", other.len()),
        }
    }

    /// Waits until the server dropped a streamed body, which hyper does when the client is
    /// gone; false if that did not happen `within`.
    pub async fn wait_for_disconnect(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let dropped = self.shared.dropped.notified();
            if self.shared.body_dropped.load(Ordering::SeqCst) {
                return true;
            }
            if tokio::time::timeout_at(deadline, dropped).await.is_err() {
                return self.shared.body_dropped.load(Ordering::SeqCst);
            }
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let request = Recorded {
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let reply = (shared.respond)(&request);
    if shared.recording == Recording::On {
        shared.recorded().push(request);
    }
    respond(&shared, reply).await
}

async fn respond(shared: &Arc<Shared>, mut reply: Reply) -> Response {
    loop {
        match reply {
            Reply::After(wait, then) => {
                tokio::time::sleep(wait).await;
                reply = *then;
            }
            Reply::Json {
                status,
                headers,
                body,
            } => {
                let mut response = Response::new(Body::from(body));
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let map = response.headers_mut();
                map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                for (name, value) in headers {
                    if let Ok(value) = HeaderValue::try_from(value) {
                        map.insert(HeaderName::from_static(name), value);
                    }
                }
                return response;
            }
            Reply::Stream(stream) => return streamed(shared, stream),
        }
    }
}

/// Set when a streamed body is dropped: the server gave up on the response.
struct DropGuard(Arc<Shared>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.body_dropped.store(true, Ordering::SeqCst);
        self.0.dropped.notify_waiters();
    }
}

fn streamed(shared: &Arc<Shared>, stream: Stream) -> Response {
    let Stream {
        content_type,
        frames,
        pace,
        then,
    } = stream;
    // One body frame per event, each written as it comes.
    let head = stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| {
        let pace = pace.clone();
        async move {
            match pace {
                Pace::Free => {}
                Pace::Before(gap) => tokio::time::sleep(gap).await,
                Pace::Between(gap) if i > 0 => tokio::time::sleep(gap).await,
                Pace::Between(_) => {}
                Pace::Held(gate) if i == 1 => gate.pass().await,
                Pace::Held(_) => {}
            }
            Ok::<_, Infallible>(frame)
        }
    });
    let tail = match then {
        Then::End => stream::empty().boxed(),
        Then::Stall => stream::pending().boxed(),
        Then::KeepAlive(filler) => stream::unfold(filler, |filler| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok(filler.clone()), filler))
        })
        .boxed(),
    };
    // The guard lives inside the body, so it drops exactly when hyper drops the body.
    let guard = DropGuard(shared.clone());
    let body = head.chain(tail).map(move |frame| {
        let _alive = &guard;
        frame
    });
    let mut response = Response::new(Body::from_stream(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
