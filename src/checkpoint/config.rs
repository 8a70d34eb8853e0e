//! [`CheckpointConfig`]: where checkpoints live, how many are kept, and when a
//! delta chain is closed by a new full checkpoint.

use super::remote::RemoteConfig;
use crate::error::{Error, Result};
use crate::storage::{default_storage, Storage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default [`CheckpointConfig::max_retained`]: 3.
pub const DEFAULT_MAX_RETAINED: usize = 3;
/// Default [`CheckpointConfig::max_delta_chain`]: 8.
pub const DEFAULT_MAX_DELTA_CHAIN: u32 = 8;
/// Default [`CheckpointConfig::max_delta_ratio`]: 0.5.
pub const DEFAULT_MAX_DELTA_RATIO: f64 = 0.5;

/// Configuration of an [`IncrementalCheckpointManager`](super::IncrementalCheckpointManager).
///
/// Like [`WalOptions`](crate::WalOptions) and
/// [`RecoveryConfig`](crate::RecoveryConfig): built with `with_*` setters from
/// the defaults, checked by [`validate`](Self::validate) when it is used (by
/// `IncrementalCheckpointManager::new`), and a value out of range is refused
/// with [`Error::InvalidConfig`] naming the setting, never clamped. Every
/// setting, its default and its range: docs/TUNING.md.
///
/// | setting | default | range |
/// |---|---|---|
/// | `dir` | (given to `new`) | a non-empty path |
/// | `max_retained` | 3 | 1 and up |
/// | `max_delta_chain` | 8 | 0 (never a delta) and up |
/// | `max_delta_ratio` | 0.5 | finite, 0.0 or more (`f64::MAX` for no practical size limit) |
/// | `storage` | the file system | any |
/// | `remote` | none | a [`RemoteConfig`] (its own settings: see there) |
///
/// ```
/// use highwater::CheckpointConfig;
/// let config = CheckpointConfig::new("/var/lib/job/checkpoints")
///     .with_max_retained(5)
///     .with_max_delta_chain(10)
///     .with_max_delta_ratio(0.5);
/// assert_eq!(config.max_retained(), 5);
/// assert!(config.validate().is_ok());
/// assert!(config.with_max_retained(0).validate().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    dir: PathBuf,
    max_retained: usize,
    max_delta_chain: u32,
    max_delta_ratio: f64,
    storage: Arc<dyn Storage>,
    remote: Option<RemoteConfig>,
    sealing: crate::sealing::Sealing,
}

impl CheckpointConfig {
    /// Checkpoints in `dir` (created if missing), keeping the newest 3 restorable
    /// checkpoints, with delta chains of at most 8 deltas whose files add up to at
    /// most half of their base's size.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        CheckpointConfig {
            dir: dir.as_ref().to_path_buf(),
            max_retained: DEFAULT_MAX_RETAINED,
            max_delta_chain: DEFAULT_MAX_DELTA_CHAIN,
            max_delta_ratio: DEFAULT_MAX_DELTA_RATIO,
            storage: default_storage(),
            remote: None,
            sealing: crate::sealing::Sealing::default(),
        }
    }

    /// Keep the newest `n` restorable checkpoints, plus every checkpoint a kept
    /// delta depends on. Default 3; range: at least 1 (retention never deletes
    /// the newest restorable checkpoint).
    pub fn with_max_retained(mut self, n: usize) -> Self {
        self.max_retained = n;
        self
    }

    /// Write a full checkpoint instead of a delta once the chain from the last full
    /// checkpoint would hold more than `n` deltas. Default 8; range: any, 0
    /// meaning never write deltas.
    pub fn with_max_delta_chain(mut self, n: u32) -> Self {
        self.max_delta_chain = n;
        self
    }

    /// Write a full checkpoint instead of a delta once the chain's delta files
    /// would add up to more than `ratio` times the size of its base (bases under
    /// [`RATIO_FLOOR_BYTES`](super::RATIO_FLOOR_BYTES), 1 MiB, count as 1 MiB).
    /// Loading a chain reads the base plus every delta, so this bounds load
    /// cost to `(1 + ratio)` times a full load. Default 0.5; range: finite,
    /// from 0.0 (only deltas that add no bytes, such as offsets alone) up
    /// (`f64::MAX`: no practical size limit, only
    /// [`max_delta_chain`](Self::with_max_delta_chain)). NaN, infinities and
    /// negative values are refused (an infinity once meant 0.0; refusing it
    /// keeps an old configuration from silently changing meaning).
    pub fn with_max_delta_ratio(mut self, ratio: f64) -> Self {
        self.max_delta_ratio = ratio;
        self
    }

    /// Do all I/O through `storage` (tests use fault-injecting or crash-simulating
    /// storages). Default: the real file system.
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Publish every checkpoint to `remote` as well (docs/OBJECT_STORAGE.md):
    /// a checkpoint is acknowledged once its parts are uploaded and its commit
    /// record created, and the directory becomes the staging area and the
    /// cache. Opening the manager then claims a writer generation, which
    /// fences every older writer of the location, and fills the cache with
    /// the newest committed checkpoint. Default: none (the directory alone).
    pub fn with_remote(mut self, remote: RemoteConfig) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Seal every part file written from now on with `keys`' current key,
    /// and open sealed part files with `keys` (docs/FORMAT.md §8, the
    /// `encryption` feature). Checkpoints written before stay readable:
    /// plaintext ones as they are, sealed ones while `keys` has their key.
    /// Default: no encryption.
    #[cfg(feature = "encryption")]
    pub fn with_encryption(mut self, keys: Arc<dyn crate::crypto::KeyProvider>) -> Self {
        self.sealing = crate::sealing::Sealing::with_keys(keys);
        self
    }

    /// How part files are sealed.
    pub(crate) fn sealing(&self) -> &crate::sealing::Sealing {
        &self.sealing
    }

    /// The remote home of the checkpoints, if any.
    pub fn remote(&self) -> Option<&RemoteConfig> {
        self.remote.as_ref()
    }

    /// Checks every setting against its documented range.
    /// [`IncrementalCheckpointManager::new`](super::IncrementalCheckpointManager::new)
    /// calls it; call it yourself to check a config early.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first setting out of range.
    pub fn validate(&self) -> Result<()> {
        if self.dir.as_os_str().is_empty() {
            return Err(Error::invalid_config("dir", "an empty path"));
        }
        if self.max_retained == 0 {
            return Err(Error::invalid_config(
                "max_retained",
                "0; at least one restorable checkpoint must be kept",
            ));
        }
        if !self.max_delta_ratio.is_finite() || self.max_delta_ratio < 0.0 {
            return Err(Error::invalid_config(
                "max_delta_ratio",
                format!(
                    "{} is not a finite ratio of 0.0 or more (f64::MAX for no practical size limit)",
                    self.max_delta_ratio
                ),
            ));
        }
        if let Some(remote) = &self.remote {
            remote.validate()?;
        }
        Ok(())
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many restorable checkpoints retention keeps.
    pub fn max_retained(&self) -> usize {
        self.max_retained
    }

    /// The longest delta chain.
    pub fn max_delta_chain(&self) -> u32 {
        self.max_delta_chain
    }

    /// The largest chain-delta-to-base size ratio.
    pub fn max_delta_ratio(&self) -> f64 {
        self.max_delta_ratio
    }

    /// The storage used.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IncrementalCheckpointManager;

    /// The setting an `InvalidConfig` names.
    fn rejected(config: &CheckpointConfig) -> &'static str {
        crate::error::rejected_setting(config.validate())
    }

    #[test]
    fn defaults_are_as_documented() {
        let c = CheckpointConfig::new("ckpt");
        assert_eq!(c.dir(), Path::new("ckpt"));
        assert_eq!(c.max_retained(), 3);
        assert_eq!(c.max_delta_chain(), 8);
        assert_eq!(c.max_delta_ratio(), 0.5);
        c.validate().unwrap();
    }

    #[test]
    fn each_out_of_range_value_is_rejected_naming_its_setting() {
        let c = || CheckpointConfig::new("ckpt");
        assert_eq!(rejected(&CheckpointConfig::new("")), "dir");
        assert_eq!(rejected(&c().with_max_retained(0)), "max_retained");
        for ratio in [
            f64::NAN,
            -0.1,
            -0.0 - f64::MIN_POSITIVE,
            f64::NEG_INFINITY,
            f64::INFINITY,
        ] {
            let config = c().with_max_delta_ratio(ratio);
            assert_eq!(rejected(&config), "max_delta_ratio", "{ratio}");
        }
    }

    #[test]
    fn the_range_ends_are_accepted_and_kept_as_given() {
        for (retained, chain, ratio) in [(1, 0, 0.0), (usize::MAX, u32::MAX, f64::MAX)] {
            let c = CheckpointConfig::new("ckpt")
                .with_max_retained(retained)
                .with_max_delta_chain(chain)
                .with_max_delta_ratio(ratio);
            c.validate().unwrap();
            assert_eq!(c.max_retained(), retained);
            assert_eq!(c.max_delta_chain(), chain);
            assert_eq!(c.max_delta_ratio(), ratio);
        }
    }

    #[test]
    fn the_manager_refuses_an_invalid_config_before_touching_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("ckpt");
        let made = IncrementalCheckpointManager::new(
            CheckpointConfig::new(&ckpt).with_max_delta_ratio(f64::NAN),
        );
        assert!(
            matches!(
                made,
                Err(Error::InvalidConfig {
                    setting: "max_delta_ratio",
                    ..
                })
            ),
            "{:?}",
            made.err()
        );
        assert!(!ckpt.exists());
        IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    }
}
