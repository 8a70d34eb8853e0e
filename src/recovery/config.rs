//! [`RecoveryConfig`]: where recovery reads, what it may repair, and which
//! replay mode it uses (docs/RECOVERY.md).

use crate::storage::{default_storage, Storage};
use crate::wal::{WalRecoveryMode, DEFAULT_MAX_RECORD_SIZE};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default for [`RecoveryConfig::transaction_buffer_bytes`]: 8 MiB.
pub const DEFAULT_TRANSACTION_BUFFER_BYTES: usize = 8 << 20;

/// How replay groups the log's entries into what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TransactionMode {
    /// A `Commit` closes a transaction; only committed changes are returned, and
    /// entries after the last Commit are an uncommitted tail (reported, and cut
    /// when repair is on). The default.
    #[default]
    Commits,
    /// The log is a plain change log: every Put and Delete is applied as it is
    /// read, Commits (if any) only update offsets and watermark, and nothing is
    /// ever uncommitted. Must be chosen explicitly.
    NoTransactions,
}

/// What [`RecoveryManager`](super::RecoveryManager) recovers from and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecoveryConfig {
    /// The checkpoint directory (as given to `CheckpointConfig::new`). A missing
    /// directory holds no checkpoints.
    pub checkpoint_dir: PathBuf,
    /// The write-ahead log directory. A missing directory is an empty log; with
    /// a checkpoint it is an absent log: the checkpoint is returned and (repair
    /// on) the log is started at its position (see `require_wal`).
    pub wal_path: PathBuf,
    /// Repair the log before replay (cut a torn tail, per `wal_recovery_mode`) and
    /// cut the uncommitted tail after it, durably. Takes the log's lock. Default:
    /// on. Off, recovery never writes.
    pub repair_wal: bool,
    /// Only read: no repair, no cut, no fsync, nothing created. Recovery reports
    /// what it would do instead: [`RecoveryReport::wal_repair`](super::RecoveryReport::wal_repair)
    /// is what the repair would cut (per `wal_recovery_mode`), and the
    /// uncommitted tail is counted and located but stays. Replay still reads and
    /// hands committed changes over, so the returned state is the one recovery
    /// would return. Overrides `repair_wal`. Default: off.
    pub dry_run: bool,
    /// Return the committed changes replayed in
    /// [`RecoveredState::state_changes`](super::RecoveredState::state_changes).
    /// Default: off (they are counted, not kept).
    pub collect_state_changes: bool,
    /// Read at most this many log entries per call (0 = no limit; entries read
    /// again to return a transaction that spans calls do not count); see
    /// docs/RECOVERY.md, "Bounded replay".
    pub max_wal_entries: u64,
    /// What log damage is tolerated. Default: [`WalRecoveryMode::TolerateTornTail`].
    pub wal_recovery_mode: WalRecoveryMode,
    /// Commit boundaries, or a plain change log.
    pub transaction_mode: TransactionMode,
    /// Restore the state as of this log position (point-in-time restore): use the
    /// newest checkpoint at or before it and replay only entries before it.
    pub target_position: Option<u64>,
    /// Load the chosen checkpoint's state into
    /// [`RecoveredState::state_snapshot`](super::RecoveredState::state_snapshot)
    /// (or `state_blob`). Off, only its metadata is returned and the caller opens
    /// the state itself (for example as a zero-copy view). Default: on.
    pub load_checkpoint_state: bool,
    /// A transaction's changes are held in memory up to this many bytes; a larger
    /// transaction is read from the log a second time at its Commit instead.
    pub transaction_buffer_bytes: usize,
    /// Fail with [`Error::WalBehindCheckpoint`](crate::Error::WalBehindCheckpoint)
    /// when a checkpoint was chosen and the log is absent or ends below its
    /// position, instead of returning the checkpoint and continuing the log at
    /// its position (docs/RECOVERY.md, "The log below a checkpoint"). Default:
    /// off.
    pub require_wal: bool,
    /// Largest log record accepted, as configured for the log.
    pub max_record_size: u32,
    /// The storage all I/O goes through.
    pub storage: Arc<dyn Storage>,
}

impl RecoveryConfig {
    /// Recovery of the checkpoints in `checkpoint_dir` and the log in `wal_path`,
    /// with the defaults: repair on, changes not collected, no entry limit,
    /// torn tails tolerated, commit boundaries honoured.
    pub fn new(checkpoint_dir: impl AsRef<Path>, wal_path: impl AsRef<Path>) -> Self {
        RecoveryConfig {
            checkpoint_dir: checkpoint_dir.as_ref().to_path_buf(),
            wal_path: wal_path.as_ref().to_path_buf(),
            repair_wal: true,
            dry_run: false,
            collect_state_changes: false,
            max_wal_entries: 0,
            wal_recovery_mode: WalRecoveryMode::default(),
            transaction_mode: TransactionMode::default(),
            target_position: None,
            load_checkpoint_state: true,
            transaction_buffer_bytes: DEFAULT_TRANSACTION_BUFFER_BYTES,
            require_wal: false,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            storage: default_storage(),
        }
    }

    /// Sets [`repair_wal`](Self::repair_wal).
    pub fn with_repair_wal(mut self, repair: bool) -> Self {
        self.repair_wal = repair;
        self
    }

    /// Sets [`dry_run`](Self::dry_run).
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Sets [`collect_state_changes`](Self::collect_state_changes).
    pub fn with_collect_state_changes(mut self, collect: bool) -> Self {
        self.collect_state_changes = collect;
        self
    }

    /// Sets [`max_wal_entries`](Self::max_wal_entries) (0 = no limit).
    pub fn with_max_wal_entries(mut self, max: u64) -> Self {
        self.max_wal_entries = max;
        self
    }

    /// Sets [`wal_recovery_mode`](Self::wal_recovery_mode).
    pub fn with_wal_recovery_mode(mut self, mode: WalRecoveryMode) -> Self {
        self.wal_recovery_mode = mode;
        self
    }

    /// Sets [`transaction_mode`](Self::transaction_mode).
    pub fn with_transaction_mode(mut self, mode: TransactionMode) -> Self {
        self.transaction_mode = mode;
        self
    }

    /// Sets [`target_position`](Self::target_position).
    pub fn with_target_position(mut self, position: u64) -> Self {
        self.target_position = Some(position);
        self
    }

    /// Sets [`load_checkpoint_state`](Self::load_checkpoint_state).
    pub fn with_load_checkpoint_state(mut self, load: bool) -> Self {
        self.load_checkpoint_state = load;
        self
    }

    /// Sets [`transaction_buffer_bytes`](Self::transaction_buffer_bytes).
    pub fn with_transaction_buffer_bytes(mut self, bytes: usize) -> Self {
        self.transaction_buffer_bytes = bytes;
        self
    }

    /// Sets [`require_wal`](Self::require_wal).
    pub fn with_require_wal(mut self, require: bool) -> Self {
        self.require_wal = require;
        self
    }

    /// Sets [`max_record_size`](Self::max_record_size).
    pub fn with_max_record_size(mut self, bytes: u32) -> Self {
        self.max_record_size = bytes;
        self
    }

    /// Sets [`storage`](Self::storage).
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }
}
