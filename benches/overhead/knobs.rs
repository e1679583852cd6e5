//! What the bench runs, from its environment knobs (listed in `main.rs`), and the two axes of its
//! rows: the API the client speaks and whether the answer streams.

use std::time::Duration;

/// The environment knobs, read once.
pub struct Knobs {
    pub concurrency: Vec<usize>,
    pub seconds: f64,
    pub max_requests: Option<usize>,
    pub chunks: usize,
    pub open_streams: usize,
    pub pace: Duration,
    pub gateway_cpus: Option<String>,
    pub busy_poll: Option<String>,
    pub dialects: Vec<Dialect>,
    /// CPUs for this process (the load generator and the mock upstream), so that they never
    /// take the gateway's CPU from it.
    pub client_cpus: Option<String>,
    /// Keep the bench's directory (the gateway's config, database, log and callgrind dumps).
    pub keep: bool,
    /// Requests per counted phase in the callgrind mode; `None` runs the timed bench.
    pub callgrind: Option<usize>,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    Json,
    Stream,
}

impl Mode {
    pub fn key(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Stream => "stream",
        }
    }
}

/// Which API the client speaks: OpenAI's chat completions, or Anthropic's Messages (to an
/// Anthropic-kind upstream, natively).
#[derive(Clone, Copy, PartialEq)]
pub enum Dialect {
    Chat,
    Messages,
}

impl Dialect {
    const ALL: [Self; 2] = [Self::Chat, Self::Messages];

    /// Its name in `TOLLGATE_BENCH_DIALECTS`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Messages => "messages",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "/v1/chat/completions",
            Self::Messages => "/v1/messages",
        }
    }

    /// The model the gateway routes, and the upstream's name for it. A GPT-4o-era name and
    /// another, so the gateway needs both tokenizer vocabularies (`o200k_base` and
    /// `cl100k_base`), as a real catalogue does.
    pub fn models(self) -> (&'static str, &'static str) {
        match self {
            Self::Chat => ("gpt-4o-mini", "real-model"),
            Self::Messages => ("bench-claude", "real-claude"),
        }
    }

    /// How a complete stream of this dialect ends.
    pub fn end(self) -> &'static str {
        match self {
            Self::Chat => "data: [DONE]\n\n",
            Self::Messages => "data: {\"type\":\"message_stop\"}\n\n",
        }
    }

    pub fn name(self, mode: Mode) -> &'static str {
        match (self, mode) {
            (Self::Chat, Mode::Json) => "json",
            (Self::Chat, Mode::Stream) => "stream",
            (Self::Messages, Mode::Json) => "messages json",
            (Self::Messages, Mode::Stream) => "messages stream",
        }
    }
}

impl Knobs {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            concurrency: var("TOLLGATE_BENCH_CONCURRENCY")
                .unwrap_or_else(|| "1,32,128".into())
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse()
                        .expect("TOLLGATE_BENCH_CONCURRENCY: numbers")
                })
                .collect(),
            seconds: var("TOLLGATE_BENCH_SECONDS").map_or(3.0, |s| s.parse().expect("seconds")),
            max_requests: var("TOLLGATE_BENCH_REQUESTS").map(|n| n.parse().expect("a count")),
            chunks: var("TOLLGATE_BENCH_CHUNKS").map_or(20, |n| n.parse().expect("a count")),
            open_streams: var("TOLLGATE_BENCH_OPEN_STREAMS")
                .map_or(1000, |n| n.parse().expect("a count")),
            pace: Duration::from_millis(
                var("TOLLGATE_BENCH_PACE_MS").map_or(5, |n| n.parse().expect("milliseconds")),
            ),
            gateway_cpus: var("TOLLGATE_BENCH_GATEWAY_CPUS"),
            client_cpus: var("TOLLGATE_BENCH_CLIENT_CPUS"),
            keep: var("TOLLGATE_BENCH_KEEP").is_some(),
            dialects: var("TOLLGATE_BENCH_DIALECTS")
                .unwrap_or_else(|| "chat,messages".into())
                .split(',')
                .map(|d| {
                    let d = d.trim();
                    Dialect::ALL
                        .into_iter()
                        .find(|dialect| dialect.key() == d)
                        .unwrap_or_else(|| {
                            panic!("TOLLGATE_BENCH_DIALECTS: chat or messages, not {d}")
                        })
                })
                .collect(),
            busy_poll: var("TOLLGATE_BENCH_BUSY_POLL"),
            callgrind: var("TOLLGATE_BENCH_CALLGRIND")
                .map(|n| n.parse().expect("TOLLGATE_BENCH_CALLGRIND: a count"))
                .filter(|&n| n > 0),
        }
    }
}
