//! One recovery call, phase by phase (docs/RECOVERY.md, "What recovery does"):
//!
//! 1. [`choose`]: the newest restorable checkpoint (it only reads), or the
//!    previous piece of a bounded replay;
//! 2. [`prepare_log`]: release the log below the checkpoint, then repair its
//!    tail — or, read-only, make what is there durable; a dry run plans the
//!    cut instead of making it;
//! 3. [`replay_log`]: check coverage and replay the committed entries;
//! 4. [`cut_uncommitted`]: cut the uncommitted tail and close the log;
//! 5. [`finish`]: the report and the [`RecoveredState`].
//!
//! Each phase is timed into [`PhaseTimings`](super::PhaseTimings). How the log
//! may be touched is decided once, as a [`LogAccess`], from the configuration.

use super::choose::{choose_checkpoint, Base};
use super::config::{RecoveryConfig, TransactionMode};
use super::log_access::LogAccess;
use super::recovered::RecoveredState;
use super::release::{release_below_checkpoint, AfterRelease};
use super::replay::{replay, ReplayEnd, ReplayOutcome, ReplayRequest};
use super::replay_sink::ReplaySink;
use super::report::{RecoveryReport, TornTail};
use crate::error::{Error, IoContext, Result};
use crate::wal::{
    planned_repair, poison_mark_position, sync_newest_segment, SyncPolicy, WalOptions,
    WriteAheadLog,
};
use std::collections::HashMap;
use std::time::Instant;

/// Runs one recovery call: from the newest restorable checkpoint, or from
/// `previous` (the piece a bounded replay returned), handing committed changes
/// to `sink`.
pub(super) fn run(
    cfg: &RecoveryConfig,
    previous: Option<&RecoveredState>,
    sink: &mut dyn ReplaySink,
) -> Result<RecoveredState> {
    cfg.validate()?;
    let started = Instant::now();
    let mut report = RecoveryReport::default();

    let phase = Instant::now();
    let base = choose(cfg, previous, &mut report)?;
    report.timings.checkpoint = phase.elapsed();

    let phase = Instant::now();
    let log = prepare_log(cfg, previous.is_some(), &base, &mut report)?;
    report.timings.repair = phase.elapsed();

    let phase = Instant::now();
    let replayed = replay_log(cfg, &base, &log, sink)?;
    report.timings.replay = phase.elapsed();

    let phase = Instant::now();
    cut_uncommitted(cfg, log.wal, &replayed.outcome, &mut report)?;
    report.timings.tail_cut = phase.elapsed();

    report.timings.total = started.elapsed();
    let from = base.wal_position;
    let state = finish(base, replayed, report);
    log_outcome(cfg, &state, from);
    Ok(state)
}

/// Phase 1: where replay starts. The checkpoint is chosen before the log is
/// touched: the repair must know which part of the log it still needs.
fn choose(
    cfg: &RecoveryConfig,
    previous: Option<&RecoveredState>,
    report: &mut RecoveryReport,
) -> Result<Base> {
    match previous {
        Some(p) => Ok(Base::continuing(p)),
        None => {
            refuse_a_stale_cache(cfg)?;
            choose_checkpoint(cfg, report)
        }
    }
}

/// A checkpoint directory that is the cache of a remote location is current
/// only while the manager that brought it up to date holds it open: without
/// one, it may hold checkpoints the location no longer commits or lack the
/// ones it does (docs/OBJECT_STORAGE.md, "Using it").
///
/// # Errors
/// `InvalidArgument` when no manager holds the cache; `Io` when its lock
/// cannot be tried.
fn refuse_a_stale_cache(cfg: &RecoveryConfig) -> Result<()> {
    let storage = cfg.storage.as_ref();
    let marker = cfg
        .checkpoint_dir
        .join(crate::checkpoint::remote::cache::CACHE_MARKER);
    if !storage.exists(&marker).ctx("stat", &marker)? {
        return Ok(());
    }
    let lock = cfg.checkpoint_dir.join(crate::inspect::LOCK_FILE);
    match crate::storage::lock_exclusive(storage, &lock) {
        // A manager holds it: it claimed and filled the cache.
        Err(crate::Error::Locked { .. }) => Ok(()),
        Err(e) => Err(e),
        Ok(_released) => Err(crate::Error::invalid_argument(
            "recover",
            format!(
                "{} is the cache of a remote checkpoint location and no manager holds it: open \
                 the IncrementalCheckpointManager with its remote location first (it claims a \
                 generation and brings the cache up to date), then recover while it is open",
                cfg.checkpoint_dir.display()
            ),
        )),
    }
}

/// The log as replay will read it.
struct PreparedLog {
    /// Whether there is log to replay at all (not when the log is absent, or
    /// ends below the checkpoint).
    read: bool,
    /// The log, opened for writing (repair on): the uncommitted tail is cut
    /// through it.
    wal: Option<WriteAheadLog>,
    /// Where replay must stop: a dry run's planned cut, or a poisoned
    /// writer's mark (what follows it was never acknowledged).
    end: Option<u64>,
}

/// Phase 2: release the log below the checkpoint (absent, short, or damaged
/// there: none of it is needed), then repair its tail as [`LogAccess`] says.
fn prepare_log(
    cfg: &RecoveryConfig,
    resuming: bool,
    base: &Base,
    report: &mut RecoveryReport,
) -> Result<PreparedLog> {
    let storage = cfg.storage.as_ref();
    let after = if resuming {
        AfterRelease::Replay
    } else {
        release_below_checkpoint(cfg, base, report, |e| not_covered(e, base, cfg))?
    };
    let mut log = PreparedLog {
        read: after == AfterRelease::Replay,
        wal: None,
        end: None,
    };
    if !log.read {
        return Ok(log);
    }
    match LogAccess::of(cfg) {
        LogAccess::DryRun => {
            // Read the log as if its planned cut were made.
            let (planned, damage) =
                planned_repair(storage, &cfg.wal_path, &wal_options(cfg), base.wal_position)?;
            if let Some(damage) = damage {
                if planned.position < base.wal_position {
                    return Err(cut_below_checkpoint(cfg, base, planned.position, damage));
                }
                log.end = Some(planned.position);
                report.wal_repair = Some(planned);
            }
        }
        LogAccess::Repair => {
            let wal = WriteAheadLog::open(&cfg.wal_path, wal_options(cfg))?;
            if let Some((at, damage)) = wal.pending_cut() {
                if at < base.wal_position {
                    return Err(cut_below_checkpoint(cfg, base, at, damage));
                }
            }
            let repaired = wal.repair()?;
            report.wal_repair = repaired.cut_anything().then_some(repaired);
            log.wal = Some(wal);
        }
        LogAccess::ReadOnly => sync_newest_segment(storage, &cfg.wal_path)?,
    }
    // A log that was not opened still has a poisoned writer's mark: what
    // follows it was never acknowledged, the next open cuts it, and it is not
    // replayed.
    if log.wal.is_none() {
        if let Some(mark) = poison_mark_position(storage, &cfg.wal_path)? {
            log.end = Some(log.end.map_or(mark, |end| end.min(mark)));
        }
    }
    Ok(log)
}

/// What replay returned, with the offsets and watermarks it moved.
struct Replayed {
    outcome: ReplayOutcome,
    offsets: HashMap<String, u64>,
    watermark: Option<i64>,
    watermarks: HashMap<String, i64>,
}

/// Phase 3: check that the log covers the start, and replay.
fn replay_log(
    cfg: &RecoveryConfig,
    base: &Base,
    log: &PreparedLog,
    sink: &mut dyn ReplaySink,
) -> Result<Replayed> {
    let mut replayed = Replayed {
        outcome: ReplayOutcome {
            position: base.wal_position,
            resume: base.wal_position,
            ..ReplayOutcome::nothing()
        },
        offsets: base.offsets.clone(),
        watermark: base.watermark,
        watermarks: base.watermarks.clone(),
    };
    if !log.read {
        return Ok(replayed);
    }
    let request = ReplayRequest {
        storage: &cfg.storage,
        dir: &cfg.wal_path,
        max_record_size: cfg.max_record_size,
        keys: cfg.wal_keys(),
        from: base.wal_position,
        resume: base.resume_position,
        open_entries: base.open_entries,
        max_entries: cfg.max_wal_entries,
        target: cfg.target_position,
        log_end: log.end,
        transactions: cfg.transaction_mode,
        mode: cfg.wal_recovery_mode,
        buffer_bytes: cfg.transaction_buffer_bytes,
    };
    replayed.outcome = replay(
        &request,
        sink,
        &mut replayed.offsets,
        &mut replayed.watermark,
        &mut replayed.watermarks,
    )
    .map_err(|e| not_covered(e, base, cfg))?;
    Ok(replayed)
}

/// Phase 4: cut the uncommitted tail (and, PointInTime, a record that
/// verified but does not decode: later Commits must land before neither),
/// then close the log with a durable sync marker.
fn cut_uncommitted(
    cfg: &RecoveryConfig,
    wal: Option<WriteAheadLog>,
    outcome: &ReplayOutcome,
    report: &mut RecoveryReport,
) -> Result<()> {
    let damaged = matches!(outcome.end, ReplayEnd::Damage { .. });
    if (outcome.pending_entries > 0 || damaged) && outcome.end.reached_end() {
        report.uncommitted_entries = outcome.pending_entries;
        report.uncommitted_position = Some(outcome.position);
        if let (Some(wal), None) = (&wal, cfg.target_position) {
            report.uncommitted_bytes_cut = wal.cut_from(outcome.position)?;
            tracing::warn!(wal = %cfg.wal_path.display(), position = outcome.position, entries = outcome.pending_entries, bytes_cut = report.uncommitted_bytes_cut, "cut the uncommitted tail of the write-ahead log");
        }
    }
    if let Some(wal) = wal {
        wal.close()?;
    }
    Ok(())
}

/// Phase 5: the report's replay fields and the state returned.
fn finish(base: Base, replayed: Replayed, mut report: RecoveryReport) -> RecoveredState {
    let Replayed {
        outcome,
        offsets,
        watermark,
        mut watermarks,
    } = replayed;
    match &outcome.end {
        ReplayEnd::TornTail { damage } if report.wal_repair.is_none() => {
            report.torn_tail = Some(TornTail::new(damage.clone()));
        }
        ReplayEnd::Damage { damage } => report.stopped_at_damage = Some(damage.clone()),
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
    let replayed_source_watermarks = watermarks.clone();
    super::watermarks::settle(&mut watermarks, &offsets, watermark);
    RecoveredState {
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
    }
}

/// How recovery opens the log for repair.
fn wal_options(cfg: &RecoveryConfig) -> WalOptions {
    let options = WalOptions::new()
        .with_sync_policy(SyncPolicy::Manual)
        .with_recovery_mode(cfg.wal_recovery_mode)
        .with_max_record_size(cfg.max_record_size)
        .with_storage(cfg.storage.clone());
    #[cfg(feature = "encryption")]
    if let Some(keys) = cfg.encryption() {
        return options.with_encryption(keys.clone());
    }
    options
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
