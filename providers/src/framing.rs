//! Server-sent events and NDJSON over a response body, with bounded buffering, an idle deadline,
//! and the loop that turns upstream frames into OpenAI chunks.
//!
//! We parse SSE ourselves rather than with `eventsource-stream` because that crate buffers an
//! event of any size; an upstream that never sends a blank line would grow memory without end.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use hyper::body::{Body, Incoming};
use tokio::time::{Instant, Sleep};

use crate::client::Response;
use crate::{ChatStream, ProviderError, StreamEvent, TimeoutPhase};

/// The largest SSE event or NDJSON line we hold in memory.
pub(crate) const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>;

/// The response body as chunks; a chunk that takes longer than `idle` ends it with a timeout.
pub(crate) fn body_chunks(resp: Response, idle: Duration) -> ByteStream {
    Box::pin(IdleLimited {
        body: Some(resp.into_body()),
        idle,
        waiting_since: None,
        timer: Box::pin(tokio::time::sleep(idle)),
    })
}

/// A body each of whose chunks must come within `idle` of the read that waits for it. One
/// timer for the whole body, moved only when it fires: a chunk costs a clock read, where a
/// `timeout` around each read set and cleared a timer every time.
struct IdleLimited<B = Incoming> {
    /// `None` once the body ended or failed.
    body: Option<B>,
    idle: Duration,
    /// When the read now pending began: the idle clock runs from there (not from the last
    /// chunk, so a consumer that was slow to ask again is not counted against the upstream).
    waiting_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl<B> Stream for IdleLimited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error,
{
    type Item = Result<Bytes, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(chunk) => {
                        this.waiting_since = None;
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                    // Trailers: nothing of the stream's, read on.
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(err))) => {
                    this.body = None;
                    return Poll::Ready(Some(Err(ProviderError::from_read(err))));
                }
                Poll::Ready(None) => {
                    this.body = None;
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        let since = *this.waiting_since.get_or_insert_with(Instant::now);
        let due = since + this.idle;
        loop {
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // The timer was set for an earlier read, or this one has waited too long.
            if Instant::now() >= due {
                this.body = None;
                return Poll::Ready(Some(Err(idle_timeout(this.idle))));
            }
            this.timer.as_mut().reset(due);
        }
    }
}

fn idle_timeout(after: Duration) -> ProviderError {
    ProviderError::Timeout {
        phase: TimeoutPhase::Idle,
        after,
    }
}

/// One named server-sent event, `event: <type>` and `data: <json>`, as Anthropic's Messages API
/// and OpenAI's Responses API frame theirs.
pub fn named_event(event: &str, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(event.len() + data.len() + 17);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out.freeze()
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field; empty when the upstream sent none.
    pub(crate) event: String,
    pub(crate) data: String,
}

/// Turns lines into frames (events, JSON lines).
pub(crate) trait Framing: Send {
    type Frame: Send;
    fn line(&mut self, line: &str) -> Result<Option<Self::Frame>, ProviderError>;
    /// The body ended: whatever frame was still being assembled.
    fn finish(&mut self) -> Option<Self::Frame>;
}

/// Whether the stream goes on after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The upstream's end marker (`[DONE]`, `message_stop`, `done: true`).
    Done,
}

/// Turns upstream frames into OpenAI chunks.
pub(crate) trait Translate<F>: Send {
    fn frame(&mut self, frame: F, out: &mut Vec<StreamEvent>) -> Result<Flow, ProviderError>;
    /// The body ended without an end marker: emit what is owed, or fail if the answer was cut.
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;
}

/// Drives `body → lines → frames → chunks`, yielding chunks as soon as they are made.
/// Dropping the returned stream drops the body, which closes the upstream connection.
pub(crate) fn translate<F, T>(body: ByteStream, framing: F, translator: T) -> ChatStream
where
    F: Framing + Unpin + 'static,
    T: Translate<F::Frame> + Unpin + 'static,
{
    Box::pin(Driver {
        lines: LineReader::new(body),
        framing,
        translator,
        out: VecDeque::new(),
        made: Vec::new(),
        finished: false,
    })
}

/// The stream [`translate`] returns, polled in place: a chunk moves no state around.
struct Driver<F, T> {
    lines: LineReader,
    framing: F,
    translator: T,
    out: VecDeque<StreamEvent>,
    /// The translator's output for one line, kept so that its allocation serves every line.
    made: Vec<StreamEvent>,
    finished: bool,
}

impl<F, T> Stream for Driver<F, T>
where
    F: Framing + Unpin,
    T: Translate<F::Frame> + Unpin,
{
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let driver = self.get_mut();
        loop {
            if let Some(event) = driver.out.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if driver.finished {
                return Poll::Ready(None);
            }
            if let Err(err) = ready!(driver.poll_advance(cx)) {
                driver.finished = true;
                return Poll::Ready(Some(Err(err)));
            }
        }
    }
}

impl<F: Framing, T: Translate<F::Frame>> Driver<F, T> {
    /// Reads one line and translates whatever frame it completes.
    fn poll_advance(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        let line = ready!(self.lines.poll_next_line(cx))?;
        let mut made = std::mem::take(&mut self.made);
        match line {
            Some(line) => {
                // Checked in place: a line is not copied into a `String` of its own.
                let line = std::str::from_utf8(self.lines.line(line)).map_err(|_| {
                    ProviderError::InvalidResponse("stream is not valid UTF-8".into())
                })?;
                if let Some(frame) = self.framing.line(line)? {
                    self.apply(frame, &mut made)?;
                }
            }
            None => {
                self.finished = true;
                if let Some(frame) = self.framing.finish()
                    && self.apply(frame, &mut made)? == Flow::Done
                {
                    self.out.extend(made);
                    return Poll::Ready(Ok(()));
                }
                self.translator.end(&mut made)?;
            }
        }
        self.out.extend(made.drain(..));
        self.made = made;
        Poll::Ready(Ok(()))
    }

    fn apply(
        &mut self,
        frame: F::Frame,
        made: &mut Vec<StreamEvent>,
    ) -> Result<Flow, ProviderError> {
        let flow = self.translator.frame(frame, made)?;
        if flow == Flow::Done {
            self.finished = true;
        }
        Ok(flow)
    }
}

// === impl LineReader ===

/// Splits a byte stream into UTF-8 lines without their `\n` / `\r\n`. A line is lent out of
/// the reader's buffer, not split off into a buffer of its own: the framing copies what it
/// keeps anyway.
struct LineReader {
    body: ByteStream,
    buf: Vec<u8>,
    /// Where the next line starts; what comes before it was lent out already.
    start: usize,
    /// How much of `buf` past `start` is known to hold no `\n`, so a long line is scanned once.
    scanned: usize,
    eof: bool,
}

impl LineReader {
    fn new(body: ByteStream) -> Self {
        Self {
            body,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            eof: false,
        }
    }

    /// Where the next line is in [`Self::line`]'s buffer; `None` once the body is over.
    fn poll_next_line(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Range<usize>>, ProviderError>> {
        loop {
            let from = self.start + self.scanned;
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[from..]) {
                let newline = from + pos;
                let end = if newline > self.start && self.buf[newline - 1] == b'\r' {
                    newline - 1
                } else {
                    newline
                };
                let line = self.start..end;
                self.start = newline + 1;
                self.scanned = 0;
                return Poll::Ready(Ok(Some(line)));
            }
            self.scanned = self.buf.len() - self.start;
            if self.scanned > MAX_FRAME_BYTES {
                return Poll::Ready(Err(too_big()));
            }
            if self.eof {
                if self.scanned == 0 {
                    return Poll::Ready(Ok(None));
                }
                let line = self.start..self.buf.len();
                self.start = self.buf.len();
                self.scanned = 0;
                return Poll::Ready(Ok(Some(line)));
            }
            // The lines lent out are done with; a partial line moves to the front (once: it
            // stays there until it is complete). Done again after a `Pending`, it is a no-op.
            self.buf.drain(..self.start);
            self.start = 0;
            match ready!(self.body.poll_next_unpin(cx)) {
                Some(chunk) => self.buf.extend_from_slice(&chunk?),
                None => self.eof = true,
            }
        }
    }

    fn line(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }
}

fn too_big() -> ProviderError {
    ProviderError::InvalidResponse(format!(
        "a stream event exceeds {} MiB",
        MAX_FRAME_BYTES / (1024 * 1024)
    ))
}

// === impl SseFraming ===

/// Assembles `event:` / `data:` lines into events at each blank line.
#[derive(Debug, Default)]
pub(crate) struct SseFraming {
    event: String,
    data: String,
    has_data: bool,
}

impl Framing for SseFraming {
    type Frame = SseEvent;

    fn line(&mut self, line: &str) -> Result<Option<SseEvent>, ProviderError> {
        if line.is_empty() {
            return Ok(self.finish());
        }
        if line.starts_with(':') {
            return Ok(None); // comment, e.g. OpenRouter's ": OPENROUTER PROCESSING" keep-alives
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > MAX_FRAME_BYTES {
                    return Err(too_big());
                }
            }
            _ => {} // id, retry and unknown fields carry nothing we use
        }
        Ok(None)
    }

    fn finish(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

// === impl NdjsonFraming ===

/// One JSON document per non-empty line (Ollama).
#[derive(Debug, Default)]
pub(crate) struct NdjsonFraming;

impl Framing for NdjsonFraming {
    type Frame = String;

    fn line(&mut self, line: &str) -> Result<Option<String>, ProviderError> {
        let line = line.trim();
        Ok((!line.is_empty()).then(|| line.to_owned()))
    }

    fn finish(&mut self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    use super::*;

    /// A body of `chunks` chunks, `gap` apart, that then ends or (with `stall`) goes quiet.
    fn paced(
        chunks: usize,
        gap: Duration,
        stall: bool,
        idle: Duration,
    ) -> IdleLimited<impl Body<Data = Bytes, Error = std::io::Error> + Unpin> {
        let body = futures_util::stream::unfold(0, move |sent| async move {
            if sent == chunks {
                if stall {
                    std::future::pending::<()>().await;
                }
                return None;
            }
            tokio::time::sleep(gap).await;
            let chunk = Frame::data(Bytes::from_static(b"chunk"));
            Some((Ok::<_, std::io::Error>(chunk), sent + 1))
        });
        IdleLimited {
            body: Some(StreamBody::new(Box::pin(body))),
            idle,
            waiting_since: None,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    #[tokio::test]
    async fn a_body_slower_in_all_than_its_idle_limit_but_never_idle_that_long_ends_well() {
        let idle = Duration::from_millis(300);
        let chunks: Vec<_> = paced(6, Duration::from_millis(100), false, idle)
            .collect()
            .await;
        assert_eq!(chunks.len(), 6);
        assert!(chunks.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn a_consumer_slow_to_ask_again_is_not_counted_against_the_upstream() {
        let mut body = paced(3, Duration::ZERO, false, Duration::from_millis(100));
        for _ in 0..3 {
            assert!(body.next().await.unwrap().is_ok());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(body.next().await.is_none());
    }

    #[tokio::test]
    async fn a_body_that_goes_quiet_ends_with_an_idle_timeout() {
        let idle = Duration::from_millis(150);
        let started = Instant::now();
        let chunks: Vec<_> = paced(2, Duration::from_millis(50), true, idle)
            .collect()
            .await;
        assert_eq!(chunks.len(), 3);
        let error = chunks[2].as_ref().unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    fn body(chunks: &[&str]) -> ByteStream {
        let chunks: Vec<Result<Bytes, ProviderError>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c.as_bytes())))
            .collect();
        Box::pin(futures_util::stream::iter(chunks))
    }

    /// Emits each event's data as a chunk; `[DONE]` ends the stream; EOF without it fails.
    struct Echo;
    impl Translate<SseEvent> for Echo {
        fn frame(
            &mut self,
            f: SseEvent,
            out: &mut Vec<StreamEvent>,
        ) -> Result<Flow, ProviderError> {
            if f.data == "[DONE]" {
                return Ok(Flow::Done);
            }
            out.push(StreamEvent::new(
                format!("{}|{}", f.event, f.data).into(),
                None,
                false,
            ));
            Ok(Flow::Continue)
        }
        fn end(&mut self, _: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
            Err(ProviderError::InvalidResponse("cut".into()))
        }
    }

    async fn collect(stream: ChatStream) -> Vec<Result<String, String>> {
        stream
            .map(|r| {
                r.map(|e| String::from_utf8(e.data.to_vec()).unwrap())
                    .map_err(|e| e.to_string())
            })
            .collect()
            .await
    }

    /// Lines lent out of one buffer: a line split over three chunks after lines already lent
    /// out, a `\r` whose `\n` comes in the next chunk, blank lines of both kinds, and a last
    /// line without its newline.
    #[tokio::test]
    async fn lines_are_found_across_chunks_without_their_line_ends() {
        let mut lines = LineReader::new(body(&["one\r\ntw", "o-and-", "a-half\r", "\n\r\n\nlast"]));
        let mut seen = Vec::new();
        loop {
            let next = std::future::poll_fn(|cx| lines.poll_next_line(cx)).await;
            let Some(line) = next.unwrap() else { break };
            seen.push(String::from_utf8(lines.line(line).to_vec()).unwrap());
        }
        assert_eq!(seen, ["one", "two-and-a-half", "", "", "last"]);
    }

    #[tokio::test]
    async fn events_split_across_chunks_and_crlf_are_reassembled() {
        let s = translate(
            body(&[
                "event: a\r\ndata: {\"x\"",
                ":1}\r\n\r\n: keep-alive\n\ndata: l1\ndata: l2\n",
                "\ndata: [DONE]\n\n",
            ]),
            SseFraming::default(),
            Echo,
        );
        assert_eq!(
            collect(s).await,
            vec![Ok("a|{\"x\":1}".to_owned()), Ok("|l1\nl2".to_owned())]
        );
    }

    #[tokio::test]
    async fn end_without_marker_is_an_error_item() {
        let s = translate(body(&["data: one\n\n"]), SseFraming::default(), Echo);
        let items = collect(s).await;
        assert_eq!(items.len(), 2);
        assert!(items[1].as_ref().unwrap_err().contains("cut"));
    }

    #[tokio::test]
    async fn an_endless_event_is_cut_off() {
        let big = "x".repeat(1024 * 1024);
        let mut chunks = vec!["data: "];
        chunks.extend(std::iter::repeat_n(big.as_str(), 5));
        let items = collect(translate(body(&chunks), SseFraming::default(), Echo)).await;
        assert_eq!(items.len(), 1);
        assert!(
            items[0].as_ref().unwrap_err().contains("exceeds"),
            "{items:?}"
        );
    }

    #[test]
    fn ndjson_skips_blank_lines() {
        let mut f = NdjsonFraming;
        assert_eq!(f.line("  ").unwrap(), None);
        assert_eq!(f.line("{\"a\":1}").unwrap().as_deref(), Some("{\"a\":1}"));
    }
}
