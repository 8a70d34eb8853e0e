//! `verify DIR [--wal WAL]`: every checksum of every checkpoint and segment.

use crate::checkpoints::CheckpointTable;
use crate::output::{Exit, Failure, Human, Outcome, Problem, Table};
use crate::progress::Progress;
use highwater::inspect::{verify_log, SegmentVerification};
use highwater::storage::default_storage;
use highwater::wal::wal_size_with;
use highwater::wal::{Damage, DamageClass};
use highwater::{RecoveryConfig, RecoveryManager};
use serde::Serialize;
use std::io::{self, Write};
use std::path::Path;

/// What `verify` found.
#[derive(Debug, Serialize)]
struct VerifyReport {
    /// True when everything verified and (with `--wal`) the job will recover
    /// (exit code 0).
    ok: bool,
    checkpoints: CheckpointTable,
    wal: Option<WalReport>,
    /// With `--wal`: what recovery would do, from a read-only run of it.
    recovery: Option<RecoveryCheck>,
}

/// Whether the job recovers: recovery run read-only (`recover --dry-run`).
#[derive(Debug, Serialize)]
struct RecoveryCheck {
    will_recover: bool,
    /// The checkpoint recovery would use.
    checkpoint: Option<u64>,
    /// Where the job would resume appending to the log.
    resumes_at: Option<u64>,
    /// What recovery would do besides replaying (absent or short log, damage
    /// released below the checkpoint, a cut), in words.
    notes: Vec<String>,
    /// Why it would not recover.
    problem: Option<Problem>,
    #[serde(skip)]
    exit: Exit,
}

impl RecoveryCheck {
    fn run(dir: &Path, wal: &Path, max_record_size: u32) -> Self {
        let mut config = RecoveryConfig::new(dir, wal)
            .with_dry_run(true)
            .with_load_checkpoint_state(false)
            .with_max_record_size(max_record_size);
        if let Some(keys) = crate::keys::provider() {
            config = config.with_encryption(keys);
        }
        match RecoveryManager::new(config).recover() {
            Ok(state) => {
                let r = &state.report;
                let mut notes = Vec::new();
                if r.wal_absent {
                    notes.push("the log is absent: the checkpoint alone is recovered".into());
                }
                if let Some(short) = &r.wal_short {
                    notes.push(format!(
                        "the log ends at {}, below the checkpoint's position {}: the checkpoint alone is recovered and the log continues there",
                        short.end, short.checkpoint_position
                    ));
                }
                if let Some(d) = &r.released_damage {
                    notes.push(format!(
                        "damage below the checkpoint is released: {} at offset {}",
                        d.path.display(),
                        d.offset
                    ));
                }
                if let Some(repair) = &r.wal_repair {
                    notes.push(format!(
                        "recovery cuts {} bytes at log position {}: {}",
                        repair.bytes_cut, repair.position, repair.reason
                    ));
                }
                for c in &r.rejected_checkpoints {
                    notes.push(format!("checkpoint {} is skipped: {}", c.id, c.reason));
                }
                RecoveryCheck {
                    will_recover: true,
                    checkpoint: state.checkpoint_id,
                    resumes_at: Some(state.wal_position),
                    notes,
                    problem: None,
                    exit: Exit::Ok,
                }
            }
            Err(e) => RecoveryCheck {
                will_recover: false,
                checkpoint: None,
                resumes_at: None,
                notes: Vec::new(),
                problem: Some(Problem::of(&e)),
                exit: Failure::of(&e).exit_code(),
            },
        }
    }
}

/// A log, segment by segment.
#[derive(Debug, Serialize)]
pub struct WalReport {
    dir: String,
    segments: Vec<SegmentRow>,
    records: u64,
    /// Records that are entries (`records` less the sync markers): what
    /// `wal dump` lists.
    entries: u64,
    bytes: u64,
    /// The only damage is a torn tail of the newest segment (what a crash
    /// leaves; recovery or `wal repair` cuts it).
    only_torn_tail: bool,
}

impl WalReport {
    /// True when every segment verified.
    pub fn clean(&self) -> bool {
        self.segments.iter().all(|s| s.problem.is_none())
    }
}

#[derive(Debug, Serialize)]
struct SegmentRow {
    path: String,
    start: u64,
    /// Just after the last record that verified.
    end: u64,
    records: u64,
    bytes: u64,
    /// "ok", "torn tail", "corrupt" or "unreadable".
    status: &'static str,
    problem: Option<Problem>,
}

/// The problem a damaged record is, in words that say whether recovery cuts it.
pub fn damage_problem(d: &Damage) -> Problem {
    let what = match d.class {
        DamageClass::Torn => "torn tail (recovery cuts it)",
        _ => "corruption",
    };
    Problem {
        file: Some(d.path.display().to_string()),
        offset: Some(d.offset),
        message: format!(
            "{what} in {} at offset {} (log position {}): {}",
            d.path.display(),
            d.offset,
            d.position,
            d.problem
        ),
    }
}

fn segment_row(s: &SegmentVerification) -> SegmentRow {
    let (status, problem) = match (&s.damage, &s.error) {
        (_, Some(e)) => ("unreadable", Some(Problem::of(e))),
        (Some(d), None) if d.class == DamageClass::Torn => ("torn tail", Some(damage_problem(d))),
        (Some(d), None) => ("corrupt", Some(damage_problem(d))),
        (None, None) => ("ok", None),
    };
    SegmentRow {
        path: s.path.display().to_string(),
        start: s.start,
        end: s.end,
        records: s.records,
        bytes: s.file_len,
        status,
        problem,
    }
}

/// Verifies every segment of the log in `dir`.
pub fn verify_wal(dir: &Path, max_record_size: u32, progress: bool) -> Result<WalReport, Failure> {
    let storage = default_storage();
    let total = wal_size_with(storage.as_ref(), dir)?;
    let bar = Progress::bytes(progress, total, "verifying log");
    let checked = verify_log(storage.as_ref(), dir, max_record_size, &mut |done| {
        bar.set(done)
    })?;
    drop(bar);
    Ok(WalReport {
        dir: dir.display().to_string(),
        segments: checked.segments.iter().map(segment_row).collect(),
        records: checked.records(),
        entries: checked.records() - checked.sync_markers(),
        bytes: checked.bytes(),
        only_torn_tail: checked.only_torn_tail(),
    })
}

/// `verify DIR [--wal WAL]`: exit 0 only when everything verifies.
pub fn run(
    dir: &Path,
    wal: Option<&Path>,
    max_record_size: u32,
    progress: bool,
) -> Result<Outcome, Failure> {
    let checkpoints = CheckpointTable::read(dir, progress)?;
    finish(checkpoints, dir, wal, max_record_size, progress)
}

/// The rest of `verify` once the checkpoints of `dir` are verified (a remote
/// location's: of its mirror in `dir`): the log, and whether the job
/// recovers.
pub fn finish(
    checkpoints: CheckpointTable,
    dir: &Path,
    wal: Option<&Path>,
    max_record_size: u32,
    progress: bool,
) -> Result<Outcome, Failure> {
    let wal = wal
        .map(|w| verify_wal(w, max_record_size, progress))
        .transpose()?;
    let recovery = wal
        .as_ref()
        .map(|w| RecoveryCheck::run(dir, Path::new(&w.dir), max_record_size));
    let verified = checkpoints.all_verify() && wal.as_ref().is_none_or(WalReport::clean);
    let recovers = recovery.as_ref().is_none_or(|r| r.will_recover);
    let ok = verified && recovers;
    let exit = match &recovery {
        Some(r) if !r.will_recover => r.exit,
        _ if ok => Exit::Ok,
        _ => Exit::Damage,
    };
    Ok(Outcome::new(
        VerifyReport {
            ok,
            checkpoints,
            wal,
            recovery,
        },
        exit,
    ))
}

impl Human for WalReport {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "write-ahead log {}: {} segments, {} records ({} entries, {} sync markers), {} bytes",
            self.dir,
            self.segments.len(),
            self.records,
            self.entries,
            self.records - self.entries,
            self.bytes
        )?;
        if self.segments.is_empty() {
            return Ok(());
        }
        let mut t = Table::new(&["SEGMENT", "START", "END", "RECORDS", "BYTES", "STATUS"]);
        for s in &self.segments {
            let name = Path::new(&s.path)
                .file_name()
                .map_or_else(|| s.path.clone(), |n| n.to_string_lossy().into_owned());
            t.row(vec![
                name,
                s.start.to_string(),
                s.end.to_string(),
                s.records.to_string(),
                s.bytes.to_string(),
                s.status.to_string(),
            ]);
        }
        t.write(out)?;
        for p in self.segments.iter().filter_map(|s| s.problem.as_ref()) {
            writeln!(out, "{}", p.message)?;
        }
        Ok(())
    }
}

impl Human for VerifyReport {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        self.checkpoints.human(out)?;
        if let Some(wal) = &self.wal {
            writeln!(out)?;
            wal.human(out)?;
        }
        if let Some(r) = &self.recovery {
            writeln!(out)?;
            match (&r.problem, r.checkpoint) {
                (Some(p), _) => writeln!(out, "recovery: WILL NOT RECOVER: {}", p.message)?,
                (None, Some(id)) => writeln!(
                    out,
                    "recovery: recovers checkpoint {id} and the committed log after it; resumes at log position {}",
                    r.resumes_at.unwrap_or_default()
                )?,
                (None, None) => writeln!(
                    out,
                    "recovery: no checkpoint; replays the log from its start; resumes at log position {}",
                    r.resumes_at.unwrap_or_default()
                )?,
            }
            for note in &r.notes {
                writeln!(out, "  {note}")?;
            }
        }
        let verdict = if self.ok {
            if self.recovery.is_some() {
                "OK: everything verifies and the job recovers"
            } else {
                "OK: everything verifies (give --wal to check that the job recovers)"
            }
        } else if self.recovery.as_ref().is_some_and(|r| !r.will_recover) {
            "FAILED: this job will not recover (see docs/OPERATIONS.md)"
        } else if self.checkpoints.all_verify()
            && self.wal.as_ref().is_some_and(|w| w.only_torn_tail)
        {
            "FAILED: the log ends in a torn tail (what a crash leaves; `highwater wal repair` or recovery cuts it)"
        } else {
            "FAILED: damage found"
        };
        writeln!(out, "{verdict}")
    }
}
