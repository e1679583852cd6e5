//! The usage journal: every finished request's event is handed to the operating system within
//! moments of being recorded, so a crashed process (`kill -9`, a panic, the OOM killer) loses
//! none of the usage it had finished; a crashed *machine* loses at most
//! `metering.journal_fsync_interval` of it.
//!
//! A dedicated thread takes events from [`UsageRecorder::record`](super::UsageRecorder), appends
//! them to the current journal segment (`usage-journal-N.jsonl` in the spill directory, JSON
//! lines like the spill file) with one `write(2)` for whatever has arrived, and only then
//! forwards them, in order, to the writer's queue. The writer counts the events it has made
//! durable (inserted or spilled), in the same order; a closed segment whose events are all
//! counted is deleted. On start, whatever segments a crash left behind are moved into the
//! spill file and replayed like it: events already in the database are skipped by their id.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use super::event::UsageEvent;
use super::spill::{SpillFile, SpillReader};

/// Journal segment files: `usage-journal-00000001.jsonl`, …
const PREFIX: &str = "usage-journal-";
const SUFFIX: &str = ".jsonl";
/// A segment is closed (and becomes deletable) after this many bytes or this long.
const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
const SEGMENT_AGE: Duration = Duration::from_secs(1);
/// Under load, how long the thread gathers events between writes: the most a `kill -9` can
/// take of what was recorded just before it.
const GATHER: Duration = Duration::from_millis(2);
/// How often the thread wakes when nothing arrives, to rotate, sync and delete segments.
const IDLE_WAKE: Duration = Duration::from_millis(100);
/// Stopping, how long the thread waits for room in the writer's queue before handing the
/// rest to the spill path (the writer may be stuck on a full disk and a missing database).
const STOP_PATIENCE: Duration = Duration::from_secs(1);

/// Progress shared by the journal thread and the writer.
#[derive(Default)]
pub(super) struct Progress {
    /// Events forwarded to the writer's queue, in order.
    forwarded: AtomicU64,
    /// The first `durable` forwarded events are in the database or the spill file.
    durable: AtomicU64,
    /// The writer gave events up at shutdown: keep every segment for the next start.
    keep_all: AtomicBool,
}

impl Progress {
    /// The writer made the next `events` queued events durable.
    pub(super) fn made_durable(&self, events: usize) {
        self.durable.fetch_add(events as u64, Ordering::Release);
    }

    /// The writer could not place some queued events; their segments must survive.
    pub(super) fn keep_all(&self) {
        self.keep_all.store(true, Ordering::Release);
    }
}

/// The journal thread, for shutdown.
pub(super) struct JournalHandle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl JournalHandle {
    /// Journals and forwards everything sent so far, then stops the thread. Events recorded
    /// afterwards find the journal gone and take the spill path. Not a message on the channel:
    /// a full channel, behind a writer stuck on a full disk, must not keep it from stopping.
    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// Moves the segments a crash left behind into the spill file (which is replayed first thing),
/// then deletes them. Returns how many events were moved.
pub(super) fn recover(dir: &Path, spill: &SpillFile) -> io::Result<u64> {
    let mut moved = 0;
    for path in segments(dir)? {
        let mut reader = SpillReader::open(&path)?;
        loop {
            let chunk = reader.next_chunk(1000)?;
            if chunk.is_empty() {
                break;
            }
            spill.append(&chunk).map_err(|error| error.source)?;
            moved += chunk.len() as u64;
        }
        std::fs::remove_file(&path)?;
    }
    Ok(moved)
}

/// The writer's queue as the journal fills it. Sending does not wake the writer (a wake-up
/// for every few events, at a few hundred requests a second, was an `eventfd` write, an
/// `epoll` return and a task poll per request); the writer takes what is queued on its tick,
/// and `ready` brings it sooner once a batch's worth is waiting.
pub(super) struct WriterQueue {
    pub(super) sender: mpsc::Sender<UsageEvent>,
    pub(super) ready: Arc<Notify>,
    /// Queued events that make a batch (at most the queue's capacity).
    pub(super) batch: usize,
}

/// Starts the journal thread in `dir`. Events go on to `queue`; `overflow` takes those the
/// queue has no room for once it is closed (the writer stopped).
pub(super) fn start(
    dir: &Path,
    capacity: usize,
    fsync_interval: Duration,
    queue: WriterQueue,
    overflow: impl Fn(UsageEvent) + Send + 'static,
    progress: Arc<Progress>,
) -> io::Result<(SyncSender<UsageEvent>, JournalHandle)> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(capacity);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let mut thread = Thread {
        dir: dir.to_owned(),
        next_segment: next_segment_number(dir)?,
        current: None,
        closed: VecDeque::new(),
        written: 0,
        fsync_interval,
        last_sync: Instant::now(),
        unsynced: false,
        pending: VecDeque::new(),
        capacity,
        queue,
        progress,
        buffer: Vec::with_capacity(64 * 1024),
    };
    let thread = std::thread::Builder::new()
        .name("tollgate-journal".into())
        .spawn(move || thread.run(&receiver, &stopped, overflow))?;
    Ok((sender, JournalHandle { stop, thread }))
}

/// A segment being written.
struct Segment {
    path: PathBuf,
    file: File,
    bytes: u64,
    opened: Instant,
}

/// The journal thread's state.
struct Thread {
    dir: PathBuf,
    next_segment: u64,
    current: Option<Segment>,
    /// Closed segments, oldest first, with the forwarded count their last event brings.
    closed: VecDeque<(PathBuf, u64)>,
    /// Events written to segments so far (the same order they are forwarded in).
    written: u64,
    fsync_interval: Duration,
    last_sync: Instant,
    unsynced: bool,
    /// Journaled, not yet taken by the writer's queue.
    pending: VecDeque<UsageEvent>,
    capacity: usize,
    queue: WriterQueue,
    progress: Arc<Progress>,
    buffer: Vec<u8>,
}

impl Thread {
    fn run(
        &mut self,
        receiver: &Receiver<UsageEvent>,
        stop: &AtomicBool,
        overflow: impl Fn(UsageEvent),
    ) {
        let mut batch = Vec::new();
        // Events came in on the last round: under load, collect for a moment instead of
        // blocking on the channel, so recorders never have to wake this thread.
        let mut busy = false;
        loop {
            let stopping = stop.load(Ordering::Acquire);
            if stopping {
                // Everything sent before the stop, whatever the backlog.
                batch.extend(receiver.try_iter());
            } else if self.pending.len() >= self.capacity {
                // A queue's worth is waiting for the writer: take no more for now (the
                // recorders' channel fills, and they turn to the spill file).
                std::thread::park_timeout(GATHER);
            } else if busy {
                std::thread::park_timeout(GATHER);
                batch.extend(receiver.try_iter().take(self.capacity));
            } else {
                // Idle: block until an event comes (its sender wakes us), then write it at once.
                let wait = if self.pending.is_empty() {
                    IDLE_WAKE
                } else {
                    GATHER
                };
                match receiver.recv_timeout(wait) {
                    Ok(event) => {
                        batch.push(event);
                        batch.extend(receiver.try_iter().take(self.capacity));
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    // Every recorder is gone: nothing more will come.
                    Err(RecvTimeoutError::Disconnected) => stop.store(true, Ordering::Release),
                }
            }
            busy = !batch.is_empty();
            if !batch.is_empty() {
                self.journal(&batch);
                self.pending.extend(batch.drain(..));
            }
            self.forward(&overflow, stopping);
            self.maintain(stopping);
            if stopping {
                return;
            }
        }
    }

    /// Appends events to the current segment, in one write. A journal that cannot be written
    /// (a full or broken disk) costs only the crash safety of these events: they still go on.
    fn journal(&mut self, events: &[UsageEvent]) {
        self.buffer.clear();
        for event in events {
            if serde_json::to_writer(&mut self.buffer, event).is_ok() {
                self.buffer.push(b'\n');
            }
        }
        let buffer = std::mem::take(&mut self.buffer);
        let result = self.segment().and_then(|segment| {
            segment.file.write_all(&buffer)?;
            segment.bytes += buffer.len() as u64;
            Ok(())
        });
        self.buffer = buffer;
        match result {
            Ok(()) => {
                self.unsynced = true;
                metrics::counter!("tollgate_usage_journaled_events_total")
                    .increment(events.len() as u64);
            }
            Err(error) => {
                // Whatever part of the write went in is a torn line the replay skips.
                tracing::error!(%error, dir = %self.dir.display(), events = events.len(),
                    "cannot write the usage journal; these events are not crash-safe until stored");
                metrics::counter!("tollgate_usage_journal_errors_total").increment(1);
            }
        }
        self.written += events.len() as u64;
    }

    /// The segment to append to, opening a new one if needed.
    fn segment(&mut self) -> io::Result<&mut Segment> {
        if self.current.is_none() {
            let path = self
                .dir
                .join(format!("{PREFIX}{:08}{SUFFIX}", self.next_segment));
            self.next_segment += 1;
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            self.current = Some(Segment {
                path,
                file,
                bytes: 0,
                opened: Instant::now(),
            });
        }
        self.current
            .as_mut()
            .ok_or_else(|| io::Error::other("no journal segment"))
    }

    /// Hands journaled events to the writer's queue, in order, as far as it has room, and
    /// tells the writer when a batch's worth waits. Stopping, it waits a while for room: the
    /// writer is still draining then.
    fn forward(&mut self, overflow: &impl Fn(UsageEvent), stopping: bool) {
        let patience = Instant::now() + STOP_PATIENCE;
        while let Some(event) = self.pending.pop_front() {
            match self.queue.sender.try_send(event) {
                Ok(()) => {
                    self.progress.forwarded.fetch_add(1, Ordering::Release);
                }
                Err(mpsc::error::TrySendError::Full(event))
                    if stopping && Instant::now() < patience =>
                {
                    self.pending.push_front(event);
                    self.queue.ready.notify_one();
                    std::thread::park_timeout(Duration::from_millis(5));
                }
                Err(mpsc::error::TrySendError::Full(event)) if !stopping => {
                    self.pending.push_front(event);
                    break;
                }
                // The writer has stopped, or is stuck while we stop: the spill path takes
                // it. Its segment stays for the next start, where its id makes a second copy
                // harmless.
                Err(
                    mpsc::error::TrySendError::Full(event)
                    | mpsc::error::TrySendError::Closed(event),
                ) => {
                    self.progress.keep_all();
                    overflow(event);
                }
            }
        }
        let sender = &self.queue.sender;
        if sender.max_capacity() - sender.capacity() >= self.queue.batch {
            self.queue.ready.notify_one();
        }
    }

    /// Syncs, rotates and deletes segments as due. Stopping: a final sync, and every segment
    /// deleted if everything forwarded is durable.
    fn maintain(&mut self, stopping: bool) {
        let now = Instant::now();
        if self.unsynced && (stopping || now.duration_since(self.last_sync) >= self.fsync_interval)
        {
            if let Some(segment) = &self.current
                && let Err(error) = segment.file.sync_data()
            {
                tracing::error!(%error, "cannot sync the usage journal");
            }
            self.unsynced = false;
            self.last_sync = now;
        }
        let due = self.current.as_ref().is_some_and(|segment| {
            segment.bytes >= SEGMENT_BYTES || now.duration_since(segment.opened) >= SEGMENT_AGE
        });
        if due && let Some(segment) = self.current.take() {
            if self.unsynced {
                let _ = segment.file.sync_data();
                self.unsynced = false;
            }
            self.closed.push_back((segment.path, self.written));
        }
        if self.progress.keep_all.load(Ordering::Acquire) {
            return;
        }
        let durable = self.progress.durable.load(Ordering::Acquire);
        while let Some((path, last)) = self.closed.front() {
            if *last > durable {
                break;
            }
            if let Err(error) = std::fs::remove_file(path) {
                tracing::warn!(%error, path = %path.display(), "cannot delete a usage journal segment");
            }
            self.closed.pop_front();
        }
        // The writer finished with everything: nothing needs the journal any more.
        if stopping
            && self.pending.is_empty()
            && durable >= self.written
            && let Some(segment) = self.current.take()
        {
            let _ = std::fs::remove_file(&segment.path);
        }
    }
}

/// The journal segments in `dir`, oldest first.
fn segments(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(number) = segment_number(&path) {
            found.push((number, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

fn segment_number(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

/// The number after the highest segment present (normally none are, after recovery).
fn next_segment_number(dir: &Path) -> io::Result<u64> {
    Ok(segments(dir)?
        .last()
        .and_then(|path| segment_number(path))
        .map_or(1, |n| n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::spill::tests::event;

    #[test]
    fn a_crashed_runs_segments_move_into_the_spill_file_torn_tail_and_all() {
        let dir = tempfile::tempdir().unwrap();
        let (spill, _lock) = SpillFile::open(dir.path()).unwrap();
        let mut text = String::new();
        for id in ["a", "b"] {
            text.push_str(&serde_json::to_string(&event(id)).unwrap());
            text.push('\n');
        }
        let torn = serde_json::to_string(&event("torn")).unwrap();
        text.push_str(&torn[..torn.len() / 2]);
        std::fs::write(dir.path().join(format!("{PREFIX}00000007{SUFFIX}")), &text).unwrap();
        std::fs::write(
            dir.path().join(format!("{PREFIX}00000008{SUFFIX}")),
            serde_json::to_string(&event("c")).unwrap() + "\n",
        )
        .unwrap();

        assert_eq!(recover(dir.path(), &spill).unwrap(), 3);
        assert!(segments(dir.path()).unwrap().is_empty(), "segments removed");
        let path = spill.take_for_replay().unwrap().unwrap();
        let (events, _) = SpillReader::read_all(&path).unwrap();
        let ids: Vec<_> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(
            ids,
            ["a", "b", "c"],
            "oldest segment first, the torn line skipped"
        );
        assert_eq!(next_segment_number(dir.path()).unwrap(), 1);
    }
}
