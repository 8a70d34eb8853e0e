//! One contract for every [`Storage`]: a conformance suite that runs the same
//! checks against any implementation, so that the real file system, the crash
//! simulator and any later backend (object storage) behave alike wherever
//! highwater depends on it. Modelled on `object_store`'s integration suite.
//!
//! Each public function checks one part of the contract documented on
//! [`Storage`], [`StorageFile`] and [`MappedFile`](super::MappedFile),
//! in a subdirectory of `dir` named after the function, and panics with a
//! message naming the broken rule. [`run_all`] runs every check that needs no
//! crash; [`synced_changes_survive_a_reboot`] checks what a crash must keep and
//! takes a function that reboots the storage.
//!
//! The invariants checked:
//! - files: open modes and their errors (`NotFound`, `AlreadyExists`); reads
//!   at any offset, short at the end, 0 at and past it, `UnexpectedEof` for an
//!   exact read past it; writes anywhere, a gap read back as zeros; append at
//!   the end; truncate shorter and longer (zeros); two handles of one file see
//!   each other's writes; a read-only handle refuses writes; a handle keeps its
//!   file after the name is removed or replaced;
//! - directories: nested creation (an existing directory is no error); listing
//!   sorted by name, direct children only, with `is_dir`; `NotFound` for a
//!   missing directory; `exists` and `file_size`;
//! - renames replace a file at the target, keep a directory's contents, and a
//!   rename onto itself is a no-op; removals of files and whole trees, with
//!   `NotFound` for a missing path;
//! - syncs of files and directories succeed on a healthy storage;
//! - locks: exclusive (`WouldBlock`) across handles, however the path is
//!   spelled, released on drop, one per path, the lock file created if missing
//!   and its contents left alone;
//! - [`Storage::map_file`] holds the file's bytes at a 16-byte aligned address;
//! - the write-behind hint (`start_writeback`) changes nothing the process
//!   sees, and a file synced after hints is whole after a reboot
//!   ([`write_behind_hints`]);
//! - after a reboot, everything synced is there: file data made durable by
//!   `sync_data`/`sync_all`, and entries (creations, renames, removals) made
//!   durable by `sync_dir` of their directory.
//!
//! It checks what a storage must do, never what it may do: that unsynced data
//! is lost is not a rule (a process kill keeps it), so it is not checked here.

mod directories;
mod durability;
mod files;
mod locks;
mod write_behind;

pub use directories::{directories_and_listing, removals, renames};
pub use durability::synced_changes_survive_a_reboot;
pub use files::{
    appends_and_truncates, handles_of_one_file, mapped_files, open_modes, reads_at_offsets, syncs,
    writes_at_offsets,
};
pub use locks::locks;
pub use write_behind::write_behind_hints;

use super::{OpenMode, Storage, StorageFile};
use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs every check that needs no crash against `storage`, each in its own
/// subdirectory of `dir`.
///
/// `dir` must be an existing directory of `storage` in which the checks may
/// create the subdirectories they are named after.
///
/// # Panics
/// On the first broken rule, with a message naming it and the storage.
pub fn run_all(storage: &dyn Storage, dir: &Path) {
    open_modes(storage, dir);
    reads_at_offsets(storage, dir);
    writes_at_offsets(storage, dir);
    appends_and_truncates(storage, dir);
    handles_of_one_file(storage, dir);
    syncs(storage, dir);
    mapped_files(storage, dir);
    directories_and_listing(storage, dir);
    renames(storage, dir);
    removals(storage, dir);
    locks(storage, dir);
}

/// A fresh, empty subdirectory `name` of `dir` for one check.
fn scratch(storage: &dyn Storage, dir: &Path, name: &str) -> PathBuf {
    let sub = dir.join(name);
    if ok(
        storage,
        storage.exists(&sub),
        "exists of the scratch directory",
    ) {
        ok(
            storage,
            storage.remove_dir_all(&sub),
            "clear the scratch directory",
        );
    }
    ok(
        storage,
        storage.create_dir_all(&sub),
        "create the scratch directory",
    );
    sub
}

/// The storage's name for messages: its `Debug` output up to the first
/// brace (a simulator's whole tree would drown the message).
fn label(storage: &dyn Storage) -> String {
    let debug = format!("{storage:?}");
    let name = debug.split([' ', '{', '(']).next().unwrap_or_default();
    name.to_string()
}

/// The value of `result`, or a panic naming `what` and the storage.
#[track_caller]
fn ok<T>(storage: &dyn Storage, result: io::Result<T>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{}: {what} failed: {e}", label(storage)))
}

/// Panics unless `result` is an error (of `kind`, when given).
#[track_caller]
fn fails<T: Debug>(
    storage: &dyn Storage,
    result: io::Result<T>,
    kind: Option<io::ErrorKind>,
    what: &str,
) {
    match (result, kind) {
        (Ok(v), _) => panic!("{}: {what} must fail, but returned {v:?}", label(storage)),
        (Err(e), Some(kind)) if e.kind() != kind => {
            panic!(
                "{}: {what} must fail with {kind:?}, but failed with {e:?}",
                label(storage)
            )
        }
        (Err(_), _) => {}
    }
}

/// Creates `path` holding `bytes` (not synced).
#[track_caller]
fn create(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Arc<dyn StorageFile> {
    let file = ok(
        storage,
        storage.open_file(path, OpenMode::CreateNew),
        &format!("create {}", path.display()),
    );
    ok(
        storage,
        file.write_all_at(bytes, 0),
        &format!("write {}", path.display()),
    );
    file
}

/// The whole contents of `path`, read through a fresh handle.
#[track_caller]
fn contents(storage: &dyn Storage, path: &Path) -> Vec<u8> {
    let what = format!("read {}", path.display());
    let file = ok(storage, storage.open_file(path, OpenMode::Read), &what);
    let len = ok(storage, file.len(), &what);
    let mut buf = vec![0; usize::try_from(len).expect("a small file")];
    ok(storage, file.read_exact_at(&mut buf, 0), &what);
    buf
}

/// The names listed in `dir`, in the order listed.
#[track_caller]
fn names(storage: &dyn Storage, dir: &Path) -> Vec<String> {
    ok(
        storage,
        storage.list_dir(dir),
        &format!("list {}", dir.display()),
    )
    .into_iter()
    .map(|e| e.name)
    .collect()
}
