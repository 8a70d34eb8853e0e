//! The key an encrypted job's files are opened with (`--key-file`,
//! `--key-id`): set once from the command line, used by every command that
//! reads checkpoints or log records (docs/CLI.md, "Encrypted jobs").
//!
//! Invariant: the key is read once, before any command runs; without
//! `--key-file` every store is opened without keys, and a sealed file is
//! then `KeyUnavailable` naming the file and its key id.

use highwater::crypto::{DataKey, KeyId, KeyProvider, StaticKeys};
use highwater::CheckpointStore;
use std::path::Path;
use std::sync::{Arc, OnceLock};

static KEYS: OnceLock<Arc<dyn KeyProvider>> = OnceLock::new();

/// Reads the key in `file` as key `id` for every later read.
///
/// # Errors
/// The key file's error (unreadable, not 32 raw bytes or 64 hex digits);
/// `InvalidArgument` for a key id of 0.
pub fn load(file: &Path, id: u32) -> highwater::Result<()> {
    let keys: Arc<dyn KeyProvider> =
        Arc::new(StaticKeys::new(KeyId::new(id)?, DataKey::from_file(file)?));
    let _ = KEYS.set(keys);
    Ok(())
}

/// The key provider, when `--key-file` was given.
pub fn provider() -> Option<Arc<dyn KeyProvider>> {
    KEYS.get().cloned()
}

/// `reader` opening sealed segments with the key, if one was given.
pub fn reader(reader: highwater::WalReader) -> highwater::WalReader {
    match provider() {
        Some(keys) => reader.with_encryption(keys),
        None => reader,
    }
}

/// `config` reading sealed segments and checkpoints with the key, if one
/// was given.
pub fn recovery(config: highwater::RecoveryConfig) -> highwater::RecoveryConfig {
    match provider() {
        Some(keys) => config.with_encryption(keys),
        None => config,
    }
}

/// `options` sealing new segments (and reading sealed ones) with the key,
/// if one was given.
pub fn wal_options(options: highwater::WalOptions) -> highwater::WalOptions {
    match provider() {
        Some(keys) => options.with_encryption(keys),
        None => options,
    }
}

/// A store over `dir` that opens sealed files with the key, if one was given.
pub fn store(dir: impl AsRef<Path>) -> CheckpointStore {
    let store = CheckpointStore::new(dir);
    match provider() {
        Some(keys) => store.with_encryption(keys),
        None => store,
    }
}
