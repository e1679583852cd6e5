//! The writer with the database up: exact counts under concurrency, duplicates, the drain on
//! shutdown, and the gateway's own writer.

use std::sync::Arc;
use std::time::Duration;

use tollgate::clock::Timestamp;
use tollgate::metering::UsageWriter;
use tollgate::store::UsageTotal;
use tollgate::{Config, Gateway};

use super::{assert_stored_exactly, event, fresh_store, settings, wait_for_count};
use crate::support::{Backend, on_both_backends};

on_both_backends!(
    concurrent_events_are_stored_exactly_once,
    duplicates_are_stored_once,
    shutdown_drains_the_queue,
    the_gateway_writes_usage_and_drains_on_shutdown,
    totals_since_a_period_start_come_from_the_rollup,
    whole_batches_are_written_at_once_and_a_rest_on_the_tick,
);

/// Eight tasks record 2000 events at once: 2000 rows, and the rollup sums to the events.
async fn concurrent_events_are_stored_exactly_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh_store(&backend, &dir).await;
    let (recorder, writer) = UsageWriter::start(store.clone(), settings(dir.path())).unwrap();
    let events: Arc<Vec<_>> = Arc::new((0..2000).map(|i| event("c", i)).collect());
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let recorder = recorder.clone();
            let events = events.clone();
            tokio::spawn(async move {
                for event in events.iter().skip(task).step_by(8) {
                    recorder.record(event.clone());
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    wait_for_count(&store, 2000, Duration::from_secs(30)).await;
    writer.shutdown().await;
    assert_stored_exactly(&store, &events).await;
    // Every field survives the round trip.
    assert_eq!(store.usage_event("c-7").await.unwrap(), Some(event("c", 7)));
    assert_eq!(
        store.usage_event("c-10").await.unwrap(),
        Some(event("c", 10))
    );
}

/// The same event recorded twice — in one batch, in different batches, or inserted again
/// directly — is one row, counted once in the rollup.
async fn duplicates_are_stored_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh_store(&backend, &dir).await;
    let events: Vec<_> = (0..300).map(|i| event("d", i)).collect();
    let (recorder, writer) = UsageWriter::start(store.clone(), settings(dir.path())).unwrap();
    for event in &events {
        // Twice in a row: usually the same batch.
        recorder.record(event.clone());
        recorder.record(event.clone());
    }
    wait_for_count(&store, 300, Duration::from_secs(30)).await;
    // Again, in later batches.
    for event in events.iter().step_by(3) {
        recorder.record(event.clone());
    }
    writer.shutdown().await;
    assert_stored_exactly(&store, &events).await;
    // And straight into the store: nothing new.
    assert_eq!(store.insert_usage_batch(&events[..50]).await.unwrap(), 0);
    let mut mixed = events[..10].to_vec();
    mixed.push(event("d", 1000));
    assert_eq!(store.insert_usage_batch(&mixed).await.unwrap(), 1);
    let mut all = events.clone();
    all.push(event("d", 1000));
    assert_stored_exactly(&store, &all).await;
}

/// With a flush interval far longer than the test, only the drain can have written them.
async fn shutdown_drains_the_queue(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh_store(&backend, &dir).await;
    let mut settings = settings(dir.path());
    settings.flush_interval = Duration::from_secs(3600);
    settings.batch_size = 1000;
    let (recorder, writer) = UsageWriter::start(store.clone(), settings).unwrap();
    let events: Vec<_> = (0..5500).map(|i| event("s", i)).collect();
    for event in &events {
        recorder.record(event.clone());
    }
    writer.shutdown().await;
    assert_stored_exactly(&store, &events).await;
    assert!(
        tollgate::metering::spill::spill_files(&dir.path().join("spill")).is_empty(),
        "the database was up: nothing should have been spilled"
    );
}

/// `Gateway::start` starts a writer on its database and `shutdown` drains it; a second gateway
/// on the same spill directory while the first runs is refused.
async fn the_gateway_writes_usage_and_drains_on_shutdown(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.database.url = backend.fresh_database(&dir).await;
    config.metering.spill_dir = dir.path().join("spill");
    config.metering.flush_interval = Duration::from_secs(3600);
    let gateway = Gateway::start(config.clone(), None).await.unwrap();
    let second = Gateway::start(config.clone(), None).await.err().unwrap();
    assert!(second.to_string().contains("spill"), "{second}");
    let events: Vec<_> = (0..700).map(|i| event("g", i)).collect();
    let recorder = gateway.usage();
    for event in &events {
        recorder.record(event.clone());
    }
    gateway.shutdown().await.unwrap();
    let store = tollgate::store::Store::connect(&config.database.url, 2)
        .await
        .unwrap();
    assert_stored_exactly(&store, &events).await;
}

/// What quota counters are rebuilt from: per-user totals since a period start, with an event
/// one millisecond before the start left out and one at the start counted.
async fn totals_since_a_period_start_come_from_the_rollup(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh_store(&backend, &dir).await;
    // 2026-12-01T00:00:00Z.
    let month = Timestamp(1_796_083_200_000 + 86_400_000);
    let at = |tag: &str, i: u64, millis: i64, subject: &str| {
        let mut event = event(tag, i);
        event.at = Timestamp(month.0 + millis);
        event.tenant_id = "acme".to_owned();
        event.subject = subject.to_owned();
        event
    };
    let events = vec![
        at("t", 0, -1, "jane"), // 23:59:59.999 the day before: not in the period
        at("t", 1, 0, "jane"),
        at("t", 2, 3_600_000 * 5 + 17, "jane"),
        at("t", 3, 86_400_000 * 3, "bob"),
    ];
    assert_eq!(store.insert_usage_batch(&events).await.unwrap(), 4);
    let totals = store.usage_totals_since(month).await.unwrap();
    let expect = |subject: &str, counted: &[&tollgate::metering::UsageEvent]| UsageTotal {
        tenant_id: "acme".to_owned(),
        subject: subject.to_owned(),
        tally: super::expected_sums(counted.iter().copied()),
    };
    assert_eq!(
        totals,
        vec![
            expect("bob", &[&events[3]]),
            expect("jane", &[&events[1], &events[2]]),
        ]
    );
    // A later start leaves the earlier hours out.
    let later = store
        .usage_totals_since(Timestamp(month.0 + 86_400_000))
        .await
        .unwrap();
    assert_eq!(later, vec![expect("bob", &[&events[3]])]);
}

/// The writer is not woken for each event: it takes whole batches as soon as they are queued,
/// and a rest on its tick (here an hour away, so only the shutdown's drain writes it).
async fn whole_batches_are_written_at_once_and_a_rest_on_the_tick(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = fresh_store(&backend, &dir).await;
    let mut settings = settings(dir.path());
    settings.batch_size = 50;
    settings.flush_interval = Duration::from_secs(3600);
    let (recorder, writer) = UsageWriter::start(store.clone(), settings).unwrap();
    // The interval's first tick fires at once: let it pass before anything is queued.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events: Vec<_> = (0..120).map(|i| event("b", i)).collect();
    for event in &events {
        recorder.record(event.clone());
    }
    wait_for_count(&store, 100, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.usage_count().await.unwrap(), 100, "the rest waits");
    writer.shutdown().await;
    assert_stored_exactly(&store, &events).await;
}
