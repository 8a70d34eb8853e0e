//! What a crash must keep: everything synced.

use super::{contents, create, label, names, ok, scratch};
use crate::storage::{OpenMode, Storage};
use std::path::Path;
use std::sync::Arc;

/// Synced changes survive a reboot: file data made durable by `sync_data` or
/// `sync_all` (a truncate included), and directory entries (a created file,
/// a nested directory, a rename over a file, a removed file and a removed
/// tree) made durable by `sync_dir` of their directory.
///
/// `dir` must exist and be durable. `reboot` is called once, after every
/// change is synced, and returns the storage as the machine finds it after a
/// restart: for a real file system the same storage (a process restart); for
/// [`CrashSimStorage`](crate::storage::CrashSimStorage) a crash image, of any
/// policy. The rebooted storage must then take new writes.
///
/// # Panics
/// When something synced is missing or different after the reboot, or
/// something whose removal was synced is back.
pub fn synced_changes_survive_a_reboot(
    storage: &dyn Storage,
    dir: &Path,
    reboot: &mut dyn FnMut() -> Arc<dyn Storage>,
) {
    let name = label(storage);
    let sub = scratch(storage, dir, "synced_changes_survive_a_reboot");
    ok(storage, storage.sync_dir(dir), "sync_dir of the parent");
    let nested = sub.join("nested/deep");
    ok(storage, storage.create_dir_all(&nested), "create_dir_all");
    let data = create(storage, &sub.join("data"), b"synced with sync_data");
    ok(storage, data.sync_data(), "sync_data");
    let all = create(storage, &sub.join("all"), b"synced with sync_all, then cut");
    ok(storage, all.sync_all(), "sync_all");
    ok(storage, all.truncate(11), "truncate");
    ok(storage, all.sync_data(), "sync_data after truncate");
    create(storage, &sub.join("published"), b"old")
        .sync_all()
        .unwrap_or_else(|e| {
            panic!("{name}: sync_all failed: {e}");
        });
    create(storage, &sub.join("gone"), b"removed")
        .sync_all()
        .unwrap_or_else(|e| {
            panic!("{name}: sync_all failed: {e}");
        });
    ok(
        storage,
        storage.create_dir_all(&sub.join("tree/a")),
        "create_dir_all",
    );
    create(storage, &sub.join("tree/a/f"), b"f");
    ok(storage, storage.sync_dir(&sub), "sync_dir");
    ok(storage, storage.sync_dir(&sub.join("nested")), "sync_dir");
    let deep = create(storage, &nested.join("f"), b"deep");
    ok(storage, deep.sync_data(), "sync_data");
    ok(storage, storage.sync_dir(&nested), "sync_dir");

    let tmp = sub.join("published.tmp");
    ok(
        storage,
        create(storage, &tmp, b"new").sync_data(),
        "sync_data",
    );
    ok(
        storage,
        storage.rename(&tmp, &sub.join("published")),
        "rename over a file",
    );
    ok(
        storage,
        storage.remove_file(&sub.join("gone")),
        "remove_file",
    );
    ok(
        storage,
        storage.remove_dir_all(&sub.join("tree")),
        "remove_dir_all",
    );
    ok(storage, storage.sync_dir(&sub), "sync_dir");
    drop((data, all, deep));

    let after = reboot();
    let after = &*after;
    let after_name = label(after);
    let checks: [(&str, &[u8]); 4] = [
        ("data", b"synced with sync_data"),
        ("all", b"synced with"),
        ("published", b"new"),
        ("nested/deep/f", b"deep"),
    ];
    for (file, expected) in checks {
        assert_eq!(
            contents(after, &sub.join(file)),
            expected,
            "{after_name}: {file} as synced before the reboot"
        );
    }
    assert_eq!(
        names(after, &sub),
        ["all", "data", "nested", "published"],
        "{after_name}: the synced entries after the reboot (a rename's source and removed entries gone)"
    );
    let file = ok(
        after,
        after.open_file(&sub.join("data"), OpenMode::ReadWrite),
        "open",
    );
    ok(after, file.append(b"+after"), "append after the reboot");
    ok(after, file.sync_data(), "sync_data after the reboot");
    assert_eq!(
        contents(after, &sub.join("data")),
        b"synced with sync_data+after",
        "{after_name}: the rebooted storage takes new writes"
    );
}
