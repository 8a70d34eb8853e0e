//! The keys of a checkpoint location (docs/OBJECT_STORAGE.md, "Key layout").
//!
//! ```text
//! commits/<slot:020>                          one commit record per slot (create-only)
//! floor/<slot:020>                            the lowest live slot, raised by GC (create-only)
//! parts/<generation:020>/<id:020>-<nonce:016x>/<file>   a checkpoint's part files
//! ```
//!
//! Invariants:
//! - Slots and generations print as 20 digits, so key order is number order
//!   and a listing after a key is a listing after a number.
//! - A part key holds the writer's generation (unique per writer: it is the
//!   slot of the writer's claim) and a random nonce, so no two uploads ever
//!   share a key, and an object is never overwritten once a record names it.

use crate::blob::{BlobKey, BlobResult};

/// The folder of commit records.
pub(crate) const COMMITS: &str = "commits";
/// The folder of floor markers.
pub(crate) const FLOORS: &str = "floor";
/// The folder of part objects.
pub(crate) const PARTS: &str = "parts";

fn numbered(folder: &str, n: u64) -> BlobKey {
    BlobKey::new(format!("{folder}/{n:020}")).expect("digits and a folder name make a valid key")
}

/// The key of the commit record in `slot`.
pub(crate) fn commit_key(slot: u64) -> BlobKey {
    numbered(COMMITS, slot)
}

/// The key of the floor marker for `slot`.
pub(crate) fn floor_key(slot: u64) -> BlobKey {
    numbered(FLOORS, slot)
}

/// The folder key `name` (`commits`, `floor`, `parts`).
pub(crate) fn folder(name: &str) -> BlobKey {
    BlobKey::new(name).expect("folder names are valid keys")
}

/// The number at the end of `key` when it is `<folder>/<20 digits>`.
pub(crate) fn parse_numbered(folder: &str, key: &BlobKey) -> Option<u64> {
    let digits = key.as_str().strip_prefix(folder)?.strip_prefix('/')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The folder of checkpoint `id`'s part files as uploaded by `generation`.
pub(crate) fn parts_prefix(generation: u64, id: u64, nonce: u64) -> String {
    format!("{PARTS}/{generation:020}/{id:020}-{nonce:016x}")
}

/// The key of `file` under `prefix` ([`parts_prefix`]).
///
/// # Errors
/// `InvalidKey` when `file` cannot be part of a key (part names are checked
/// to be safe file names first, and those are valid key segments).
pub(crate) fn part_key(prefix: &str, file: &str) -> BlobResult<BlobKey> {
    BlobKey::new(format!("{prefix}/{file}"))
}

/// A random 64-bit nonce (std's per-process random hash keys, mixed with the
/// clock and a counter: unique enough to keep uploads apart, not a secret).
pub(crate) fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_keys_parse_back_and_sort_as_numbers() {
        let a = commit_key(9);
        let b = commit_key(10);
        assert!(a.as_str() < b.as_str());
        assert_eq!(parse_numbered(COMMITS, &b), Some(10));
        assert_eq!(parse_numbered(FLOORS, &b), None);
        assert_eq!(
            parse_numbered(COMMITS, &BlobKey::new("commits/12").unwrap()),
            None
        );
        assert_eq!(parse_numbered(FLOORS, &floor_key(u64::MAX)), Some(u64::MAX));
    }

    #[test]
    fn part_keys_are_unique_per_upload() {
        let a = parts_prefix(3, 7, nonce());
        let b = parts_prefix(3, 7, nonce());
        assert_ne!(a, b);
        assert!(part_key(&a, "part-state.hwstate").is_ok());
    }
}
