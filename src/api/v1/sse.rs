//! Relaying an upstream stream to the client as server-sent events: each event as it arrives,
//! keep-alive comments while the upstream is silent, the dialect's end (`data: [DONE]` for
//! OpenAI's), and the dialect's error event if the upstream fails after the first byte (never a
//! retry: the client already has part of the answer).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderValue, StatusCode, header};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tollgate_providers::wire::StreamOptions;
use tollgate_providers::{ChatStream, ProviderError, StreamEvent};

use crate::error::{ApiError, ErrorKind};
use crate::metering::{Ending, Meter};
use crate::routing::Prefetched;

const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";

/// The streaming response. The meter rides inside the body: it records when the stream ends,
/// or when hyper drops the body because the client went away (which also drops, and so
/// closes, the upstream stream).
pub fn response(
    stream: Prefetched,
    dialect: Dialect,
    keep_alive: Duration,
    cut: watch::Receiver<bool>,
    mut meter: Meter,
) -> Response {
    meter.status(StatusCode::OK.as_u16());
    let now = Instant::now();
    let cut_now = cut.clone();
    let mut cut = cut;
    let relay = Relay {
        first: stream.first,
        upstream: Some(stream.rest),
        deadline: stream.deadline,
        keep_alive,
        heard: now,
        timer: Box::pin(tokio::time::sleep_until(
            stream.deadline.min(now + keep_alive),
        )),
        dialect,
        sent: 0,
        cut_now,
        cut: Box::pin(async move {
            // A dropped sender (the gateway is gone) ends the wait too.
            let _ = cut.wait_for(|cut| *cut).await;
        }),
        meter,
    };
    let mut response = Response::new(Body::from_stream(relay));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// How the events of a stream are written for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI's chunks (chat completions, and legacy completions alike): `data: <chunk>`, and
    /// `data: [DONE]` at the end. The usage-only chunk goes out only if the client asked for it.
    Chat { include_usage: bool },
    /// Anthropic's Messages events, already framed (`event:` and `data:`); `message_stop` is
    /// the end.
    Messages,
    /// OpenAI's Responses events, already framed; the final `response` event is the end.
    Responses,
}

// === impl Dialect ===

impl Dialect {
    /// OpenAI's chunks, with the usage chunk if the client's `stream_options` asked for it.
    pub fn chunks(options: Option<&StreamOptions>) -> Self {
        let include_usage = options.and_then(|options| options.include_usage) == Some(true);
        Self::Chat { include_usage }
    }
}

struct Relay {
    first: Option<StreamEvent>,
    /// `None` once the stream is over (the next step ends the body).
    upstream: Option<ChatStream>,
    deadline: Instant,
    keep_alive: Duration,
    /// When the upstream last sent something: a keep-alive is due `keep_alive` after it.
    heard: Instant,
    /// Wakes the relay for a keep-alive or the deadline. One timer for the whole stream, moved
    /// only when it fires: an event costs a clock read, not a timer set and cleared.
    timer: Pin<Box<Sleep>>,
    dialect: Dialect,
    /// Upstream events relayed so far: the Responses error event's `sequence_number`.
    sent: u64,
    /// Whether the gateway's shutdown grace period is over, read before each wait.
    cut_now: watch::Receiver<bool>,
    /// The same, as a future that wakes the relay; made once per stream.
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
    meter: Meter,
}

/// What ended a wait for the upstream.
enum Woken {
    Cut,
    Timer,
    /// The upstream's next item, and when it was taken.
    Upstream(Option<Result<StreamEvent, ProviderError>>, Instant),
}

/// How the upstream stream failed after it was handed to the client.
enum Broken {
    Provider(ProviderError),
    Deadline,
    /// The gateway is shutting down and its grace period is over.
    ShutDown,
}

// === impl Relay ===

/// The relay is the body's stream itself, polled in place: an event moves no state around.
impl Stream for Relay {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_step(cx).map(|next| next.map(Ok))
    }
}

impl Relay {
    /// The next bytes for the client; `None` once the stream has ended.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            let event = match self.first.take() {
                Some(first) => first,
                None => {
                    let Some(woken) = ready!(self.poll_wait(cx)) else {
                        return Poll::Ready(None);
                    };
                    let next = match woken {
                        Woken::Cut => return Poll::Ready(Some(self.broken(Broken::ShutDown))),
                        Woken::Timer => {
                            let now = Instant::now();
                            if now >= self.deadline {
                                return Poll::Ready(Some(self.broken(Broken::Deadline)));
                            }
                            let due = self.heard + self.keep_alive;
                            if now >= due {
                                // Silence counts again from this comment.
                                self.heard = now;
                                self.rearm(now + self.keep_alive);
                                return Poll::Ready(Some(Bytes::from_static(KEEP_ALIVE)));
                            }
                            self.rearm(due);
                            continue;
                        }
                        Woken::Upstream(next, now) => {
                            self.heard = now;
                            next
                        }
                    };
                    match next {
                        None => {
                            self.upstream = None;
                            self.meter.finish(StatusCode::OK.as_u16(), Ending::Ok);
                            return Poll::Ready(match self.dialect {
                                Dialect::Chat { .. } => Some(Bytes::from_static(DONE)),
                                Dialect::Messages | Dialect::Responses => None,
                            });
                        }
                        Some(Err(error)) => {
                            return Poll::Ready(Some(self.broken(Broken::Provider(error))));
                        }
                        Some(Ok(event)) => event,
                    }
                }
            };
            if let Some(usage) = event.usage {
                self.meter.usage(usage);
            }
            match self.dialect {
                // The gateway always asks for usage; the client gets it only if it asked too.
                Dialect::Chat { include_usage } if event.usage_only => {
                    if !include_usage {
                        continue;
                    }
                    return Poll::Ready(Some(frame(&event.data)));
                }
                Dialect::Chat { .. } => {
                    self.meter.first_token();
                    self.meter.delivered(&event.data);
                    return Poll::Ready(Some(frame(&event.data)));
                }
                Dialect::Messages | Dialect::Responses => {
                    self.meter.first_token();
                    self.meter.delivered_event(&event.data);
                    self.sent += 1;
                    return Poll::Ready(Some(event.data));
                }
            }
        }
    }

    /// Whichever comes first: the cut, the timer, the upstream's next event. The cut's flag
    /// and the timer's time are read before the upstream is asked; the two futures are polled
    /// (registering their wakers again) only when the upstream has nothing ready, which saves
    /// both polls for each event of a busy stream. The reads come first because an upstream
    /// that is never idle (comments without end) uses up the task's budget, after which a
    /// future polled behind it only ever says `Pending`. `None` once the stream is over.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Option<Woken>> {
        let Some(upstream) = self.upstream.as_mut() else {
            return Poll::Ready(None);
        };
        if *self.cut_now.borrow() {
            return Poll::Ready(Some(Woken::Cut));
        }
        let now = Instant::now();
        if self.timer.deadline() <= now {
            return Poll::Ready(Some(Woken::Timer));
        }
        if let Poll::Ready(next) = upstream.poll_next_unpin(cx) {
            return Poll::Ready(Some(Woken::Upstream(next, now)));
        }
        if self.cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Woken::Cut));
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Woken::Timer));
        }
        Poll::Pending
    }

    /// Sets the timer for the next keep-alive, or the deadline if that comes first.
    fn rearm(&mut self, at: Instant) {
        self.timer.as_mut().reset(self.deadline.min(at));
    }

    /// Ends the stream with an error event and `[DONE]`, so SDKs raise instead of hanging.
    fn broken(&mut self, broken: Broken) -> Bytes {
        self.upstream = None;
        let (kind, message) = match &broken {
            Broken::Deadline => (
                ErrorKind::UpstreamTimeout,
                "The upstream did not finish the answer in time.",
            ),
            Broken::Provider(error) if error.is_timeout() => (
                ErrorKind::UpstreamTimeout,
                "The upstream stopped sending in the middle of the answer.",
            ),
            Broken::Provider(_) => (
                ErrorKind::UpstreamError,
                "The upstream failed in the middle of the answer.",
            ),
            Broken::ShutDown => (
                ErrorKind::Unavailable,
                "The gateway is shutting down; the answer was cut short.",
            ),
        };
        let ending = match &broken {
            Broken::Provider(error) => {
                tracing::warn!(code = error.code(), %error, "upstream stream broke after the first byte");
                if error.is_timeout() {
                    Ending::UpstreamTimeout
                } else {
                    Ending::UpstreamError
                }
            }
            Broken::Deadline => {
                tracing::warn!("upstream stream passed its deadline");
                Ending::UpstreamTimeout
            }
            Broken::ShutDown => Ending::ShutDown,
        };
        self.meter.finish(StatusCode::OK.as_u16(), ending);
        let error = ApiError::new(kind, message);
        match self.dialect {
            Dialect::Chat { .. } => {
                let event = error.sse_event();
                let mut out = BytesMut::with_capacity(event.len() + DONE.len());
                out.extend_from_slice(&event);
                out.extend_from_slice(DONE);
                out.freeze()
            }
            Dialect::Messages => error.anthropic_event(),
            Dialect::Responses => error.responses_event(self.sent),
        }
    }
}

/// `data: <chunk>\n\n`, in one allocation.
fn frame(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out.freeze()
}
