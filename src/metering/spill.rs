//! The spill file: where usage events wait while the database is away or the queue is full.
//!
//! JSON lines, appended and fsync'd before a batch counts as safe. For replay the file is first
//! renamed aside, under the same lock appends take, so an event appended during a replay lands
//! in a fresh file instead of one that is about to be deleted. Every function here does
//! blocking file I/O: call it from a blocking task, never on the async runtime.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::event::UsageEvent;

/// Where new spilled events are appended.
const ACTIVE: &str = "usage-spill.jsonl";
/// The file being replayed; kept until every event in it is in the database.
const REPLAYING: &str = "usage-spill.replaying.jsonl";
/// Held (flock) by the one writer that owns the directory.
const LOCK: &str = ".lock";

/// Bytes handed to one `write` call when appending: small enough that a nearly full disk
/// still takes what fits.
const PIECE: usize = 16 * 1024;

/// An append that failed part-way: the first `stored` events are safely in the file, the rest
/// are not.
#[derive(Debug, thiserror::Error)]
#[error("{source} ({stored} events were stored before it)")]
pub struct SpillError {
    pub stored: usize,
    #[source]
    pub source: io::Error,
}

impl SpillError {
    fn none_stored(source: io::Error) -> Self {
        Self { stored: 0, source }
    }
}

/// The spill directory of one writer.
pub struct SpillFile {
    dir: PathBuf,
    /// Serialises appends with the rename that starts a replay.
    lock: Mutex<()>,
    /// Lines (≈ events) in the files waiting to be replayed.
    pending: AtomicU64,
}

/// Exclusive ownership of a spill directory, released when dropped. Two writers sharing a
/// directory could delete each other's events during a replay, so the second one is refused.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl SpillFile {
    /// Creates the directory if missing, takes its lock, and counts what waits in it.
    pub fn open(dir: &Path) -> io::Result<(Self, DirLock)> {
        std::fs::create_dir_all(dir)?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the directory is in use by another usage writer (each gateway needs its own \
                     [metering] spill_dir)",
                ));
            }
            Err(TryLockError::Error(error)) => return Err(error),
        }
        let spill = Self {
            dir: dir.to_owned(),
            lock: Mutex::new(()),
            pending: AtomicU64::new(0),
        };
        let mut pending = 0;
        for name in [REPLAYING, ACTIVE] {
            pending += count_lines(&spill.dir.join(name))?;
        }
        spill.set_pending(pending);
        Ok((spill, DirLock { _file: lock_file }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Events waiting in the spill files.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Appends `events` and fsyncs. When this returns `Ok`, they survive a crash. The file is
    /// written in pieces of whole lines (at most [`PIECE`] bytes each), so on a disk that fills
    /// up the events before the failing piece are kept ([`SpillError::stored`] says how many)
    /// and the failed piece's partial bytes are cut off again: no torn line is left behind.
    pub fn append(&self, events: &[UsageEvent]) -> Result<(), SpillError> {
        if events.is_empty() {
            return Ok(());
        }
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let path = self.dir.join(ACTIVE);
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(SpillError::none_stored)?;
        if created {
            // The new directory entry must be durable too, or a crash could lose the file.
            sync_dir(&self.dir).map_err(SpillError::none_stored)?;
        }
        // A crash in the middle of an earlier append can leave a torn last line. Without a line
        // break first, our first event would be glued to it and be unreadable too.
        if !created && ends_without_newline(&mut file).map_err(SpillError::none_stored)? {
            file.write_all(b"\n").map_err(SpillError::none_stored)?;
        }
        let mut kept = file.metadata().map_err(SpillError::none_stored)?.len();
        let mut stored = 0;
        let mut piece = Vec::with_capacity(PIECE + 1024);
        let mut in_piece = 0;
        let mut result = Ok(());
        for (i, event) in events.iter().enumerate() {
            if let Err(error) = serde_json::to_writer(&mut piece, event) {
                result = Err(io::Error::from(error));
                break;
            }
            piece.push(b'\n');
            in_piece += 1;
            if piece.len() >= PIECE || i + 1 == events.len() {
                if let Err(error) = file.write_all(&piece) {
                    result = Err(error);
                    break;
                }
                kept += piece.len() as u64;
                stored += in_piece;
                piece.clear();
                in_piece = 0;
            }
        }
        if let Err(error) = result {
            // Cut off the failed piece's partial bytes, then keep what went in before it.
            let trimmed = file.set_len(kept).and_then(|()| file.sync_data());
            let stored = if trimmed.is_ok() { stored } else { 0 };
            self.set_pending(self.pending() + stored as u64);
            return Err(SpillError {
                stored,
                source: error,
            });
        }
        file.sync_data().map_err(SpillError::none_stored)?;
        self.set_pending(self.pending() + events.len() as u64);
        Ok(())
    }

    /// The next file to replay: one left over from an unfinished replay, or else the active
    /// file renamed aside. `None` when nothing waits.
    pub fn take_for_replay(&self) -> io::Result<Option<PathBuf>> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let replaying = self.dir.join(REPLAYING);
        if replaying.exists() {
            return Ok(Some(replaying));
        }
        let active = self.dir.join(ACTIVE);
        if !active.exists() {
            return Ok(None);
        }
        std::fs::rename(&active, &replaying)?;
        sync_dir(&self.dir)?;
        Ok(Some(replaying))
    }

    /// Deletes a replayed file: every event in it is in the database.
    pub fn finish_replay(&self, path: &Path, lines: u64) -> io::Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        std::fs::remove_file(path)?;
        sync_dir(&self.dir)?;
        self.set_pending(self.pending().saturating_sub(lines));
        Ok(())
    }

    fn set_pending(&self, pending: u64) {
        self.pending.store(pending, Ordering::Relaxed);
        metrics::gauge!("tollgate_usage_spilled_events").set(pending as f64);
    }
}

/// Reads a spill file a chunk at a time, so replaying a large one takes bounded memory.
pub struct SpillReader {
    reader: BufReader<File>,
    line: Vec<u8>,
    /// Lines read so far, readable or not.
    pub lines: u64,
    /// Lines that did not parse (a torn last line after a crash); skipped, never fatal.
    pub skipped: u64,
}

impl SpillReader {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            reader: BufReader::new(File::open(path)?),
            line: Vec::new(),
            lines: 0,
            skipped: 0,
        })
    }

    /// Up to `max` events; an empty vector at the end of the file.
    pub fn next_chunk(&mut self, max: usize) -> io::Result<Vec<UsageEvent>> {
        let mut events = Vec::new();
        while events.len() < max {
            self.line.clear();
            if self.reader.read_until(b'\n', &mut self.line)? == 0 {
                break;
            }
            let text = self.line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            self.lines += 1;
            match serde_json::from_slice::<UsageEvent>(text) {
                Ok(mut event) => {
                    // Spilled before events had ids of their own: keyed by the request id, as
                    // the migration keyed the rows already stored.
                    if event.event_id.is_empty() {
                        event.event_id.clone_from(&event.request_id);
                    }
                    events.push(event);
                }
                Err(error) => {
                    self.skipped += 1;
                    tracing::warn!(%error, line = self.lines, "skipping an unreadable line in the usage spill file");
                }
            }
        }
        Ok(events)
    }

    /// Every event in a file (for tests and tools; replay reads in chunks).
    pub fn read_all(path: &Path) -> io::Result<(Vec<UsageEvent>, u64)> {
        let mut reader = Self::open(path)?;
        let mut events = Vec::new();
        loop {
            let chunk = reader.next_chunk(1024)?;
            if chunk.is_empty() {
                return Ok((events, reader.skipped));
            }
            events.extend(chunk);
        }
    }
}

/// The files of a spill directory that hold events, for inspection.
pub fn spill_files(dir: &Path) -> Vec<PathBuf> {
    [REPLAYING, ACTIVE]
        .iter()
        .map(|name| dir.join(name))
        .filter(|path| path.exists())
        .collect()
}

fn ends_without_newline(file: &mut File) -> io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

fn count_lines(path: &Path) -> io::Result<u64> {
    match File::open(path) {
        Ok(file) => {
            let mut count = 0;
            for line in BufReader::new(file).split(b'\n') {
                if !line?.trim_ascii().is_empty() {
                    count += 1;
                }
            }
            Ok(count)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error),
    }
}

/// Makes a create, rename or delete in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::metering::{Ending, Tally};

    pub(crate) fn event(id: &str) -> UsageEvent {
        UsageEvent {
            event_id: id.to_owned(),
            request_id: id.to_owned(),
            at: Timestamp(1_764_460_800_000),
            tenant_id: "acme".into(),
            subject: "jane".into(),
            credential_id: "key".into(),
            model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            upstream_model: "gpt-4o-mini".into(),
            tally: Tally {
                requests: 1,
                prompt_tokens: 10,
                completion_tokens: 5,
                cached_tokens: 0,
                total_tokens: 15,
                cost_micro_usd: 4,
            },
            reasoning_tokens: 0,
            status: Ending::Ok,
            http_status: 200,
            latency_ms: 100,
            ttft_ms: None,
            streamed: false,
            estimated: false,
        }
    }

    #[test]
    fn round_trips_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (spill, _lock) = SpillFile::open(dir.path()).unwrap();
        spill.append(&[event("a"), event("b")]).unwrap();
        spill.append(&[event("c")]).unwrap();
        assert_eq!(spill.pending(), 3);
        let path = spill.take_for_replay().unwrap().unwrap();
        let (events, skipped) = SpillReader::read_all(&path).unwrap();
        let ids: Vec<_> = events.iter().map(|e| e.request_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(events[0], event("a"));
        assert_eq!(skipped, 0);
        spill.finish_replay(&path, 3).unwrap();
        assert_eq!(spill.pending(), 0);
        assert!(spill.take_for_replay().unwrap().is_none());
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_not_glued_to_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (spill, _lock) = SpillFile::open(dir.path()).unwrap();
            spill.append(&[event("a")]).unwrap();
        }
        // A crash halfway through writing the next line.
        let torn = serde_json::to_string(&event("torn")).unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(ACTIVE))
            .unwrap();
        file.write_all(&torn.as_bytes()[..torn.len() / 2]).unwrap();
        drop(file);

        let (spill, _lock) = SpillFile::open(dir.path()).unwrap();
        assert_eq!(
            spill.pending(),
            2,
            "the torn line counts until it is replayed"
        );
        spill.append(&[event("b")]).unwrap();
        let path = spill.take_for_replay().unwrap().unwrap();
        let (events, skipped) = SpillReader::read_all(&path).unwrap();
        let ids: Vec<_> = events.iter().map(|e| e.request_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(skipped, 1);
    }

    #[test]
    fn appends_during_a_replay_go_to_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let (spill, _lock) = SpillFile::open(dir.path()).unwrap();
        spill.append(&[event("a")]).unwrap();
        let replaying = spill.take_for_replay().unwrap().unwrap();
        spill.append(&[event("b")]).unwrap();
        // An unfinished replay is offered again before the newer file.
        assert_eq!(spill.take_for_replay().unwrap().unwrap(), replaying);
        spill.finish_replay(&replaying, 1).unwrap();
        let next = spill.take_for_replay().unwrap().unwrap();
        let (events, _) = SpillReader::read_all(&next).unwrap();
        assert_eq!(events, [event("b")]);
    }

    #[test]
    fn reads_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let (spill, _lock) = SpillFile::open(dir.path()).unwrap();
        let events: Vec<_> = (0..10).map(|i| event(&i.to_string())).collect();
        spill.append(&events).unwrap();
        let path = spill.take_for_replay().unwrap().unwrap();
        let mut reader = SpillReader::open(&path).unwrap();
        assert_eq!(reader.next_chunk(4).unwrap().len(), 4);
        assert_eq!(reader.next_chunk(4).unwrap().len(), 4);
        assert_eq!(reader.next_chunk(4).unwrap().len(), 2);
        assert!(reader.next_chunk(4).unwrap().is_empty());
        assert_eq!(reader.lines, 10);
    }

    #[test]
    fn one_writer_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (_spill, lock) = SpillFile::open(dir.path()).unwrap();
        let second = SpillFile::open(dir.path()).err().unwrap();
        assert_eq!(second.kind(), io::ErrorKind::WouldBlock);
        drop(lock);
        assert!(
            SpillFile::open(dir.path()).is_ok(),
            "free again once released"
        );
    }
}
