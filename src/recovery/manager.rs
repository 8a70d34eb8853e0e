//! [`RecoveryManager`]: the recovery steps of docs/RECOVERY.md in order —
//! choose the checkpoint, repair, check coverage, replay, cut the uncommitted
//! tail — with the I/O at the edges and the decisions in `replay` and `choose`.

use super::choose::{choose_checkpoint, Base};
use super::config::{RecoveryConfig, TransactionMode};
use super::recovered::RecoveredState;
use super::release::{release_below_checkpoint, AfterRelease};
use super::replay::{replay, ReplayEnd, ReplayOutcome, ReplayRequest};
use super::replay_sink::{CollectChanges, DiscardChanges, ReplaySink};
use super::report::{RecoveryReport, TornTail};
use crate::error::{Error, Result};
use crate::wal::{
    planned_repair, poison_mark_position, sync_newest_segment, SyncPolicy, WalOptions,
    WriteAheadLog,
};
use std::path::Path;
use std::time::Instant;

/// Recovers the state, offsets and watermark of a job after a crash.
#[derive(Debug, Clone)]
pub struct RecoveryManager {
    config: RecoveryConfig,
}

impl RecoveryManager {
    /// A manager that recovers as `config` says.
    pub fn new(config: RecoveryConfig) -> Self {
        RecoveryManager { config }
    }

    /// The configuration.
    pub fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    /// Recovery with the defaults ([`RecoveryConfig::new`]): changes are counted,
    /// not collected.
    ///
    /// # Errors
    /// As [`recover`](Self::recover).
    pub fn recover_simple(
        checkpoint_dir: impl AsRef<Path>,
        wal_path: impl AsRef<Path>,
    ) -> Result<RecoveredState> {
        Self::new(RecoveryConfig::new(checkpoint_dir, wal_path)).recover()
    }

    /// Recovery with the defaults, collecting the committed changes in
    /// [`RecoveredState::state_changes`].
    ///
    /// # Errors
    /// As [`recover`](Self::recover).
    pub fn recover_with_changes(
        checkpoint_dir: impl AsRef<Path>,
        wal_path: impl AsRef<Path>,
    ) -> Result<RecoveredState> {
        Self::new(RecoveryConfig::new(checkpoint_dir, wal_path).with_collect_state_changes(true))
            .recover()
    }

    /// Runs recovery: loads the newest restorable checkpoint (falling back to
    /// older ones), repairs the log (when `repair_wal`), replays the committed
    /// log entries after it and cuts the uncommitted tail (docs/RECOVERY.md).
    ///
    /// # Errors
    /// [`Error::Locked`] when a writer holds the log (repair on); a corruption
    /// error naming the segment file and offset for log damage the mode does
    /// not tolerate; [`Error::CheckpointNotCovered`] when the log no longer holds
    /// the chosen checkpoint's position; I/O errors, among them a failed read
    /// of a checkpoint newer than the one that would be restored (damaged
    /// checkpoints are skipped; one whose restorability is unknown is not);
    /// [`Error::InvalidConfig`] for a setting out of range
    /// ([`RecoveryConfig::validate`]).
    pub fn recover(&self) -> Result<RecoveredState> {
        self.collecting(|manager, sink| manager.run(None, sink))
    }

    /// Like [`recover`](Self::recover), handing every committed change to `sink`
    /// as it is read instead of collecting it (streaming replay, bounded memory).
    ///
    /// # Errors
    /// As [`recover`](Self::recover), plus [`Error::ReplaySink`].
    pub fn recover_into(&self, sink: &mut dyn ReplaySink) -> Result<RecoveredState> {
        self.run(None, sink)
    }

    /// Continues a bounded or point-in-time replay from `previous.wal_position`,
    /// starting from its offsets, watermark, epoch and checkpoint (the checkpoint
    /// is not loaded again). Joined, the pieces equal one unbounded replay.
    ///
    /// # Errors
    /// As [`recover`](Self::recover).
    pub fn resume(&self, previous: &RecoveredState) -> Result<RecoveredState> {
        self.collecting(|manager, sink| manager.run(Some(previous), sink))
    }

    /// [`resume`](Self::resume), handing changes to `sink`.
    ///
    /// # Errors
    /// As [`recover_into`](Self::recover_into).
    pub fn resume_into(
        &self,
        previous: &RecoveredState,
        sink: &mut dyn ReplaySink,
    ) -> Result<RecoveredState> {
        self.run(Some(previous), sink)
    }

    /// Runs `f` with the sink `collect_state_changes` asks for.
    fn collecting(
        &self,
        f: impl FnOnce(&Self, &mut dyn ReplaySink) -> Result<RecoveredState>,
    ) -> Result<RecoveredState> {
        if !self.config.collect_state_changes {
            return f(self, &mut DiscardChanges);
        }
        let mut sink = CollectChanges::default();
        let mut state = f(self, &mut sink)?;
        state.state_changes = sink.changes;
        Ok(state)
    }

    fn run(
        &self,
        previous: Option<&RecoveredState>,
        sink: &mut dyn ReplaySink,
    ) -> Result<RecoveredState> {
        let cfg = &self.config;
        cfg.validate()?;
        let started = Instant::now();
        let mut report = RecoveryReport::default();
        let storage = cfg.storage.clone();

        // 1. Choose the checkpoint first (it only reads): the repair must know
        // which part of the log the checkpoint still needs.
        let phase = Instant::now();
        let base = match previous {
            Some(p) => Base::continuing(p),
            None => choose_checkpoint(cfg, &mut report)?,
        };
        report.timings.checkpoint = phase.elapsed();

        // 2. Release the log below the checkpoint (absent, short, or damaged
        // there: none of it is needed), then repair its tail (or, read-only,
        // make what is there durable).
        let phase = Instant::now();
        let after = match previous {
            Some(_) => AfterRelease::Replay,
            None => {
                release_below_checkpoint(cfg, &base, &mut report, |e| not_covered(e, &base, cfg))?
            }
        };
        let read_log = after == AfterRelease::Replay;
        // A dry run reads the log as if its planned cut were made.
        let mut log_end = None;
        let wal = if !read_log {
            None
        } else if cfg.dry_run {
            let (planned, damage) = planned_repair(
                storage.as_ref(),
                &cfg.wal_path,
                &wal_options(cfg),
                base.wal_position,
            )?;
            if let Some(damage) = damage {
                if planned.position < base.wal_position {
                    return Err(cut_below_checkpoint(cfg, &base, planned.position, damage));
                }
                log_end = Some(planned.position);
                report.wal_repair = Some(planned);
            }
            None
        } else if cfg.repair_wal {
            let wal = WriteAheadLog::open(&cfg.wal_path, wal_options(cfg))?;
            if let Some((at, damage)) = wal.pending_cut() {
                if at < base.wal_position {
                    return Err(cut_below_checkpoint(cfg, &base, at, damage));
                }
            }
            let repaired = wal.repair()?;
            report.wal_repair = repaired.cut_anything().then_some(repaired);
            Some(wal)
        } else {
            sync_newest_segment(storage.as_ref(), &cfg.wal_path)?;
            None
        };
        // A log that was not opened (read-only) still has a poisoned writer's
        // mark: what follows it was never acknowledged, the next open cuts it,
        // and it is not replayed.
        if read_log && wal.is_none() {
            if let Some(mark) = poison_mark_position(storage.as_ref(), &cfg.wal_path)? {
                log_end = Some(log_end.map_or(mark, |end| end.min(mark)));
            }
        }
        report.timings.repair = phase.elapsed();

        // 3 and 4. Check coverage and replay.
        let phase = Instant::now();
        let mut offsets = base.offsets.clone();
        let mut watermark = base.watermark;
        let mut watermarks = base.watermarks.clone();
        let outcome = if read_log {
            let request = ReplayRequest {
                storage: &storage,
                dir: &cfg.wal_path,
                max_record_size: cfg.max_record_size,
                from: base.wal_position,
                resume: base.resume_position,
                open_entries: base.open_entries,
                max_entries: cfg.max_wal_entries,
                target: cfg.target_position,
                log_end,
                transactions: cfg.transaction_mode,
                mode: cfg.wal_recovery_mode,
                buffer_bytes: cfg.transaction_buffer_bytes,
            };
            replay(
                &request,
                sink,
                &mut offsets,
                &mut watermark,
                &mut watermarks,
            )
            .map_err(|e| not_covered(e, &base, cfg))?
        } else {
            ReplayOutcome {
                position: base.wal_position,
                resume: base.wal_position,
                ..ReplayOutcome::nothing()
            }
        };
        report.timings.replay = phase.elapsed();

        // 5. Cut the uncommitted tail, then close the log (a durable sync marker).
        let phase = Instant::now();
        let damaged = matches!(outcome.end, ReplayEnd::Damage { .. });
        if (outcome.pending_entries > 0 || damaged) && outcome.end.reached_end() {
            report.uncommitted_entries = outcome.pending_entries;
            report.uncommitted_position = Some(outcome.position);
            // Cut the uncommitted tail, and (PointInTime) a record that verified
            // but does not decode: later Commits must land before neither.
            if let (Some(wal), None) = (&wal, cfg.target_position) {
                report.uncommitted_bytes_cut = wal.truncate_from(outcome.position)?;
                tracing::warn!(wal = %cfg.wal_path.display(), position = outcome.position, entries = outcome.pending_entries, bytes_cut = report.uncommitted_bytes_cut, "cut the uncommitted tail of the write-ahead log");
            }
        }
        if let Some(wal) = wal {
            wal.close()?;
        }
        report.timings.tail_cut = phase.elapsed();

        match &outcome.end {
            ReplayEnd::TornTail { position, reason } if report.wal_repair.is_none() => {
                report.torn_tail = Some(TornTail {
                    position: *position,
                    reason: reason.clone(),
                });
            }
            ReplayEnd::Damage { reason } => report.stopped_at_damage = Some(reason.clone()),
            _ => {}
        }
        report.stopped_at_target = outcome.end == ReplayEnd::Target;
        report.committed_transactions = outcome.transactions;
        report.changes_applied = outcome.changes;
        report.transactions_reread = outcome.transactions_reread;
        report.entries_reread = outcome.entries_reread;
        report.watermark_regressions = outcome.watermark_regressions;
        if outcome.end == ReplayEnd::Limit {
            report.open_transaction_entries = outcome.pending_entries;
        }
        report.timings.total = started.elapsed();
        let replayed_source_watermarks = watermarks.clone();
        super::watermarks::settle(&mut watermarks, &offsets, watermark);
        let state = RecoveredState {
            epoch: base.epoch,
            state_snapshot: base.snapshot,
            state_blob: base.blob,
            checkpoint_id: base.checkpoint.as_ref().map(|c| c.id),
            checkpoint: base.checkpoint,
            wal_position: outcome.position,
            resume_position: outcome.resume,
            wal_entries_replayed: outcome.entries_read,
            source_offsets: offsets,
            watermark,
            source_watermarks: watermarks,
            replayed_source_watermarks,
            state_changes: Vec::new(),
            has_more: outcome.end == ReplayEnd::Limit,
            report,
        };
        log_outcome(cfg, &state, base.wal_position);
        Ok(state)
    }
}

/// How recovery opens the log for repair.
fn wal_options(cfg: &RecoveryConfig) -> WalOptions {
    WalOptions::new()
        .with_sync_policy(SyncPolicy::Manual)
        .with_recovery_mode(cfg.wal_recovery_mode)
        .with_max_record_size(cfg.max_record_size)
        .with_storage(cfg.storage.clone())
}

/// PointInTime would cut the log below the checkpoint's position, removing log
/// the checkpoint needs: recovery refuses with the damage's error.
fn cut_below_checkpoint(cfg: &RecoveryConfig, base: &Base, at: u64, damage: Error) -> Error {
    tracing::error!(wal = %cfg.wal_path.display(), cut_at = at, checkpoint_position = base.wal_position, %damage, "damage below the checkpoint's log position; not cutting");
    damage
}

/// Wraps the errors that say the log does not hold the replay's start.
fn not_covered(error: Error, base: &Base, cfg: &RecoveryConfig) -> Error {
    match error {
        Error::PositionNotCovered { .. }
        | Error::PositionBeyondEnd { .. }
        | Error::NotARecordBoundary { .. } => {
            let checkpoint_id = base.checkpoint.as_ref().map(|c| c.id);
            tracing::error!(checkpoint = ?checkpoint_id, position = base.wal_position, wal = %cfg.wal_path.display(), %error, "the write-ahead log does not cover the checkpoint");
            Error::CheckpointNotCovered {
                checkpoint_id,
                position: base.wal_position,
                path: cfg.wal_path.clone(),
                source: Box::new(error),
            }
        }
        other => other,
    }
}

fn log_outcome(cfg: &RecoveryConfig, state: &RecoveredState, from: u64) {
    let r = &state.report;
    crate::metrics::recovered(&r.timings, r.rejected_checkpoints.len());
    tracing::info!(
        checkpoint_dir = %cfg.checkpoint_dir.display(),
        wal = %cfg.wal_path.display(),
        checkpoint = ?state.checkpoint_id,
        rejected_checkpoints = r.rejected_checkpoints.len(),
        from,
        wal_position = state.wal_position,
        entries_replayed = state.wal_entries_replayed,
        transactions = r.committed_transactions,
        changes = r.changes_applied,
        uncommitted_entries = r.uncommitted_entries,
        bytes_cut = r.bytes_cut(),
        has_more = state.has_more,
        no_transactions = cfg.transaction_mode == TransactionMode::NoTransactions,
        repair_ms = r.timings.repair.as_secs_f64() * 1e3,
        checkpoint_ms = r.timings.checkpoint.as_secs_f64() * 1e3,
        replay_ms = r.timings.replay.as_secs_f64() * 1e3,
        tail_cut_ms = r.timings.tail_cut.as_secs_f64() * 1e3,
        total_ms = r.timings.total.as_secs_f64() * 1e3,
        "recovered"
    );
}
