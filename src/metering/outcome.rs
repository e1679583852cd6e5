//! How one data-plane request ended: every routed request ends in exactly one [`record`] call,
//! streams included, even when the client went away mid-stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tollgate_providers::completions::{self, CompletionsRequest};
use tollgate_providers::messages::{self, MessagesRequest};
use tollgate_providers::responses::{self, ResponsesRequest};
use tollgate_providers::{ChatRequest, EmbeddingsRequest, Reported, Usage};

use super::delivered::Delivered;
use super::observed;
use super::{PriceBook, Tally, UsageEvent, UsageRecorder, tokenizer};
use crate::auth::Principal;
use crate::clock::Timestamp;
use crate::quota::{Admitted, Quotas};

/// Which route served the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Chat,
    ChatStream,
    Embeddings,
    Messages,
    MessagesStream,
    Responses,
    ResponsesStream,
    Completions,
    CompletionsStream,
}

/// How a request ended: the usage event's `status`, the request log's and the metrics'
/// `ending`. A small closed set, stored as text. Whatever was counted is billed, however the
/// request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The upstream answered and the client got the whole answer.
    Ok,
    /// The upstream refused the request as malformed (not retried); normally zero tokens.
    Rejected,
    /// No target served it (an error before any byte), or a stream broke after its first byte.
    UpstreamError,
    /// The same by a timeout: 504 before any byte, or a stream past its deadline.
    UpstreamTimeout,
    /// The client closed the connection before the answer was complete: billed for the prompt
    /// and what was generated up to then.
    ClientDisconnected,
    /// The gateway shut down before the answer was complete (its grace period was over): it
    /// ended on our side, not the client's or the upstream's.
    ShutDown,
}

/// Everything known about one routed request once it is over.
#[derive(Debug)]
pub struct RequestOutcome {
    pub request_id: Arc<str>,
    /// When the request started (UTC): the period its usage belongs to.
    pub at: Timestamp,
    pub principal: Principal,
    pub endpoint: Endpoint,
    /// The model the client asked for.
    pub model: Arc<str>,
    /// The configured model that served it (a fallback, perhaps); `None` if none did.
    pub served_model: Option<Arc<str>>,
    pub provider: Option<Arc<str>>,
    pub upstream_model: Option<Arc<str>>,
    /// The HTTP status the client got (200 for a stream that later broke).
    pub status: u16,
    pub ending: Ending,
    /// Upstream-reported usage, the latest report; `None` when the upstream reported none.
    /// It may cover only some counts (see [`Reported`]).
    pub usage: Option<Usage>,
    pub attempts: u32,
    pub started: Instant,
    pub latency: Duration,
    /// Until the first chunk of a stream was ready for the client.
    pub time_to_first_token: Option<Duration>,
    /// When (after `started`) the gateway began calling upstreams.
    pub upstream_from: Option<Duration>,
    /// How long the upstream calls took; `None` for a stream (its upstream time runs until
    /// the stream ends).
    pub upstream_time: Option<Duration>,
    /// The quota reservation to settle to the actual count.
    pub admitted: Option<Admitted>,
    /// The request, kept for a tokenizer estimate when the upstream reports no usage.
    pub prompt: Option<Prompt>,
    /// What the client received, for the same estimate (a client that left mid-stream is
    /// billed for what it got).
    pub delivered: Delivered,
}

/// What was asked, for counting prompt tokens when nobody else did.
#[derive(Debug, Clone)]
pub enum Prompt {
    Chat(Arc<ChatRequest>),
    Embeddings(Arc<EmbeddingsRequest>),
    Messages(Arc<MessagesRequest>),
    Responses(Arc<ResponsesRequest>),
    Completions(Arc<CompletionsRequest>),
}

impl Prompt {
    /// The tokenizer's count of what was asked; `model` picks the vocabulary of an embeddings
    /// input (a chat request names its own).
    pub fn estimate(&self, model: &str) -> u64 {
        match self {
            Self::Chat(request) => tokenizer::estimate_prompt(request),
            Self::Embeddings(request) => tokenizer::estimate_input(model, &request.input),
            // Counted as the chat request it translates to; one chat cannot carry (a server
            // tool, a document) is counted as its JSON text.
            Self::Messages(request) => match messages::to_chat(request) {
                Ok(chat) => tokenizer::estimate_prompt(&chat),
                Err(_) => tokenizer::count_text(
                    model,
                    &serde_json::to_string(&request.messages).unwrap_or_default(),
                ),
            },
            // The same; one chat cannot carry (a hosted tool, state kept upstream) is counted
            // as the request's JSON text.
            Self::Responses(request) => match responses::to_chat(request) {
                Ok(chat) => tokenizer::estimate_prompt(&chat),
                Err(_) => tokenizer::count_text(
                    model,
                    &serde_json::to_string(&**request).unwrap_or_default(),
                ),
            },
            // The same; several prompts or token prompts are counted as the prompt's JSON.
            Self::Completions(request) => match completions::to_chat(request) {
                Ok(chat) => tokenizer::estimate_prompt(&chat),
                Err(_) => tokenizer::count_text(
                    model,
                    &serde_json::to_string(&request.prompt).unwrap_or_default(),
                ),
            },
        }
    }
}

/// Where a finished request's numbers go: the usage writer, the prices, the quota counters.
#[derive(Clone)]
pub struct Books {
    pub usage: UsageRecorder,
    pub prices: Arc<PriceBook>,
    pub quotas: Arc<Quotas>,
}

impl std::fmt::Debug for Books {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Books")
    }
}

// === impl Endpoint ===

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::ChatStream => "chat_stream",
            Self::Embeddings => "embeddings",
            Self::Messages => "messages",
            Self::MessagesStream => "messages_stream",
            Self::Responses => "responses",
            Self::ResponsesStream => "responses_stream",
            Self::Completions => "completions",
            Self::CompletionsStream => "completions_stream",
        }
    }

    /// Whether the answer is a stream of events.
    pub fn streamed(self) -> bool {
        matches!(
            self,
            Self::ChatStream
                | Self::MessagesStream
                | Self::ResponsesStream
                | Self::CompletionsStream
        )
    }
}

// === impl Ending ===

impl Ending {
    pub const ALL: [Ending; 6] = [
        Self::Ok,
        Self::Rejected,
        Self::UpstreamError,
        Self::UpstreamTimeout,
        Self::ClientDisconnected,
        Self::ShutDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Rejected => "rejected",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::ClientDisconnected => "client_disconnected",
            Self::ShutDown => "shut_down",
        }
    }

    /// Reads the stored text back. The schema's CHECK admits only these, so anything else is a
    /// corrupt row; it reads as an upstream error rather than failing the read.
    pub fn parse(text: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|ending| ending.as_str() == text)
            .unwrap_or(Self::UpstreamError)
    }
}

/// The stored text read back, as [`Ending::parse`] reads it: how the store's rows decode.
impl From<String> for Ending {
    fn from(text: String) -> Self {
        Self::parse(&text)
    }
}

/// What a request was billed, as its usage event records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Billed {
    pub tally: Tally,
    /// Some counts are the tokenizer's (see [`UsageEvent::estimated`]).
    pub estimated: bool,
}

/// The end of every routed request: one usage event, the quota settled, one log line.
/// Never logs a token, a key or message content. Returns what the event was billed.
pub fn record(books: &Books, mut outcome: RequestOutcome) -> Billed {
    let (usage, estimated) = counts(&outcome);
    let event = UsageEvent::new(&outcome, &usage, estimated, &books.prices);
    let tally = event.tally;
    if let Some(admitted) = outcome.admitted.take() {
        books.quotas.settle(admitted, tally);
    }
    let none = || Arc::<str>::from("");
    let provider = outcome.provider.clone().unwrap_or_else(none);
    tracing::info!(
        target: "tollgate::request",
        request_id = %outcome.request_id,
        tenant = %outcome.principal.tenant_id(),
        subject = %outcome.principal.subject,
        credential = %event.credential_id,
        endpoint = outcome.endpoint.as_str(),
        model = %outcome.model,
        served_model = outcome.served_model.as_deref().unwrap_or_default(),
        provider = %provider,
        upstream_model = outcome.upstream_model.as_deref().unwrap_or_default(),
        status = outcome.status,
        ending = outcome.ending.as_str(),
        attempts = outcome.attempts,
        usage_reported = outcome.usage.is_some(),
        estimated,
        cost_micro_usd = tally.cost_micro_usd,
        prompt_tokens = tally.prompt_tokens,
        completion_tokens = tally.completion_tokens,
        total_tokens = tally.total_tokens,
        cached_tokens = tally.cached_tokens,
        // Cache writes have no column of the event (its cost prices them); the log shows them.
        cache_write_tokens = usage.cache_write_tokens,
        latency_ms = event.latency_ms,
        ttft_ms = event.ttft_ms,
        "request"
    );
    observed::observe(&outcome, &provider, &event);
    books.usage.record(event);
    Billed { tally, estimated }
}

/// The token counts of a finished request, and whether the tokenizer made any of them: the
/// upstream's when it reported them all; otherwise what it did report (the prompt's counts
/// before a stream broke, the answer's when it left the prompt out), with the tokenizer's count
/// of the prompt and of whatever the client received for the rest — but only if the upstream
/// started answering (a request no upstream accepted costs nothing; one whose stream began is
/// billed its prompt even if the client left before any text).
fn counts(outcome: &RequestOutcome) -> (Usage, bool) {
    let reported = outcome.usage;
    if let Some(usage) = reported
        && usage.reported == Reported::All
    {
        return (usage, false);
    }
    let answered = reported.is_some()
        || outcome.ending == Ending::Ok
        || outcome.time_to_first_token.is_some()
        || !outcome.delivered.is_empty();
    if !answered {
        return (Usage::default(), false);
    }
    let model = outcome.served_model.as_deref().unwrap_or(&outcome.model);
    let prompt = || {
        outcome
            .prompt
            .as_ref()
            .map_or(0, |prompt| prompt.estimate(model))
    };
    let completion = || tokenizer::count_text(model, &outcome.delivered.text());
    let usage = match reported {
        Some(usage) if usage.reported == Reported::PromptOnly => Usage {
            completion_tokens: completion(),
            ..usage
        },
        // The prompt holds at least the cache traffic the upstream did report.
        Some(usage) => Usage {
            prompt_tokens: prompt().max(usage.cached_tokens + usage.cache_write_tokens),
            ..usage
        },
        None => Usage {
            prompt_tokens: prompt(),
            completion_tokens: completion(),
            ..Usage::default()
        },
    };
    let usage = Usage {
        total_tokens: usage.prompt_tokens + usage.completion_tokens,
        ..usage
    };
    (usage, true)
}

/// Collects a request's outcome and records it exactly once: by [`Meter::finish`], or when
/// dropped — the client went away, and axum dropped the handler or the response stream.
#[derive(Debug)]
pub struct Meter {
    books: Books,
    outcome: Option<RequestOutcome>,
}

/// Status recorded for a request whose client left before any response: nginx's convention.
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

// === impl Meter ===

impl Meter {
    /// `started`: when the request arrived (before authentication), so latency and the
    /// gateway's overhead count every stage.
    pub fn start(
        books: Books,
        request_id: Arc<str>,
        principal: Principal,
        endpoint: Endpoint,
        model: Arc<str>,
        started: Instant,
    ) -> Self {
        Self {
            books,
            outcome: Some(RequestOutcome {
                request_id,
                at: Timestamp::now(),
                principal,
                endpoint,
                model,
                served_model: None,
                provider: None,
                upstream_model: None,
                status: CLIENT_CLOSED_REQUEST,
                ending: Ending::ClientDisconnected,
                usage: None,
                attempts: 0,
                started,
                latency: Duration::ZERO,
                time_to_first_token: None,
                upstream_from: None,
                upstream_time: None,
                admitted: None,
                prompt: None,
                delivered: Delivered::default(),
            }),
        }
    }

    /// Who served (or last failed to serve) the request.
    pub fn target(
        &mut self,
        served_model: &Arc<str>,
        provider: &Arc<str>,
        upstream_model: &Arc<str>,
        attempts: u32,
    ) {
        if let Some(outcome) = &mut self.outcome {
            outcome.served_model = Some(served_model.clone());
            outcome.provider = Some(provider.clone());
            outcome.upstream_model = Some(upstream_model.clone());
            outcome.attempts = attempts;
        }
    }

    /// The gateway starts calling upstreams now.
    pub fn upstream_started(&mut self) {
        if let Some(outcome) = &mut self.outcome {
            outcome.upstream_from = Some(outcome.started.elapsed());
        }
    }

    /// The upstream calls of a non-streaming request are over.
    pub fn upstream_finished(&mut self) {
        if let Some(outcome) = &mut self.outcome
            && let Some(from) = outcome.upstream_from
        {
            outcome.upstream_time = Some(outcome.started.elapsed().saturating_sub(from));
        }
    }

    /// The quota reservation this request holds, settled when it is recorded.
    pub fn admitted(&mut self, admitted: Admitted) {
        if let Some(outcome) = &mut self.outcome {
            outcome.admitted = Some(admitted);
        }
    }

    pub fn prompt(&mut self, prompt: Prompt) {
        if let Some(outcome) = &mut self.outcome {
            outcome.prompt = Some(prompt);
        }
    }

    /// Notes the text of one chunk the client received (its deltas' content and tool-call
    /// arguments), or of a whole JSON answer.
    pub fn delivered(&mut self, json: &Bytes) {
        if let Some(outcome) = &mut self.outcome {
            outcome.delivered.json(json);
        }
    }

    /// The same for one server-sent event as the client received it.
    pub fn delivered_event(&mut self, event: &Bytes) {
        if let Some(outcome) = &mut self.outcome {
            outcome.delivered.event(event);
        }
    }

    pub fn attempts(&mut self, attempts: u32) {
        if let Some(outcome) = &mut self.outcome {
            outcome.attempts = attempts;
        }
    }

    /// The status the client got; a stream records it before its first chunk.
    pub fn status(&mut self, status: u16) {
        if let Some(outcome) = &mut self.outcome {
            outcome.status = status;
        }
    }

    pub fn usage(&mut self, usage: Usage) {
        if let Some(outcome) = &mut self.outcome {
            outcome.usage = Some(usage);
        }
    }

    /// Notes the first chunk's time; later calls keep the first.
    pub fn first_token(&mut self) {
        if let Some(outcome) = &mut self.outcome
            && outcome.time_to_first_token.is_none()
        {
            outcome.time_to_first_token = Some(outcome.started.elapsed());
        }
    }

    /// Records the outcome now; the drop then does nothing. Returns what was billed, so that
    /// an answer can show an estimate exactly as it was billed; `None` if already recorded.
    pub fn finish(&mut self, status: u16, ending: Ending) -> Option<Billed> {
        let mut outcome = self.outcome.take()?;
        outcome.status = status;
        outcome.ending = ending;
        outcome.latency = outcome.started.elapsed();
        Some(record(&self.books, outcome))
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let Some(mut outcome) = self.outcome.take() {
            outcome.ending = Ending::ClientDisconnected;
            outcome.latency = outcome.started.elapsed();
            record(&self.books, outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_text_round_trips() {
        for ending in Ending::ALL {
            assert_eq!(Ending::parse(ending.as_str()), ending);
            let json = serde_json::to_string(&ending).unwrap();
            assert_eq!(json, format!("\"{}\"", ending.as_str()));
            assert_eq!(serde_json::from_str::<Ending>(&json).unwrap(), ending);
        }
        assert_eq!(
            Ending::parse("mangled"),
            Ending::UpstreamError,
            "a row with an unknown status still reads"
        );
    }
}
