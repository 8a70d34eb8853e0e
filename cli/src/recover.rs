//! `recover DIR WAL --dry-run`: what recovery would do, computed by running it
//! read-only (`RecoveryConfig::with_dry_run`): the checkpoint it would use, the
//! ones it would reject, what it would cut, what it would replay.

use crate::args::RecoverArgs;
use crate::bytes::show_map;
use crate::output::{opt, Exit, Failure, Human, Outcome, Table};
use crate::sink::SinkPlan;
use crate::wal::{recovery_mode, RepairOutcome};
use highwater::{RecoveryConfig, RecoveryManager, TransactionMode};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

#[derive(Debug, Serialize)]
struct ChosenCheckpoint {
    id: u64,
    epoch: u64,
    wal_position: u64,
}

#[derive(Debug, Serialize)]
struct Rejected {
    id: u64,
    path: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Replay {
    /// Where replay starts (the checkpoint's log position, or 0).
    from: u64,
    /// Where the recovered state ends: the job resumes appending here.
    to: u64,
    /// Entries read, uncommitted ones included.
    entries_read: u64,
    committed_transactions: u64,
    /// Puts and Deletes that would be applied.
    changes: u64,
    /// Entries after the last Commit: never applied, cut by recovery.
    uncommitted_entries: u64,
    uncommitted_position: Option<u64>,
}

/// Damage in log records below the checkpoint's position: released.
#[derive(Debug, Serialize)]
struct Released {
    file: String,
    offset: u64,
    position: u64,
    reason: String,
}

/// What recovery would do.
#[derive(Debug, Serialize)]
struct Plan {
    dry_run: bool,
    checkpoint: Option<ChosenCheckpoint>,
    rejected_checkpoints: Vec<Rejected>,
    /// A checkpoint was chosen and the log does not exist.
    wal_absent: bool,
    /// Where the log ends, when that is below the checkpoint's position.
    wal_ends_below_checkpoint_at: Option<u64>,
    /// Damage below the checkpoint's position, released.
    released_damage: Option<Released>,
    /// The floor recovery raises the log to (records below it released).
    wal_floor: Option<u64>,
    wal_repair: Option<RepairOutcome>,
    replay: Replay,
    /// Damage replay stopped at (point-in-time mode), in words.
    stopped_at_damage: Option<String>,
    source_offsets: BTreeMap<String, u64>,
    watermark: Option<i64>,
    source_watermarks: BTreeMap<String, i64>,
    /// What recovery would do to each `--sink` directory.
    sinks: Vec<SinkPlan>,
}

/// Runs recovery read-only and reports its plan; exit 1 when recovery would
/// fail on damage.
pub fn run(args: &RecoverArgs, max_record_size: u32) -> Result<Outcome, Failure> {
    let transactions = if args.no_transactions {
        TransactionMode::NoTransactions
    } else {
        TransactionMode::Commits
    };
    let mut config = RecoveryConfig::new(&args.dir, &args.wal)
        .with_dry_run(true)
        .with_load_checkpoint_state(false)
        .with_wal_recovery_mode(recovery_mode(args.mode))
        .with_transaction_mode(transactions)
        .with_max_record_size(max_record_size);
    if let Some(keys) = crate::keys::provider() {
        config = config.with_encryption(keys);
    }
    let state = RecoveryManager::new(config).recover()?;
    let r = &state.report;
    let from = state.checkpoint.as_ref().map_or(0, |c| c.wal_position);
    let plan = Plan {
        dry_run: true,
        checkpoint: state.checkpoint.as_ref().map(|c| ChosenCheckpoint {
            id: c.id,
            epoch: c.epoch,
            wal_position: c.wal_position,
        }),
        rejected_checkpoints: r
            .rejected_checkpoints
            .iter()
            .map(|c| Rejected {
                id: c.id,
                path: c.path.display().to_string(),
                reason: c.reason.clone(),
            })
            .collect(),
        wal_absent: r.wal_absent,
        wal_ends_below_checkpoint_at: r.wal_short.as_ref().map(|s| s.end),
        released_damage: r.released_damage.as_ref().map(|d| Released {
            file: d.path.display().to_string(),
            offset: d.offset,
            position: d.position,
            reason: d.problem.to_string(),
        }),
        wal_floor: r.wal_release.as_ref().map(|w| w.floor),
        wal_repair: r
            .wal_repair
            .as_ref()
            .map(|w| RepairOutcome::of(&args.wal, true, w, w.position)),
        replay: Replay {
            from,
            to: state.wal_position,
            entries_read: state.wal_entries_replayed,
            committed_transactions: r.committed_transactions,
            changes: r.changes_applied,
            uncommitted_entries: r.uncommitted_entries,
            uncommitted_position: r.uncommitted_position,
        },
        stopped_at_damage: r
            .stopped_at_damage
            .as_ref()
            .map(|d| d.to_error().to_string()),
        source_offsets: state.source_offsets.clone().into_iter().collect(),
        watermark: state.watermark,
        source_watermarks: state.source_watermarks.clone().into_iter().collect(),
        sinks: args
            .sinks
            .iter()
            .map(|dir| SinkPlan::of(dir, state.checkpoint.as_ref()))
            .collect::<Result<_, _>>()?,
    };
    // A sink that recovery would refuse stops the job: what is on disk does
    // not recover as it is (exit 1, as for damage).
    let exit = if plan.sinks.iter().any(SinkPlan::refused) {
        Exit::Damage
    } else {
        Exit::Ok
    };
    Ok(Outcome::new(plan, exit))
}

impl Human for Plan {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "recovery plan (dry run: nothing was changed)")?;
        let mut t = Table::new(&[
            "  checkpoint",
            &match &self.checkpoint {
                Some(c) => format!(
                    "{} (epoch {}, log position {})",
                    c.id, c.epoch, c.wal_position
                ),
                None => "none: replay the log from its start".to_string(),
            },
        ]);
        for c in &self.rejected_checkpoints {
            t.row(vec!["  rejected".into(), format!("{}: {}", c.id, c.reason)]);
        }
        if self.wal_absent {
            t.row(vec![
                "  log".into(),
                "absent: the checkpoint alone is recovered; the log continues at its position"
                    .into(),
            ]);
        }
        if let Some(end) = self.wal_ends_below_checkpoint_at {
            t.row(vec![
                "  log".into(),
                format!("ends at position {end}, below the checkpoint: the checkpoint alone is recovered; the log continues at its position"),
            ]);
        }
        if let Some(d) = &self.released_damage {
            t.row(vec![
                "  released damage".into(),
                format!(
                    "{} at offset {} (log position {}), below the checkpoint: {}",
                    d.file, d.offset, d.position, d.reason
                ),
            ]);
        }
        if let Some(floor) = self.wal_floor {
            t.row(vec![
                "  log floor".into(),
                format!("would be raised to {floor}: records below it released"),
            ]);
        }
        let repair = match &self.wal_repair {
            Some(w) => format!(
                "would cut {} bytes of {} from {} at offset {} (log position {}): {}",
                w.bytes_cut,
                if w.torn_tail {
                    "torn tail"
                } else {
                    "corruption"
                },
                w.segment.as_deref().unwrap_or("-"),
                w.offset,
                w.position,
                w.reason
            ),
            None => "nothing to cut".to_string(),
        };
        t.row(vec!["  log repair".into(), repair]);
        let p = &self.replay;
        t.row(vec![
            "  replay".into(),
            format!(
                "positions {}..{}: {} entries read, {} committed transactions, {} changes",
                p.from, p.to, p.entries_read, p.committed_transactions, p.changes
            ),
        ]);
        let tail = match p.uncommitted_position {
            Some(at) if p.uncommitted_entries > 0 => format!(
                "{} entries from position {at}, never applied; recovery cuts them",
                p.uncommitted_entries
            ),
            _ => "none".to_string(),
        };
        t.row(vec!["  uncommitted tail".into(), tail]);
        if let Some(d) = &self.stopped_at_damage {
            t.row(vec!["  stops at damage".into(), d.clone()]);
        }
        t.row(vec![
            "  resumes at".into(),
            format!("log position {}", p.to),
        ]);
        t.row(vec!["  offsets".into(), show_map(&self.source_offsets)]);
        t.row(vec!["  watermark".into(), opt(self.watermark)]);
        if !self.source_watermarks.is_empty() {
            t.row(vec![
                "  watermarks".into(),
                show_map(&self.source_watermarks),
            ]);
        }
        for sink in &self.sinks {
            t.row(vec!["  sink".into(), sink.line()]);
        }
        t.write(out)
    }
}
