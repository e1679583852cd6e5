//! Logs: one format chosen by config, the level by config or `RUST_LOG`, written off the
//! request path. Metrics: the process's Prometheus recorder and the cache counters.

mod timestamps;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;

use crate::config::{LogConfig, LogFormat};

/// Log lines waiting for the writer thread; beyond this a line is written directly.
const LOG_QUEUE: usize = 16_384;
/// The writer thread gathers lines this long before one write, so a busy gateway makes one
/// `write(2)` per batch instead of one per request.
const LOG_BATCH_WINDOW: Duration = Duration::from_millis(5);

/// Flushes the log queue when dropped; hold it for as long as the process logs.
#[must_use = "dropping the guard flushes and stops the log writer"]
pub struct LogGuard {
    sender: Option<SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // Closing our sender ends the thread once every other sender (the subscriber's) is
        // gone too; the global subscriber lives for the process, so do not wait for that: the
        // thread drains what is queued on its next wake, and we give it a moment.
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let deadline = std::time::Instant::now() + Duration::from_millis(200);
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::yield_now();
            }
        }
    }
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init_logging(config: &LogConfig) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (sender, receiver) = std::sync::mpsc::sync_channel(LOG_QUEUE);
    let thread = std::thread::Builder::new()
        .name("tollgate-log".into())
        .spawn(move || write_logs(&receiver))
        .ok();
    // Without a writer thread, write directly (a closed channel falls through to stderr).
    let writer = QueuedStderr {
        sender: sender.clone(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_timer(timestamps::Timestamps)
        // Colour codes only for a person at a terminal, never in files or pipes.
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests start several gateways in one process) is not an error.
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.fmt_fields(TextFields).try_init(),
    };
    LogGuard {
        sender: Some(sender),
        thread,
    }
}

/// Field formatting for the text log. Values that come from requests (an unverified token's
/// `iss`, a tenant claim, an upstream's error text) must not be able to start a line of their
/// own or reach the terminal as escape codes: every value is written bare only when it is
/// one plain word (no space, quote, `=` or control character) and quoted with Rust's escaping
/// otherwise; strings are always quoted, and the message has its control characters escaped.
/// (The JSON format escapes by construction.)
struct TextFields;

impl<'w> MakeVisitor<Writer<'w>> for TextFields {
    type Visitor = TextVisitor<'w>;

    fn make_visitor(&self, writer: Writer<'w>) -> TextVisitor<'w> {
        TextVisitor {
            writer,
            first: true,
            result: Ok(()),
        }
    }
}

struct TextVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl TextVisitor<'_> {
    fn field(&mut self, field: &Field, value: &str, quote: bool) {
        let name = field.name();
        if name == "message" {
            return self.write(None, |writer| write_escaped(writer, value));
        }
        // One pass over the bytes settles almost every value: an ASCII word is written as it is,
        // bare or between quotes (Debug's escaping leaves it unchanged).
        let ascii_word = is_ascii_word(value);
        self.write(Some(name), |writer| match quote {
            false if ascii_word || is_plain_word(value) => writer.write_str(value),
            true if ascii_word => {
                writer.write_char('"')?;
                writer.write_str(value)?;
                writer.write_char('"')
            }
            _ => write!(writer, "{value:?}"),
        });
    }

    /// A number: always one plain word, its digits written without `core::fmt`'s machinery.
    fn number(&mut self, field: &Field, value: impl itoa::Integer) {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(value);
        self.write(Some(field.name()), |writer| writer.write_str(digits));
    }

    /// One field, after a space unless it is the first: `name=` (none for the message) and
    /// what `value` writes.
    fn write(
        &mut self,
        name: Option<&str>,
        value: impl FnOnce(&mut Writer<'_>) -> std::fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.writer.write_char(' ')?;
            }
            if let Some(name) = name {
                self.writer.write_str(name)?;
                self.writer.write_char('=')?;
            }
            value(&mut self.writer)
        })();
    }
}

impl Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value, field.name() != "message");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let value = if value { "true" } else { "false" };
        self.write(Some(field.name()), |writer| writer.write_str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` and `?value` fields render through Display or Debug, so their text is only
        // known once rendered; one buffer per thread keeps that free of allocations.
        thread_local! {
            static RENDERED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        RENDERED.with_borrow_mut(|rendered| {
            rendered.clear();
            if write!(rendered, "{value:?}").is_err() {
                self.result = Err(std::fmt::Error);
                return;
            }
            self.field(field, rendered, false);
            // A huge value once must not pin its buffer for the thread's life.
            if rendered.capacity() > 4096 {
                *rendered = String::new();
            }
        });
    }
}

impl VisitOutput<std::fmt::Result> for TextVisitor<'_> {
    fn finish(self) -> std::fmt::Result {
        self.result
    }
}

impl VisitFmt for TextVisitor<'_> {
    fn writer(&mut self) -> &mut dyn std::fmt::Write {
        &mut self.writer
    }
}

/// [`is_plain_word`] for ASCII, in one pass over the bytes: printable, not a space, and none of
/// `"`, `=`, `\`.
fn is_ascii_word(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| matches!(b, b'!'..=b'~') && !matches!(b, b'"' | b'=' | b'\\'))
}

/// One word a log reader cannot misread: no whitespace, quotes, `=`, backslashes or control
/// characters.
fn is_plain_word(value: &str) -> bool {
    let odd = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\');
    !value.is_empty() && !value.chars().any(odd)
}

/// Writes `text` with control characters (newlines, ESC, …) escaped as Rust does.
fn write_escaped(writer: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    for part in text.split_inclusive(char::is_control) {
        match part.char_indices().last() {
            Some((at, last)) if last.is_control() => {
                writer.write_str(&part[..at])?;
                write!(writer, "{}", last.escape_debug())?;
            }
            _ => writer.write_str(part)?,
        }
    }
    Ok(())
}

/// Hands each formatted line to the writer thread.
#[derive(Clone)]
struct QueuedStderr {
    sender: SyncSender<Vec<u8>>,
}

/// One event's line, sent when the formatter is done with it.
struct QueuedLine {
    sender: SyncSender<Vec<u8>>,
    line: Vec<u8>,
}

impl<'a> MakeWriter<'a> for QueuedStderr {
    type Writer = QueuedLine;

    fn make_writer(&'a self) -> QueuedLine {
        QueuedLine {
            sender: self.sender.clone(),
            line: Vec::new(),
        }
    }
}

impl Write for QueuedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.line);
        // A full queue or a stopped writer: no line is dropped, it is written here instead.
        if let Err(TrySendError::Full(line) | TrySendError::Disconnected(line)) =
            self.sender.try_send(line)
        {
            let _ = std::io::stderr().lock().write_all(&line);
        }
    }
}

/// The writer thread: waits for a line, gathers what else arrives within the batch window,
/// writes it all at once.
// A plain thread that owns no runtime: sleeping here blocks nothing else.
#[allow(clippy::disallowed_methods)]
fn write_logs(receiver: &Receiver<Vec<u8>>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    while let Ok(line) = receiver.recv() {
        let _ = out.write_all(&line);
        std::thread::sleep(LOG_BATCH_WINDOW);
        while let Ok(line) = receiver.try_recv() {
            let _ = out.write_all(&line);
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

/// Latency buckets (seconds) for every `_seconds` histogram: from 50 µs (the gateway's own
/// overhead) to 5 minutes (a long stream).
const SECONDS_BUCKETS: [f64; 20] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The process's Prometheus recorder, installed on first use. One per process: every gateway
/// in it (tests start several) shares it.
pub fn metrics() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            register_zeroes();
            Some(handle)
        })
        .as_ref()
}

/// Every metric family's `# HELP` line. A family the gateway records must be described here
/// (`promtool check metrics` in CI fails on one without).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "tollgate_http_requests_total",
        "HTTP requests answered, by route (a fixed set of names) and status class."
    );
    describe_counter!(
        "tollgate_requests_total",
        "Data-plane requests that reached routing, by model, provider, endpoint, ending and status class."
    );
    describe_counter!(
        "tollgate_tokens_total",
        "Tokens metered, by model and kind (prompt, completion, cached, reasoning)."
    );
    describe_histogram!(
        "tollgate_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a data-plane request's arrival to its end, streams included."
    );
    describe_histogram!(
        "tollgate_time_to_first_token_seconds",
        metrics::Unit::Seconds,
        "Time from a streaming request's arrival to its first chunk."
    );
    describe_histogram!(
        "tollgate_upstream_duration_seconds",
        metrics::Unit::Seconds,
        "Time spent waiting on upstream providers per request, retries included."
    );
    describe_histogram!(
        "tollgate_gateway_overhead_seconds",
        metrics::Unit::Seconds,
        "Time the gateway itself added to a request (its duration less the upstream's)."
    );
    describe_counter!(
        "tollgate_auth_failures_total",
        "Refused credentials, by reason code (see the README's reason table)."
    );
    describe_counter!(
        "tollgate_console_logins_total",
        "Console sign-ins, by result: success, or the reason code of a refusal."
    );
    describe_counter!(
        "tollgate_cache_requests_total",
        "Lookups in the in-memory caches, by cache and result (hit or miss)."
    );
    describe_counter!(
        "tollgate_stale_served_total",
        "Answers served from a cache's last good copy because the database failed (auth.stale_if_error), by cache."
    );
    describe_counter!(
        "tollgate_jwks_fetches_total",
        "Fetches of issuers' JWKS documents, by result."
    );
    describe_counter!(
        "tollgate_change_listener_reconnects_total",
        "Times the PostgreSQL change listener reconnected (every cache is flushed then)."
    );
    describe_counter!(
        "tollgate_quota_rejections_total",
        "Requests refused by a quota or rate limit, by limit."
    );
    describe_counter!(
        "tollgate_quota_rebuilds_total",
        "Rebuilds of the shared Redis counters from the usage in the database."
    );
    describe_gauge!(
        "tollgate_quota_degraded",
        "1 while Redis is unreachable (admission refuses or counts per replica, by redis.on_unavailable), else 0."
    );
    describe_gauge!(
        "tollgate_circuit_breaker_state",
        "Each target's circuit breaker: 0 closed, 1 open, 2 half-open."
    );
    describe_counter!(
        "tollgate_usage_batches_total",
        "Usage event batches handled by the writer, by result (inserted, spilled, overflowed, failed)."
    );
    describe_counter!(
        "tollgate_usage_retries_total",
        "Retries of usage batches the database refused."
    );
    describe_gauge!(
        "tollgate_usage_queue_depth",
        "Usage events waiting in memory for the writer."
    );
    describe_gauge!(
        "tollgate_usage_held_events",
        "Usage events held in memory only: refused by the spill file (a full disk) while the database is away."
    );
    describe_counter!(
        "tollgate_usage_journaled_events_total",
        "Usage events written to the crash journal before being queued for the database."
    );
    describe_counter!(
        "tollgate_usage_journal_errors_total",
        "Writes to the usage journal that failed (those events were not crash-safe until stored)."
    );
    describe_counter!(
        "tollgate_usage_abandoned_events_total",
        "Usage events given up at shutdown because neither the database nor the spill file took them in time."
    );
    describe_counter!(
        "tollgate_webhook_deliveries_total",
        "Webhook delivery attempts, by result: delivered, failed (to be retried) or gave_up."
    );
    describe_gauge!(
        "tollgate_webhook_pending",
        "Webhook deliveries in the shared outbox not yet delivered nor given up (every replica reports the whole outbox)."
    );
    describe_counter!(
        "tollgate_config_reloads_total",
        "Configuration reloads (SIGHUP or the admin API), by result: applied, or invalid (the running configuration kept serving)."
    );
    describe_gauge!(
        "tollgate_usage_spilled_events",
        "Usage events in the local spill file, waiting to be replayed into the database."
    );
}

/// Counters that only move on rare events still belong in every scrape, at zero.
fn register_zeroes() {
    metrics::counter!("tollgate_usage_retries_total").absolute(0);
    for result in ["inserted", "spilled", "overflowed", "failed"] {
        metrics::counter!("tollgate_usage_batches_total", "result" => result).increment(0);
    }
    for result in ["ok", "error"] {
        metrics::counter!("tollgate_jwks_fetches_total", "result" => result).increment(0);
    }
    metrics::gauge!("tollgate_usage_spilled_events").increment(0.0);
    metrics::gauge!("tollgate_usage_held_events").increment(0.0);
    metrics::counter!("tollgate_usage_abandoned_events_total").absolute(0);
    metrics::counter!("tollgate_usage_journaled_events_total").absolute(0);
    metrics::counter!("tollgate_usage_journal_errors_total").absolute(0);
    metrics::counter!("tollgate_change_listener_reconnects_total").absolute(0);
    for result in ["delivered", "failed", "gave_up"] {
        metrics::counter!("tollgate_webhook_deliveries_total", "result" => result).increment(0);
    }
    metrics::gauge!("tollgate_webhook_pending").increment(0.0);
    for result in ["applied", "invalid"] {
        metrics::counter!("tollgate_config_reloads_total", "result" => result).increment(0);
    }
}

/// Hit and miss counters of one in-memory cache, resolved once so a lookup costs an atomic add.
#[derive(Clone)]
pub struct CacheStats {
    hit: metrics::Counter,
    miss: metrics::Counter,
}

impl CacheStats {
    /// `tollgate_cache_requests_total{cache, result}`.
    pub fn new(cache: &'static str) -> Self {
        Self {
            hit: metrics::counter!("tollgate_cache_requests_total", "cache" => cache, "result" => "hit"),
            miss: metrics::counter!("tollgate_cache_requests_total", "cache" => cache, "result" => "miss"),
        }
    }

    pub fn record(&self, hit: bool) {
        if hit {
            self.hit.increment(1);
        } else {
            self.miss.increment(1);
        }
    }
}

impl std::fmt::Debug for CacheStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheStats")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text_line(log: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_level(false)
            .fmt_fields(TextFields)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = captured.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn the_ascii_shortcut_finds_exactly_the_plain_ascii_words() {
        for byte in 0..=127_u8 {
            let one = char::from(byte).to_string();
            let inside = format!("a{one}b");
            for text in [one, inside] {
                assert_eq!(is_ascii_word(&text), is_plain_word(&text), "{text:?}");
            }
        }
        assert!(!is_ascii_word(""));
        assert!(
            !is_ascii_word("café"),
            "not ASCII: the general check decides"
        );
    }

    #[test]
    fn text_fields_quote_what_could_be_misread_and_nothing_else() {
        let line = text_line(|| {
            tracing::info!(
                count = 12_u64,
                delta = -3_i64,
                flag = true,
                plain = "chat",
                spaced = "two words",
                quoted = "say \"hi\"",
                accented = "café",
                hidden = "a\u{200b}b",
                shown = %"bare",
                odd = %"x=y",
                "the message\nwith a break"
            );
        });
        assert_eq!(
            line,
            concat!(
                r#"the message\nwith a break count=12 delta=-3 flag=true plain="chat" "#,
                r#"spaced="two words" quoted="say \"hi\"" accented="café" "#,
                r#"hidden="a\u{200b}b" shown=bare odd="x=y""#,
                "\n"
            )
        );
    }
}
