//! The write-behind hint: [`StorageFile::start_writeback`] changes nothing
//! the process sees, and a sync after it still makes the data durable.

use super::{contents, create, label, ok, scratch};
use crate::storage::{Storage, StorageFile};
use std::path::Path;
use std::sync::Arc;

/// `start_writeback` succeeds on a file being written (over written bytes,
/// a range running past the end, an empty range, a range starting past the
/// end) and leaves its contents and length as they were; the file then
/// syncs as usual, and what was synced survives `reboot` (see
/// [`synced_changes_survive_a_reboot`](super::synced_changes_survive_a_reboot)
/// for what `reboot` returns).
///
/// # Panics
/// When a hint fails, changes what the file holds, or a file synced after
/// hints is not there after the reboot.
pub fn write_behind_hints(
    storage: &dyn Storage,
    dir: &Path,
    reboot: &mut dyn FnMut() -> Arc<dyn Storage>,
) {
    let name = label(storage);
    let sub = scratch(storage, dir, "write_behind_hints");
    ok(storage, storage.sync_dir(dir), "sync_dir of the parent");
    let path = sub.join("file");
    let first: Vec<u8> = (0..70_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let file = create(storage, &path, &first);
    hint(
        storage,
        file.as_ref(),
        0,
        first.len() as u64,
        "over what was written",
    );
    ok(storage, file.append(b"tail"), "append after a hint");
    hint(
        storage,
        file.as_ref(),
        4096,
        1 << 30,
        "running past the end",
    );
    hint(storage, file.as_ref(), 100, 0, "of an empty range");
    hint(
        storage,
        file.as_ref(),
        1 << 40,
        4096,
        "starting past the end",
    );
    let mut expected = first;
    expected.extend_from_slice(b"tail");
    assert!(
        contents(storage, &path) == expected,
        "{name}: start_writeback changed what the file holds"
    );
    ok(storage, file.sync_all(), "sync_all after hints");
    ok(storage, storage.sync_dir(&sub), "sync_dir");
    drop(file);
    let after = reboot();
    assert!(
        contents(after.as_ref(), &path) == expected,
        "{name}: a file synced after write-behind hints is not whole after a reboot"
    );
}

#[track_caller]
fn hint(storage: &dyn Storage, file: &dyn StorageFile, offset: u64, len: u64, what: &str) {
    ok(
        storage,
        file.start_writeback(offset, len),
        &format!("start_writeback {what}"),
    );
}
