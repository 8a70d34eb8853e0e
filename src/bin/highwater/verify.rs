//! `verify DIR [--wal WAL]`: every checksum of every checkpoint and segment.

use crate::checkpoints::CheckpointTable;
use crate::output::{Exit, Failure, Human, Outcome, Problem, Table};
use crate::progress::Progress;
use highwater::storage::default_storage;
use highwater::wal::{verify_log, wal_size_with, Damage, DamageClass, SegmentVerification};
use serde::Serialize;
use std::io::{self, Write};
use std::path::Path;

/// What `verify` found.
#[derive(Debug, Serialize)]
struct VerifyReport {
    /// True when everything verified (exit code 0).
    ok: bool,
    checkpoints: CheckpointTable,
    wal: Option<WalReport>,
}

/// A log, segment by segment.
#[derive(Debug, Serialize)]
pub struct WalReport {
    dir: String,
    segments: Vec<SegmentRow>,
    records: u64,
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
    let wal = wal
        .map(|w| verify_wal(w, max_record_size, progress))
        .transpose()?;
    let ok = checkpoints.all_verify() && wal.as_ref().is_none_or(WalReport::clean);
    let exit = if ok { Exit::Ok } else { Exit::Damage };
    Ok(Outcome::new(
        VerifyReport {
            ok,
            checkpoints,
            wal,
        },
        exit,
    ))
}

impl Human for WalReport {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "write-ahead log {}: {} segments, {} records, {} bytes",
            self.dir,
            self.segments.len(),
            self.records,
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
        let verdict = if self.ok {
            "OK: everything verifies"
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
