//! Accepting connections: HTTP/1 and HTTP/2 on one port, with the protections a public port
//! needs against clients that are slow on purpose.
//!
//! - A client that has not sent a whole request head within `server.request_header_timeout`
//!   is disconnected (hyper's header read timeout; it also closes keep-alive connections that
//!   stay idle that long).
//! - A request body must arrive within `server.request_body_timeout` of its head
//!   ([`DeadlineBody`]); a client that stalls gets 408 and the connection is closed.
//! - At most `server.max_connections` connections are open at once, kept below the process's
//!   file-descriptor limit so the database, upstream connections and the spill file always
//!   have descriptors left. Beyond it the gateway stops accepting and the kernel's backlog
//!   holds new connections until one closes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::ServerConfig;

/// Descriptors kept free for everything that is not a client connection.
const RESERVED_DESCRIPTORS: u64 = 256;

/// After the grace period, how long cut streams get to send their last events before their
/// connections are dropped.
const CUT_WAIT: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` until `stop` turns true; then lets open connections finish for
/// up to `server.shutdown_grace`. Whatever is still open then is told to end through `cut`
/// (streams send an error event and `[DONE]`), and after a short wait dropped. Every request
/// has ended — its usage recorded — when this returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &ServerConfig,
    mut stop: watch::Receiver<bool>,
    cut: watch::Sender<bool>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.request_header_timeout)
        // One buffer, one `write`: a response's head and body, or a streamed event with its
        // chunk framing, are copied together (a few hundred bytes, usually). The vectored
        // alternative sets up 64 `IoSlice`s and walks a queue of buffers for every flush,
        // which cost more than the copy for each streamed event.
        .writev(false);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let slots = Arc::new(Semaphore::new(connection_cap(config.max_connections)));
    let stopping = |stop: &mut watch::Receiver<bool>| {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    };
    loop {
        // Forget the connections that have ended, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = stopping(&mut stop) => break,
        };
        let Ok(slot) = slot else { break };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    // Out of descriptors, or a connection reset before we took it: neither
                    // is the listener's fault. Pause so a full table does not spin the loop.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopping(&mut stop) => break,
        };
        // Nagle's algorithm would hold small SSE chunks back by up to 40 ms.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|request: http::Request<Incoming>| request.map(Body::new)),
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            // A connection error is the client's (reset, timed out, spoke nonsense).
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    // Connections close once their in-flight requests are answered.
    tokio::spawn(graceful.shutdown());
    if within(config.shutdown_grace, &mut connections).await {
        return;
    }
    tracing::warn!(
        open = connections.len(),
        "shutdown grace period over; ending the requests still open"
    );
    let _ = cut.send(true);
    if within(CUT_WAIT, &mut connections).await {
        return;
    }
    tracing::warn!(
        open = connections.len(),
        "dropping connections still open after the grace period"
    );
    // Dropping a request's handler records its usage (the meter's drop guard), so wait for
    // every aborted task to be gone.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Waits up to `limit` for every connection to end; `true` if they all did.
async fn within(limit: Duration, connections: &mut JoinSet<()>) -> bool {
    tokio::time::timeout(limit, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_ok()
}

/// The configured connection cap, lowered to fit the process's open-file limit.
fn connection_cap(configured: usize) -> usize {
    let Some(files) = open_file_limit() else {
        return configured;
    };
    let room =
        usize::try_from(files.saturating_sub(RESERVED_DESCRIPTORS).max(64)).unwrap_or(usize::MAX);
    if configured > room {
        tracing::warn!(
            max_connections = configured,
            open_file_limit = files,
            serving_at_most = room,
            "server.max_connections is above what the open-file limit allows; raise the limit \
             (ulimit -n, LimitNOFILE=) to accept more"
        );
        return room;
    }
    configured
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` elsewhere.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The error a request body gives when its client took longer than the deadline to send it.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body that must be complete by a deadline. The timer is only set once the client
/// makes the gateway wait: a body that arrived with its head costs nothing more.
pub struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    /// Wraps `body` of a request whose head arrived at `arrived`.
    pub fn wrap(body: Body, arrived: Instant, timeout: Duration) -> Body {
        Body::new(Self {
            inner: body,
            deadline: arrived + timeout,
            timer: None,
        })
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a body-reading error was the deadline running out.
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        cause = error.source();
    }
    false
}
