//! A spill directory on a full disk (a real 64 KiB tmpfs) while the database is away: the
//! events the disk refuses wait in memory, reach the database when it returns, and shutdown
//! stays bounded when it never does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use tollgate::metering::UsageWriter;
use tollgate::metering::spill::{SpillReader, spill_files};

use super::{Outage, assert_stored_exactly, event, fresh_store, settings, wait_for_count};
use crate::support::{Backend, on_both_backends};

on_both_backends!(
    events_a_full_spill_disk_refuses_reach_the_database_when_it_returns,
    shutdown_is_bounded_when_neither_the_database_nor_the_disk_takes_events,
);

/// A 64 KiB tmpfs mounted at `dir/spill` for the test's duration.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// `None` (after saying why) where mounting is not allowed; CI runs as root and must mount.
    fn mount(dir: &Path) -> Option<Self> {
        let path = dir.join("spill");
        std::fs::create_dir_all(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the full-disk tests: mounting a tmpfs needs root"
            );
            eprintln!("skipping a full-disk test: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Self(path))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A usage writer (queue 16, batches of 50) whose spill directory is a 64 KiB disk and whose
/// database is already unreachable.
struct Stranded {
    _disk: SmallDisk,
    store: tollgate::store::Store,
    outage: Outage,
    recorder: tollgate::metering::UsageRecorder,
    writer: tollgate::metering::WriterHandle,
}

impl Stranded {
    /// `None` where a tmpfs cannot be mounted (outside CI).
    async fn start(backend: &Backend, dir: &TempDir, shutdown_timeout: Duration) -> Option<Self> {
        let disk = SmallDisk::mount(dir.path())?;
        let (store, url) = fresh_store(backend, dir).await;
        let mut settings = settings(dir.path());
        settings.queue_capacity = 16;
        settings.batch_size = 50;
        settings.shutdown_timeout = shutdown_timeout;
        let outage = Outage::begin(backend, &url).await;
        let (recorder, writer) = UsageWriter::start(store.clone(), settings).unwrap();
        Some(Self {
            _disk: disk,
            store,
            outage,
            recorder,
            writer,
        })
    }
}

/// Every line of every spill file is a whole event: a failed write left no torn tail.
fn spilled_whole(dir: &Path) -> usize {
    spill_files(&dir.join("spill"))
        .iter()
        .map(|path| {
            let (events, skipped) = SpillReader::read_all(path).unwrap();
            assert_eq!(skipped, 0, "a torn line in {}", path.display());
            events.len()
        })
        .sum()
}

async fn events_a_full_spill_disk_refuses_reach_the_database_when_it_returns(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(Stranded {
        _disk,
        store,
        outage,
        recorder,
        writer,
    }) = Stranded::start(&backend, &dir, Duration::from_secs(10)).await
    else {
        return;
    };
    // ~500 KB of events against 64 KiB of disk.
    let events: Vec<_> = (0..1370).map(|i| event("disk", i)).collect();
    for event in &events {
        recorder.record(event.clone());
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while writer.held() < 1000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The disk (shared by the journal and the spill file) took what fit, in whole lines; the
    // rest is held, but for what is on its way: the journal's channel and backlog and the
    // queue (16 each) and the writer's batch (50).
    let spilled = spilled_whole(dir.path());
    assert!(
        writer.held() + spilled >= 1370 - 3 * 16 - 50,
        "held {} + spilled {spilled}",
        writer.held()
    );

    outage.end().await;
    wait_for_count(&store, 1370, Duration::from_secs(60)).await;
    assert_eq!(writer.held(), 0);
    let stopping = Instant::now();
    writer.shutdown().await;
    assert!(stopping.elapsed() < Duration::from_secs(3));
    assert_stored_exactly(&store, &events).await;
}

async fn shutdown_is_bounded_when_neither_the_database_nor_the_disk_takes_events(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(Stranded {
        _disk,
        outage,
        recorder,
        writer,
        ..
    }) = Stranded::start(&backend, &dir, Duration::from_secs(2)).await
    else {
        return;
    };
    for i in 0..1370 {
        recorder.record(event("stuck", i));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while writer.held() < 1000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopping = Instant::now();
    writer.shutdown().await;
    let took = stopping.elapsed();
    // The bound: the timeout, plus the one database attempt in progress when the stop came
    // (a locked SQLite file makes it wait out its 5 s busy timeout).
    assert!(
        took < Duration::from_secs(9),
        "shutdown gave up after metering.shutdown_timeout (2 s), not never: {took:?}"
    );
    spilled_whole(dir.path());
    outage.end().await;
}
