//! Configuration of a [`WriteAheadLog`](super::WriteAheadLog): sync policy,
//! segment size, maximum record size, recovery mode and storage.

use crate::error::{Error, Result};
use crate::storage::{default_storage, Storage};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Default size at which a new segment is started: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Smallest accepted [`WalOptions::segment_size`]: 4 KiB.
pub const MIN_SEGMENT_SIZE: u64 = 4096;
/// Default maximum payload size of one record: 16 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: u32 = 16 << 20;
/// Largest accepted [`WalOptions::max_record_size`] (`u32::MAX - 16`: a
/// record's payload and its header's length arithmetic stay within `u32`).
pub const MAX_RECORD_SIZE_LIMIT: u32 = u32::MAX - 16;
/// Default [`WalOptions::write_buffer_size`]: 256 KiB.
pub const DEFAULT_WRITE_BUFFER_SIZE: usize = 256 << 10;
/// Largest accepted [`WalOptions::write_buffer_size`]: 1 GiB (the buffer is
/// allocated up front when the log is opened).
pub const MAX_WRITE_BUFFER_SIZE: usize = 1 << 30;
/// Default [`WalOptions::sync_policy`]: [`SyncPolicy::Interval`] of 10 ms.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(10);

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
///
/// Like [`CheckpointConfig`](crate::CheckpointConfig) and
/// [`RecoveryConfig`](crate::RecoveryConfig): built with `with_*` setters from
/// the defaults, checked by [`validate`](Self::validate) when it is used (by
/// `open`), and a value out of range is refused with
/// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the setting,
/// never clamped. Every setting, its default and its range: docs/TUNING.md.
///
/// ```
/// use highwater::{SyncPolicy, WalOptions};
/// let options = WalOptions::new()
///     .with_sync_policy(SyncPolicy::EveryWrite)
///     .with_segment_size(8 << 20);
/// assert!(options.validate().is_ok());
/// assert!(WalOptions::new().with_segment_size(100).validate().is_err());
/// ```
#[derive(Clone)]
pub struct WalOptions {
    /// When records become durable. Default: [`SyncPolicy::Interval`] of
    /// [`DEFAULT_SYNC_INTERVAL`] (10 ms). Range: any policy; an `Interval` must
    /// be above zero (for "every write" use [`SyncPolicy::EveryWrite`]).
    pub sync_policy: SyncPolicy,
    /// A new segment is started once the active one holds this many bytes (a
    /// record larger than a segment gets a segment of its own). Default
    /// [`DEFAULT_SEGMENT_SIZE`] (64 MiB). Range: at least
    /// [`MIN_SEGMENT_SIZE`] (4 KiB).
    pub segment_size: u64,
    /// Largest payload of one record, enforced on write and on read (a reader
    /// needs a limit at least as large as the writer's). Default
    /// [`DEFAULT_MAX_RECORD_SIZE`] (16 MiB). Range: 1 to
    /// [`MAX_RECORD_SIZE_LIMIT`].
    pub max_record_size: u32,
    /// What damage opening and repairing tolerate. Default:
    /// [`WalRecoveryMode::TolerateTornTail`]. Range: any mode.
    pub recovery_mode: WalRecoveryMode,
    /// Appended bytes are buffered in memory up to this size before they are
    /// written to the segment file (a sync writes them out regardless).
    /// Default [`DEFAULT_WRITE_BUFFER_SIZE`] (256 KiB). Range: 0 (every append
    /// is written to the file at once) to [`MAX_WRITE_BUFFER_SIZE`] (1 GiB).
    pub write_buffer_size: usize,
    /// The storage all file I/O goes through. Default: the real file system.
    pub storage: Arc<dyn Storage>,
    /// The keys every new segment is sealed with (docs/FORMAT.md §1,
    /// "Sealed segments"), and sealed segments are read with. Default:
    /// none (plaintext segments; sealed ones cannot be read). With keys,
    /// `segment_size` is at most [`MAX_SEALED_SEGMENT_SIZE`] and
    /// `max_record_size` at least 16 (a sealed record's tag).
    #[cfg(feature = "encryption")]
    pub encryption: Option<Arc<dyn crate::crypto::KeyProvider>>,
}

/// Largest [`WalOptions::segment_size`] of an encrypted log (4 GiB): a
/// segment's records are sealed with their file offsets as nonce indices,
/// which stay below 2^32 (docs/FORMAT.md §8).
#[cfg(feature = "encryption")]
pub const MAX_SEALED_SEGMENT_SIZE: u64 = 1 << 32;

impl fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalOptions")
            .field("sync_policy", &self.sync_policy)
            .field("segment_size", &self.segment_size)
            .field("max_record_size", &self.max_record_size)
            .field("recovery_mode", &self.recovery_mode)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("storage", &self.storage)
            .field("keys", &self.keys())
            .finish()
    }
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            sync_policy: SyncPolicy::Interval(DEFAULT_SYNC_INTERVAL),
            segment_size: DEFAULT_SEGMENT_SIZE,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            recovery_mode: WalRecoveryMode::default(),
            write_buffer_size: DEFAULT_WRITE_BUFFER_SIZE,
            storage: default_storage(),
            #[cfg(feature = "encryption")]
            encryption: None,
        }
    }
}

impl WalOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`sync_policy`](Self::sync_policy).
    pub fn with_sync_policy(mut self, policy: SyncPolicy) -> Self {
        self.sync_policy = policy;
        self
    }

    /// Sets [`segment_size`](Self::segment_size) (at least 4 KiB).
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets [`max_record_size`](Self::max_record_size).
    pub fn with_max_record_size(mut self, bytes: u32) -> Self {
        self.max_record_size = bytes;
        self
    }

    /// Sets [`recovery_mode`](Self::recovery_mode).
    pub fn with_recovery_mode(mut self, mode: WalRecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Sets [`write_buffer_size`](Self::write_buffer_size).
    pub fn with_write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Sets [`storage`](Self::storage) (for tests: a fault-injecting or
    /// crash-simulating one).
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Seals every new segment with `keys`' current key, and reads sealed
    /// segments with the keys it holds (docs/FORMAT.md §1, "Sealed
    /// segments"). Segments written without encryption stay readable; a log
    /// opened with it never appends to a segment it did not create, so its
    /// first append starts a new segment.
    #[cfg(feature = "encryption")]
    pub fn with_encryption(mut self, keys: Arc<dyn crate::crypto::KeyProvider>) -> Self {
        self.encryption = Some(keys);
        self
    }

    /// The keys as the log uses them.
    pub(crate) fn keys(&self) -> super::seal::Keys {
        #[cfg(feature = "encryption")]
        return super::seal::Keys::new(self.encryption.clone());
        #[cfg(not(feature = "encryption"))]
        super::seal::Keys::default()
    }

    /// Checks every setting against its documented range.
    /// [`WriteAheadLog::open`](super::WriteAheadLog::open) calls it; call it
    /// yourself to check options early.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the first
    /// setting out of range.
    pub fn validate(&self) -> Result<()> {
        if let SyncPolicy::Interval(d) = self.sync_policy {
            if d.is_zero() {
                return Err(Error::invalid_config(
                    "sync_policy",
                    "an Interval of zero; for a sync at every write use SyncPolicy::EveryWrite",
                ));
            }
        }
        if self.segment_size < MIN_SEGMENT_SIZE {
            return Err(Error::invalid_config(
                "segment_size",
                format!(
                    "{} bytes is below the minimum of {MIN_SEGMENT_SIZE}",
                    self.segment_size
                ),
            ));
        }
        #[cfg(feature = "encryption")]
        if self.encryption.is_some() && self.max_record_size < super::seal::TAG {
            return Err(Error::invalid_config(
                "max_record_size",
                format!(
                    "{} bytes cannot hold a sealed record's 16-byte tag (an encrypted log)",
                    self.max_record_size
                ),
            ));
        }
        #[cfg(feature = "encryption")]
        if self.encryption.is_some() && self.segment_size > MAX_SEALED_SEGMENT_SIZE {
            return Err(Error::invalid_config(
                "segment_size",
                format!(
                    "{} bytes is above the maximum of {MAX_SEALED_SEGMENT_SIZE} for an encrypted log",
                    self.segment_size
                ),
            ));
        }
        check_max_record_size(self.max_record_size)?;
        if self.write_buffer_size > MAX_WRITE_BUFFER_SIZE {
            return Err(Error::invalid_config(
                "write_buffer_size",
                format!(
                    "{} bytes is above the maximum of {MAX_WRITE_BUFFER_SIZE}",
                    self.write_buffer_size
                ),
            ));
        }
        Ok(())
    }
}

/// The rule for a maximum record size, shared by the log's options and the
/// recovery config that reads the log with the same limit.
pub(crate) fn check_max_record_size(bytes: u32) -> Result<()> {
    if bytes == 0 || bytes > MAX_RECORD_SIZE_LIMIT {
        return Err(Error::invalid_config(
            "max_record_size",
            format!("{bytes} bytes is outside 1..={MAX_RECORD_SIZE_LIMIT}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WriteAheadLog;

    /// The setting an `InvalidConfig` names.
    fn rejected(options: &WalOptions) -> &'static str {
        crate::error::rejected_setting(options.validate())
    }

    #[test]
    fn defaults_are_as_documented() {
        let o = WalOptions::new();
        assert_eq!(
            o.sync_policy,
            SyncPolicy::Interval(Duration::from_millis(10))
        );
        assert_eq!(o.segment_size, 64 << 20);
        assert_eq!(o.max_record_size, 16 << 20);
        assert_eq!(o.recovery_mode, WalRecoveryMode::TolerateTornTail);
        assert_eq!(o.write_buffer_size, 256 << 10);
        o.validate().unwrap();
    }

    #[test]
    fn each_out_of_range_value_is_rejected_naming_its_setting() {
        let o = WalOptions::new;
        let zero = SyncPolicy::Interval(Duration::ZERO);
        assert_eq!(rejected(&o().with_sync_policy(zero)), "sync_policy");
        assert_eq!(rejected(&o().with_segment_size(4095)), "segment_size");
        assert_eq!(rejected(&o().with_segment_size(0)), "segment_size");
        assert_eq!(rejected(&o().with_max_record_size(0)), "max_record_size");
        let above = MAX_RECORD_SIZE_LIMIT + 1;
        assert_eq!(
            rejected(&o().with_max_record_size(above)),
            "max_record_size"
        );
        let big = MAX_WRITE_BUFFER_SIZE + 1;
        assert_eq!(
            rejected(&o().with_write_buffer_size(big)),
            "write_buffer_size"
        );
    }

    #[test]
    fn the_range_ends_are_accepted_and_kept_as_given() {
        let o = WalOptions::new()
            .with_sync_policy(SyncPolicy::Interval(Duration::from_nanos(1)))
            .with_segment_size(MIN_SEGMENT_SIZE)
            .with_max_record_size(MAX_RECORD_SIZE_LIMIT)
            .with_write_buffer_size(0);
        o.validate().unwrap();
        assert_eq!(o.segment_size, MIN_SEGMENT_SIZE);
        assert_eq!(o.write_buffer_size, 0);
        let o = o
            .with_max_record_size(1)
            .with_write_buffer_size(MAX_WRITE_BUFFER_SIZE);
        o.validate().unwrap();
        WalOptions::new()
            .with_sync_policy(SyncPolicy::EveryWrite)
            .validate()
            .unwrap();
        WalOptions::new()
            .with_sync_policy(SyncPolicy::Manual)
            .validate()
            .unwrap();
    }

    #[test]
    fn open_refuses_invalid_options_before_touching_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("wal");
        let opened = WriteAheadLog::open(&wal, WalOptions::new().with_segment_size(1));
        assert!(
            matches!(
                opened,
                Err(Error::InvalidConfig {
                    setting: "segment_size",
                    ..
                })
            ),
            "{opened:?}"
        );
        assert!(!wal.exists());
        // `new`'s zero interval has a defined meaning: every write is synced.
        let log = WriteAheadLog::new(&wal, Duration::ZERO).unwrap();
        assert!(log
            .shared
            .sync_on_write
            .load(std::sync::atomic::Ordering::SeqCst));
    }
}
