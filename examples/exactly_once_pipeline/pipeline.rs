//! The job of the `exactly_once_pipeline` example, shared with its tests
//! (tests/process_kill/exactly_once_pipeline.rs, tests/sink/sink_crash_protocol.rs).
//!
//! Per-window word counts over a deterministic multi-partition source:
//! - **Source.** Partition `p` holds `records` records; record `i` is a word
//!   and an event time that grows with `i` but arrives up to `JITTER_MS` out of
//!   order. The offset of a partition is the next record to read.
//! - **Operator.** Tumbling event-time windows of `WINDOW_MS`. The state holds
//!   one key per (window, word) with its count, in a `TrackedState`, so each
//!   checkpoint writes only the keys changed since the last one (a delta).
//!   Each partition's watermark is its largest event time minus `LATENESS_MS`;
//!   a window is emitted, and its keys deleted, once the combined watermark
//!   (the minimum over partitions) passes its end; the end of input emits the
//!   rest.
//! - **Sink.** Emitted lines (`<window start> <word> <count>`) go to a
//!   `FileSink`; each epoch ends with a checkpoint through the
//!   `SinkCoordinator`, which publishes the epoch's file once the checkpoint
//!   is durable.
//! - **Restart.** `run` always starts by recovering: the sinks are restored to
//!   the newest restorable checkpoint, and the state, offsets and watermarks
//!   are loaded from exactly that checkpoint.
//! - **Remote checkpoints** (optional, [`Paths::with_remote`]). Each
//!   checkpoint is also published to a blob store (`RemoteConfig::open`) and
//!   is committed only by its commit record there; the local checkpoint
//!   directory is the staging area and the cache. Each run claims a new
//!   writer generation and restores the newest committed checkpoint through
//!   the cache. A run that is fenced (a newer writer took the location over)
//!   stops with `Error::Fenced`: it must not go on writing output.
//! - **Encryption at rest** (optional, [`Paths::with_key_file`]; the
//!   `encryption` feature). The key in the key file seals the checkpoints'
//!   parts (`CheckpointConfig::with_encryption`) and the sink's output
//!   (`FileSink::with_encryption`); nothing of the input (its [`WORDS`])
//!   is then written in the clear.
#![allow(dead_code)]

use highwater::storage::Storage;
use highwater::{
    CheckpointConfig, CheckpointKind, CheckpointRequest, Error, FileSink,
    IncrementalCheckpointManager, PartInput, RemoteConfig, RemoteRestore, SinkCoordinator,
    SourcePositions, TrackedState,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Width of a tumbling window, in event-time milliseconds.
pub const WINDOW_MS: i64 = 1_000;
/// How far a partition's watermark trails its largest event time.
pub const LATENESS_MS: i64 = 200;
/// How far out of order a record can arrive within its partition (less than
/// the lateness, so no record is ever late).
pub const JITTER_MS: i64 = 150;
/// The checkpoint part holding the window counts.
pub const PART: &str = "window-counts";
/// The sink's name.
pub const SINK: &str = "window-counts";
/// The words of the input (every record is one of them).
pub const WORDS: [&str; 8] = [
    "apple", "kiwi", "plum", "fig", "lime", "pear", "date", "quince",
];

/// The size of the job.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// Source partitions.
    pub partitions: u32,
    /// Records per partition.
    pub records: u64,
    /// Records read from each partition per epoch.
    pub batch: u64,
    /// Event time between consecutive records of a partition.
    pub ms_per_record: i64,
}

/// Where the job keeps its checkpoints and its output.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The checkpoint directory (with `remote`: the staging area and cache).
    pub checkpoints: PathBuf,
    /// The sink's directory.
    pub output: PathBuf,
    /// The blob store location the checkpoints are published to
    /// (`RemoteConfig::open`), if any.
    pub remote: Option<String>,
    /// The key file the checkpoints and the output are sealed with, if any.
    pub key_file: Option<PathBuf>,
}

impl Paths {
    /// `dir/checkpoints` and `dir/output`, no remote location.
    pub fn under(dir: &Path) -> Self {
        Paths {
            checkpoints: dir.join("checkpoints"),
            output: dir.join("output"),
            remote: None,
            key_file: None,
        }
    }

    /// The same, with the checkpoints and the output sealed with the key in
    /// `path` (64 hex digits; key id 1).
    pub fn with_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// The same, with the checkpoints published to `location`.
    pub fn with_remote(mut self, location: impl Into<String>) -> Self {
        self.remote = Some(location.into());
        self
    }
}

/// What `run` reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    /// Recovery finished: the restored checkpoint and epoch, how long it
    /// took, and with a remote location what opening it found.
    Recovered {
        checkpoint: Option<u64>,
        epoch: u64,
        elapsed: Duration,
        remote: Option<RemoteRestore>,
    },
    /// An epoch read its records (before its checkpoint: a crash may undo it).
    Read { epoch: u64, records: u64 },
    /// An epoch's checkpoint is durable and its output committed.
    Checkpoint {
        id: u64,
        epoch: u64,
        kind: CheckpointKind,
        /// Records read in the epoch.
        records: u64,
        /// Bytes of output the epoch produced.
        output_bytes: u64,
    },
    /// A checkpoint failed or its commit was deferred; the job went on.
    CheckpointFailed { epoch: u64, error: String },
}

fn partition_name(p: u32) -> String {
    format!("words-{p}")
}

/// Record `offset` of partition `p`: a word and an event time.
pub fn record(job: &Job, p: u32, offset: u64) -> (&'static str, i64) {
    let h = (offset ^ (u64::from(p) << 40))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29);
    let word = WORDS[(h % WORDS.len() as u64) as usize];
    let event_time = offset as i64 * job.ms_per_record + (h >> 32) as i64 % JITTER_MS;
    (word, event_time)
}

fn window_key(start: i64, word: &str) -> Vec<u8> {
    format!("w/{start:020}/{word}").into_bytes()
}

fn parse_window_key(key: &[u8]) -> Option<(i64, &str)> {
    let key = std::str::from_utf8(key).ok()?.strip_prefix("w/")?;
    let (start, word) = key.split_once('/')?;
    Some((start.parse().ok()?, word))
}

fn count(value: &[u8]) -> u64 {
    u64::from_le_bytes(value.try_into().expect("counts are 8 bytes"))
}

/// The job's keys: the key in `key_file`, as key id 1.
///
/// # Errors
/// `DataKey::from_file`'s errors.
#[cfg(feature = "encryption")]
pub fn job_keys(key_file: &Path) -> highwater::Result<Arc<dyn highwater::crypto::KeyProvider>> {
    use highwater::crypto::{DataKey, KeyId, StaticKeys};
    let key = DataKey::from_file(key_file)?;
    Ok(Arc::new(StaticKeys::new(KeyId::new(1)?, key)))
}

/// `sink` and `config` sealed with the key in `key_file`.
#[cfg(feature = "encryption")]
fn sealed(
    sink: FileSink,
    config: CheckpointConfig,
    key_file: &Path,
) -> highwater::Result<(FileSink, CheckpointConfig)> {
    let keys = job_keys(key_file)?;
    Ok((
        sink.with_encryption(keys.clone()),
        config.with_encryption(keys),
    ))
}

/// Without the `encryption` feature a key file is refused.
#[cfg(not(feature = "encryption"))]
fn sealed(
    _: FileSink,
    _: CheckpointConfig,
    key_file: &Path,
) -> highwater::Result<(FileSink, CheckpointConfig)> {
    Err(Error::InvalidConfig {
        setting: "key_file",
        reason: format!(
            "{}: sealing needs highwater's `encryption` feature (--features encryption)",
            key_file.display()
        ),
    })
}

/// Runs the job from its newest restorable checkpoint to the end of input.
///
/// A failed checkpoint (or a deferred commit) does not stop the job: its
/// transaction stays pending and the next checkpoint carries it. Any other
/// error is returned, as is a failure of the last checkpoint.
///
/// # Errors
/// `Error::Fenced` at once when another writer took over the remote
/// location (`paths.remote`); `RemoteConfig::open`'s error for a location
/// that cannot be opened (a cloud URL without the `object-store` feature);
/// sink errors; and the failure of the last checkpoint.
pub fn run(
    storage: Arc<dyn Storage>,
    paths: &Paths,
    job: &Job,
    events: &mut dyn FnMut(Event),
) -> highwater::Result<()> {
    let started = Instant::now();
    let mut sink = FileSink::open_with(storage.clone(), &paths.output, SINK)?;
    let mut config = CheckpointConfig::new(&paths.checkpoints)
        .with_storage(storage)
        .with_max_retained(3)
        .with_max_delta_chain(8);
    if let Some(location) = &paths.remote {
        config = config.with_remote(RemoteConfig::open(location)?);
    }
    if let Some(key_file) = &paths.key_file {
        (sink, config) = sealed(sink, config, key_file)?;
    }
    let manager = IncrementalCheckpointManager::new(config)?;
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink])?;
    let (mut state, mut sources) = match coordinator.restored() {
        Some(c) => (
            TrackedState::from_snapshot(&coordinator.manager().load_snapshot(c.id, PART)?),
            SourcePositions::from_checkpoint(c),
        ),
        None => {
            let mut sources = SourcePositions::new();
            for p in 0..job.partitions {
                sources.set_offset(partition_name(p), 0)?;
            }
            (TrackedState::new(), sources)
        }
    };
    events(Event::Recovered {
        checkpoint: coordinator.restored().map(|c| c.id),
        epoch: coordinator.restored().map_or(0, |c| c.epoch),
        elapsed: started.elapsed(),
        remote: coordinator.manager().remote_restore().cloned(),
    });

    loop {
        let epoch = coordinator.epoch();
        let records = read_batch(job, &mut state, &mut sources)?;
        events(Event::Read { epoch, records });
        let at_end =
            (0..job.partitions).all(|p| sources.offset(&partition_name(p)) == Some(job.records));
        let watermark = if at_end {
            i64::MAX
        } else {
            sources.combined_watermark().unwrap_or(i64::MIN)
        };
        let output = emit_closed_windows(&mut state, watermark);
        sink.write(&output)?;

        let delta = state.delta();
        let request = CheckpointRequest::new(0)
            .with_sources(&sources)
            .with_part(PART, PartInput::Delta(&delta));
        match coordinator.checkpoint(request, &mut [&mut sink]) {
            Ok(checkpoint) => {
                state.mark_checkpointed();
                events(Event::Checkpoint {
                    id: checkpoint.id,
                    epoch,
                    kind: checkpoint.kind,
                    records,
                    output_bytes: output.len() as u64,
                });
            }
            Err(e @ Error::SinkCommitPending { .. }) => {
                // Durable; the commit is retried after the next checkpoint.
                state.mark_checkpointed();
                if at_end {
                    return Err(e);
                }
                events(Event::CheckpointFailed {
                    epoch,
                    error: e.to_string(),
                });
            }
            // Fenced: a newer writer owns the remote location; this one must
            // stop (no retry, no more output) and leave recovery to it.
            Err(
                e @ (Error::Sink { .. }
                | Error::SinkCoordinatorFailed { .. }
                | Error::Fenced { .. }),
            ) => return Err(e),
            Err(e) if at_end => return Err(e),
            Err(e) => events(Event::CheckpointFailed {
                epoch,
                error: e.to_string(),
            }),
        }
        if at_end {
            return Ok(());
        }
    }
}

/// Reads up to `job.batch` records from each partition into the window
/// counts; returns how many were read.
fn read_batch(
    job: &Job,
    state: &mut TrackedState,
    sources: &mut SourcePositions,
) -> highwater::Result<u64> {
    let mut read = 0;
    for p in 0..job.partitions {
        let name = partition_name(p);
        let from = sources.offset(&name).unwrap_or(0);
        let to = (from + job.batch).min(job.records);
        for offset in from..to {
            let (word, event_time) = record(job, p, offset);
            let key = window_key(event_time - event_time.rem_euclid(WINDOW_MS), word);
            let n = state.get(&key).map_or(0, count) + 1;
            state.put(key, n.to_le_bytes().to_vec());
            sources.advance_watermark(name.clone(), event_time - LATENESS_MS);
        }
        sources.set_offset(name, to)?; // the next record to read
        read += to - from;
    }
    Ok(read)
}

/// Removes every window that ends at or before `watermark` from the state
/// and returns its lines, in window and word order.
fn emit_closed_windows(state: &mut TrackedState, watermark: i64) -> Vec<u8> {
    let mut output = Vec::new();
    let mut closed = Vec::new();
    for (key, value) in state.iter() {
        let Some((start, word)) = parse_window_key(key) else {
            continue;
        };
        if start.saturating_add(WINDOW_MS) > watermark {
            break; // keys sort by window start
        }
        output.extend_from_slice(format!("{start} {word} {}\n", count(value)).as_bytes());
        closed.push(key.to_vec());
    }
    for key in closed {
        state.delete(&key);
    }
    output
}

/// The counts per (window start, word), computed directly from the source
/// without checkpoints, sinks or crashes.
pub fn expected_counts(job: &Job) -> BTreeMap<(i64, String), u64> {
    let mut counts = BTreeMap::new();
    for p in 0..job.partitions {
        for offset in 0..job.records {
            let (word, t) = record(job, p, offset);
            *counts
                .entry((t - t.rem_euclid(WINDOW_MS), word.to_string()))
                .or_insert(0) += 1;
        }
    }
    counts
}

/// Checks the sink's published output against [`expected_counts`]: every
/// (window, word) exactly once with its count, nothing else.
pub fn verify(job: &Job, output: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(output).map_err(|e| format!("output is not UTF-8: {e}"))?;
    let mut seen = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split(' ');
        let parsed = (|| {
            let start: i64 = fields.next()?.parse().ok()?;
            let word = fields.next()?.to_string();
            let n: u64 = fields.next()?.parse().ok()?;
            fields.next().is_none().then_some((start, word, n))
        })();
        let (start, word, n) =
            parsed.ok_or_else(|| format!("line {}: malformed {line:?}", i + 1))?;
        if seen.insert((start, word.clone()), n).is_some() {
            return Err(format!(
                "line {}: window {start} word {word} published twice (duplicated output)",
                i + 1
            ));
        }
    }
    let expected = expected_counts(job);
    for (key, n) in &expected {
        match seen.get(key) {
            None => {
                return Err(format!(
                    "window {} word {} missing (lost output)",
                    key.0, key.1
                ))
            }
            Some(got) if got != n => {
                return Err(format!(
                    "window {} word {}: count {got}, expected {n}",
                    key.0, key.1
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().find(|k| !expected.contains_key(*k)) {
        return Err(format!(
            "window {} word {} was never in the input",
            extra.0, extra.1
        ));
    }
    Ok(())
}
