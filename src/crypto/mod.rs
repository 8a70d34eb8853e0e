//! Encryption at rest: AES-256-GCM per block, with a key derived for each
//! file, nonces and associated data that bind each block to its file, its
//! position and whether it is the file's last (docs/FORMAT.md §8). The
//! `encryption` feature.
//!
//! This module is the sealing layer and the keys. The file formats are
//! sealed with it when given a [`KeyProvider`]: log segments
//! (`WalOptions::with_encryption`), checkpoint parts
//! (`CheckpointConfig::with_encryption`), recovery's reads of both
//! (`RecoveryConfig::with_encryption`) and the file sink's output
//! (`FileSink::with_encryption`). Metadata and commit records are not
//! sealed: they hold no keys, values or state (docs/FORMAT.md §8). A caller
//! can also seal its own bytes with it:
//!
//! ```
//! use highwater::crypto::{open_all, seal_all, DataKey, FileKind, KeyId, StaticKeys};
//! use std::path::Path;
//!
//! let keys = StaticKeys::new(KeyId::new(1)?, DataKey::generate()?);
//! let (sealed, file_id) = seal_all(&keys, FileKind::SinkStaging, b"user-42,3\n", 64 * 1024)?;
//! assert!(!sealed.windows(7).any(|w| w == b"user-42")); // nothing in the clear
//! let plain = open_all(&keys, Path::new("out.sealed"), &sealed, FileKind::SinkStaging, 64 * 1024, Some(file_id))?;
//! assert_eq!(plain, b"user-42,3\n");
//! # Ok::<(), highwater::Error>(())
//! ```
//!
//! Invariants (each file states its own): a [`DataKey`]'s bytes are never
//! printed and are wiped when dropped; a (file key, nonce) pair never seals
//! two blocks; a block's bytes are returned only after its tag verified.
//!
//! Not wiped: the per-file keys (ring's AES key schedules inside a
//! [`SealedWriter`] or [`SealedReader`], and the HKDF state that derived
//! them: ring zeroes none of its keys), the string
//! [`DataKey::to_hex`] returns, and the copies a caller passes to
//! [`DataKey::from_bytes`] or holds in the environment for
//! [`DataKey::from_env`].

mod file;
mod key;
#[allow(unsafe_code)]
mod lazy;
mod open;
mod seal;
mod whole;

pub use key::{DataKey, KeyId, KeyProvider, StaticKeys, KEY_LEN};
pub use seal::{
    key_check, FileKind, SealHeader, SealedReader, SealedWriter, MAX_BLOCKS, SEAL_HEADER_LEN,
    TAG_LEN,
};
pub use whole::{open_all, seal_all};

pub use file::SEALED_BLOCK;
pub(crate) use file::{sealed_without_key, SealInto, SealingFile};
pub(crate) use lazy::LazyOpened;
pub(crate) use open::open_sealed_file;

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod tests;
