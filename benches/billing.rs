//! Billing at scale: a month's report over millions of events, and an export of a million rows
//! with its peak memory.
//!
//! The database is filled the fast way: the hourly rollup rows that `BILLING_BENCH_EVENTS`
//! events would have produced (reports and exports read only the rollup), spread over October
//! 2026 in `BILLING_BENCH_ROWS` rows, so an export grouped by hour has that many rows.
//! The export runs in a child process that reports its own peak RSS (VmHWM), so filling the
//! database does not count.
//!
//! `cargo bench --bench billing` (sizes: BILLING_BENCH_EVENTS=5000000 BILLING_BENCH_ROWS=1000000)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sqlx::Connection;
use tollgate::billing::report::report;
use tollgate::billing::{ExportRequest, export_chunks};
use tollgate::store::Store;

const OCTOBER: i64 = 1_790_812_800_000;
const HOURS: i64 = 31 * 24;
const TENANTS: i64 = 20;
const MODELS: [(&str, &str); 4] = [
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", "azure"),
    ("claude-haiku", "anthropic"),
    ("gemini-flash", "gemini"),
];
const CHILD: &str = "BILLING_BENCH_CHILD_DB";

fn env_number(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let Ok(url) = std::env::var(CHILD) {
        runtime.block_on(child_export(&url));
        return;
    }
    let events = env_number("BILLING_BENCH_EVENTS", 5_000_000);
    let rows = env_number("BILLING_BENCH_ROWS", 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("billing.db").display());

    runtime.block_on(async {
        let store = Store::connect(&url, 4).await.unwrap();
        store.migrate().await.unwrap();
        let started = Instant::now();
        fill(&url, events, rows).await;
        let sums = store.usage_rollup_sums().await.unwrap();
        println!(
            "filled: {} rollup rows standing for {} events in {:.1} s",
            rows,
            sums.requests,
            started.elapsed().as_secs_f64()
        );

        for (label, group_by) in [
            ("tenant month report, by model,day", "model,day"),
            ("tenant month report, by user,model", "user,model"),
            ("tenant month report, totals", ""),
        ] {
            let mut best = f64::MAX;
            let mut lines = 0;
            for _ in 0..3 {
                let started = Instant::now();
                let body = report(
                    &store,
                    "tenant-0",
                    Some("2026-10-01"),
                    Some("2026-11-01"),
                    Some(group_by),
                )
                .await
                .unwrap();
                best = best.min(started.elapsed().as_secs_f64() * 1000.0);
                lines = body.rows.len();
            }
            println!("{label}: {best:.1} ms ({lines} rows; best of 3)");
        }
        store.close().await;
    });

    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, &url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
}

/// Rollup rows in big transactions: `rows` rows over October's hours, each key a distinct
/// (tenant, user, model, provider), requests adding up to `events`.
async fn fill(url: &str, events: i64, rows: i64) {
    let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
    let per_hour = (rows + HOURS - 1) / HOURS;
    let mut written = 0;
    while written < rows {
        let mut tx = connection.begin().await.unwrap();
        let end = (written + 100_000).min(rows);
        for i in written..end {
            let hour = i / per_hour;
            let key = i % per_hour;
            let (model, provider) = MODELS[(key % 4) as usize];
            // Spread the events so the requests of all rows add up to exactly `events`.
            let requests = events / rows + i64::from(i < events % rows);
            let prompt = requests * (200 + key % 300);
            let completion = requests * (50 + key % 100);
            sqlx::query(
                "INSERT INTO usage_hourly (tenant_id, subject, model, provider, hour_start, \
                 requests, prompt_tokens, completion_tokens, cached_tokens, total_tokens, \
                 cost_micro_usd) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(format!("tenant-{}", key % TENANTS))
            .bind(format!("user-{}", key / TENANTS))
            .bind(model)
            .bind(provider)
            .bind(OCTOBER + hour * 3_600_000)
            .bind(requests)
            .bind(prompt)
            .bind(completion)
            .bind(prompt / 4)
            .bind(prompt + completion)
            .bind(prompt * 150 / 1000 + completion * 600 / 1000)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        written = end;
    }
}

/// The child: exports every row grouped by hour as CSV into nothing, then prints its time and
/// its own peak memory.
async fn child_export(url: &str) {
    let store = Store::connect(url, 2).await.unwrap();
    let request = ExportRequest::parse(
        Some("2026-10-01"),
        Some("2026-11-01"),
        None,
        Some("csv"),
        Some("tenant,user,model,provider,hour"),
    )
    .unwrap();
    let started = Instant::now();
    let mut chunks = export_chunks(store, request);
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let seconds = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: unknown")
        .to_owned();
    println!(
        "export csv by tenant,user,model,provider,hour: {} rows, {:.1} MB in {:.2} s; peak memory of the exporting process: {}",
        lines.saturating_sub(1),
        bytes as f64 / 1e6,
        seconds,
        peak.trim_start_matches("VmHWM:").trim()
    );
}
