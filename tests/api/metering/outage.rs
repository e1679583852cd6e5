//! The database away: events wait or spill, and every one lands exactly once when it returns —
//! also across a restart, and when the queue overflows.

use std::time::{Duration, Instant};

use tollgate::metering::UsageWriter;
use tollgate::metering::spill::{SpillReader, spill_files};

use super::{Outage, assert_stored_exactly, event, fresh_store, settings, wait_for_count};
use crate::support::{Backend, on_both_backends};

on_both_backends!(
    events_recorded_while_the_database_is_away_land_once,
    a_full_queue_spills_without_blocking,
    spilled_events_are_replayed_by_the_next_writer,
);

/// Events spilled so far, read from the files themselves.
fn spilled_on_disk(dir: &std::path::Path) -> usize {
    spill_files(&dir.join("spill"))
        .iter()
        .map(|path| SpillReader::read_all(path).unwrap().0.len())
        .sum()
}

/// ~8 s of traffic while the database refuses writes, then it returns: every event exactly once.
async fn events_recorded_while_the_database_is_away_land_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = fresh_store(&backend, &dir).await;
    let (recorder, writer) = UsageWriter::start(store.clone(), settings(dir.path())).unwrap();
    // Some usage before the outage.
    let before: Vec<_> = (0..100).map(|i| event("o", i)).collect();
    for event in &before {
        recorder.record(event.clone());
    }
    wait_for_count(&store, 100, Duration::from_secs(30)).await;

    let outage = Outage::begin(&backend, &url).await;
    let mut events = before;
    let started = Instant::now();
    let mut i = 100;
    while started.elapsed() < Duration::from_secs(8) {
        for _ in 0..20 {
            let event = event("o", i);
            recorder.record(event.clone());
            events.push(event);
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        writer.spilled() > 0,
        "an 8 s outage with spill_after = 1 s must have spilled"
    );
    outage.end().await;

    wait_for_count(&store, events.len() as i64, Duration::from_secs(60)).await;
    // Once the replay finished, the spill file is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    while writer.spilled() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(writer.spilled(), 0);
    writer.shutdown().await;
    assert_stored_exactly(&store, &events).await;
    assert_eq!(spilled_on_disk(dir.path()), 0);
}

/// A queue of 4 and a stalled database: `record` stays instant, the surplus goes to the spill
/// file, and all of it is replayed once the database is back.
async fn a_full_queue_spills_without_blocking(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = fresh_store(&backend, &dir).await;
    let mut settings = settings(dir.path());
    settings.queue_capacity = 4;
    settings.batch_size = 2;
    // Keep the writer on its first batch for the whole test, so only overflow can spill.
    settings.spill_after = Duration::from_secs(60);
    let outage = Outage::begin(&backend, &url).await;
    let (recorder, writer) = UsageWriter::start(store.clone(), settings).unwrap();
    let events: Vec<_> = (0..1000).map(|i| event("q", i)).collect();
    let started = Instant::now();
    for event in &events {
        recorder.record(event.clone());
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "recording must not wait on the database or the disk: took {took:?}"
    );
    // At most the journal's channel and backlog (a queue's worth each), the queue and the
    // writer's batch are on their way in memory; the rest reaches the spill file.
    let in_memory = 4 + 4 + 4 + 2;
    // Generous: under CI's parallel load the spill writer shares two cores with every other
    // test; a passing run leaves the loop as soon as the count is reached.
    let deadline = Instant::now() + Duration::from_secs(30);
    while spilled_on_disk(dir.path()) < 1000 - in_memory && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spilled = spilled_on_disk(dir.path());
    assert!(
        spilled >= 1000 - in_memory,
        "{spilled} of 1000 events on disk after 30 s; at most {in_memory} may be in memory"
    );
    outage.end().await;

    wait_for_count(&store, 1000, Duration::from_secs(60)).await;
    writer.shutdown().await;
    assert_stored_exactly(&store, &events).await;
}

/// A writer shut down while the database is away spills what it holds; the next writer on the
/// same spill directory replays it — including events that were already stored, once.
async fn spilled_events_are_replayed_by_the_next_writer(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = fresh_store(&backend, &dir).await;
    let (recorder, writer) = UsageWriter::start(store.clone(), settings(dir.path())).unwrap();
    let stored: Vec<_> = (0..50).map(|i| event("r", i)).collect();
    for event in &stored {
        recorder.record(event.clone());
    }
    wait_for_count(&store, 50, Duration::from_secs(30)).await;

    let outage = Outage::begin(&backend, &url).await;
    let fresh: Vec<_> = (50..400).map(|i| event("r", i)).collect();
    for event in stored.iter().chain(&fresh) {
        recorder.record(event.clone());
    }
    writer.shutdown().await;
    assert_eq!(
        spilled_on_disk(dir.path()),
        400,
        "everything recorded during the outage, duplicates included, is on disk"
    );
    // Recorded after shutdown: still not lost.
    recorder.record(event("r", 400));
    let deadline = Instant::now() + Duration::from_secs(10);
    while spilled_on_disk(dir.path()) < 401 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(spilled_on_disk(dir.path()), 401);
    outage.end().await;
    assert_eq!(store.usage_count().await.unwrap(), 50);

    let (_recorder, writer) = UsageWriter::start(store.clone(), settings(dir.path())).unwrap();
    wait_for_count(&store, 401, Duration::from_secs(30)).await;
    writer.shutdown().await;
    let mut all = stored;
    all.extend(fresh);
    all.push(event("r", 400));
    assert_stored_exactly(&store, &all).await;
    assert_eq!(spilled_on_disk(dir.path()), 0);
}
