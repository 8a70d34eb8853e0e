//! `wal dump` and `wal repair`.
//!
//! `dump` streams: one line (or one JSON object) per entry as it is read, so a
//! log of any size is dumped in constant memory.

use crate::args::{Mode, RepairArgs};
use crate::bytes::{show_at_most, show_map, JsonBytes, PREVIEW};
use crate::output::{opt, Exit, Failure, Human, Outcome, Problem};
use crate::progress::Progress;
use highwater::storage::default_storage;
use highwater::wal::{oldest_position_with, wal_size_with, WalEntryRef, WalReadRef};
use highwater::{
    RepairReport, SyncPolicy, WalEntry, WalOptions, WalReadResult, WalReader, WalRecoveryMode,
    WriteAheadLog,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::Path;

/// The library's recovery mode for a command-line mode.
pub fn recovery_mode(mode: Mode) -> WalRecoveryMode {
    match mode {
        Mode::TolerateTornTail => WalRecoveryMode::TolerateTornTail,
        Mode::AbsoluteConsistency => WalRecoveryMode::AbsoluteConsistency,
        Mode::PointInTime => WalRecoveryMode::PointInTime,
    }
}

/// One entry as JSON.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum EntryJson {
    Put {
        position: u64,
        key: JsonBytes,
        value_len: usize,
    },
    Delete {
        position: u64,
        key: JsonBytes,
    },
    Commit {
        position: u64,
        offsets: BTreeMap<String, u64>,
        watermark: Option<i64>,
    },
    Checkpoint {
        position: u64,
        id: u64,
    },
    Watermarks {
        position: u64,
        watermarks: BTreeMap<String, i64>,
    },
    Other {
        position: u64,
        debug: String,
    },
}

fn sorted<V: Copy>(map: &HashMap<String, V>) -> BTreeMap<String, V> {
    map.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

fn entry_json(position: u64, entry: &WalEntryRef<'_>) -> EntryJson {
    match entry {
        WalEntryRef::Put { key, value } => EntryJson::Put {
            position,
            key: JsonBytes::of(key),
            value_len: value.len(),
        },
        WalEntryRef::Delete { key } => EntryJson::Delete {
            position,
            key: JsonBytes::of(key),
        },
        WalEntryRef::Owned(WalEntry::Commit { offsets, watermark }) => EntryJson::Commit {
            position,
            offsets: sorted(offsets),
            watermark: *watermark,
        },
        WalEntryRef::Owned(WalEntry::Checkpoint { id }) => {
            EntryJson::Checkpoint { position, id: *id }
        }
        WalEntryRef::Owned(WalEntry::Watermarks { watermarks }) => EntryJson::Watermarks {
            position,
            watermarks: sorted(watermarks),
        },
        other => EntryJson::Other {
            position,
            debug: format!("{other:?}"),
        },
    }
}

/// One entry as a line: position, type, and the key and value length, or the
/// offsets and watermark, or the marker's id.
fn entry_line(position: u64, entry: &WalEntryRef<'_>) -> String {
    let (kind, detail) = match entry {
        WalEntryRef::Put { key, value } => (
            "put",
            format!(
                "key {}  value {} bytes",
                show_at_most(key, PREVIEW),
                value.len()
            ),
        ),
        WalEntryRef::Delete { key } => ("delete", format!("key {}", show_at_most(key, PREVIEW))),
        WalEntryRef::Owned(WalEntry::Commit { offsets, watermark }) => (
            "commit",
            format!(
                "offsets {}  watermark {}",
                show_map(&sorted(offsets)),
                opt(*watermark)
            ),
        ),
        WalEntryRef::Owned(WalEntry::Checkpoint { id }) => ("checkpoint", format!("id {id}")),
        WalEntryRef::Owned(WalEntry::Watermarks { watermarks }) => {
            ("watermarks", show_map(&sorted(watermarks)))
        }
        other => ("other", format!("{other:?}")),
    };
    format!("{position:>12}  {kind:<10}  {detail}")
}

/// What ended the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndKind {
    /// The clean end of the log.
    CleanEnd,
    /// A torn tail (what a crash leaves).
    TornTail,
    /// Corruption.
    Corruption,
    /// `--limit` entries were dumped.
    Limit,
    /// Reading failed (an I/O error).
    Error,
}

/// What ends a log read: its kind, the position (the end of the valid
/// prefix for damage), the damage and the exit code it calls for.
pub fn log_end(
    reader: &WalReader,
    result: &WalReadResult,
) -> (EndKind, u64, Option<Problem>, Exit) {
    let (end, position) = match result {
        WalReadResult::Eof => (EndKind::CleanEnd, reader.position()),
        WalReadResult::TornWrite { position, .. } => (EndKind::TornTail, *position),
        WalReadResult::ChecksumMismatch { position, .. }
        | WalReadResult::Corrupted { position, .. } => (EndKind::Corruption, *position),
        _ => (EndKind::Corruption, reader.position()),
    };
    let problem = reader.damage_error().as_ref().map(Problem::of);
    let exit = if end == EndKind::CleanEnd {
        Exit::Ok
    } else {
        Exit::Damage
    };
    (end, position, problem, exit)
}

/// How the dump ended.
#[derive(Debug, Serialize)]
struct DumpEnd {
    end: EndKind,
    /// Where reading stopped: the next position to read (limit, clean end), or
    /// the end of the valid prefix (damage).
    position: u64,
    entries: u64,
    problem: Option<Problem>,
    #[serde(skip)]
    exit: Exit,
}

/// `wal dump WAL [--from POS] [--limit N]`. Prints as it reads; exit 1 when
/// the log ends in damage (a torn tail included).
pub fn dump(
    dir: &Path,
    from: Option<u64>,
    limit: Option<u64>,
    max_record_size: u32,
    json: bool,
    progress: bool,
) -> Result<Exit, Failure> {
    let storage = default_storage();
    let oldest = oldest_position_with(storage.as_ref(), dir)?;
    let start = from.unwrap_or(oldest);
    // Positions count record bytes: from `start`, about the segment bytes left.
    let total = wal_size_with(storage.as_ref(), dir)?.saturating_sub(start.saturating_sub(oldest));
    let mut reader = WalReader::open_with(storage, dir, start, max_record_size)?;
    if let Some(keys) = crate::keys::provider() {
        reader = reader.with_encryption(keys);
    }
    // Lines printed to a terminal would tear a bar drawn on the same
    // terminal: draw it only when the dump goes to a file or a pipe.
    let bar = Progress::bytes(
        progress && !io::stdout().is_terminal(),
        total,
        "reading log",
    );
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let w = |r: io::Result<()>| r.map_err(|e| Failure::output(&e));
    if json {
        w(write!(
            out,
            "{{\"wal\":{},\"entries\":[",
            serde_json::to_string(&dir.display().to_string()).expect("a string serializes")
        ))?;
    } else {
        w(writeln!(out, "{:>12}  {:<10}  DETAIL", "POSITION", "TYPE"))?;
    }
    let mut entries = 0u64;
    let end = loop {
        if limit.is_some_and(|n| entries >= n) {
            break DumpEnd {
                exit: Exit::Ok,
                end: EndKind::Limit,
                position: reader.position(),
                entries,
                problem: None,
            };
        }
        let next = match reader.read_next_ref() {
            Ok(next) => next,
            Err(e) => {
                // Ends the document like damage does, so --json output stays one
                // valid document.
                break DumpEnd {
                    end: EndKind::Error,
                    position: reader.position(),
                    entries,
                    problem: Some(Problem::of(&e)),
                    exit: Failure::of(&e).exit_code(),
                };
            }
        };
        match next {
            WalReadRef::Entry { position, entry } => {
                if json {
                    let sep = if entries == 0 { "" } else { "," };
                    let e = serde_json::to_string(&entry_json(position, &entry))
                        .expect("entries serialize");
                    w(write!(out, "{sep}\n{e}"))?;
                } else {
                    w(writeln!(out, "{}", entry_line(position, &entry)))?;
                }
                entries += 1;
                if entries.is_multiple_of(4096) {
                    bar.set(position.saturating_sub(start));
                }
            }
            WalReadRef::End(result) => {
                let (end, position, problem, exit) = log_end(&reader, &result);
                break DumpEnd {
                    end,
                    position,
                    entries,
                    problem,
                    exit,
                };
            }
            other => {
                return Err(Failure::message(
                    format!("unexpected read result {other:?}"),
                    Exit::Failed,
                ))
            }
        }
    };
    drop(bar);
    if json {
        w(writeln!(
            out,
            "\n],\"end\":{}}}",
            serde_json::to_string(&end).expect("the end serializes")
        ))?;
    } else {
        let text = match end.end {
            EndKind::CleanEnd => format!("end: clean end of the log at position {}", end.position),
            EndKind::Limit => format!(
                "end: stopped after {} entries; continue with --from {}",
                end.entries, end.position
            ),
            EndKind::Error => format!("end: reading failed at position {}", end.position),
            EndKind::TornTail => format!(
                "end: torn tail at position {} (what a crash leaves; recovery cuts it)",
                end.position
            ),
            EndKind::Corruption => format!("end: corruption at position {}", end.position),
        };
        w(writeln!(out, "{text}"))?;
        if let Some(p) = &end.problem {
            w(writeln!(out, "  {}", p.message))?;
        }
        w(writeln!(out, "{} entries", end.entries))?;
    }
    w(out.flush())?;
    Ok(end.exit)
}

/// What `wal repair` did or would do.
#[derive(Debug, Serialize)]
pub struct RepairOutcome {
    wal: String,
    dry_run: bool,
    mode: String,
    /// Whether anything is (or would be) cut.
    cut: bool,
    /// The segment cut.
    pub segment: Option<String>,
    /// The file offset of the cut.
    pub offset: u64,
    /// Where the log ends after the cut.
    pub position: u64,
    /// Bytes removed.
    pub bytes_cut: u64,
    segments_removed: Vec<String>,
    /// The cut is a torn tail (not corruption).
    pub torn_tail: bool,
    /// What was wrong.
    pub reason: String,
    /// Where the log ends once the command is done (a real repair's close
    /// adds a sync marker after the cut).
    ends_at: u64,
}

impl RepairOutcome {
    /// The outcome of a repair (or its plan) of the log at `wal`.
    pub fn of(wal: &Path, dry_run: bool, r: &RepairReport, ends_at: u64) -> Self {
        RepairOutcome {
            wal: wal.display().to_string(),
            dry_run,
            mode: format!("{:?}", r.mode),
            cut: r.cut_anything(),
            segment: r.segment.as_ref().map(|p| p.display().to_string()),
            offset: r.offset,
            position: r.position,
            bytes_cut: r.bytes_cut,
            segments_removed: r
                .segments_removed
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            torn_tail: r.torn_tail,
            reason: r.reason.clone(),
            ends_at,
        }
    }
}

impl Human for RepairOutcome {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        if !self.cut {
            return writeln!(
                out,
                "{}: nothing to repair; the log ends cleanly at position {}",
                self.wal, self.ends_at
            );
        }
        let verb = if self.dry_run { "would cut" } else { "cut" };
        let what = if self.torn_tail {
            "torn tail"
        } else {
            "corruption"
        };
        writeln!(
            out,
            "{} {what}: {} bytes from {} at offset {} (log position {})",
            verb,
            self.bytes_cut,
            self.segment.as_deref().unwrap_or("-"),
            self.offset,
            self.position
        )?;
        writeln!(out, "  reason: {}", self.reason)?;
        for s in &self.segments_removed {
            writeln!(
                out,
                "  {} later segment {s}",
                if self.dry_run {
                    "would remove"
                } else {
                    "removed"
                }
            )?;
        }
        if self.dry_run {
            writeln!(out, "dry run: nothing was changed")?;
        } else {
            writeln!(out, "the log now ends at position {}", self.ends_at)?;
        }
        Ok(())
    }
}

/// `wal repair WAL [--dry-run] [--mode M] [--checkpoints DIR]`. Plans the
/// cut first (read-only); writes only when there is something to cut, it is
/// not a dry run, and the cut is not below the checkpoint recovery would use.
pub fn repair(args: &RepairArgs, max_record_size: u32) -> Result<Outcome, Failure> {
    let dir = &args.wal;
    let options = WalOptions::new()
        .with_sync_policy(SyncPolicy::Manual)
        .with_recovery_mode(recovery_mode(args.mode))
        .with_max_record_size(max_record_size);
    let planned = WriteAheadLog::plan_repair(dir, &options)?;
    if let (true, Some(checkpoints)) = (planned.cut_anything(), &args.checkpoints) {
        refuse_cut_below_checkpoint(checkpoints, &planned)?;
    }
    if args.dry_run || !planned.cut_anything() {
        let outcome = RepairOutcome::of(dir, args.dry_run, &planned, planned.position);
        return Ok(Outcome::new(outcome, Exit::Ok));
    }
    let wal = WriteAheadLog::open(dir, options.clone())?;
    let report = wal.repair()?;
    wal.close()?;
    // Closing writes a sync marker after the cut: report the log's real end.
    let ends_at = WriteAheadLog::plan_repair(dir, &options)?.position;
    let outcome = RepairOutcome::of(dir, false, &report, ends_at);
    Ok(Outcome::new(outcome, Exit::Ok))
}

/// Refuses a cut below the log position of the checkpoint recovery would use:
/// recovery could no longer restore it (`CheckpointNotCovered`).
fn refuse_cut_below_checkpoint(checkpoints: &Path, planned: &RepairReport) -> Result<(), Failure> {
    let latest = crate::keys::store(checkpoints).find_latest()?;
    match latest.metadata {
        Some(meta) if planned.position < meta.wal_position => Err(Failure::message(
            format!(
                "refusing to cut the log at position {}: checkpoint {} needs it from position {}, and recovery could no longer restore it ({})",
                planned.position, meta.id, meta.wal_position, planned.reason
            ),
            Exit::Damage,
        )),
        _ => Ok(()),
    }
}
