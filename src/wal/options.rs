//! Configuration of a [`WriteAheadLog`](super::WriteAheadLog): sync policy,
//! segment size, maximum record size, recovery mode and storage.

use crate::storage::{default_storage, Storage};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Default size at which a new segment is started: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Default maximum payload size of one record: 16 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: u32 = 16 << 20;

/// When appended records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// Every `append` returns only once its record is durable. Concurrent appenders
    /// share fsyncs (group commit).
    EveryWrite,
    /// A background flusher makes appended records durable at most this long after
    /// they were appended, whether or not more appends come. `append` returns once
    /// the record is buffered; [`sync`](super::WriteAheadLog::sync) forces it.
    Interval(Duration),
    /// Records become durable only when [`sync`](super::WriteAheadLog::sync) is
    /// called (or a segment fills up, or the log is closed).
    Manual,
}

/// What damage the log tolerates when it is opened and repaired
/// (docs/FORMAT.md, "Recovery modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WalRecoveryMode {
    /// An incomplete or garbled tail of the newest segment, with no valid record
    /// after it, is the trace of a crash: it is cut by `repair()`. Any other damage
    /// is an error naming segment and offset. The default.
    #[default]
    TolerateTornTail,
    /// Any damage, including a torn tail, is an error. Nothing is ever cut.
    AbsoluteConsistency,
    /// The log is cut at the first damage found anywhere, keeping the consistent
    /// prefix before it and removing everything after (later segments included).
    PointInTime,
}

/// Options for [`WriteAheadLog::open`](super::WriteAheadLog::open).
#[derive(Clone)]
pub struct WalOptions {
    /// When records become durable. Default: every 10 ms.
    pub sync_policy: SyncPolicy,
    /// A new segment is started once the active one holds this many bytes.
    /// Default [`DEFAULT_SEGMENT_SIZE`].
    pub segment_size: u64,
    /// Largest payload of one record, enforced on write and on read. Default
    /// [`DEFAULT_MAX_RECORD_SIZE`].
    pub max_record_size: u32,
    /// What damage opening and repairing tolerate.
    pub recovery_mode: WalRecoveryMode,
    /// Appended bytes are buffered in memory up to this size before they are
    /// written to the segment file (a sync writes them out regardless).
    /// Default 256 KiB.
    pub write_buffer_size: usize,
    /// The storage all file I/O goes through. Default: the real file system.
    pub storage: Arc<dyn Storage>,
}

impl fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalOptions")
            .field("sync_policy", &self.sync_policy)
            .field("segment_size", &self.segment_size)
            .field("max_record_size", &self.max_record_size)
            .field("recovery_mode", &self.recovery_mode)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("storage", &self.storage)
            .finish()
    }
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            sync_policy: SyncPolicy::Interval(Duration::from_millis(10)),
            segment_size: DEFAULT_SEGMENT_SIZE,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            recovery_mode: WalRecoveryMode::default(),
            write_buffer_size: 256 << 10,
            storage: default_storage(),
        }
    }
}

impl WalOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the sync policy.
    pub fn with_sync_policy(mut self, policy: SyncPolicy) -> Self {
        self.sync_policy = policy;
        self
    }

    /// Sets the segment size (at least 4 KiB).
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets the maximum record payload size.
    pub fn with_max_record_size(mut self, bytes: u32) -> Self {
        self.max_record_size = bytes;
        self
    }

    /// Sets the recovery mode.
    pub fn with_recovery_mode(mut self, mode: WalRecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Sets the in-memory write buffer size.
    pub fn with_write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Sets the storage (for tests: a fault-injecting or crash-simulating one).
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Checks that the options can be used.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        if self.segment_size < 4096 {
            return Err(crate::Error::invalid_config(
                "segment_size",
                format!("{} is below the minimum of 4096 bytes", self.segment_size),
            ));
        }
        if self.max_record_size == 0 || self.max_record_size > u32::MAX - 16 {
            return Err(crate::Error::invalid_config(
                "max_record_size",
                format!("{} is out of range", self.max_record_size),
            ));
        }
        if let SyncPolicy::Interval(d) = self.sync_policy {
            if d.is_zero() {
                return Err(crate::Error::invalid_config(
                    "sync_policy",
                    "a sync interval of zero: use SyncPolicy::EveryWrite",
                ));
            }
        }
        Ok(())
    }
}
