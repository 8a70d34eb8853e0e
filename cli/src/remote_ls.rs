//! `checkpoints ls URL`: a remote location's commit sequence, slot by slot,
//! as listed and decoded (no part object is read: `verify URL` checks them).

use crate::checkpoints::kind_name;
use crate::output::{opt, Exit, Failure, Human, Outcome, Problem, Table};
use crate::remote::{record_key, Remote};
use highwater::inspect::{ListedCommit, SlotRecord};
use highwater::CheckpointKind;
use serde::Serialize;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// One slot of the sequence.
#[derive(Debug, Serialize)]
struct SlotRow {
    slot: u64,
    /// The record's URL.
    path: String,
    /// "claim", "checkpoint" or "damaged" (unreadable or fails to decode).
    record: &'static str,
    /// The generation of the writer that created the record.
    generation: Option<u64>,
    /// Who claimed (claims only): host name and process id.
    writer: Option<String>,
    id: Option<u64>,
    epoch: Option<u64>,
    kind: Option<CheckpointKind>,
    parent_id: Option<u64>,
    wal_position: Option<u64>,
    watermark: Option<i64>,
    /// Bytes of its part objects.
    bytes: Option<u64>,
    /// When the checkpoint was created (its metadata).
    created_unix_ms: Option<u64>,
    /// When the record was written, when the store tells.
    last_modified_unix_ms: Option<u64>,
    /// Why a damaged record is damaged.
    problem: Option<Problem>,
}

/// The sequence of a location.
#[derive(Debug, Serialize)]
struct SequenceTable {
    location: String,
    /// Slots below it are dead (garbage collection raised it).
    floor: u64,
    commits: Vec<SlotRow>,
    /// The newest checkpoint a record commits (`verify` checks that it
    /// restores).
    newest_checkpoint: Option<u64>,
}

fn unix_ms(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn slot_row(remote: &Remote, c: &ListedCommit) -> SlotRow {
    let mut row = SlotRow {
        slot: c.slot,
        path: remote.key_url(&record_key(c.slot)),
        record: "damaged",
        generation: None,
        writer: None,
        id: None,
        epoch: None,
        kind: None,
        parent_id: None,
        wal_position: None,
        watermark: None,
        bytes: None,
        created_unix_ms: None,
        last_modified_unix_ms: c.last_modified.and_then(unix_ms),
        problem: None,
    };
    match &c.record {
        Ok(SlotRecord::Claim { generation, writer }) => {
            row.record = "claim";
            row.generation = Some(*generation);
            row.writer = Some(writer.clone());
        }
        Ok(SlotRecord::Checkpoint(cp)) => {
            let m = &cp.metadata;
            row.record = "checkpoint";
            row.generation = Some(cp.generation);
            row.id = Some(m.id);
            row.epoch = Some(m.epoch);
            row.kind = Some(m.kind);
            row.parent_id = m.parent_id;
            row.wal_position = Some(m.wal_position);
            row.watermark = m.watermark;
            row.bytes = Some(m.parts_bytes());
            row.created_unix_ms = Some(m.created_unix_ms);
        }
        // A record kind this build does not know.
        Ok(_) => row.record = "other",
        Err(e) => row.problem = Some(Problem::of(e)),
    }
    row
}

/// `checkpoints ls URL`: exit 0 whatever the records' state (use `verify`
/// to gate on it).
pub fn ls(location: &str) -> Result<Outcome, Failure> {
    let remote = Remote::open(location)?;
    let commits: Vec<SlotRow> = remote
        .sequence
        .commits
        .iter()
        .map(|c| slot_row(&remote, c))
        .collect();
    let newest_checkpoint = commits.iter().rev().find_map(|r| r.id);
    Ok(Outcome::new(
        SequenceTable {
            location: remote.location.clone(),
            floor: remote.sequence.floor,
            commits,
            newest_checkpoint,
        },
        Exit::Ok,
    ))
}

impl Human for SequenceTable {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "remote location {} (floor: slot {})",
            self.location, self.floor
        )?;
        if self.commits.is_empty() {
            writeln!(out, "no commit records at or above the floor")?;
        } else {
            let mut table = Table::new(&[
                "SLOT", "RECORD", "GEN", "ID", "EPOCH", "KIND", "PARENT", "WAL POS", "BYTES",
                "CREATED",
            ]);
            for r in &self.commits {
                let created = r.created_unix_ms.or(r.last_modified_unix_ms);
                table.row(vec![
                    r.slot.to_string(),
                    r.record.to_string(),
                    opt(r.generation),
                    opt(r.id),
                    opt(r.epoch),
                    if r.id.is_some() {
                        kind_name(r.kind)
                    } else {
                        "-".into()
                    },
                    opt(r.parent_id),
                    opt(r.wal_position),
                    opt(r.bytes),
                    created.map_or_else(|| "-".into(), crate::time::utc),
                ]);
            }
            table.write(out)?;
        }
        for r in &self.commits {
            if let Some(p) = &r.problem {
                writeln!(out, "slot {}: damaged record: {}", r.slot, p.message)?;
            }
            if let Some(w) = &r.writer {
                writeln!(out, "slot {}: generation claimed by {w}", r.slot)?;
            }
        }
        match self.newest_checkpoint {
            Some(id) => writeln!(
                out,
                "newest committed checkpoint: {id} (`highwater verify {}` checks that it restores)",
                self.location
            ),
            None => writeln!(out, "no checkpoint is committed"),
        }
    }
}
