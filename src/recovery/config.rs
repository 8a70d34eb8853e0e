//! [`RecoveryConfig`]: where recovery reads, what it may repair, and which
//! replay mode it uses (docs/RECOVERY.md).

use crate::error::{Error, Result};
use crate::storage::{default_storage, Storage};
use crate::wal::{check_max_record_size, WalRecoveryMode, DEFAULT_MAX_RECORD_SIZE};
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
///
/// Like [`WalOptions`](crate::WalOptions) and
/// [`CheckpointConfig`](crate::CheckpointConfig): built with `with_*` setters
/// from the defaults, checked by [`validate`](Self::validate) when it is used
/// (by every `RecoveryManager::recover*` and `resume*` call), and a value out
/// of range is refused with [`Error::InvalidConfig`] naming the setting,
/// never clamped. Every setting, its default and its range: docs/TUNING.md.
///
/// Three settings mirror the log's [`WalOptions`](crate::WalOptions), because
/// recovery opens and parses the log itself and must do so as its writer
/// does: [`wal_recovery_mode`](Self::wal_recovery_mode) (the log's
/// `recovery_mode`), [`max_record_size`](Self::max_record_size) (checked by
/// the same rule) and [`storage`](Self::storage) (which recovery uses for the
/// checkpoint directory too). Set them to what the log is opened with. The
/// log's other options (sync policy, segment size, write buffer) do not apply:
/// recovery appends nothing and syncs what it cuts.
///
/// ```
/// use highwater::RecoveryConfig;
/// let config = RecoveryConfig::new("/var/lib/job/checkpoints", "/var/lib/job/wal")
///     .with_collect_state_changes(true)
///     .with_max_wal_entries(10_000);
/// assert!(config.repair_wal);
/// assert!(config.validate().is_ok());
/// assert!(config.with_max_record_size(0).validate().is_err());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecoveryConfig {
    /// The checkpoint directory (as given to `CheckpointConfig::new`). A missing
    /// directory holds no checkpoints. Range: a non-empty path.
    pub checkpoint_dir: PathBuf,
    /// The write-ahead log directory. A missing directory is an empty log; with
    /// a checkpoint it is an absent log: the checkpoint is returned and (repair
    /// on) the log is started at its position (see `require_wal`). Range: a
    /// non-empty path.
    pub wal_path: PathBuf,
    /// Repair the log before replay (cut a torn tail, per `wal_recovery_mode`) and
    /// cut the uncommitted tail after it, durably. Takes the log's lock. Default:
    /// on. Off, recovery never writes. (`dry_run` overrides it.)
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
    /// Default: off (they are counted, not kept). With a
    /// [`recover_into`](super::RecoveryManager::recover_into) sink it does not
    /// apply: the sink gets the changes.
    pub collect_state_changes: bool,
    /// Read at most this many log entries per call (0 = no limit; entries read
    /// again to return a transaction that spans calls do not count); see
    /// docs/RECOVERY.md, "Bounded replay". Default: 0. Range: any; 0 means no
    /// limit.
    pub max_wal_entries: u64,
    /// What log damage is tolerated. Default: [`WalRecoveryMode::TolerateTornTail`].
    pub wal_recovery_mode: WalRecoveryMode,
    /// Commit boundaries, or a plain change log. Default:
    /// [`TransactionMode::Commits`].
    pub transaction_mode: TransactionMode,
    /// Restore the state as of this log position (point-in-time restore): use the
    /// newest checkpoint at or before it and replay only entries before it.
    /// Default: none (the whole log). Range: any position.
    pub target_position: Option<u64>,
    /// Load the chosen checkpoint's state into
    /// [`RecoveredState::state_snapshot`](super::RecoveredState::state_snapshot)
    /// (or `state_blob`). Off, only its metadata is returned and the caller opens
    /// the state itself (for example as a zero-copy view). Default: on.
    pub load_checkpoint_state: bool,
    /// A transaction's changes are held in memory up to this many bytes; a larger
    /// transaction is read from the log a second time at its Commit instead.
    /// Default: [`DEFAULT_TRANSACTION_BUFFER_BYTES`] (8 MiB). Range: any; 0
    /// holds nothing, so every transaction with changes is read twice. A
    /// threshold, not an allocation: memory grows to it only as a transaction
    /// does.
    pub transaction_buffer_bytes: usize,
    /// Fail with [`Error::WalBehindCheckpoint`](crate::Error::WalBehindCheckpoint)
    /// when a checkpoint was chosen and the log is absent or ends below its
    /// position, instead of returning the checkpoint and continuing the log at
    /// its position (docs/RECOVERY.md, "The log below a checkpoint"). Default:
    /// off.
    pub require_wal: bool,
    /// Largest log record accepted: the log's
    /// [`WalOptions::max_record_size`](crate::WalOptions::max_record_size) (a
    /// larger record is [`Error::RecordExceedsMaxSize`]). Default
    /// [`DEFAULT_MAX_RECORD_SIZE`] (16 MiB). Range: as for the log, 1 to
    /// [`MAX_RECORD_SIZE_LIMIT`](crate::wal::MAX_RECORD_SIZE_LIMIT).
    pub max_record_size: u32,
    /// The storage all I/O goes through, of the checkpoint directory and of the
    /// log. Default: the real file system.
    pub storage: Arc<dyn Storage>,
    /// The keys sealed files are read (and new log segments sealed) with:
    /// [`with_encryption`](Self::with_encryption). Default: none.
    #[cfg(feature = "encryption")]
    encryption: Option<Arc<dyn crate::crypto::KeyProvider>>,
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
            #[cfg(feature = "encryption")]
            encryption: None,
        }
    }

    /// Reads sealed files with `keys`: everything recovery reads of the log
    /// (its repair, its scans, the replay) opens sealed segments with them,
    /// and a log recovery opens for repair seals its new segments with the
    /// current key (docs/FORMAT.md §1, "Sealed segments"); sealed checkpoint
    /// parts are opened with them too (§8, "Sealed files"). Without it, a
    /// sealed segment recovery must replay, or a sealed checkpoint it must
    /// restore, is [`Error::KeyUnavailable`] (never a reason to fall back to
    /// an older checkpoint).
    #[cfg(feature = "encryption")]
    pub fn with_encryption(mut self, keys: Arc<dyn crate::crypto::KeyProvider>) -> Self {
        self.encryption = Some(keys);
        self
    }

    /// The keys given by [`with_encryption`](Self::with_encryption).
    #[cfg(feature = "encryption")]
    pub(crate) fn encryption(&self) -> Option<&Arc<dyn crate::crypto::KeyProvider>> {
        self.encryption.as_ref()
    }

    /// The keys as checkpoint stores use them.
    pub(crate) fn sealing(&self) -> crate::sealing::Sealing {
        #[cfg(feature = "encryption")]
        if let Some(keys) = self.encryption() {
            return crate::sealing::Sealing::with_keys(keys.clone());
        }
        crate::sealing::Sealing::default()
    }

    /// The keys as the log uses them.
    pub(crate) fn wal_keys(&self) -> crate::wal::seal::Keys {
        #[cfg(feature = "encryption")]
        return crate::wal::seal::Keys::new(self.encryption().cloned());
        #[cfg(not(feature = "encryption"))]
        crate::wal::seal::Keys::default()
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

    /// Checks every setting against its documented range. Every
    /// [`RecoveryManager`](super::RecoveryManager) `recover*` and `resume*`
    /// call does it first; call it yourself to check a config early.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first setting out of range.
    pub fn validate(&self) -> Result<()> {
        if self.checkpoint_dir.as_os_str().is_empty() {
            return Err(Error::invalid_config("checkpoint_dir", "an empty path"));
        }
        if self.wal_path.as_os_str().is_empty() {
            return Err(Error::invalid_config("wal_path", "an empty path"));
        }
        check_max_record_size(self.max_record_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::MAX_RECORD_SIZE_LIMIT;
    use crate::{RecoveredState, RecoveryManager};

    /// The setting an `InvalidConfig` names.
    fn rejected(config: &RecoveryConfig) -> &'static str {
        crate::error::rejected_setting(config.validate())
    }

    #[test]
    fn defaults_are_as_documented() {
        let c = RecoveryConfig::new("ckpt", "wal");
        assert_eq!(c.checkpoint_dir, Path::new("ckpt"));
        assert_eq!(c.wal_path, Path::new("wal"));
        assert!(c.repair_wal);
        assert!(!c.dry_run);
        assert!(!c.collect_state_changes);
        assert_eq!(c.max_wal_entries, 0);
        assert_eq!(c.wal_recovery_mode, WalRecoveryMode::TolerateTornTail);
        assert_eq!(c.transaction_mode, TransactionMode::Commits);
        assert_eq!(c.target_position, None);
        assert!(c.load_checkpoint_state);
        assert_eq!(c.transaction_buffer_bytes, 8 << 20);
        assert!(!c.require_wal);
        assert_eq!(c.max_record_size, 16 << 20);
        c.validate().unwrap();
    }

    #[test]
    fn each_out_of_range_value_is_rejected_naming_its_setting() {
        let c = || RecoveryConfig::new("ckpt", "wal");
        assert_eq!(rejected(&RecoveryConfig::new("", "wal")), "checkpoint_dir");
        assert_eq!(rejected(&RecoveryConfig::new("ckpt", "")), "wal_path");
        assert_eq!(rejected(&c().with_max_record_size(0)), "max_record_size");
        let above = c().with_max_record_size(MAX_RECORD_SIZE_LIMIT + 1);
        assert_eq!(rejected(&above), "max_record_size");
    }

    #[test]
    fn the_range_ends_are_accepted_and_kept_as_given() {
        let c = RecoveryConfig::new("ckpt", "wal")
            .with_max_wal_entries(u64::MAX)
            .with_transaction_buffer_bytes(0)
            .with_max_record_size(MAX_RECORD_SIZE_LIMIT)
            .with_target_position(u64::MAX);
        c.validate().unwrap();
        assert_eq!(c.max_wal_entries, u64::MAX);
        assert_eq!(c.transaction_buffer_bytes, 0);
        let c = c.with_max_record_size(1).with_max_wal_entries(1);
        c.validate().unwrap();
        assert_eq!(c.max_record_size, 1);
    }

    #[test]
    fn every_recovery_call_refuses_an_invalid_config_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let (ckpt, wal) = (dir.path().join("ckpt"), dir.path().join("wal"));
        let bad = RecoveryManager::new(RecoveryConfig::new(&ckpt, &wal).with_max_record_size(0));
        let is_rejected = |r: Result<RecoveredState>| {
            matches!(
                r,
                Err(Error::InvalidConfig {
                    setting: "max_record_size",
                    ..
                })
            )
        };
        assert!(is_rejected(bad.recover()));
        assert!(is_rejected(bad.recover_into(
            &mut crate::recovery::replay_sink::DiscardChanges
        )));
        let empty = RecoveryManager::new(RecoveryConfig::new(&ckpt, &wal))
            .recover()
            .unwrap();
        assert!(is_rejected(bad.resume(&empty)));
        assert!(!ckpt.exists());
        // The valid config recovered an empty job and created the log (repair on).
        assert!(!empty.has_state());
    }
}
