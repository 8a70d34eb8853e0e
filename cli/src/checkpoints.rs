//! `checkpoints ls` and `checkpoints show`, and the per-checkpoint summary that
//! `verify` shares.

use crate::bytes::{hex, show_text};
use crate::output::{opt, Exit, Failure, Human, Outcome, Problem, Table};
use crate::progress::Progress;
use highwater::inspect::CheckpointVerification;
use highwater::{CheckpointKind, IncrementalCheckpointMetadata};
use serde::Serialize;
use std::io::{self, Write};
use std::path::Path;

/// One checkpoint as `ls` and `verify` report it.
#[derive(Debug, Serialize)]
pub struct CheckpointRow {
    id: u64,
    path: String,
    epoch: Option<u64>,
    kind: Option<CheckpointKind>,
    parent_id: Option<u64>,
    wal_position: Option<u64>,
    watermark: Option<i64>,
    /// Bytes of its part files.
    bytes: Option<u64>,
    created_unix_ms: Option<u64>,
    /// Its own metadata and files verify.
    verifies: bool,
    /// It and its whole chain verify.
    restorable: bool,
    /// Recovery would use it.
    recovery_uses: bool,
    problems: Vec<Problem>,
    /// Why it cannot be restored, when it cannot.
    unrestorable: Option<String>,
    /// It is sealed and the key given is missing or wrong (not damage:
    /// docs/CLI.md, "Encrypted jobs").
    needs_key: bool,
}

impl CheckpointRow {
    fn status(&self) -> &'static str {
        match (self.verifies, self.restorable) {
            _ if self.needs_key => "NEEDS KEY",
            (true, true) => "ok",
            (false, _) => "DAMAGED",
            (true, false) => "CHAIN BROKEN",
        }
    }
}

/// Every checkpoint of a directory, verified, and the one recovery would use.
#[derive(Debug, Serialize)]
pub struct CheckpointTable {
    dir: String,
    checkpoints: Vec<CheckpointRow>,
    recovery_checkpoint: Option<u64>,
    /// The checkpoint recovery stops at because it needs a key that was not
    /// given (or is wrong), if any.
    recovery_needs_key: Option<u64>,
    /// Directories of checkpoints that were never published.
    incomplete: Vec<String>,
    /// Remote locations only: commit records that do not decode (or could
    /// not be read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    damaged_records: Vec<Problem>,
}

impl CheckpointTable {
    /// Reads and verifies every checkpoint of `dir`.
    pub fn read(dir: &Path, progress: bool) -> Result<Self, Failure> {
        let store = crate::keys::store(dir);
        let total = store
            .list_checkpoints()?
            .iter()
            .fold(0, |t: u64, m| t.saturating_add(m.parts_bytes()));
        let bar = Progress::bytes(progress, total, "verifying checkpoints");
        let verified = store.verify_all(&mut |done| bar.set(done))?;
        drop(bar);
        // Recovery takes the newest restorable checkpoint, but stops at a
        // newer one that needs a key it was not given (never falls back).
        let stop = verified
            .iter()
            .rev()
            .find(|v| v.is_restorable() || v.problems.iter().any(highwater::Error::is_key_problem));
        let recovery_checkpoint = stop.filter(|v| v.is_restorable()).map(|v| v.id);
        let recovery_needs_key = stop.filter(|v| !v.is_restorable()).map(|v| v.id);
        let checkpoints = verified
            .into_iter()
            .map(|v| row(v, recovery_checkpoint))
            .collect();
        let incomplete = store
            .incomplete_dirs()?
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Ok(CheckpointTable {
            dir: dir.display().to_string(),
            checkpoints,
            recovery_checkpoint,
            recovery_needs_key,
            incomplete,
            damaged_records: Vec::new(),
        })
    }

    /// True when a sealed checkpoint could not be read for want of its key.
    pub fn needs_key(&self) -> bool {
        self.checkpoints.iter().any(|c| c.needs_key)
    }

    /// True when every checkpoint (and, remotely, every record) verifies.
    pub fn all_verify(&self) -> bool {
        self.checkpoints.iter().all(|c| c.verifies && c.restorable)
            && self.damaged_records.is_empty()
    }

    /// The table of a mirror, told as the remote location's: `location` for
    /// the directory, `path(id)` for each checkpoint's path.
    pub fn relocate(&mut self, location: &str, path: impl Fn(u64) -> Option<String>) {
        self.dir = location.to_string();
        for c in &mut self.checkpoints {
            if let Some(p) = path(c.id) {
                c.path = p;
            }
        }
    }

    /// Adds a committed checkpoint that could not be mirrored (kept in id
    /// order, in place of its row from the mirror: a delta whose parent
    /// failed may have downloaded), or a damaged record (`meta` none).
    pub fn add_rejected(
        &mut self,
        path: String,
        meta: Option<&IncrementalCheckpointMetadata>,
        own_damage: bool,
        problem: Problem,
    ) {
        let Some(m) = meta else {
            self.damaged_records.push(problem);
            return;
        };
        let (problems, unrestorable) = if own_damage {
            (vec![problem], None)
        } else {
            (Vec::new(), Some(problem.message))
        };
        let row = CheckpointRow {
            id: m.id,
            path,
            epoch: Some(m.epoch),
            kind: Some(m.kind),
            parent_id: m.parent_id,
            wal_position: Some(m.wal_position),
            watermark: m.watermark,
            bytes: Some(m.parts_bytes()),
            created_unix_ms: Some(m.created_unix_ms),
            verifies: !own_damage,
            restorable: false,
            recovery_uses: false,
            problems,
            unrestorable,
            needs_key: false,
        };
        self.checkpoints.retain(|c| c.id != m.id);
        let at = self.checkpoints.partition_point(|c| c.id < m.id);
        self.checkpoints.insert(at, row);
    }
}

fn row(v: CheckpointVerification, recovery: Option<u64>) -> CheckpointRow {
    let meta = v.metadata.as_ref();
    CheckpointRow {
        id: v.id,
        path: v.path.display().to_string(),
        epoch: meta.map(|m| m.epoch),
        kind: meta.map(|m| m.kind),
        parent_id: meta.and_then(|m| m.parent_id),
        wal_position: meta.map(|m| m.wal_position),
        watermark: meta.and_then(|m| m.watermark),
        bytes: meta.map(IncrementalCheckpointMetadata::parts_bytes),
        created_unix_ms: meta.map(|m| m.created_unix_ms),
        verifies: v.problems.is_empty(),
        restorable: v.is_restorable(),
        recovery_uses: recovery == Some(v.id),
        needs_key: v.problems.iter().any(highwater::Error::is_key_problem),
        problems: v.problems.iter().map(Problem::of).collect(),
        unrestorable: v.unrestorable,
    }
}

/// A checkpoint kind in one word ("-" for none).
pub fn kind_name(kind: Option<CheckpointKind>) -> String {
    match kind {
        Some(CheckpointKind::Full) => "full".into(),
        Some(CheckpointKind::Delta) => "delta".into(),
        Some(_) => "other".into(),
        None => "-".into(),
    }
}

impl Human for CheckpointTable {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.checkpoints.is_empty() {
            writeln!(out, "no checkpoints in {}", self.dir)?;
        } else {
            let mut table = Table::new(&[
                "ID",
                "EPOCH",
                "KIND",
                "PARENT",
                "WAL POS",
                "WATERMARK",
                "BYTES",
                "STATUS",
                "",
            ]);
            for c in &self.checkpoints {
                table.row(vec![
                    c.id.to_string(),
                    opt(c.epoch),
                    kind_name(c.kind),
                    opt(c.parent_id),
                    opt(c.wal_position),
                    opt(c.watermark),
                    opt(c.bytes),
                    c.status().to_string(),
                    if c.recovery_uses { "<- recovery" } else { "" }.to_string(),
                ]);
            }
            table.write(out)?;
        }
        for c in self.checkpoints.iter().filter(|c| !c.restorable) {
            for p in &c.problems {
                writeln!(out, "checkpoint {}: {}", c.id, p.message)?;
            }
            if c.problems.is_empty() {
                let reason = c.unrestorable.as_deref().unwrap_or("");
                writeln!(out, "checkpoint {}: not restorable: {reason}", c.id)?;
            }
        }
        for p in &self.damaged_records {
            writeln!(out, "damaged commit record: {}", p.message)?;
        }
        for dir in &self.incomplete {
            writeln!(
                out,
                "incomplete checkpoint (never published; removed by the next checkpoint): {dir}"
            )?;
        }
        match (self.recovery_checkpoint, self.recovery_needs_key) {
            (_, Some(id)) => writeln!(
                out,
                "recovery stops at checkpoint {id}: it is sealed and the key given is missing or wrong"
            ),
            (Some(id), None) => writeln!(out, "recovery would use checkpoint {id}"),
            (None, None) => writeln!(
                out,
                "recovery would use no checkpoint (replay the log from position 0)"
            ),
        }
    }
}

/// `checkpoints ls DIR`: exit 0 whatever the checkpoints' state (use `verify`
/// to gate on it).
pub fn ls(dir: &Path, progress: bool) -> Result<Outcome, Failure> {
    Ok(Outcome::new(
        CheckpointTable::read(dir, progress)?,
        Exit::Ok,
    ))
}

/// One checkpoint in full.
#[derive(Debug, Serialize)]
pub struct CheckpointDetail {
    path: String,
    metadata: IncrementalCheckpointMetadata,
    verifies: bool,
    problems: Vec<Problem>,
    restorable: bool,
    /// Remote locations only: why a checkpoint whose own objects verify does
    /// not restore (its parent chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    unrestorable: Option<String>,
    /// Parts this delta does not write, carried over from its parents.
    carried_over_parts: Vec<String>,
}

impl CheckpointDetail {
    /// Reads and verifies checkpoint `id` of `dir`.
    pub fn read(dir: &Path, id: u64) -> Result<Self, Failure> {
        let store = crate::keys::store(dir);
        if !store.checkpoint_ids()?.contains(&id) {
            return Err(highwater::Error::CheckpointNotFound {
                dir: dir.to_path_buf(),
                id,
            }
            .into());
        }
        let metadata = store.read_metadata(id)?;
        let problems: Vec<Problem> = store
            .verify_checkpoint(id)
            .err()
            .iter()
            .map(Problem::of)
            .collect();
        let restorable = store.is_restorable(id);
        let carried_over_parts = if restorable {
            store
                .part_names(id)?
                .into_iter()
                .filter(|n| metadata.part(n).is_none())
                .collect()
        } else {
            Vec::new()
        };
        Ok(CheckpointDetail {
            path: store.checkpoint_path(id).display().to_string(),
            verifies: problems.is_empty(),
            problems,
            restorable,
            unrestorable: None,
            carried_over_parts,
            metadata,
        })
    }

    /// A committed checkpoint of a remote location that could not be
    /// mirrored: its record's metadata, and why (`own_damage`: in its own
    /// objects, else in its parent chain).
    pub fn rejected(
        path: String,
        metadata: IncrementalCheckpointMetadata,
        own_damage: bool,
        problem: Problem,
    ) -> Self {
        let (problems, unrestorable) = if own_damage {
            (vec![problem], None)
        } else {
            (Vec::new(), Some(problem.message))
        };
        CheckpointDetail {
            path,
            metadata,
            verifies: !own_damage,
            problems,
            restorable: false,
            unrestorable,
            carried_over_parts: Vec::new(),
        }
    }

    /// Tells it at `path` (a remote record's URL instead of the mirror's
    /// directory).
    pub fn set_path(&mut self, path: String) {
        self.path = path;
    }

    /// The report and its exit code: a checkpoint `ls` calls DAMAGED or CHAIN
    /// BROKEN exits 1 here too (damage found), whatever part of it is damaged.
    pub fn outcome(self) -> Outcome {
        let exit = if self.verifies && self.restorable {
            Exit::Ok
        } else {
            Exit::Damage
        };
        Outcome::new(self, exit)
    }
}

/// `checkpoints show DIR ID`.
pub fn show(dir: &Path, id: u64) -> Result<Outcome, Failure> {
    Ok(CheckpointDetail::read(dir, id)?.outcome())
}

impl Human for CheckpointDetail {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let m = &self.metadata;
        let yes = |b: bool| if b { "yes" } else { "NO" };
        writeln!(out, "checkpoint {} ({})", m.id, self.path)?;
        let mut t = Table::new(&["  epoch", &m.epoch.to_string()]);
        let kind = match m.parent_id {
            Some(p) => format!(
                "{} (parent {p}, base {}, chain length {})",
                kind_name(Some(m.kind)),
                m.base_id,
                m.chain_length
            ),
            None => kind_name(Some(m.kind)),
        };
        t.row(vec!["  kind".into(), kind]);
        t.row(vec!["  wal position".into(), m.wal_position.to_string()]);
        t.row(vec!["  watermark".into(), opt(m.watermark)]);
        t.row(vec![
            "  created".into(),
            crate::time::utc(m.created_unix_ms),
        ]);
        t.row(vec!["  part bytes".into(), m.parts_bytes().to_string()]);
        t.row(vec!["  verifies".into(), yes(self.verifies).into()]);
        t.row(vec!["  restorable".into(), yes(self.restorable).into()]);
        t.write(out)?;
        for p in &self.problems {
            writeln!(out, "  problem: {}", p.message)?;
        }
        if let Some(why) = &self.unrestorable {
            writeln!(out, "  not restorable: {why}")?;
        }
        writeln!(out, "sources")?;
        let mut names: Vec<&String> = m
            .source_offsets
            .keys()
            .chain(m.source_watermarks.keys())
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            writeln!(out, "  (none)")?;
        } else {
            let mut t = Table::new(&["  SOURCE", "OFFSET", "WATERMARK"]);
            for name in names {
                t.row(vec![
                    format!("  {}", show_text(name)),
                    opt(m.source_offsets.get(name)),
                    opt(m.source_watermarks.get(name)),
                ]);
            }
            t.write(out)?;
        }
        writeln!(out, "parts")?;
        let mut t = Table::new(&[
            "  NAME", "KIND", "FILE", "BYTES", "ENTRIES", "DELETED", "CRC32C", "KEY",
        ]);
        for p in &m.parts {
            t.row(vec![
                format!("  {}", show_text(&p.name)),
                p.kind.name().to_string(),
                show_text(&p.file),
                p.size.to_string(),
                p.entries.to_string(),
                p.deleted.to_string(),
                format!("{:#010x}", p.crc32c),
                // The key id a sealed part needs ("-": plaintext).
                p.sealed.map_or("-".into(), |s| s.key_id.to_string()),
            ]);
        }
        t.write(out)?;
        if !self.carried_over_parts.is_empty() {
            let names: Vec<String> = self
                .carried_over_parts
                .iter()
                .map(|n| show_text(n))
                .collect();
            writeln!(
                out,
                "  carried over from the parent chain: {}",
                names.join(", ")
            )?;
        }
        if !m.sink_transactions.is_empty() {
            writeln!(out, "sink transactions")?;
            let mut t = Table::new(&["  SINK", "EPOCH", "HANDLE"]);
            for s in &m.sink_transactions {
                t.row(vec![
                    format!("  {}", show_text(&s.sink)),
                    s.epoch.to_string(),
                    format!("0x{}", hex(&s.handle)),
                ]);
            }
            t.write(out)?;
        }
        Ok(())
    }
}
