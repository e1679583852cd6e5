//! The usage writer: events leave the request path through a bounded queue and reach the
//! database in batches, off the hot path. Nothing is dropped: a full queue, or a database
//! that stays away, sends events to the spill file, which is replayed when inserts work again.

use std::mem;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::event::UsageEvent;
use super::journal::{self, JournalHandle, Progress};
use super::spill::{DirLock, SpillError, SpillFile, SpillReader};
use crate::config::MeteringConfig;
use crate::store::Store;

/// The writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot use the usage spill directory {path}: {source}")]
    SpillDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Starts the writer task.
pub struct UsageWriter;

/// Hands events to the writer, through the journal. Cheap to clone;
/// [`UsageRecorder::record`] never blocks and never waits.
#[derive(Clone)]
pub struct UsageRecorder {
    journal: SyncSender<UsageEvent>,
    overflow: Arc<Overflow>,
}

/// Stops the writer; see [`WriterHandle::shutdown`].
pub struct WriterHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    journal: JournalHandle,
    overflow: Arc<Overflow>,
    spill: Arc<SpillFile>,
}

// === impl UsageWriter ===

impl UsageWriter {
    /// Opens (and locks) the spill directory, moves what a crashed run left in the journal
    /// into the spill file, and starts the journal thread and the writer task, which first
    /// replays the spill file. Needs a Tokio runtime.
    pub fn start(
        store: Store,
        settings: MeteringConfig,
    ) -> Result<(UsageRecorder, WriterHandle), WriterError> {
        let dir_error = |source| WriterError::SpillDir {
            path: settings.spill_dir.clone(),
            source,
        };
        let (spill, dir_lock) = SpillFile::open(&settings.spill_dir).map_err(dir_error)?;
        let recovered = journal::recover(&settings.spill_dir, &spill).map_err(dir_error)?;
        if recovered > 0 {
            tracing::warn!(
                events = recovered,
                "found usage events in the journal of a run that did not stop cleanly; replaying them"
            );
        }
        let spill = Arc::new(spill);
        let (sender, receiver) = mpsc::channel(settings.queue_capacity);
        let ready = Arc::new(Notify::new());
        let queue = journal::WriterQueue {
            sender,
            ready: ready.clone(),
            batch: settings.batch_size.min(settings.queue_capacity),
        };
        let overflow = Arc::new(Overflow {
            spill: spill.clone(),
            state: Mutex::new(OverflowState::default()),
            in_flight: watch::Sender::new(0),
            writer_holds: AtomicUsize::new(0),
        });
        let progress = Arc::new(Progress::default());
        let spill_path = overflow.clone();
        let (journal, journal_handle) = journal::start(
            &settings.spill_dir,
            settings.queue_capacity,
            settings.journal_fsync_interval,
            queue,
            move |event| spill_path.push(event),
            progress.clone(),
        )
        .map_err(dir_error)?;
        let (stop, stopped) = watch::channel(false);
        let writer = Writer {
            stop: stopped.clone(),
            progress,
            backoff: settings.retry_initial_backoff,
            store,
            spill: spill.clone(),
            overflow: overflow.clone(),
            give_up_at: None,
            receiver,
            ready,
            outage: None,
            next_probe: Instant::now(),
            settings,
            draining: false,
            _dir_lock: dir_lock,
        };
        let task = tokio::spawn(writer.run(stopped));
        let recorder = UsageRecorder {
            journal,
            overflow: overflow.clone(),
        };
        let handle = WriterHandle {
            stop,
            task,
            journal: journal_handle,
            overflow,
            spill,
        };
        Ok((recorder, handle))
    }
}

// === impl UsageRecorder ===

impl UsageRecorder {
    /// Hands one event to the journal, which writes it down and queues it for the database.
    /// When the journal's queue is full (or it has stopped) the event goes to the spill file
    /// from a blocking task instead; the caller never waits.
    pub fn record(&self, event: UsageEvent) {
        match self.journal.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event) | TrySendError::Disconnected(event)) => {
                self.overflow.push(event)
            }
        }
    }
}

// === impl WriterHandle ===

impl WriterHandle {
    /// Writes out everything queued — to the database, or to the spill file if the database
    /// is away — and returns once every event recorded before the call is in one or the other.
    pub async fn shutdown(self) {
        // The journal first: it forwards what it holds to the queue, which the writer is
        // still draining.
        let journal = self.journal;
        let _ = tokio::task::spawn_blocking(move || journal.stop()).await;
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the usage writer task failed");
        }
        // Events that overflowed the queue (or arrived after it closed) are on their way to
        // the spill file in blocking tasks; wait for the last fsync.
        let mut in_flight = self.overflow.in_flight.subscribe();
        let _ = in_flight.wait_for(|count| *count == 0).await;
        // Refused by the spill file after the writer had drained: nowhere left to go.
        let left = self.overflow.take_held(usize::MAX);
        if !left.is_empty() {
            give_up(&left);
        }
        tracing::info!(
            spilled = self.spill.pending(),
            "usage writer stopped; spilled events are replayed on the next start"
        );
    }

    /// Events waiting in the spill file.
    pub fn spilled(&self) -> u64 {
        self.spill.pending()
    }

    /// Events held in memory only (the spill file refused them), as the gauge reports.
    pub fn held(&self) -> usize {
        self.overflow.lock().held.len() + self.overflow.writer_holds.load(Ordering::Relaxed)
    }
}

/// Events that did not fit in the queue, on their way to the spill file. One blocking task at
/// a time appends whatever has piled up, so a burst costs a few fsyncs, not one per event.
/// Events the spill file refuses (a full disk) are held here until the writer puts them in
/// the database.
struct Overflow {
    spill: Arc<SpillFile>,
    state: Mutex<OverflowState>,
    /// Running flush tasks (0 or 1), for shutdown to wait on.
    in_flight: watch::Sender<usize>,
    /// Events the writer itself holds because neither the database nor the spill file took
    /// them (its batch in retry), for the held-events gauge.
    writer_holds: AtomicUsize,
}

#[derive(Default)]
struct OverflowState {
    events: Vec<UsageEvent>,
    flushing: bool,
    /// Refused by the spill file; waiting for the writer to insert them.
    held: Vec<UsageEvent>,
}

impl Overflow {
    fn push(self: &Arc<Self>, event: UsageEvent) {
        let start = {
            let mut state = self.lock();
            state.events.push(event);
            let start = !state.flushing;
            if start {
                state.flushing = true;
                // Counted under the lock, so shutdown cannot see zero between this push and
                // the task that will write it.
                self.in_flight.send_modify(|count| *count += 1);
            }
            start
        };
        if start {
            let this = self.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(move || this.flush());
                }
                // Outside a runtime nobody is being kept waiting; write it here.
                Err(_) => this.flush(),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OverflowState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends until nothing is left. What the spill file refuses is held for the writer,
    /// which retries the database: no event waits on a full disk alone.
    fn flush(&self) {
        loop {
            let mut events = {
                let mut state = self.lock();
                if state.events.is_empty() {
                    state.flushing = false;
                    self.in_flight.send_modify(|count| *count -= 1);
                    return;
                }
                mem::take(&mut state.events)
            };
            match self.spill.append(&events) {
                Ok(()) => {
                    metrics::counter!("tollgate_usage_batches_total", "result" => "overflowed")
                        .increment(1);
                }
                Err(error) => {
                    tracing::error!(%error, dir = %self.spill.dir().display(), events = events.len(),
                        "cannot write the usage spill file; holding the events in memory for the database");
                    metrics::counter!("tollgate_usage_batches_total", "result" => "failed")
                        .increment(1);
                    let refused = events.split_off(error.stored.min(events.len()));
                    self.lock().held.extend(refused);
                    self.publish_held();
                }
            }
        }
    }

    /// Takes up to `max` held events, for the writer to insert.
    fn take_held(&self, max: usize) -> Vec<UsageEvent> {
        let mut state = self.lock();
        let keep = state.held.len().saturating_sub(max);
        let taken = state.held.split_off(keep);
        drop(state);
        if !taken.is_empty() {
            self.publish_held();
        }
        taken
    }

    fn has_held(&self) -> bool {
        !self.lock().held.is_empty()
    }

    /// `tollgate_usage_held_events`: events only in this process's memory, in neither the
    /// database nor the spill file.
    fn publish_held(&self) {
        let held = self.lock().held.len() + self.writer_holds.load(Ordering::Relaxed);
        metrics::gauge!("tollgate_usage_held_events").set(held as f64);
    }
}

/// The writer task's state.
struct Writer {
    /// Turns true at shutdown; a batch in retry sees it too, so shutdown is never stuck
    /// behind a database and a disk that both refuse.
    stop: watch::Receiver<bool>,
    /// Tells the journal how many queued events are durable, so it can drop their segments.
    progress: Arc<Progress>,
    store: Store,
    spill: Arc<SpillFile>,
    receiver: mpsc::Receiver<UsageEvent>,
    /// A batch's worth is queued (see [`journal::WriterQueue`]).
    ready: Arc<Notify>,
    settings: MeteringConfig,
    /// When inserts started failing; `None` while they work.
    outage: Option<Instant>,
    /// During an outage, batches go straight to the spill file until this time, then one
    /// insert is tried again.
    next_probe: Instant,
    backoff: Duration,
    /// Shutting down: during an outage every batch goes straight to the spill file, since the
    /// process is leaving and the file is replayed on the next start.
    draining: bool,
    /// Where events the spill file refused wait for the database.
    overflow: Arc<Overflow>,
    /// While draining: when to stop retrying a batch neither the database nor the spill file
    /// takes, so that shutdown is bounded.
    give_up_at: Option<Instant>,
    _dir_lock: DirLock,
}

impl Writer {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        self.replay().await;
        let batch_size = self.settings.batch_size;
        let mut batch = Vec::with_capacity(batch_size);
        let mut tick = tokio::time::interval(self.settings.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stopped.changed() => break,
                () = self.ready.notified() => {
                    // Whole batches only; a rest waits for the tick or for more.
                    while self.take_queued(&mut batch, batch_size) {
                        self.write_queued(mem::take(&mut batch)).await;
                    }
                }
                _ = tick.tick() => {
                    let idle = !self.write_all_queued(&mut batch, batch_size).await;
                    if idle && self.overflow.has_held() && Instant::now() >= self.next_probe {
                        // Refused by a full spill disk: the database is their way out.
                        let held = self.overflow.take_held(batch_size);
                        self.write(held).await;
                    } else if idle && self.spill.pending() > 0 && Instant::now() >= self.next_probe {
                        // Idle with events in the spill file: without traffic no insert would
                        // ever succeed to trigger the replay.
                        self.replay().await;
                    }
                }
            }
            metrics::gauge!("tollgate_usage_queue_depth").set(self.receiver.len() as f64);
            if self.receiver.is_closed() && self.receiver.is_empty() && batch.is_empty() {
                // Every recorder is gone and the queue is empty.
                break;
            }
        }
        // Drain. Closing makes later `record` calls go to the spill file, so this ends.
        self.receiver.close();
        self.begin_draining();
        if !batch.is_empty() {
            self.write_queued(mem::take(&mut batch)).await;
        }
        while self.receiver.recv_many(&mut batch, batch_size).await > 0 {
            self.write_queued(mem::take(&mut batch)).await;
        }
        loop {
            let held = self.overflow.take_held(batch_size);
            if held.is_empty() {
                break;
            }
            self.write(held).await;
        }
        metrics::gauge!("tollgate_usage_queue_depth").set(0.0);
    }

    /// Moves queued events into `batch` until it holds `batch_size`; whether it does.
    fn take_queued(&mut self, batch: &mut Vec<UsageEvent>, batch_size: usize) -> bool {
        while batch.len() < batch_size {
            match self.receiver.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => return false,
            }
        }
        true
    }

    /// Writes everything queued, in batches; whether there was anything.
    async fn write_all_queued(&mut self, batch: &mut Vec<UsageEvent>, batch_size: usize) -> bool {
        let mut wrote = false;
        loop {
            let full = self.take_queued(batch, batch_size);
            if batch.is_empty() {
                return wrote;
            }
            self.write_queued(mem::take(batch)).await;
            wrote = true;
            if !full {
                return wrote;
            }
        }
    }

    /// Writes a batch taken from the queue, and tells the journal how it went.
    async fn write_queued(&mut self, batch: Vec<UsageEvent>) {
        let events = batch.len();
        if self.write(batch).await {
            self.progress.made_durable(events);
        } else {
            self.progress.keep_all();
        }
    }

    /// Inserts one batch, retrying with backoff; spills it once inserts have failed for
    /// `spill_after`. Returns when the batch is in the database or in the spill file — or,
    /// while shutting down, when `metering.shutdown_timeout` has passed with neither taking it
    /// (then the events are given up: logged and counted). `true` unless given up.
    async fn write(&mut self, mut batch: Vec<UsageEvent>) -> bool {
        loop {
            if !self.draining && *self.stop.borrow() {
                self.begin_draining();
            }
            let attempt = Instant::now();
            if let Some(since) = self.outage
                && (self.draining
                    || (since.elapsed() >= self.settings.spill_after && attempt < self.next_probe))
            {
                // A long outage: don't hold the queue up on an insert that will fail.
                if self.spill_batch(&mut batch).await {
                    self.holding(0);
                    return true;
                }
            } else {
                match self.store.insert_usage_batch(&batch).await {
                    Ok(_) => {
                        metrics::counter!("tollgate_usage_batches_total", "result" => "inserted")
                            .increment(1);
                        self.holding(0);
                        self.recovered();
                        if self.spill.pending() > 0 {
                            self.replay().await;
                        }
                        return true;
                    }
                    Err(error) => {
                        metrics::counter!("tollgate_usage_retries_total").increment(1);
                        let since = *self.outage.get_or_insert(attempt);
                        tracing::warn!(%error, events = batch.len(), "cannot insert usage events; retrying");
                        self.failed();
                        if (self.draining || since.elapsed() >= self.settings.spill_after)
                            && self.spill_batch(&mut batch).await
                        {
                            self.holding(0);
                            return true;
                        }
                    }
                }
            }
            self.holding(batch.len());
            if let Some(give_up_at) = self.give_up_at
                && Instant::now() >= give_up_at
            {
                self.holding(0);
                give_up(&batch);
                return false;
            }
            let wake = self
                .give_up_at
                .map_or(self.next_probe, |at| at.min(self.next_probe));
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                _ = stop.changed(), if !self.draining => {}
            }
        }
    }

    /// From now on an outage sends batches straight to the spill file, and what neither the
    /// database nor the spill file takes is given up after `metering.shutdown_timeout`.
    fn begin_draining(&mut self) {
        self.draining = true;
        self.give_up_at
            .get_or_insert(Instant::now() + self.settings.shutdown_timeout);
    }

    /// Notes how many events this writer holds in memory only (its batch in retry).
    fn holding(&self, events: usize) {
        self.overflow.writer_holds.store(events, Ordering::Relaxed);
        self.overflow.publish_held();
    }

    /// Appends a batch to the spill file; `true` if all of it is there. What a full disk took
    /// before it failed is removed from `batch`, which then holds only what still waits.
    async fn spill_batch(&self, batch: &mut Vec<UsageEvent>) -> bool {
        let spill = self.spill.clone();
        let events = batch.clone();
        let result = tokio::task::spawn_blocking(move || spill.append(&events))
            .await
            .unwrap_or_else(|error| {
                Err(SpillError {
                    stored: 0,
                    source: std::io::Error::other(error),
                })
            });
        match result {
            Ok(()) => {
                metrics::counter!("tollgate_usage_batches_total", "result" => "spilled")
                    .increment(1);
                true
            }
            Err(error) => {
                metrics::counter!("tollgate_usage_batches_total", "result" => "failed")
                    .increment(1);
                tracing::error!(%error, dir = %self.spill.dir().display(),
                    "cannot write the usage spill file; the rest of the batch stays in memory and is retried");
                batch.drain(..error.stored.min(batch.len()));
                batch.is_empty()
            }
        }
    }

    /// Replays the spill file into the database, one batch per transaction. A failure keeps
    /// the file (what was already inserted is skipped next time: the request id is the key).
    /// One round at most: the file left from an unfinished replay, then the current one, so a
    /// replay cannot starve the queue while new events keep spilling.
    async fn replay(&mut self) {
        for _ in 0..2 {
            match self.replay_one().await {
                Ok(Some((inserted, lines))) => {
                    tracing::info!(inserted, lines, "replayed spilled usage events");
                    self.recovered();
                }
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot replay the usage spill file yet; keeping it");
                    self.outage.get_or_insert_with(Instant::now);
                    self.failed();
                    return;
                }
            }
        }
    }

    /// Replays one file; `(newly inserted, lines read)`, or `None` when nothing waits.
    async fn replay_one(&self) -> Result<Option<(u64, u64)>, ReplayError> {
        let spill = self.spill.clone();
        let Some(path) = blocking(move || spill.take_for_replay()).await? else {
            return Ok(None);
        };
        let open = path.clone();
        let mut reader = blocking(move || SpillReader::open(&open)).await?;
        let mut inserted = 0;
        let batch_size = self.settings.batch_size;
        loop {
            let (back, chunk) = blocking(move || {
                let chunk = reader.next_chunk(batch_size);
                chunk.map(|chunk| (reader, chunk))
            })
            .await?;
            reader = back;
            if chunk.is_empty() {
                break;
            }
            inserted += self.store.insert_usage_batch(&chunk).await?;
        }
        let lines = reader.lines;
        let spill = self.spill.clone();
        blocking(move || spill.finish_replay(&path, lines)).await?;
        Ok(Some((inserted, lines)))
    }

    fn recovered(&mut self) {
        if let Some(since) = self.outage.take() {
            tracing::info!(after = ?since.elapsed(), "usage inserts work again");
        }
        self.backoff = self.settings.retry_initial_backoff;
        self.next_probe = Instant::now();
    }

    /// Schedules the next attempt: exponential backoff with jitter, so replicas that lost the
    /// same database do not all come back at the same instant.
    fn failed(&mut self) {
        let delay = jitter(self.backoff);
        self.next_probe = Instant::now() + delay;
        self.backoff = (self.backoff * 2).min(self.settings.retry_max_backoff);
    }
}

/// Shutdown could place these events nowhere: the database and the spill file both refused
/// them until `metering.shutdown_timeout`.
fn give_up(events: &[UsageEvent]) {
    metrics::counter!("tollgate_usage_abandoned_events_total").increment(events.len() as u64);
    tracing::error!(
        events = events.len(),
        "shutting down with usage events neither the database nor the spill file would take; \
         they are lost unless the usage journal holds them"
    );
}

#[derive(Debug, thiserror::Error)]
enum ReplayError {
    #[error("spill file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A random duration in `[delay / 2, delay]`.
fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
    let random = getrandom::u64().unwrap_or(0) % span;
    half + Duration::from_micros(random)
}

/// Runs blocking file I/O off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(std::io::Error::other(error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_whole() {
        for _ in 0..100 {
            let delay = jitter(Duration::from_millis(200));
            assert!(delay >= Duration::from_millis(100) && delay <= Duration::from_millis(200));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
