//! Mock upstreams for tollgate's tests and benches: one loopback server on 127.0.0.1 port 0
//! that records what it was sent and answers in each provider's wire format.
//!
//! - [`Upstream`] is the server: it counts and records requests and notices when a client
//!   drops a streamed answer. What it answers is up to whoever starts it: a [`Step`] script
//!   ([`Upstream::start`], the fault-injecting upstream of the black-box tests), one fixed
//!   [`Reply`] ([`Upstream::replying`], the provider conformance suite), or any function of
//!   the request ([`Upstream::serve`], the overhead bench).
//! - The wire formats are free functions that render an [`Answer`]: [`openai`] (chat
//!   completions and embeddings), [`anthropic`], [`responses`], [`completions`], [`gemini`] and
//!   [`ollama`]. Whole answers are JSON values; streamed ones are [`Frames`].
//! - [`Usage`] is what an answer reports, normalised; [`Usages`] is the table a scripted
//!   upstream reports from, one entry per wire format.
//!
//! A test kit panics where a test would: when the loopback cannot be bound, or when a test asks
//! for something the upstream never received.

pub mod anthropic;
pub mod completions;
pub mod gemini;
pub mod ollama;
pub mod openai;
pub mod responses;
mod script;
mod server;

pub use script::Step;
pub use server::{Gate, Pace, Recorded, Recording, Reply, Stream, Then, Upstream};

/// Token counts an answer reports, normalised the way tollgate stores them; each wire format
/// spells them its own way (Anthropic's `input_tokens`, for one, leaves the cached out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every input token, those read from and written to a cache included.
    pub prompt: u64,
    pub completion: u64,
    /// Input tokens read from a cache.
    pub cached: u64,
    /// Input tokens written to a cache (Anthropic's `cache_creation_input_tokens`).
    pub cache_write: u64,
    /// Output tokens spent reasoning, counted in `completion`.
    pub reasoning: u64,
}

impl Usage {
    pub const fn new(prompt: u64, completion: u64) -> Self {
        Self {
            prompt,
            completion,
            cached: 0,
            cache_write: 0,
            reasoning: 0,
        }
    }

    pub const fn cached(self, cached: u64) -> Self {
        Self { cached, ..self }
    }

    pub const fn cache_write(self, cache_write: u64) -> Self {
        Self {
            cache_write,
            ..self
        }
    }

    pub const fn reasoning(self, reasoning: u64) -> Self {
        Self { reasoning, ..self }
    }

    pub const fn total(self) -> u64 {
        self.prompt + self.completion
    }
}

/// What a scripted upstream reports, per wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usages {
    /// OpenAI chat completions (and Azure's); `None` reports no usage at all. A stream reports
    /// it only when the request asked (`stream_options.include_usage`).
    pub chat: Option<Usage>,
    /// OpenAI embeddings: `prompt` only.
    pub embeddings: Usage,
    /// Anthropic Messages.
    pub messages: Usage,
    /// OpenAI Responses.
    pub responses: Usage,
    /// OpenAI legacy completions.
    pub completions: Usage,
    /// Gemini `generateContent` (its embeddings report none).
    pub gemini: Usage,
    /// Ollama `/api/chat`.
    pub ollama: Usage,
}

impl Usages {
    /// What [`Upstream::start`] reports unless told otherwise.
    pub const DEFAULT: Self = Self {
        chat: Some(Usage::new(7, 3)),
        embeddings: Usage::new(3, 0),
        // 9 fresh input tokens, 4 read from the cache, 2 written to it.
        messages: Usage::new(15, 5).cached(4).cache_write(2),
        responses: Usage::new(11, 6).cached(3).reasoning(2),
        completions: Usage::new(5, 4),
        gemini: Usage::new(11, 5).cached(3),
        ollama: Usage::new(13, 6),
    };
}

impl Default for Usages {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What an answer says, whichever wire format renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The model the answer names.
    pub model: String,
    /// The text of a whole (JSON) answer.
    pub text: String,
    /// The text of a streamed answer, one piece per chunk.
    pub pieces: Vec<String>,
    /// A call of this tool, with the arguments `{"city":"Paris"}`.
    pub tool: Option<String>,
    /// What the answer reports; `None` reports nothing where the format allows it.
    pub usage: Option<Usage>,
}

impl Answer {
    /// What a scripted upstream says: "Hello from {model}", or streamed "Hello", " from",
    /// " upstream".
    pub fn hello(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            text: format!("Hello from {model}"),
            pieces: ["Hello", " from", " upstream"].map(str::to_owned).to_vec(),
            tool: None,
            usage: None,
        }
    }

    /// The whole text a stream of this answer carries.
    pub fn streamed_text(&self) -> String {
        self.pieces.concat()
    }
}

/// A streamed answer (SSE events or NDJSON lines, one frame each), split where a stream that
/// dies mid-answer is cut.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frames {
    /// Before the first piece of text: the start of the message, pings, block starts.
    pub head: Vec<String>,
    /// One frame per piece of text (or of a tool call, where that is what streams).
    pub pieces: Vec<String>,
    /// After the text: block ends, the finish, the usage, the end marker.
    pub tail: Vec<String>,
}

impl Frames {
    /// Every frame, in order.
    pub fn whole(self) -> Vec<String> {
        let mut frames = self.head;
        frames.extend(self.pieces);
        frames.extend(self.tail);
        frames
    }

    /// The head and the first `n` pieces: a stream that dies mid-answer, without its end.
    pub fn cut(self, n: usize) -> Vec<String> {
        let mut frames = self.head;
        frames.extend(self.pieces.into_iter().take(n));
        frames
    }
}

/// Every wire format's tool call asks for the weather in Paris.
pub(crate) const TOOL_ARGUMENTS: &str = r#"{"city":"Paris"}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_stream_keeps_its_head_and_the_first_pieces() {
        let frames = Frames {
            head: vec!["start".into()],
            pieces: vec!["a".into(), "b".into(), "c".into()],
            tail: vec!["stop".into()],
        };
        assert_eq!(frames.clone().cut(2), ["start", "a", "b"]);
        assert_eq!(frames.clone().cut(9), ["start", "a", "b", "c"]);
        assert_eq!(frames.whole(), ["start", "a", "b", "c", "stop"]);
    }
}
