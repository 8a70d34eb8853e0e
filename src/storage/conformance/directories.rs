//! The directory contract: creation, listing, existence, renames and removals.

use super::{contents, create, fails, label, names, ok, scratch};
use crate::storage::{DirEntry, Storage};
use std::io::ErrorKind;
use std::path::Path;

/// Directories: `create_dir_all` makes missing parents and accepts an
/// existing directory, fails through a file; `list_dir` lists the direct
/// children, sorted by name, with `is_dir`, and is `NotFound` for a missing
/// directory; `exists` and `file_size` agree.
///
/// # Panics
/// When a listing, an existence check or a size is wrong, or an error is
/// missing or of another kind.
pub fn directories_and_listing(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "directories_and_listing");
    let deep = dir.join("b/nested/deep");
    ok(
        storage,
        storage.create_dir_all(&deep),
        "create_dir_all of a nested path",
    );
    ok(
        storage,
        storage.create_dir_all(&deep),
        "create_dir_all of an existing directory",
    );
    create(storage, &dir.join("c"), b"12345");
    create(storage, &dir.join("a"), b"");
    create(storage, &deep.join("f"), b"x");
    let listed = ok(storage, storage.list_dir(&dir), "list_dir");
    let expected = [("a", false), ("b", true), ("c", false)].map(|(name, is_dir)| DirEntry {
        name: name.to_string(),
        is_dir,
    });
    assert_eq!(
        listed, expected,
        "{name}: list_dir lists the direct children, sorted by name, with is_dir"
    );
    assert_eq!(names(storage, &dir.join("b")), ["nested"], "{name}");
    fails(
        storage,
        storage.list_dir(&dir.join("missing")),
        Some(ErrorKind::NotFound),
        "list_dir of a missing directory",
    );
    fails(
        storage,
        storage.list_dir(&dir.join("c")),
        None,
        "list_dir of a file",
    );
    fails(
        storage,
        storage.create_dir_all(&dir.join("c/below")),
        None,
        "create_dir_all through a file",
    );
    for (path, expected) in [
        (dir.join("a"), true),
        (dir.join("b"), true),
        (deep.join("f"), true),
        (dir.join("missing"), false),
        (dir.join("missing/below"), false),
    ] {
        assert_eq!(
            ok(storage, storage.exists(&path), "exists"),
            expected,
            "{name}: exists({})",
            path.display()
        );
    }
    assert_eq!(
        ok(storage, storage.file_size(&dir.join("c")), "file_size"),
        5,
        "{name}"
    );
    fails(
        storage,
        storage.file_size(&dir.join("missing")),
        Some(ErrorKind::NotFound),
        "file_size of a missing file",
    );
}

/// Renames: a rename replaces a file at the target, moves a directory with
/// its contents, is a no-op onto itself, and is `NotFound` from a missing
/// path.
///
/// # Panics
/// When the names or contents after a rename are wrong, or a missing source
/// renames.
pub fn renames(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "renames");
    create(storage, &dir.join("target"), b"old contents");
    create(storage, &dir.join("source"), b"new");
    ok(
        storage,
        storage.rename(&dir.join("source"), &dir.join("target")),
        "rename over a file",
    );
    assert_eq!(
        names(storage, &dir),
        ["target"],
        "{name}: the source name is gone"
    );
    assert_eq!(
        contents(storage, &dir.join("target")),
        b"new",
        "{name}: a rename replaces the target's contents whole"
    );
    ok(
        storage,
        storage.rename(&dir.join("target"), &dir.join("target")),
        "rename onto itself",
    );
    assert_eq!(
        contents(storage, &dir.join("target")),
        b"new",
        "{name}: self rename"
    );
    ok(
        storage,
        storage.create_dir_all(&dir.join("tmp-dir/inner")),
        "mkdir",
    );
    create(storage, &dir.join("tmp-dir/inner/f"), b"inside");
    ok(
        storage,
        storage.rename(&dir.join("tmp-dir"), &dir.join("published")),
        "rename a directory",
    );
    assert_eq!(
        names(storage, &dir),
        ["published", "target"],
        "{name}: directory renamed"
    );
    assert_eq!(
        contents(storage, &dir.join("published/inner/f")),
        b"inside",
        "{name}: a renamed directory keeps its contents"
    );
    fails(
        storage,
        storage.rename(&dir.join("missing"), &dir.join("other")),
        Some(ErrorKind::NotFound),
        "rename of a missing path",
    );
}

/// Removals: `remove_file` removes one file and is `NotFound` for a missing
/// one; `remove_dir_all` removes a whole tree and is `NotFound` for a missing
/// one; neither touches siblings.
///
/// # Panics
/// When something removed is still there, a sibling is gone, or a missing
/// path is removed without an error.
pub fn removals(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "removals");
    create(storage, &dir.join("gone"), b"x");
    create(storage, &dir.join("kept"), b"y");
    ok(
        storage,
        storage.create_dir_all(&dir.join("tree/a/b")),
        "mkdir",
    );
    create(storage, &dir.join("tree/a/b/f"), b"z");
    create(storage, &dir.join("tree/g"), b"z");
    ok(
        storage,
        storage.remove_file(&dir.join("gone")),
        "remove_file",
    );
    assert!(
        !ok(storage, storage.exists(&dir.join("gone")), "exists"),
        "{name}: removed"
    );
    fails(
        storage,
        storage.remove_file(&dir.join("gone")),
        Some(ErrorKind::NotFound),
        "remove_file of a missing file",
    );
    fails(
        storage,
        storage.remove_file(&dir.join("tree")),
        None,
        "remove_file of a directory",
    );
    ok(
        storage,
        storage.remove_dir_all(&dir.join("tree")),
        "remove_dir_all",
    );
    assert_eq!(
        names(storage, &dir),
        ["kept"],
        "{name}: the tree is gone, the sibling kept"
    );
    fails(
        storage,
        storage.remove_dir_all(&dir.join("tree")),
        Some(ErrorKind::NotFound),
        "remove_dir_all of a missing directory",
    );
}
