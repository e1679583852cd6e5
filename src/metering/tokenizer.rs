//! Token estimates, for when an upstream reports no usage and for admission (the quota stage
//! reserves an estimated prompt before the call). OpenAI's vocabularies only, bundled with
//! `tiktoken-rs` so nothing is fetched; for other model families the count is an
//! approximation, which is why upstream-reported usage always wins.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, OnceLock};

use tollgate_providers::ChatRequest;

use super::vocabulary::Vocabulary;

/// Framing tokens per chat message (`<|start|>role … <|end|>`): OpenAI's cookbook counts 3, and
/// one more covers the name or tool-call separators most messages carry.
const TOKENS_PER_MESSAGE: u64 = 4;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMING: u64 = 3;

/// The two vocabularies current chat models use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-5, the o-series.
    O200kBase,
    /// GPT-4, GPT-3.5, and the fallback for everything else.
    Cl100kBase,
}

impl Encoding {
    /// The vocabulary for a model name, with or without a `provider/` prefix. Compared without
    /// regard to case and without a lowercased copy: every request asks, twice.
    pub fn for_model(model: &str) -> Self {
        let name = model.rsplit('/').next().unwrap_or(model).as_bytes();
        let starts_with = |prefix: &str| {
            name.get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
        };
        let o_series =
            name.len() >= 2 && name[0].eq_ignore_ascii_case(&b'o') && name[1].is_ascii_digit();
        let o200k = o_series
            || [
                "gpt-4o",
                "chatgpt-4o",
                "gpt-4.1",
                "gpt-4.5",
                "gpt-5",
                "gpt-oss",
            ]
            .into_iter()
            .any(starts_with);
        if o200k {
            Self::O200kBase
        } else {
            Self::Cl100kBase
        }
    }

    fn vocabulary(self) -> &'static Vocabulary {
        static O200K_BASE: OnceLock<Vocabulary> = OnceLock::new();
        static CL100K_BASE: OnceLock<Vocabulary> = OnceLock::new();
        match self {
            Self::O200kBase => O200K_BASE.get_or_init(Vocabulary::o200k_base),
            Self::Cl100kBase => CL100K_BASE.get_or_init(Vocabulary::cl100k_base),
        }
    }

    /// Tokens in `text`. Special-token markup a user typed (`<|endoftext|>`) is counted as the
    /// plain text it is. Long texts are counted once and remembered (see [`Remembered`]).
    pub fn count(self, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        if text.len() < REMEMBER_FROM_BYTES {
            return self.count_now(text);
        }
        Remembered::get().count(self, text)
    }

    fn count_now(self, text: &str) -> u64 {
        u64::try_from(self.vocabulary().count(text)).unwrap_or(u64::MAX)
    }
}

/// Texts at least this long have their counts remembered; shorter ones cost about as much to
/// count as to look up.
const REMEMBER_FROM_BYTES: usize = 512;
/// Counts per shard before the shard starts over: 16 × 4,096 texts, about 2 MB at most.
const REMEMBERED_PER_SHARD: usize = 4096;

/// Token counts of long texts, by a hash of the vocabulary and the text. Counting costs about
/// 85 ns per token (a 10k-token prompt: ~1 ms of the gateway's CPU before the upstream call),
/// and the long texts come back: a chat resends its whole history with every turn, an agent its
/// tool definitions with every call. A lookup costs one hash of the text.
///
/// The key is a 64-bit hash with a per-process random seed, so a collision is a one in 10^10
/// event nobody can aim for; and all it could do is skew a reservation, which settles to the
/// upstream's reported usage.
struct Remembered {
    hasher: foldhash::quality::RandomState,
    shards: [Mutex<HashMap<u64, u64>>; 16],
}

impl Remembered {
    fn get() -> &'static Self {
        static REMEMBERED: OnceLock<Remembered> = OnceLock::new();
        REMEMBERED.get_or_init(|| Self {
            hasher: foldhash::quality::RandomState::default(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        })
    }

    fn count(&self, encoding: Encoding, text: &str) -> u64 {
        let key = self.hasher.hash_one((encoding, text));
        let shard = &self.shards[(key >> 60) as usize];
        if let Some(count) = shard.lock().ok().and_then(|known| known.get(&key).copied()) {
            return count;
        }
        // Counted outside the lock: two requests may count the same text at once, harmlessly.
        let count = encoding.count_now(text);
        if let Ok(mut known) = shard.lock() {
            if known.len() >= REMEMBERED_PER_SHARD {
                known.clear();
            }
            known.insert(key, count);
        }
        count
    }
}

/// The roles every chat uses, counted once per vocabulary: a message's role costs a table
/// lookup, not a pass of the tokenizer's regex.
const ROLES: [&str; 6] = [
    "system",
    "user",
    "assistant",
    "tool",
    "developer",
    "function",
];

impl Encoding {
    /// Tokens in a message's role.
    fn count_role(self, role: &str) -> u64 {
        // One table per vocabulary, so counting roles never loads a vocabulary nobody uses.
        static COUNTS: [std::sync::OnceLock<[u64; ROLES.len()]>; 2] =
            [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
        let counts = COUNTS[usize::from(self == Self::Cl100kBase)]
            .get_or_init(|| ROLES.map(|known| self.count(known)));
        match ROLES.iter().position(|known| *known == role) {
            Some(i) => counts[i],
            None => self.count(role),
        }
    }
}

/// The vocabularies loaded so far, for requests to wait on. Each costs a few MB and a few
/// hundred milliseconds of CPU to build, so none is loaded at start: an idle gateway holds none,
/// and one that only serves GPT-4o never holds cl100k.
static LOADED: [tokio::sync::OnceCell<()>; 2] = [
    tokio::sync::OnceCell::const_new(),
    tokio::sync::OnceCell::const_new(),
];

impl Encoding {
    /// Returns once this vocabulary is loaded. The first request that needs it loads it on a
    /// blocking thread (the runtime's workers go on serving) and waits, as do the requests that
    /// arrive meanwhile; every later one finds it loaded. Counting without waiting first still
    /// works — it loads the vocabulary on the caller's thread.
    pub async fn ready(self) {
        LOADED[usize::from(self == Self::Cl100kBase)]
            .get_or_init(|| async move {
                let started = std::time::Instant::now();
                if tokio::task::spawn_blocking(move || self.vocabulary())
                    .await
                    .is_err()
                {
                    // The blocking pool is shutting down: load here rather than fail a request.
                    self.vocabulary();
                }
                tracing::info!(encoding = ?self, took_ms = started.elapsed().as_millis() as u64,
                    "tokenizer vocabulary loaded");
            })
            .await;
    }
}

/// Waits until the vocabulary `model` counts with is loaded (see [`Encoding::ready`]).
pub async fn ready_for(model: &str) {
    Encoding::for_model(model).ready().await;
}

/// Loads the vocabularies these model names use on this thread, for tools and benchmarks that
/// must not measure the first load.
pub fn load_for<'a>(models: impl IntoIterator<Item = &'a str>) {
    for model in models {
        Encoding::for_model(model).vocabulary();
    }
}

/// The prompt tokens a chat request will cost, for the model it names: every message's text,
/// name and tool calls plus the framing around them, plus the tool definitions (sent to the
/// model as text, so counted as their JSON).
pub fn estimate_prompt(request: &ChatRequest) -> u64 {
    let encoding = Encoding::for_model(&request.model);
    let mut tokens = REPLY_PRIMING;
    for message in &request.messages {
        tokens += TOKENS_PER_MESSAGE;
        tokens += encoding.count_role(&message.role);
        // A string content is counted where it lies; only parts need joining.
        tokens += match &message.content {
            Some(serde_json::Value::String(text)) => encoding.count(text),
            _ => encoding.count(&message.text()),
        };
        if let Some(name) = &message.name {
            tokens += encoding.count(name);
        }
        for call in message.tool_calls.iter().flatten() {
            tokens += encoding.count(&call.function.name);
            tokens += encoding.count(&call.function.arguments);
        }
    }
    if let Some(tools) = &request.tools {
        for tool in tools {
            tokens += encoding.count(&tool.to_string());
        }
    }
    tokens
}

/// Tokens in a piece of generated text for `model`: a completion the upstream did not count,
/// or the part of a stream delivered before the client went away.
pub fn count_text(model: &str, text: &str) -> u64 {
    Encoding::for_model(model).count(text)
}

/// The tokens of an embeddings `input`: a string, an array of strings, or token arrays.
pub fn estimate_input(model: &str, input: &serde_json::Value) -> u64 {
    use serde_json::Value;
    let encoding = Encoding::for_model(model);
    match input {
        Value::String(text) => encoding.count(text),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => encoding.count(text),
                Value::Array(tokens) => tokens.len() as u64,
                Value::Number(_) => 1,
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_remembered_count_is_the_count() {
        let long = "The huts above Cortina open in late June. ".repeat(30);
        let other = "Crowds thin out after the first week of September. ".repeat(30);
        for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
            let direct = encoding.count_now(&long);
            assert!(direct > 100);
            assert_eq!(encoding.count(&long), direct, "first time: counted");
            assert_eq!(encoding.count(&long), direct, "second time: remembered");
            assert_eq!(encoding.count(&other), encoding.count_now(&other));
        }
    }

    #[test]
    fn picks_the_vocabulary_by_model_name() {
        for model in [
            "gpt-4o-mini",
            "openai/gpt-4o",
            "gpt-4.1-nano",
            "o3-mini",
            "o1",
            "gpt-5",
            "Azure/GPT-4O-mini",
            "O3",
        ] {
            assert_eq!(Encoding::for_model(model), Encoding::O200kBase, "{model}");
        }
        for model in [
            "gpt-4",
            "gpt-3.5-turbo",
            "claude-3-5-sonnet",
            "llama3",
            "ollama",
        ] {
            assert_eq!(Encoding::for_model(model), Encoding::Cl100kBase, "{model}");
        }
    }

    #[test]
    fn counts_known_strings() {
        // From OpenAI's cookbook: "tiktoken is great!" is 6 tokens in cl100k_base.
        assert_eq!(count_text("gpt-4", "tiktoken is great!"), 6);
        assert_eq!(count_text("gpt-3.5-turbo", "hello world"), 2);
        assert_eq!(count_text("gpt-4", ""), 0);
        // The other vocabulary splits differently but is as deterministic.
        let o200k = count_text("gpt-4o", "tiktoken is great!");
        assert!((4..=6).contains(&o200k), "{o200k}");
    }

    #[test]
    fn special_token_markup_is_plain_text() {
        // As ordinary text this is several tokens, never the single end-of-text token.
        assert!(count_text("gpt-4", "<|endoftext|>") > 1);
    }

    #[test]
    fn prompt_estimate_adds_framing_per_message() {
        let request: ChatRequest = serde_json::from_value(json!({
            "model": "gpt-4",
            "messages": [
                { "role": "system", "content": "hello world" },
                { "role": "user", "content": [{ "type": "text", "text": "tiktoken is great!" }] }
            ]
        }))
        .unwrap();
        // "system" and "user" are one token each in cl100k_base.
        let expected = REPLY_PRIMING + 2 * TOKENS_PER_MESSAGE + 1 + 2 + 1 + 6;
        assert_eq!(estimate_prompt(&request), expected);
    }

    #[test]
    fn tool_calls_and_definitions_count() {
        let bare: ChatRequest = serde_json::from_value(json!({
            "model": "gpt-4o",
            "messages": [{ "role": "assistant", "content": null }]
        }))
        .unwrap();
        let with_tools: ChatRequest = serde_json::from_value(json!({
            "model": "gpt-4o",
            "messages": [{ "role": "assistant", "content": null, "tool_calls": [
                { "id": "c1", "type": "function",
                  "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } }
            ]}],
            "tools": [{ "type": "function", "function": { "name": "get_weather" } }]
        }))
        .unwrap();
        assert!(estimate_prompt(&with_tools) > estimate_prompt(&bare) + 10);
    }
}
