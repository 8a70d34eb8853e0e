//! [`RecoveryManager`]: the entry points of recovery. Each runs the phases of
//! `run` (choose the checkpoint, repair, check coverage, replay, cut the
//! uncommitted tail) with the I/O at the edges and the decisions in `replay`
//! and `choose`.

use super::config::RecoveryConfig;
use super::recovered::RecoveredState;
use super::replay_sink::{CollectChanges, DiscardChanges, ReplaySink};
use crate::error::Result;
#[cfg(doc)]
use crate::Error;
use std::path::Path;

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

    /// Recovery with the defaults of [`RecoveryConfig::new`], the committed
    /// changes collected: the whole result in memory, so that
    /// [`RecoveredState::current_state`] is the recovered key/value state.
    /// The same call as [`recover_with_changes`](Self::recover_with_changes);
    /// for a log too large to hold its changes in memory, stream them with
    /// [`recover_into`](Self::recover_into).
    ///
    /// # Errors
    /// As [`recover`](Self::recover).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> highwater::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let (checkpoints, wal) = (dir.path().join("ckpt"), dir.path().join("wal"));
    /// use highwater::RecoveryManager;
    /// let recovered = RecoveryManager::recover_simple(&checkpoints, &wal)?;
    /// let state = recovered.current_state()?; // checkpoint + committed changes
    /// assert!(state.is_empty()); // nothing was ever written here
    /// # Ok(()) }
    /// ```
    pub fn recover_simple(
        checkpoint_dir: impl AsRef<Path>,
        wal_path: impl AsRef<Path>,
    ) -> Result<RecoveredState> {
        Self::recover_with_changes(checkpoint_dir, wal_path)
    }

    /// Recovery with the defaults, collecting the committed changes in
    /// [`RecoveredState::state_changes`] (see
    /// [`recover_simple`](Self::recover_simple)).
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
        self.collecting(|manager, sink| super::run::run(&manager.config, None, sink))
    }

    /// Like [`recover`](Self::recover), handing every committed change to `sink`
    /// as it is read instead of collecting it (streaming replay, bounded memory).
    ///
    /// # Errors
    /// As [`recover`](Self::recover), plus [`Error::ReplaySink`].
    pub fn recover_into(&self, sink: &mut dyn ReplaySink) -> Result<RecoveredState> {
        super::run::run(&self.config, None, sink)
    }

    /// Continues a bounded or point-in-time replay from `previous.wal_position`,
    /// starting from its offsets, watermark, epoch and checkpoint (the checkpoint
    /// is not loaded again). Joined, the pieces equal one unbounded replay.
    ///
    /// # Errors
    /// As [`recover`](Self::recover).
    pub fn resume(&self, previous: &RecoveredState) -> Result<RecoveredState> {
        self.collecting(|manager, sink| super::run::run(&manager.config, Some(previous), sink))
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
        super::run::run(&self.config, Some(previous), sink)
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
}
