//! The file contract: open modes, positional reads and writes, appends,
//! truncates, handles, syncs and mapped files.

use super::{contents, create, fails, label, ok, scratch};
use crate::storage::{OpenMode, Storage};
use std::io::ErrorKind;
use std::path::Path;

/// Open modes: `Read` and `ReadWrite` of a missing file are `NotFound`;
/// `CreateNew` of an existing file is `AlreadyExists`; `Create` keeps an
/// existing file's contents and creates a missing one empty.
///
/// # Panics
/// When a mode opens what it must refuse, refuses what it must open, or
/// changes contents.
pub fn open_modes(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "open_modes");
    let path = dir.join("file");
    for mode in [OpenMode::Read, OpenMode::ReadWrite] {
        fails(
            storage,
            storage.open_file(&path, mode),
            Some(ErrorKind::NotFound),
            &format!("opening a missing file in {mode:?} mode"),
        );
    }
    fails(
        storage,
        storage.open_file(&dir.join("missing/file"), OpenMode::Create),
        Some(ErrorKind::NotFound),
        "creating a file in a missing directory",
    );
    create(storage, &path, b"kept");
    fails(
        storage,
        storage.open_file(&path, OpenMode::CreateNew),
        Some(ErrorKind::AlreadyExists),
        "CreateNew of an existing file",
    );
    let file = ok(
        storage,
        storage.open_file(&path, OpenMode::Create),
        "Create",
    );
    assert_eq!(
        ok(storage, file.len(), "len"),
        4,
        "{name}: Create must not truncate an existing file"
    );
    assert_eq!(contents(storage, &path), b"kept", "{name}: Create kept");
    for mode in [OpenMode::Read, OpenMode::ReadWrite] {
        let file = ok(storage, storage.open_file(&path, mode), "open existing");
        assert_eq!(ok(storage, file.len(), "len"), 4, "{name}: {mode:?}");
    }
    let fresh = dir.join("fresh");
    let file = ok(
        storage,
        storage.open_file(&fresh, OpenMode::Create),
        "Create",
    );
    assert!(
        ok(storage, file.is_empty(), "is_empty"),
        "{name}: a file made by Create starts empty"
    );
    assert!(
        ok(storage, storage.exists(&fresh), "exists"),
        "{name}: a file made by Create exists"
    );
}

/// Reads at offsets: any range reads back what was written; a read reaching
/// past the end is short, one at or past the end reads 0 bytes, and
/// `read_exact_at` past the end is `UnexpectedEof`.
///
/// # Panics
/// When a read returns other bytes, more bytes than the file holds, or no
/// error for an exact read past the end.
pub fn reads_at_offsets(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "reads_at_offsets");
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let file = create(storage, &dir.join("file"), &data);
    for (offset, len) in [(0, 10), (511, 2), (512, 512), (1000, 1500), (2990, 10)] {
        let mut buf = vec![0; len];
        ok(
            storage,
            file.read_exact_at(&mut buf, offset as u64),
            "read_exact_at",
        );
        assert_eq!(
            buf,
            &data[offset..offset + len],
            "{name}: read_exact_at({offset}, {len}) returned other bytes"
        );
    }
    let mut buf = vec![0xAA; 100];
    let n = ok(
        storage,
        file.read_at(&mut buf, 2950),
        "read_at across the end",
    );
    assert!(
        (1..=50).contains(&n),
        "{name}: a read across the end returns 1 to 50 bytes, not {n}"
    );
    assert_eq!(&buf[..n], &data[2950..2950 + n], "{name}: short read");
    for offset in [3000, 3001, 1 << 20] {
        assert_eq!(
            ok(
                storage,
                file.read_at(&mut buf, offset),
                "read_at past the end"
            ),
            0,
            "{name}: a read at {offset} (the file holds 3000 bytes) reads nothing"
        );
    }
    fails(
        storage,
        file.read_exact_at(&mut buf, 2950),
        Some(ErrorKind::UnexpectedEof),
        "read_exact_at of 100 bytes 50 bytes before the end",
    );
    ok(
        storage,
        file.read_exact_at(&mut [], 3000),
        "an empty exact read at the end",
    );
}

/// Writes at offsets: an overwrite keeps the length, a write past the end
/// extends the file and the gap reads as zeros.
///
/// # Panics
/// When the contents or the length differ from those rules.
pub fn writes_at_offsets(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "writes_at_offsets");
    let path = dir.join("file");
    let file = create(storage, &path, b"0123456789");
    ok(storage, file.write_all_at(b"ab", 3), "overwrite");
    assert_eq!(contents(storage, &path), b"012ab56789", "{name}: overwrite");
    ok(storage, file.write_all_at(b"end", 20), "write past the end");
    assert_eq!(
        ok(storage, file.len(), "len"),
        23,
        "{name}: extended length"
    );
    assert_eq!(
        ok(storage, storage.file_size(&path), "file_size"),
        23,
        "{name}: file_size agrees with len"
    );
    let mut expected = b"012ab56789".to_vec();
    expected.extend([0; 10]);
    expected.extend(b"end");
    assert_eq!(
        contents(storage, &path),
        expected,
        "{name}: the gap before a write past the end reads as zeros"
    );
}

/// Appends land at the end and return its offset; truncates cut or
/// zero-extend.
///
/// # Panics
/// When an append lands elsewhere or a truncate leaves other contents.
pub fn appends_and_truncates(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "appends_and_truncates");
    let path = dir.join("file");
    let file = create(storage, &path, b"");
    assert!(ok(storage, file.is_empty(), "is_empty"), "{name}: new file");
    assert_eq!(ok(storage, file.append(b"abc"), "append"), 0, "{name}");
    assert_eq!(ok(storage, file.append(b"defg"), "append"), 3, "{name}");
    assert_eq!(contents(storage, &path), b"abcdefg", "{name}: appends");
    ok(storage, file.truncate(2), "truncate shorter");
    assert_eq!(contents(storage, &path), b"ab", "{name}: cut");
    assert_eq!(ok(storage, file.append(b"Z"), "append"), 2, "{name}");
    ok(storage, file.truncate(6), "truncate longer");
    assert_eq!(
        contents(storage, &path),
        b"abZ\0\0\0",
        "{name}: a longer truncate zero-extends"
    );
    ok(storage, file.truncate(0), "truncate to 0");
    assert!(ok(storage, file.is_empty(), "is_empty"), "{name}: cut to 0");
}

/// Handles: two handles of one file see each other's writes; a read-only
/// handle refuses writes and truncates; an open handle keeps reading its file
/// after the name is removed or renamed over.
///
/// # Panics
/// When a handle misses another's write, a read-only handle writes, or a
/// handle loses its file.
pub fn handles_of_one_file(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "handles_of_one_file");
    let path = dir.join("file");
    let writer = create(storage, &path, b"first");
    let other = ok(
        storage,
        storage.open_file(&path, OpenMode::ReadWrite),
        "open",
    );
    ok(
        storage,
        other.append(b"+second"),
        "append through the second handle",
    );
    assert_eq!(
        ok(storage, writer.len(), "len"),
        12,
        "{name}: one handle sees another's append"
    );
    let reader = ok(storage, storage.open_file(&path, OpenMode::Read), "open");
    fails(
        storage,
        reader.write_all_at(b"x", 0),
        None,
        "a write through a read-only handle",
    );
    fails(
        storage,
        reader.truncate(0),
        None,
        "a truncate through a read-only handle",
    );
    assert_eq!(contents(storage, &path), b"first+second", "{name}");

    let replacement = dir.join("replacement");
    create(storage, &replacement, b"new");
    ok(
        storage,
        storage.rename(&replacement, &path),
        "rename over the file",
    );
    let mut buf = [0; 12];
    ok(
        storage,
        reader.read_exact_at(&mut buf, 0),
        "read a replaced file",
    );
    assert_eq!(
        &buf, b"first+second",
        "{name}: a handle keeps its file when another is renamed over its name"
    );
    ok(storage, storage.remove_file(&path), "remove");
    let held = ok(
        storage,
        storage.open_file(&dir.join("held"), OpenMode::Create),
        "create",
    );
    ok(storage, held.write_all_at(b"held", 0), "write");
    ok(storage, storage.remove_file(&dir.join("held")), "remove");
    let mut buf = [0; 4];
    ok(
        storage,
        held.read_exact_at(&mut buf, 0),
        "read a removed file",
    );
    assert_eq!(&buf, b"held", "{name}: a handle keeps a removed file");
}

/// Syncs: `sync_data` and `sync_all` of a written file and `sync_dir` of a
/// changed directory succeed on a healthy storage; `sync_dir` of a missing
/// directory fails.
///
/// # Panics
/// When a sync fails, or syncing a missing directory succeeds.
pub fn syncs(storage: &dyn Storage, dir: &Path) {
    let dir = scratch(storage, dir, "syncs");
    let file = create(storage, &dir.join("file"), b"data");
    ok(storage, file.sync_data(), "sync_data");
    ok(storage, file.append(b"more"), "append");
    ok(storage, file.sync_all(), "sync_all");
    ok(storage, file.sync_data(), "sync_data with nothing new");
    ok(storage, storage.sync_dir(&dir), "sync_dir");
    ok(storage, storage.sync_dir(&dir), "sync_dir with nothing new");
    fails(
        storage,
        storage.sync_dir(&dir.join("missing")),
        None,
        "sync_dir of a missing directory",
    );
}

/// Mapped files: [`Storage::map_file`] holds the file's bytes (an empty
/// file's too), a non-empty file's at a 16-byte aligned address; a missing file is `NotFound`.
///
/// # Panics
/// When the bytes differ, are misaligned, or a missing file maps.
pub fn mapped_files(storage: &dyn Storage, dir: &Path) {
    let name = label(storage);
    let dir = scratch(storage, dir, "mapped_files");
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    for (file, bytes) in [("empty", &[][..]), ("full", &data[..])] {
        let path = dir.join(file);
        ok(storage, create(storage, &path, bytes).sync_all(), "sync");
        let map = ok(storage, storage.map_file(&path), "map_file");
        assert_eq!(map.bytes(), bytes, "{name}: map_file of {file}");
        assert!(
            bytes.is_empty() || (map.bytes().as_ptr() as usize).is_multiple_of(16),
            "{name}: mapped bytes start at a 16-byte aligned address"
        );
    }
    fails(
        storage,
        storage.map_file(&dir.join("missing")).map(|_| ()),
        Some(ErrorKind::NotFound),
        "map_file of a missing file",
    );
}
