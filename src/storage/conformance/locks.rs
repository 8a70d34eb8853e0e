//! The lock contract.

use super::{contents, create, fails, label, ok, scratch};
use crate::storage::Storage;
use std::io::ErrorKind;
use std::path::Path;

/// Locks: a held lock refuses a second taker with `WouldBlock` (the same
/// path, or the same file spelled with `.`), other paths lock independently,
/// dropping the guard releases it; the lock file is created when missing, an
/// existing one keeps its contents, and a lock in a missing directory fails.
///
/// # Panics
/// When a held lock is taken again, a released one cannot be taken, or the
/// lock file is not there or was changed.
pub fn locks(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "locks");
    let path = dir.join(".lock");
    let held = ok(storage, storage.lock(&path), "lock");
    assert!(
        ok(storage, storage.exists(&path), "exists"),
        "{name}: lock creates its file when missing"
    );
    fails(
        storage,
        storage.lock(&path),
        Some(ErrorKind::WouldBlock),
        "a second lock of a held lock",
    );
    fails(
        storage,
        storage.lock(&dir.join(".").join(".lock")),
        Some(ErrorKind::WouldBlock),
        "a second lock of a held lock spelled another way",
    );
    let other = ok(
        storage,
        storage.lock(&dir.join("other.lock")),
        "lock another path",
    );
    drop(held);
    let again = ok(
        storage,
        storage.lock(&path),
        "lock after the guard was dropped",
    );
    drop((again, other));

    let existing = dir.join("existing.lock");
    create(storage, &existing, b"contents");
    drop(ok(
        storage,
        storage.lock(&existing),
        "lock an existing file",
    ));
    assert_eq!(
        contents(storage, &existing),
        b"contents",
        "{name}: a lock leaves its file's contents alone"
    );
    fails(
        storage,
        storage.lock(&dir.join("missing/.lock")).map(|_| ()),
        Some(ErrorKind::NotFound),
        "a lock in a missing directory",
    );
}
