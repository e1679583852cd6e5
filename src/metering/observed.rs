//! A routed request's metrics, recorded through handles kept per label set. The `counter!` and
//! `histogram!` macros build, hash and look up every key on every call (about 7,000
//! instructions for a request's eight); here a request costs one lookup in a small map.
//! Labels are configured names only (models, providers) and fixed words: bounded, never a
//! user, so the map stays as small as the metrics themselves.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};

use metrics::{Counter, Histogram};

use super::UsageEvent;
use super::outcome::{Ending, Endpoint, RequestOutcome};

/// One label set of `tollgate_requests_total`, which holds every other family's labels.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Labels {
    model: Arc<str>,
    provider: Arc<str>,
    endpoint: Endpoint,
    ending: Ending,
    status: &'static str,
}

/// The handles one label set records to. Those a request may not record (tokens of a kind it
/// had none of, time to first token for a whole answer) are registered on first use: a
/// registered series is exported, at zero, from then on.
struct Handles {
    requests: Counter,
    duration: Histogram,
    /// Prompt, completion, cached and reasoning tokens.
    tokens: [OnceLock<Counter>; 4],
    first_token: OnceLock<Histogram>,
    upstream: OnceLock<Histogram>,
    overhead: OnceLock<Histogram>,
}

const TOKEN_KINDS: [&str; 4] = ["prompt", "completion", "cached", "reasoning"];

/// Records the request's metrics.
pub(super) fn observe(outcome: &RequestOutcome, provider: &Arc<str>, event: &UsageEvent) {
    let labels = Labels {
        model: outcome.model.clone(),
        provider: provider.clone(),
        endpoint: outcome.endpoint,
        ending: outcome.ending,
        status: status_class(outcome.status),
    };
    let handles = handles(&labels);
    handles.requests.increment(1);
    let tally = &event.tally;
    if tally.total_tokens > 0 {
        let counts = [
            tally.prompt_tokens,
            tally.completion_tokens,
            tally.cached_tokens,
            event.reasoning_tokens,
        ];
        for ((kind, count), handle) in TOKEN_KINDS.into_iter().zip(counts).zip(&handles.tokens) {
            if let Ok(count @ 1..) = u64::try_from(count) {
                handle
                    .get_or_init(|| metrics::counter!("tollgate_tokens_total", "model" => labels.model.clone(), "kind" => kind))
                    .increment(count);
            }
        }
    }
    handles.duration.record(outcome.latency.as_secs_f64());
    if let Some(ttft) = outcome.time_to_first_token {
        handles
            .first_token
            .get_or_init(|| metrics::histogram!("tollgate_time_to_first_token_seconds", "model" => labels.model.clone()))
            .record(ttft.as_secs_f64());
    }
    if let Some(from) = outcome.upstream_from {
        // A stream's upstream time runs from the call to the stream's end.
        let upstream = outcome
            .upstream_time
            .unwrap_or_else(|| outcome.latency.saturating_sub(from));
        handles
            .upstream
            .get_or_init(|| metrics::histogram!("tollgate_upstream_duration_seconds", "provider" => labels.provider.clone()))
            .record(upstream.as_secs_f64());
        handles
            .overhead
            .get_or_init(|| metrics::histogram!("tollgate_gateway_overhead_seconds", "endpoint" => labels.endpoint.as_str()))
            .record(outcome.latency.saturating_sub(upstream).as_secs_f64());
    }
}

/// The label set's handles, registered with the recorder on first use.
fn handles(labels: &Labels) -> Arc<Handles> {
    type Map = HashMap<Labels, Arc<Handles>, foldhash::fast::RandomState>;
    static HANDLES: LazyLock<Mutex<Map>> = LazyLock::new(|| {
        // Handles taken before the recorder is installed would record nowhere.
        let _ = crate::telemetry::metrics();
        Mutex::default()
    });
    let mut map = HANDLES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handles) = map.get(labels) {
        return handles.clone();
    }
    let endpoint = labels.endpoint.as_str();
    let handles = Arc::new(Handles {
        requests: metrics::counter!(
            "tollgate_requests_total",
            "model" => labels.model.clone(),
            "provider" => labels.provider.clone(),
            "endpoint" => endpoint,
            "ending" => labels.ending.as_str(),
            "status" => labels.status,
        ),
        duration: metrics::histogram!("tollgate_request_duration_seconds", "endpoint" => endpoint),
        tokens: Default::default(),
        first_token: OnceLock::new(),
        upstream: OnceLock::new(),
        overhead: OnceLock::new(),
    });
    map.insert(labels.clone(), handles.clone());
    handles
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        400..=498 => "4xx",
        // The client closed the request (nginx's 499): neither our error nor the upstream's.
        499 => "client_closed",
        500..=599 => "5xx",
        _ => "other",
    }
}
