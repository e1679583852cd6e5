//! Databases written by earlier versions: migrated in place, every row kept and read back.

use tollgate::metering::{Ending, UsageEvent};
use tollgate::store::Store;

use super::{assert_stored_exactly, event};
use crate::support::{Backend, on_both_backends};

on_both_backends!(events_of_every_old_status_survive_the_wider_status_check);

/// The version before a usage event's status could say `upstream_timeout` or `shut_down`.
const BEFORE_ENDINGS: i64 = 4;

/// A database at [`BEFORE_ENDINGS`] holding an event of each status it allowed: migrated, the
/// table has the same columns, key and indexes, every event reads back as it was written, and
/// the two new statuses can be stored (and nothing else).
async fn events_of_every_old_status_survive_the_wider_status_check(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.fresh_database(&dir).await;
    let store = Store::connect(&url, 2).await.unwrap();
    match (store.sqlite(), store.postgres()) {
        (Some(pool), _) => sqlx::migrate!("migrations/sqlite")
            .run_to(BEFORE_ENDINGS, pool)
            .await
            .unwrap(),
        (_, Some(pool)) => sqlx::migrate!("migrations/postgres")
            .run_to(BEFORE_ENDINGS, pool)
            .await
            .unwrap(),
        _ => unreachable!("one pool or the other"),
    }
    let old: Vec<_> = [
        Ending::Ok,
        Ending::UpstreamError,
        Ending::ClientDisconnected,
        Ending::Rejected,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, status)| {
        let mut event = event("old", i as u64);
        event.status = status;
        event
    })
    .collect();
    for event in &old {
        insert_as_before(&store, event).await.unwrap();
    }
    let mut cut = event("old", 4);
    cut.status = Ending::ShutDown;
    assert!(
        insert_as_before(&store, &cut).await.is_err(),
        "the old check refuses the new statuses"
    );
    let shape = table_shape(&store).await;

    store.migrate().await.unwrap();
    assert_eq!(
        table_shape(&store).await,
        shape,
        "the same columns, key and indexes"
    );
    for event in &old {
        let stored = store.usage_event(&event.request_id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(event));
    }
    assert_stored_exactly(&store, &old).await;
    assert_eq!(
        store.insert_usage_batch(&old).await.unwrap(),
        0,
        "still keyed by event id"
    );

    let mut timed_out = event("new", 5);
    timed_out.status = Ending::UpstreamTimeout;
    assert_eq!(
        store
            .insert_usage_batch(&[timed_out.clone(), cut.clone()])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.usage_event(&timed_out.request_id).await.unwrap(),
        Some(timed_out)
    );
    assert_eq!(store.usage_event(&cut.request_id).await.unwrap(), Some(cut));
    let insert = "INSERT INTO usage_events (event_id, request_id, at, tenant_id, subject, \
        credential_id, model, provider, upstream_model, prompt_tokens, completion_tokens, \
        cached_tokens, reasoning_tokens, total_tokens, cost_micro_usd, status, http_status, \
        latency_ms, ttft_ms, streamed, estimated) VALUES ('g', 'g', 0, 't', 's', 'c', 'm', 'p', \
        'u', 1, 1, 0, 0, 2, 1, 'mangled', 200, 1, NULL, false, false)";
    let refused = match (store.sqlite(), store.postgres()) {
        (Some(pool), _) => sqlx::query(insert).execute(pool).await.is_err(),
        (_, Some(pool)) => sqlx::query(insert).execute(pool).await.is_err(),
        _ => unreachable!("one pool or the other"),
    };
    assert!(refused, "the check still refuses what is not an ending");
}

/// Stores one event as the versions of [`BEFORE_ENDINGS`] did — the event and its hour of the
/// rollup, in one transaction — since today's settlement also reads tables they did not have.
async fn insert_as_before(store: &Store, event: &UsageEvent) -> Result<(), sqlx::Error> {
    macro_rules! insert {
        ($pool:expr) => {
            sqlx::query(
                "INSERT INTO usage_events (event_id, request_id, at, tenant_id, subject, \
                 credential_id, model, provider, upstream_model, prompt_tokens, \
                 completion_tokens, cached_tokens, reasoning_tokens, total_tokens, \
                 cost_micro_usd, status, http_status, latency_ms, ttft_ms, streamed, estimated) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19, $20, $21)",
            )
            .bind(&event.event_id)
            .bind(&event.request_id)
            .bind(event.at)
            .bind(&event.tenant_id)
            .bind(&event.subject)
            .bind(&event.credential_id)
            .bind(&event.model)
            .bind(&event.provider)
            .bind(&event.upstream_model)
            .bind(event.tally.prompt_tokens)
            .bind(event.tally.completion_tokens)
            .bind(event.tally.cached_tokens)
            .bind(event.reasoning_tokens)
            .bind(event.tally.total_tokens)
            .bind(event.tally.cost_micro_usd)
            .bind(event.status.as_str())
            .bind(event.http_status)
            .bind(event.latency_ms)
            .bind(event.ttft_ms)
            .bind(event.streamed)
            .bind(event.estimated)
            .execute(&mut *$pool)
            .await?;
            sqlx::query(
                "INSERT INTO usage_hourly (tenant_id, subject, model, provider, hour_start, \
                 requests, prompt_tokens, completion_tokens, cached_tokens, total_tokens, \
                 cost_micro_usd) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10) \
                 ON CONFLICT (tenant_id, subject, model, provider, hour_start) DO UPDATE SET \
                 requests = usage_hourly.requests + 1, \
                 prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens, \
                 cached_tokens = usage_hourly.cached_tokens + excluded.cached_tokens, \
                 total_tokens = usage_hourly.total_tokens + excluded.total_tokens, \
                 cost_micro_usd = usage_hourly.cost_micro_usd + excluded.cost_micro_usd",
            )
            .bind(&event.tenant_id)
            .bind(&event.subject)
            .bind(&event.model)
            .bind(&event.provider)
            .bind(event.hour_start())
            .bind(event.tally.prompt_tokens)
            .bind(event.tally.completion_tokens)
            .bind(event.tally.cached_tokens)
            .bind(event.tally.total_tokens)
            .bind(event.tally.cost_micro_usd)
            .execute(&mut *$pool)
            .await?;
        };
    }
    match (store.sqlite(), store.postgres()) {
        (Some(pool), _) => {
            let mut tx = pool.begin().await?;
            insert!(tx);
            tx.commit().await
        }
        (_, Some(pool)) => {
            let mut tx = pool.begin().await?;
            insert!(tx);
            tx.commit().await
        }
        _ => unreachable!("one pool or the other"),
    }
}

/// The columns of `usage_events` (position, name, type, nullability), its keys and its indexes,
/// one line each, as the database describes them. Not the CHECK's text, which is what changes.
async fn table_shape(store: &Store) -> Vec<String> {
    match (store.sqlite(), store.postgres()) {
        (Some(pool), _) => sqlx::query_scalar(
            "SELECT 'column ' || printf('%02d', cid) || ' ' || name || ' ' || type \
             || ' notnull=' || \"notnull\" || ' pk=' || pk \
             FROM pragma_table_info('usage_events') \
             UNION ALL \
             SELECT 'index ' || CASE WHEN il.origin = 'c' THEN il.name ELSE il.origin END \
             || ' unique=' || il.\"unique\" || ' on ' \
             || (SELECT group_concat(ii.name, ',') FROM pragma_index_info(il.name) AS ii) \
             FROM pragma_index_list('usage_events') AS il \
             ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        (_, Some(pool)) => sqlx::query_scalar(
            "SELECT 'column ' || lpad(ordinal_position::text, 2, '0') || ' ' || column_name \
             || ' ' || data_type || ' nullable=' || is_nullable \
             FROM information_schema.columns WHERE table_name = 'usage_events' \
             UNION ALL \
             SELECT 'index ' || indexdef FROM pg_indexes WHERE tablename = 'usage_events' \
             UNION ALL \
             SELECT 'constraint ' || conname || ' ' || contype::text FROM pg_constraint \
             WHERE conrelid = 'usage_events'::regclass \
             ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        _ => unreachable!("one pool or the other"),
    }
}
