//! Databases written by earlier versions: migrated in place, every row kept and read back.

use tollgate::metering::Ending;
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
    assert_eq!(store.insert_usage_batch(&old).await.unwrap(), 4);
    let mut cut = event("old", 4);
    cut.status = Ending::ShutDown;
    assert!(
        store.insert_usage_batch(&[cut.clone()]).await.is_err(),
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
