//! The per-request and per-chunk costs of metering: admission against quotas (a reservation on
//! every window of the user and the tenant), settlement, and keeping (then, rarely, reading) what a
//! stream delivered.
//!
//! `cargo bench --bench metering`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate::auth::{Credential, Principal};
use tollgate::metering::Tally;
use tollgate::metering::delivered::Delivered;
use tollgate::quota::{Amount, Quotas};
use tollgate::store::{Limits, QuotaScope, Store, Tenant, TenantStatus, UserPatch, UserRole};

fn metering(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (quotas, principal) = runtime.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let tenant = tx.create_tenant("acme", "Acme").await.unwrap();
        tx.upsert_user("acme", "jane", &UserPatch::default())
            .await
            .unwrap();
        let limits = Limits {
            tokens_per_day: Some(i64::MAX / 4),
            tokens_per_month: Some(i64::MAX / 4),
            cost_microusd_per_month: Some(i64::MAX / 4),
            requests_per_minute: Some(i64::MAX / 4),
            tokens_per_minute: Some(i64::MAX / 4),
        };
        tx.set_quota("acme", QuotaScope::User, "jane", &limits)
            .await
            .unwrap();
        tx.set_quota("acme", QuotaScope::Tenant, "", &limits)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let principal = Principal {
            tenant: Arc::new(Tenant {
                status: TenantStatus::Active,
                ..tenant
            }),
            subject: Arc::from("jane"),
            role: UserRole::Member,
            group_models: None,
            credential: Credential::ApiKey {
                id: Arc::from("k1"),
            },
        };
        let stale =
            tollgate::stale::StaleIfError::new(Duration::from_secs(600), Duration::from_secs(5));
        (
            Quotas::new(store, Duration::from_secs(5), Arc::new(stale)),
            principal,
        )
    });
    let estimate = || Amount {
        requests: 1,
        tokens: 300,
        cost_micro_usd: 45,
    };
    let actual = Tally {
        requests: 1,
        prompt_tokens: 100,
        completion_tokens: 20,
        cached_tokens: 0,
        total_tokens: 120,
        cost_micro_usd: 18,
    };
    c.bench_function(
        "admission: reserve on 5 limits x 2 scopes, then settle",
        |b| {
            b.to_async(&runtime).iter(|| async {
                let admitted = quotas.admit(&principal, estimate).await.unwrap();
                quotas.settle(admitted, actual);
            })
        },
    );

    let chunk = br#"{"id":"chatcmpl-9x","object":"chat.completion.chunk","created":1732939200,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" quick brown"},"logprobs":null,"finish_reason":null}]}"#;
    let chunk = bytes::Bytes::from_static(chunk);
    // What every streamed chunk costs: kept by reference, read only if it must be counted.
    c.bench_function("SSE metering: keep a 20-chunk stream (per stream)", |b| {
        b.iter(|| {
            let mut delivered = Delivered::default();
            for _ in 0..20 {
                delivered.json(&chunk);
            }
            delivered
        })
    });
    // What a stream without reported usage costs once, at its end.
    c.bench_function("SSE metering: read a 20-chunk stream's text", |b| {
        let mut delivered = Delivered::default();
        for _ in 0..20 {
            delivered.json(&chunk);
        }
        b.iter(|| delivered.text().len())
    });
}

criterion_group!(benches, metering);
criterion_main!(benches);
