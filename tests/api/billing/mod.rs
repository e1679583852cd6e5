//! Reports and exports against real databases: reconciliation to the token and micro-dollar,
//! period boundaries, formats that other tools parse, tenant isolation, stable closed periods.

mod access;
mod boundaries;
mod end_to_end;
mod formats;
mod reconcile;

use reqwest::Method;
use tollgate::billing::money::parse_dollars;
use tollgate::clock::Timestamp;
use tollgate::metering::{Ending, Tally, UsageEvent};
use tollgate::store::Store;

use crate::support::TestApp;

/// What an export adds up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSums {
    pub requests: i64,
    pub total_tokens: i64,
    pub cost_micro_usd: i64,
}

impl From<Tally> for ExportSums {
    fn from(sums: Tally) -> Self {
        Self {
            requests: sums.requests,
            total_tokens: sums.total_tokens,
            cost_micro_usd: sums.cost_micro_usd,
        }
    }
}

/// Sums requests, total tokens and cost (exactly, from the printed dollars) of an export body
/// in any format: `csv`, `jsonl` or `focus`. Kept free of the test setup so an end-to-end test
/// can compare an export with what the clients received.
pub fn export_sums(format: &str, body: &str) -> ExportSums {
    let mut sums = ExportSums::default();
    match format {
        "jsonl" => {
            for line in body.lines().filter(|l| !l.is_empty()) {
                let row: serde_json::Value = serde_json::from_str(line).unwrap();
                sums.requests += row["requests"].as_i64().unwrap();
                sums.total_tokens += row["total_tokens"].as_i64().unwrap();
                sums.cost_micro_usd += parse_dollars(row["cost_usd"].as_str().unwrap()).unwrap();
            }
        }
        "csv" | "focus" => {
            let (requests, tokens, cost) = if format == "csv" {
                ("requests", "total_tokens", "cost_usd")
            } else {
                ("x_Requests", "ConsumedQuantity", "BilledCost")
            };
            let records = parse_csv(body);
            let header = &records[0];
            let at = |name: &str| header.iter().position(|h| h == name).unwrap();
            let (requests, tokens, cost) = (at(requests), at(tokens), at(cost));
            for record in &records[1..] {
                sums.requests += record[requests].parse::<i64>().unwrap();
                let quantity = &record[tokens];
                sums.total_tokens += quantity
                    .strip_suffix(".0")
                    .unwrap_or(quantity)
                    .parse::<i64>()
                    .unwrap();
                sums.cost_micro_usd += parse_dollars(&record[cost]).unwrap();
            }
        }
        other => panic!("unknown format {other}"),
    }
    sums
}

/// RFC 4180 records (quoted fields may hold commas, quotes and line breaks).
pub fn parse_csv(body: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// A small deterministic generator (xorshift), so a failing workload can be replayed by seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// 2026-10-01T00:00:00Z: the month the workloads live in (closed on this machine's clock).
pub const OCTOBER: i64 = 1_790_812_800_000;
pub const OCTOBER_MS: i64 = 31 * 86_400_000;

/// A random event in October 2026: several tenants, users, models and providers; every status;
/// streamed or not; failures and disconnects with partial or no tokens.
pub fn random_event(rng: &mut Rng, i: u64) -> UsageEvent {
    let (model, provider) = [
        ("gpt-4o-mini", "openai"),
        ("gpt-4o-mini", "azure"),
        ("claude-haiku", "anthropic"),
        ("gemini-flash", "gemini"),
    ][rng.below(4) as usize];
    let status = [
        Ending::Ok,
        Ending::Ok,
        Ending::Ok,
        Ending::UpstreamError,
        Ending::ClientDisconnected,
    ][rng.below(5) as usize];
    let prompt = rng.below(4000) as i64;
    let completion = match status {
        Ending::UpstreamError => 0,
        _ => rng.below(2000) as i64,
    };
    let cached = rng.below(prompt as u64 + 1) as i64;
    UsageEvent {
        event_id: format!("req-{i}"),
        request_id: format!("req-{i}"),
        at: Timestamp(OCTOBER + rng.below(OCTOBER_MS as u64) as i64),
        tenant_id: format!("tenant-{}", rng.below(3)),
        subject: format!("user-{}", rng.below(4)),
        credential_id: "key".into(),
        model: model.into(),
        provider: provider.into(),
        upstream_model: model.into(),
        tally: Tally {
            requests: 1,
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            total_tokens: prompt + completion,
            cost_micro_usd: prompt * 150 / 1000 + completion * 600 / 1000 + rng.below(3) as i64,
        },
        reasoning_tokens: 0,
        status,
        http_status: if status == Ending::UpstreamError {
            502
        } else {
            200
        },
        latency_ms: 100,
        ttft_ms: None,
        streamed: rng.below(2) == 0,
        estimated: rng.below(5) == 0,
    }
}

/// Writes `events` into the app's database through the store's batch insert (what the usage
/// writer calls), in batches like the writer's.
pub async fn store_events(app: &TestApp, events: &[UsageEvent]) -> Store {
    let store = Store::connect(&app.config.database.url, 2).await.unwrap();
    for batch in events.chunks(100) {
        store.insert_usage_batch(batch).await.unwrap();
    }
    store
}

/// GET an export with the platform token; returns the status and body.
pub async fn export(app: &TestApp, query: &str) -> (u16, String) {
    let response = app
        .admin(Method::GET, &format!("/usage/export?{query}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}
