//! The usage event: one per request, as billing and quotas see it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tollgate_providers::Usage;

use super::outcome::{Ending, RequestOutcome};
use super::price::PriceBook;
use super::tally::{Tally, to_i64};
use crate::clock::Timestamp;

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
    /// The configured model that served the request (a fallback, perhaps); the name the client
    /// sent when none did.
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
    /// How the request ended.
    #[sqlx(try_from = "String")]
    pub status: Ending,
    pub http_status: i32,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub streamed: bool,
    /// Some counts are the tokenizer's: the upstream reported none, or not all of them (a
    /// stream that broke, a client that left first, a count the upstream left out).
    pub estimated: bool,
}

impl UsageEvent {
    /// The event of a finished request, billed for `usage` (`estimated` when the tokenizer
    /// made some of it) at the price of the model that served it. A model without a price in
    /// the config has its tokens counted and costs nothing.
    pub fn new(
        outcome: &RequestOutcome,
        usage: &Usage,
        estimated: bool,
        prices: &PriceBook,
    ) -> Self {
        let principal = &outcome.principal;
        let served = outcome.served_model.as_deref().unwrap_or(&outcome.model);
        let name = |name: &Option<Arc<str>>| name.as_deref().unwrap_or_default().to_owned();
        Self {
            event_id: event_id(),
            request_id: String::from(&*outcome.request_id),
            at: outcome.at,
            tenant_id: principal.tenant_id().to_owned(),
            subject: String::from(&*principal.subject),
            credential_id: principal.credential.id(),
            model: served.to_owned(),
            provider: name(&outcome.provider),
            upstream_model: name(&outcome.upstream_model),
            tally: Tally::request(usage, prices.get(served)),
            reasoning_tokens: to_i64(usage.reasoning_tokens),
            status: outcome.ending,
            http_status: i32::from(outcome.status),
            latency_ms: millis(outcome.latency),
            ttft_ms: outcome.time_to_first_token.map(millis),
            streamed: outcome.endpoint.streamed(),
            estimated,
        }
    }

    /// The start of the UTC hour the event belongs to, as the rollup keys it.
    pub fn hour_start(&self) -> Timestamp {
        Timestamp(self.at.0 - self.at.0.rem_euclid(3_600_000))
    }
}

/// A new event's id, a UUIDv7, written without the formatting machinery (once per request).
fn event_id() -> String {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::now_v7()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
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
    use crate::auth::{Credential, Principal};
    use crate::config::{ModelConfig, PriceConfig};
    use crate::metering::Endpoint;
    use crate::store::{Tenant, TenantStatus, UserRole};

    #[test]
    fn event_ids_are_lower_case_hyphenated_uuid_v7s_in_order() {
        let (first, second) = (event_id(), event_id());
        for id in [&first, &second] {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 7);
            assert_eq!(*id, parsed.hyphenated().to_string());
        }
        assert!(first < second, "{first} then {second}");
    }

    /// A stream `gpt-4o-mini` asked for and its fallback `gpt-4o-mini-b` served.
    fn outcome() -> RequestOutcome {
        let tenant = Tenant {
            id: "acme".into(),
            name: "Acme".into(),
            status: TenantStatus::Active,
            allowed_models: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            deleted_at: None,
        };
        RequestOutcome {
            request_id: Arc::from("r1"),
            at: Timestamp(1_764_460_799_999),
            principal: Principal {
                tenant: Arc::new(tenant),
                subject: Arc::from("jane"),
                role: UserRole::Member,
                group_models: None,
                credential: Credential::ApiKey {
                    id: Arc::from("k1"),
                },
            },
            endpoint: Endpoint::ChatStream,
            model: Arc::from("gpt-4o-mini"),
            served_model: Some(Arc::from("gpt-4o-mini-b")),
            provider: Some(Arc::from("openai")),
            upstream_model: Some(Arc::from("gpt-4o-mini-2024-07-18")),
            status: 200,
            ending: Ending::Ok,
            usage: None,
            attempts: 2,
            started: tokio::time::Instant::now(),
            latency: Duration::from_millis(812),
            time_to_first_token: Some(Duration::from_millis(95)),
            upstream_from: None,
            upstream_time: None,
            admitted: None,
            prompt: None,
            delivered: Default::default(),
        }
    }

    /// `gpt-4o-mini-b` at 0.15 / 0.60 USD per million tokens.
    fn prices() -> PriceBook {
        PriceBook::from_config(&[ModelConfig {
            name: "gpt-4o-mini-b".into(),
            targets: Vec::new(),
            fallbacks: Vec::new(),
            price: Some(PriceConfig {
                input_per_mtok: 0.15,
                output_per_mtok: 0.60,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
            }),
        }])
    }

    fn event() -> UsageEvent {
        UsageEvent::new(&outcome(), &Usage::default(), false, &PriceBook::default())
    }

    #[test]
    fn the_event_says_who_asked_what_served_it_and_how_it_went() {
        let usage = Usage {
            prompt_tokens: 1234,
            completion_tokens: 567,
            total_tokens: 1801,
            reasoning_tokens: 100,
            ..Usage::default()
        };
        let event = UsageEvent::new(&outcome(), &usage, false, &prices());
        assert_eq!(event.request_id, "r1");
        assert_eq!(event.at, Timestamp(1_764_460_799_999));
        assert_eq!(
            (event.tenant_id.as_str(), event.subject.as_str()),
            ("acme", "jane")
        );
        assert_eq!(event.credential_id, "key:k1");
        assert_eq!(
            (event.model.as_str(), event.provider.as_str()),
            ("gpt-4o-mini-b", "openai"),
            "the model that served it"
        );
        assert_eq!(event.upstream_model, "gpt-4o-mini-2024-07-18");
        assert_eq!(
            event.tally,
            Tally::request(&usage, prices().get("gpt-4o-mini-b"))
        );
        assert_eq!(event.tally.cost_micro_usd, 525, "at the fallback's price");
        assert_eq!(event.reasoning_tokens, 100);
        assert_eq!(event.status, Ending::Ok);
        assert_eq!(
            (event.http_status, event.latency_ms, event.ttft_ms),
            (200, 812, Some(95))
        );
        assert!(event.streamed && !event.estimated);
        assert!(!event.event_id.is_empty());
    }

    #[test]
    fn a_request_nothing_served_is_billed_to_the_model_asked_for() {
        let unserved = RequestOutcome {
            served_model: None,
            provider: None,
            upstream_model: None,
            ..outcome()
        };
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            ..Usage::default()
        };
        let event = UsageEvent::new(&unserved, &usage, true, &prices());
        assert_eq!(
            (event.model.as_str(), event.provider.as_str()),
            ("gpt-4o-mini", "")
        );
        assert!(event.estimated);
        assert_eq!(event.tally.total_tokens, 15);
        assert_eq!(event.tally.cost_micro_usd, 0, "no price, no cost");
    }

    #[test]
    fn hour_start_floors_to_the_utc_hour() {
        let event = event();
        // 2025-11-29T23:59:59.999Z belongs to the 23:00 hour.
        assert_eq!(event.hour_start(), Timestamp(1_764_457_200_000));
        let mut next = event.clone();
        next.at = Timestamp(1_764_460_800_000);
        assert_eq!(next.hour_start(), Timestamp(1_764_460_800_000));
    }

    #[test]
    fn spill_json_round_trips_exactly() {
        let event = event();
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
        assert_eq!(event.status, Ending::ClientDisconnected);
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
