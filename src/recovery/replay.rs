//! Replay of the log from a position: commit boundaries, the entry limit, the
//! target position, and how the read ends.
//!
//! Invariants:
//! - A change reaches the sink only after the Commit closing its transaction was
//!   read (in `NoTransactions` mode: when it is read), once, in log order.
//! - `position` only moves to the end of something handed over completely (a
//!   Commit, or in `NoTransactions` mode any entry), or past a Checkpoint marker
//!   read between transactions; everything before it, and nothing after it, is
//!   reflected in what the sink received and in the offsets.
//! - Memory is bounded by `buffer_bytes` plus one record: a larger transaction is
//!   dropped from memory and read again from its start at its Commit.
//! - Replay never modifies the log.

use super::config::TransactionMode;
use super::replay_sink::{CommitInfo, ReplaySink};
use super::watermarks::{raise, raise_each};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::wal::{
    Damage, DamageClass, Problem, WalEntry, WalEntryRef, WalReadRef, WalReadResult, WalReader,
    WalRecoveryMode,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// What to replay and how.
pub(crate) struct ReplayRequest<'a> {
    pub storage: &'a Arc<dyn Storage>,
    pub dir: &'a Path,
    pub max_record_size: u32,
    /// The keys sealed segments are opened with.
    pub keys: crate::wal::seal::Keys,
    /// Where the returned state starts (a verified record boundary: the
    /// checkpoint's position, or where the previous piece's state ends);
    /// nothing before it is read.
    pub from: u64,
    /// Where reading starts: `from`, or later when the previous bounded piece
    /// stopped inside a transaction that began at `from`.
    pub resume: u64,
    /// Entries of that transaction the previous pieces read.
    pub open_entries: u64,
    /// Entries to read at most (0 = no limit); see [`replay`].
    pub max_entries: u64,
    /// Entries at or after this position are not replayed.
    pub target: Option<u64>,
    /// The log is read as if it ended here: a dry run's planned repair cut,
    /// which real recovery would have made before replaying.
    pub log_end: Option<u64>,
    pub transactions: TransactionMode,
    pub mode: WalRecoveryMode,
    pub buffer_bytes: usize,
}

/// Why replay stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplayEnd {
    /// The clean end of the log.
    Eof,
    /// A torn tail, with what is wrong and where.
    TornTail { damage: Damage },
    /// Damage the mode (`PointInTime`) lets replay stop at.
    Damage { damage: Damage },
    /// The entry limit; entries follow.
    Limit,
    /// An entry at or after the target position (not replayed).
    Target,
}

impl ReplayEnd {
    /// Whether replay read to the end of the log.
    pub fn reached_end(&self) -> bool {
        !matches!(self, ReplayEnd::Limit | ReplayEnd::Target)
    }
}

/// What replay did. Offsets and watermark are overlaid onto the caller's.
#[derive(Debug)]
pub(crate) struct ReplayOutcome {
    /// Entries read and counted (uncommitted ones included).
    pub entries_read: u64,
    /// Just after the last entry handed over: where the returned state is exact.
    pub position: u64,
    pub end: ReplayEnd,
    pub transactions: u64,
    pub changes: u64,
    /// Entries read after `position` (the uncommitted tail, or the unfinished
    /// transaction a limit cut back), by this call and the pieces before it.
    pub pending_entries: u64,
    pub transactions_reread: u64,
    /// Entries read a second time to hand a transaction over (not counted in
    /// `entries_read`).
    pub entries_reread: u64,
    /// Where the next bounded piece reads on (after a limit).
    pub resume: u64,
    /// Watermarks in the log lower than the one already recovered (ignored).
    pub watermark_regressions: u64,
}

impl ReplayOutcome {
    /// Nothing read: an empty (or missing) log.
    pub fn nothing() -> Self {
        ReplayOutcome {
            entries_read: 0,
            position: 0,
            end: ReplayEnd::Eof,
            transactions: 0,
            changes: 0,
            pending_entries: 0,
            transactions_reread: 0,
            entries_reread: 0,
            resume: 0,
            watermark_regressions: 0,
        }
    }
}

/// Replays from `req.from` into `sink`, overlaying `offsets`, `watermark` and
/// the partition `watermarks` with every transaction handed over.
///
/// With `max_entries = n`, at most `n` entries are read (and counted). A call
/// that stops at the limit inside a transaction hands nothing of it over and
/// says where to read on (`resume`); the piece that reads its Commit reads it
/// again from its start (`entries_reread`, not counted) and hands it over
/// whole. Every piece that reads an entry moves `position` or `resume`.
///
/// # Errors
/// Opening errors of the reader (`PositionNotCovered`, `PositionBeyondEnd`,
/// `NotARecordBoundary`), damage the mode does not tolerate as its typed error,
/// `ReplaySink`, and I/O errors.
pub(crate) fn replay(
    req: &ReplayRequest<'_>,
    sink: &mut dyn ReplaySink,
    offsets: &mut HashMap<String, u64>,
    watermark: &mut Option<i64>,
    watermarks: &mut HashMap<String, i64>,
) -> Result<ReplayOutcome> {
    let mut reader = open_reader(req, req.resume)?;
    let mut out = ReplayOutcome {
        position: req.from,
        ..ReplayOutcome::nothing()
    };
    let mut pending = Pending::default();
    let plain = req.transactions == TransactionMode::NoTransactions;
    if req.resume > req.from && !plain {
        // A transaction a previous piece began: its first entries are not in
        // memory, so it is read again from `from` at its Commit.
        pending.entries = req.open_entries;
        pending.spilled = true;
    }
    let mut resume = req.resume;
    loop {
        if req.log_end.is_some_and(|end| reader.position() >= end) {
            out.end = ReplayEnd::Eof;
            break;
        }
        // `at`: the entry's own start (sync markers skipped before it excluded).
        let (at, entry) = match reader.read_next_ref()? {
            WalReadRef::Entry { position, entry } => (position, entry),
            WalReadRef::End(WalReadResult::TornWrite { .. })
                if req.mode != WalRecoveryMode::AbsoluteConsistency =>
            {
                out.end = ReplayEnd::TornTail {
                    damage: stopped_at(&reader),
                };
                break;
            }
            WalReadRef::End(WalReadResult::Eof) => {
                out.end = ReplayEnd::Eof;
                break;
            }
            WalReadRef::End(_) => {
                let damage = stopped_at(&reader);
                if req.mode != WalRecoveryMode::PointInTime {
                    return Err(damage.to_error());
                }
                out.end = ReplayEnd::Damage { damage };
                break;
            }
        };
        if req.target.is_some_and(|t| at >= t) {
            out.end = ReplayEnd::Target;
            break;
        }
        if req.max_entries > 0 && out.entries_read >= req.max_entries {
            // `at` is not read: the next piece starts there (or, with no
            // transaction open, at the end of what was handed over).
            out.end = ReplayEnd::Limit;
            if pending.entries > 0 {
                resume = at;
            }
            break;
        }
        out.entries_read += 1;
        if let Some((key, value)) = entry.change() {
            if plain {
                apply(sink, &mut out, key, value, at)?;
                out.position = reader.position();
            } else {
                pending.add(key, value, req.buffer_bytes);
            }
            continue;
        }
        let commit = match entry {
            WalEntryRef::Owned(WalEntry::Commit { offsets, watermark }) => {
                Some((offsets, watermark))
            }
            WalEntryRef::Owned(WalEntry::Watermarks { watermarks: marks }) => {
                // Part of the transaction, like a change.
                if plain {
                    out.watermark_regressions += raise_each(watermarks, marks);
                    out.position = reader.position();
                } else {
                    pending.entries += 1;
                    pending.watermarks.extend(marks);
                }
                continue;
            }
            _ if pending.entries > 0 => {
                // A marker inside a transaction belongs to it.
                pending.entries += 1;
                continue;
            }
            // A marker between transactions: not a change, opens nothing.
            _ => None,
        };
        let end = reader.position();
        if let Some((commit_offsets, commit_watermark)) = commit {
            let mut commit_watermarks = std::mem::take(&mut pending.watermarks);
            if let Some(reread) = hand_over(req, sink, &mut pending, &mut out, at)? {
                commit_watermarks = reread;
            }
            let info = CommitInfo {
                position: at,
                end,
                offsets: &commit_offsets,
                watermark: commit_watermark,
                watermarks: &commit_watermarks,
            };
            sink.commit(&info).map_err(|source| Error::ReplaySink {
                position: at,
                source,
            })?;
            out.watermark_regressions += raise_each(watermarks, commit_watermarks);
            offsets.extend(commit_offsets);
            out.watermark_regressions += u64::from(raise(watermark, commit_watermark));
            out.transactions += 1;
        }
        out.position = end;
    }
    out.pending_entries = pending.entries;
    out.resume = if out.end == ReplayEnd::Limit && pending.entries > 0 {
        resume
    } else {
        out.position
    };
    Ok(out)
}

/// Hands one change to the sink.
fn apply(
    sink: &mut dyn ReplaySink,
    out: &mut ReplayOutcome,
    key: &[u8],
    value: Option<&[u8]>,
    position: u64,
) -> Result<()> {
    out.changes += 1;
    sink.apply(key, value)
        .map_err(|source| Error::ReplaySink { position, source })
}

/// Where a buffered change's key starts in the arena, the key's length, and the
/// value's length (it follows the key) or `None` for a Delete.
type Span = (usize, usize, Option<usize>);

/// The transaction being read: its keys and values copied into one arena (no
/// allocation per entry once the arena has grown).
#[derive(Default)]
struct Pending {
    arena: Vec<u8>,
    /// One per buffered change.
    spans: Vec<Span>,
    /// Entries read since the last position handed over.
    entries: u64,
    /// Whether it outgrew the buffer (its changes are read again at its Commit).
    spilled: bool,
    /// Partition watermarks its `Watermarks` entries set (always in memory:
    /// they are few and small).
    watermarks: HashMap<String, i64>,
}

impl Pending {
    /// Adds a change read from the log, unless the transaction has spilled.
    fn add(&mut self, key: &[u8], value: Option<&[u8]>, buffer_bytes: usize) {
        self.entries += 1;
        if self.spilled {
            return;
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(key);
        if let Some(value) = value {
            self.arena.extend_from_slice(value);
        }
        self.spans.push((start, key.len(), value.map(<[u8]>::len)));
        // Charge the bookkeeping too, so that tiny or empty keys cannot grow
        // memory past the buffer.
        let used = self.arena.len() + self.spans.len() * std::mem::size_of::<Span>();
        if used > buffer_bytes {
            tracing::debug!(
                bytes = used,
                buffer_bytes,
                "transaction outgrew the replay buffer; it will be read again at its commit"
            );
            self.spilled = true;
            self.arena = Vec::new();
            self.spans = Vec::new();
        }
    }

    /// Forgets the transaction, keeping the allocations.
    fn clear(&mut self) {
        self.arena.clear();
        self.spans.clear();
        self.entries = 0;
        self.spilled = false;
        self.watermarks.clear();
    }
}

/// Hands the pending changes to the sink: from the arena, or for a spilled
/// transaction by reading the log again from where it started (right after
/// the last thing handed over, `out.position`) up to its Commit at `until`;
/// then it returns the partition watermarks the transaction set, read again
/// too.
fn hand_over(
    req: &ReplayRequest<'_>,
    sink: &mut dyn ReplaySink,
    pending: &mut Pending,
    out: &mut ReplayOutcome,
    until: u64,
) -> Result<Option<HashMap<String, i64>>> {
    let mut reread = None;
    if pending.spilled {
        out.transactions_reread += 1;
        let mut marks = HashMap::new();
        let mut again = open_reader(req, out.position)?;
        while again.position() < until {
            match again.read_next_ref()? {
                WalReadRef::Entry { position, .. } if position >= until => break,
                WalReadRef::Entry { entry, .. } => {
                    out.entries_reread += 1;
                    if let Some((key, value)) = entry.change() {
                        apply(sink, out, key, value, until)?;
                    } else if let WalEntryRef::Owned(WalEntry::Watermarks { watermarks }) = entry {
                        marks.extend(watermarks);
                    }
                }
                WalReadRef::End(_) => return Err(stopped_at(&again).to_error()),
            }
        }
        reread = Some(marks);
    } else {
        for &(at, key_len, value_len) in &pending.spans {
            let key = &pending.arena[at..at + key_len];
            let value = value_len.map(|n| &pending.arena[at + key_len..at + key_len + n]);
            apply(sink, out, key, value, until)?;
        }
    }
    pending.clear();
    Ok(reread)
}

/// A reader at `position`, scanning nothing before `req.from` (a verified
/// boundary: damage below it is released, not read).
fn open_reader(req: &ReplayRequest<'_>, position: u64) -> Result<WalReader> {
    Ok(WalReader::open_at_boundary(
        req.storage.clone(),
        req.dir,
        req.from,
        position,
        req.max_record_size,
    )?
    .with_keys(req.keys.clone()))
}

/// The damage `reader` stopped at (a reader that ended early without any:
/// the log changed under a transaction read a second time).
fn stopped_at(reader: &WalReader) -> Damage {
    reader.damage().cloned().unwrap_or_else(|| Damage {
        class: DamageClass::Corrupt,
        path: reader.dir().to_path_buf(),
        offset: 0,
        position: reader.position(),
        problem: Problem::RereadEnded,
    })
}
