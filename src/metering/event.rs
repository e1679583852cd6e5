//! The usage event: one per request, as billing and quotas see it.

use serde::{Deserialize, Serialize};
use tollgate_providers::Usage;

use super::price::Price;
use super::tally::{Tally, to_i64};
use crate::clock::Timestamp;

/// What happened to a request, as far as billing cares. A small closed set, stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageStatus {
    /// The upstream answered and the client got the whole answer.
    Ok,
    /// Every upstream target failed (or timed out); whatever was counted is still billed.
    UpstreamError,
    /// The client went away before the answer was complete: billed for the prompt and what was
    /// generated up to then.
    ClientDisconnected,
    /// Refused before any upstream was called (quota, rate limit, policy); normally zero tokens.
    Rejected,
}

impl UsageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::UpstreamError => "upstream_error",
            Self::ClientDisconnected => "client_disconnected",
            Self::Rejected => "rejected",
        }
    }

    /// Reads the stored text back. The schema's CHECK admits only these four, so anything else
    /// is a corrupt row; it reads as an upstream error rather than failing a whole report.
    pub fn parse(text: &str) -> Self {
        match text {
            "ok" => Self::Ok,
            "client_disconnected" => Self::ClientDisconnected,
            "rejected" => Self::Rejected,
            _ => Self::UpstreamError,
        }
    }
}

/// The stored text read back, as [`UsageStatus::parse`] reads it: how the store's rows decode.
impl From<String> for UsageStatus {
    fn from(text: String) -> Self {
        Self::parse(&text)
    }
}

/// One request's usage. `at` is when the request started (UTC), so a request that straddles
/// midnight is billed to the day it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct UsageEvent {
    /// The event's own key, made by the gateway (a UUIDv7): writing an event twice (a retried
    /// batch, a replayed spill file) leaves one row. Not the request id, which a client may
    /// choose and send again: two requests with one id are two requests to bill.
    #[serde(default)]
    pub event_id: String,
    /// The `x-request-id` the caller was answered with (its own, when it sent one).
    pub request_id: String,
    /// Milliseconds in the spill file: exact, and independent of any date format.
    #[serde(with = "millis")]
    pub at: Timestamp,
    pub tenant_id: String,
    pub subject: String,
    /// The API key id, or the token's `jti` (or issuer) for a JWT: which credential was used.
    pub credential_id: String,
    /// The model name the client sent.
    pub model: String,
    pub provider: String,
    pub upstream_model: String,
    /// One request, its tokens and its cost. Flat in the spill line and in the table: their
    /// keys and columns are the tally's field names.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub tally: Tally,
    /// Part of `completion_tokens`, kept per event only.
    pub reasoning_tokens: i64,
    #[sqlx(try_from = "String")]
    pub status: UsageStatus,
    pub http_status: i32,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub streamed: bool,
    /// True when the upstream reported no usage and the counts come from the tokenizer.
    pub estimated: bool,
}

/// Who made a request and where it went: everything about an event known before the upstream
/// answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub request_id: String,
    pub at: Timestamp,
    pub tenant_id: String,
    pub subject: String,
    pub credential_id: String,
    pub model: String,
    pub provider: String,
    pub upstream_model: String,
    pub streamed: bool,
}

/// Where the token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// The upstream's own usage: the truth.
    Reported(Usage),
    /// Some or all counts are the tokenizer's: the upstream reported nothing, or not all of it
    /// (a stream that broke, a client that left first, a count the upstream left out). Whatever
    /// it did report is kept.
    Estimated(Usage),
}

/// How the request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub status: UsageStatus,
    pub http_status: u16,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
}

impl UsageEvent {
    /// Builds a request's event and prices it. `price` is `None` for a model without a price in
    /// the config: its tokens are counted and its cost is zero.
    pub fn new(info: RequestInfo, counts: Counts, outcome: Outcome, price: Option<&Price>) -> Self {
        let (usage, estimated) = match counts {
            Counts::Reported(usage) => (usage, false),
            Counts::Estimated(usage) => (usage, true),
        };
        Self {
            event_id: uuid::Uuid::now_v7().to_string(),
            request_id: info.request_id,
            at: info.at,
            tenant_id: info.tenant_id,
            subject: info.subject,
            credential_id: info.credential_id,
            model: info.model,
            provider: info.provider,
            upstream_model: info.upstream_model,
            tally: Tally::request(&usage, price),
            reasoning_tokens: to_i64(usage.reasoning_tokens),
            status: outcome.status,
            http_status: i32::from(outcome.http_status),
            latency_ms: to_i64(outcome.latency_ms),
            ttft_ms: outcome.ttft_ms.map(to_i64),
            streamed: info.streamed,
            estimated,
        }
    }

    /// The start of the UTC hour the event belongs to, as the rollup keys it.
    pub fn hour_start(&self) -> Timestamp {
        Timestamp(self.at.0 - self.at.0.rem_euclid(3_600_000))
    }
}

/// `Timestamp` as an integer of milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::clock::Timestamp;

    pub fn serialize<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(at.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(deserializer).map(Timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PriceConfig;

    fn info() -> RequestInfo {
        RequestInfo {
            request_id: "r1".into(),
            at: Timestamp(1_764_460_799_999),
            tenant_id: "acme".into(),
            subject: "jane".into(),
            credential_id: "key-1".into(),
            model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            upstream_model: "gpt-4o-mini-2024-07-18".into(),
            streamed: true,
        }
    }

    fn ok() -> Outcome {
        Outcome {
            status: UsageStatus::Ok,
            http_status: 200,
            latency_ms: 812,
            ttft_ms: Some(95),
        }
    }

    fn price() -> Price {
        Price::from_config(&PriceConfig {
            input_per_mtok: 0.15,
            output_per_mtok: 0.60,
            cached_input_per_mtok: None,
            cache_write_per_mtok: None,
        })
    }

    #[test]
    fn reported_usage_is_kept_and_priced() {
        let usage = Usage {
            prompt_tokens: 1234,
            completion_tokens: 567,
            total_tokens: 1801,
            cached_tokens: 0,
            reasoning_tokens: 100,
            cache_write_tokens: 0,
            reported: tollgate_providers::Reported::All,
        };
        let event = UsageEvent::new(info(), Counts::Reported(usage), ok(), Some(&price()));
        assert_eq!(event.tally, Tally::request(&usage, Some(&price())));
        assert_eq!(event.tally.cost_micro_usd, 525);
        assert_eq!(event.reasoning_tokens, 100);
        assert!(!event.estimated);
        assert_eq!(event.ttft_ms, Some(95));
    }

    #[test]
    fn estimates_are_marked_and_summed() {
        let counts = Counts::Estimated(Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            ..Usage::default()
        });
        let event = UsageEvent::new(info(), counts, ok(), None);
        assert!(event.estimated);
        assert_eq!(event.tally.total_tokens, 15);
        assert_eq!(event.tally.cost_micro_usd, 0, "no price, no cost");
    }

    #[test]
    fn hour_start_floors_to_the_utc_hour() {
        let event = UsageEvent::new(info(), Counts::Reported(Usage::default()), ok(), None);
        // 2025-11-29T23:59:59.999Z belongs to the 23:00 hour.
        assert_eq!(event.hour_start(), Timestamp(1_764_457_200_000));
        let mut next = event.clone();
        next.at = Timestamp(1_764_460_800_000);
        assert_eq!(next.hour_start(), Timestamp(1_764_460_800_000));
    }

    #[test]
    fn status_text_round_trips() {
        for status in [
            UsageStatus::Ok,
            UsageStatus::UpstreamError,
            UsageStatus::ClientDisconnected,
            UsageStatus::Rejected,
        ] {
            assert_eq!(UsageStatus::parse(status.as_str()), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
    }

    #[test]
    fn spill_json_round_trips_exactly() {
        let event = UsageEvent::new(info(), Counts::Reported(Usage::default()), ok(), None);
        let line = serde_json::to_string(&event).unwrap();
        assert!(line.contains("\"at\":1764460799999"), "{line}");
        assert_eq!(serde_json::from_str::<UsageEvent>(&line).unwrap(), event);
    }

    /// A line as the version before [`Tally`] wrote it (no `requests`): it reads back as one
    /// request with the same counts, and its status as written.
    #[test]
    fn spill_lines_written_before_the_tally_read_back() {
        let line = r#"{"event_id":"e1","request_id":"r1","at":1764460799999,"tenant_id":"acme","subject":"jane","credential_id":"key:k1","model":"gpt-4o-mini","provider":"openai","upstream_model":"gpt-4o-mini-2024-07-18","prompt_tokens":1234,"completion_tokens":567,"cached_tokens":200,"reasoning_tokens":100,"total_tokens":1801,"cost_micro_usd":525,"status":"client_disconnected","http_status":499,"latency_ms":812,"ttft_ms":95,"streamed":true,"estimated":true}"#;
        let event: UsageEvent = serde_json::from_str(line).unwrap();
        assert_eq!(
            event.tally,
            Tally {
                requests: 1,
                prompt_tokens: 1234,
                completion_tokens: 567,
                cached_tokens: 200,
                total_tokens: 1801,
                cost_micro_usd: 525,
            }
        );
        assert_eq!(event.reasoning_tokens, 100);
        assert_eq!(event.status, UsageStatus::ClientDisconnected);
        assert_eq!((event.http_status, event.ttft_ms), (499, Some(95)));
        assert!(event.streamed && event.estimated);
        // Written again, it keeps every key it had, under the same name.
        let again: serde_json::Value = serde_json::to_value(&event).unwrap();
        let old: serde_json::Value = serde_json::from_str(line).unwrap();
        for (key, value) in old.as_object().unwrap() {
            assert_eq!(&again[key], value, "{key}");
        }
    }
}
