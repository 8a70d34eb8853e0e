//! Sealed files through [`SealingFile`] and [`LazyOpened`]: the bytes match
//! the block format, writes out of order are refused, a cut or extended
//! file fails at open, and concurrent readers see the plaintext.

use super::*;
use crate::error::Error;
use crate::storage::{default_storage, MappedFile, OpenMode, Storage, StorageFile};
use std::path::{Path, PathBuf};

const B: usize = SEALED_BLOCK;

fn keys() -> StaticKeys {
    StaticKeys::new(KeyId::new(9).unwrap(), DataKey::generate().unwrap())
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
}

/// Writes `plain` sealed into `path` the way a state file writer does: a
/// placeholder front, the rest in uneven pieces, the front patched last.
fn write_sealed(
    storage: &dyn Storage,
    k: &StaticKeys,
    path: &Path,
    plain: &[u8],
) -> file::SealedWritten {
    let f = storage.open_file(path, OpenMode::CreateNew).unwrap();
    let s = SealingFile::new(f.as_ref(), k, FileKind::StateFile).unwrap();
    let front = plain.len().min(64);
    s.write_all_at(&vec![0u8; front], 0).unwrap();
    let mut at = front;
    let mut piece = 1;
    while at < plain.len() {
        let end = (at + piece).min(plain.len());
        s.write_all_at(&plain[at..end], at as u64).unwrap();
        at = end;
        piece = piece * 3 + 7;
    }
    s.write_all_at(&plain[..front], 0).unwrap();
    let written = s.finish(path).unwrap();
    f.sync_all().unwrap();
    written
}

/// Sealed file `path` opened lazily (its id `id`, when checked).
fn open_lazy(
    storage: &dyn Storage,
    k: &StaticKeys,
    path: &Path,
    id: Option<[u8; 16]>,
) -> LazyOpened {
    LazyOpened::open(storage, k, path, FileKind::StateFile, id).unwrap()
}

fn tmp(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn sealing_file_writes_the_block_format_and_every_reader_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let k = keys();
    // (32 blocks and more are opened on two threads.)
    for n in [
        0,
        1,
        64,
        B - 1,
        B,
        B + 1,
        3 * B,
        3 * B + 5,
        40 * B + 7,
        64 * B,
    ] {
        let path = tmp(&dir, &format!("f{n}"));
        let plain = data(n);
        let written = write_sealed(storage.as_ref(), &k, &path, &plain);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(written.size, bytes.len() as u64, "{n}");
        assert_eq!(written.crc, crc32c::crc32c(&bytes), "{n}");
        assert_eq!(written.key_id, 9);
        let id = Some(written.file_id);
        assert_eq!(
            open_all(&k, &path, &bytes, FileKind::StateFile, B, id).unwrap(),
            plain
        );
        let whole = open_sealed_file(&k, &path, &bytes, FileKind::StateFile, id).unwrap();
        assert_eq!(crate::storage::MappedFile::bytes(&whole), &plain[..], "{n}");
        let lazy = LazyOpened::open(storage.as_ref(), &k, &path, FileKind::StateFile, id).unwrap();
        assert_eq!(lazy.len(), n);
        for r in [0..n, n / 2..n, 0..n / 3, n.saturating_sub(1)..n] {
            assert_eq!(lazy.get(r.clone()).unwrap(), &plain[r], "{n}");
        }
    }
}

#[test]
fn writes_past_the_first_block_are_front_to_back_only() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let path = tmp(&dir, "f");
    let f = storage.open_file(&path, OpenMode::CreateNew).unwrap();
    let k = keys();
    let s = SealingFile::new(f.as_ref(), &k, FileKind::StateFile).unwrap();
    s.write_all_at(&data(3 * B), 0).unwrap();
    assert!(s.write_all_at(b"x", 10).is_ok(), "block 0 is patched");
    assert!(
        s.write_all_at(b"x", B as u64 + 1).is_err(),
        "a rewrite past block 0"
    );
    assert!(s.write_all_at(b"x", 3 * B as u64 + 1).is_err(), "a hole");
    assert!(
        s.write_all_at(b"x", 3 * B as u64).is_err(),
        "nothing after a refused write"
    );
    assert!(s.finish(&path).is_err());
}

#[test]
fn a_cut_or_extended_file_fails_at_open_even_with_its_size_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let k = keys();
    let path = tmp(&dir, "f");
    let written = write_sealed(storage.as_ref(), &k, &path, &data(4 * B + 100));
    let bytes = std::fs::read(&path).unwrap();
    let step = B + TAG_LEN;
    let mut variants: Vec<Vec<u8>> = (1..5)
        .map(|blocks| bytes[..SEAL_HEADER_LEN + blocks * step].to_vec())
        .collect();
    variants.push([&bytes[..], &bytes[SEAL_HEADER_LEN..SEAL_HEADER_LEN + step]].concat());
    variants.push(bytes[..bytes.len() - 1].to_vec());
    for (i, v) in variants.iter().enumerate() {
        let p = tmp(&dir, &format!("v{i}"));
        std::fs::write(&p, v).unwrap();
        let err = LazyOpened::open(
            storage.as_ref(),
            &k,
            &p,
            FileKind::StateFile,
            Some(written.file_id),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::AuthenticationFailed { key_id: 9, .. }),
            "variant {i}: {err:?}"
        );
        let err =
            open_sealed_file(&k, &p, v, FileKind::StateFile, Some(written.file_id)).unwrap_err();
        assert!(
            matches!(err, Error::AuthenticationFailed { .. }),
            "variant {i}: {err:?}"
        );
    }
    // Cut inside the header or a tag: the shape is impossible.
    for len in [10, SEAL_HEADER_LEN + 3, SEAL_HEADER_LEN + step + 5] {
        let p = tmp(&dir, &format!("c{len}"));
        std::fs::write(&p, &bytes[..len]).unwrap();
        let err =
            LazyOpened::open(storage.as_ref(), &k, &p, FileKind::StateFile, None).unwrap_err();
        assert!(err.is_corruption(), "{len}: {err:?}");
    }
}

#[test]
fn concurrent_readers_of_a_lazy_file_see_the_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let k = keys();
    let path = tmp(&dir, "f");
    let plain = data(40 * B + 17);
    let written = write_sealed(storage.as_ref(), &k, &path, &plain);
    let lazy = open_lazy(storage.as_ref(), &k, &path, Some(written.file_id));
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (lazy, plain) = (&lazy, &plain);
            s.spawn(move || {
                let mut x = t * 7919 + 1;
                for _ in 0..2000 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let start = (x >> 16) % plain.len();
                    let len = ((x >> 40) % (3 * B)).min(plain.len() - start);
                    assert_eq!(
                        lazy.get(start..start + len).unwrap(),
                        &plain[start..start + len]
                    );
                }
            });
        }
    });
}

#[test]
fn a_damaged_block_fails_only_the_reads_that_touch_it() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let k = keys();
    let path = tmp(&dir, "f");
    let plain = data(5 * B);
    write_sealed(storage.as_ref(), &k, &path, &plain);
    let mut bytes = std::fs::read(&path).unwrap();
    let block2 = SEAL_HEADER_LEN + 2 * (B + TAG_LEN);
    bytes[block2 + 5] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let lazy = LazyOpened::open(storage.as_ref(), &k, &path, FileKind::StateFile, None).unwrap();
    assert_eq!(lazy.get(0..B).unwrap(), &plain[..B]);
    assert_eq!(lazy.get(3 * B..5 * B).unwrap(), &plain[3 * B..]);
    let err = lazy.get(2 * B + 10..2 * B + 20).unwrap_err();
    assert!(
        matches!(err, Error::AuthenticationFailed { offset, .. } if offset == block2 as u64),
        "{err:?}"
    );
}

#[test]
fn a_damaged_block_in_either_half_fails_the_whole_open_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let k = keys();
    let path = tmp(&dir, "f");
    let written = write_sealed(storage.as_ref(), &k, &path, &data(40 * B + 3));
    let clean = std::fs::read(&path).unwrap();
    let block = |i: usize| SEAL_HEADER_LEN + i * (B + TAG_LEN);
    for damaged in [vec![3], vec![30], vec![3, 30], vec![19], vec![20], vec![40]] {
        let mut bytes = clean.clone();
        for &i in &damaged {
            bytes[block(i) + 7] ^= 2;
        }
        let err = open_sealed_file(
            &k,
            &path,
            &bytes,
            FileKind::StateFile,
            Some(written.file_id),
        )
        .unwrap_err();
        let first = block(damaged[0]) as u64;
        assert!(
            matches!(err, Error::AuthenticationFailed { offset, .. } if offset == first),
            "{damaged:?}: {err:?}"
        );
    }
}

#[test]
fn every_cut_near_the_header_and_block_boundaries_is_an_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let k = keys();
    let path = tmp(&dir, "f");
    let plain = data(2 * B + 5);
    let written = write_sealed(storage.as_ref(), &k, &path, &plain);
    let bytes = std::fs::read(&path).unwrap();
    let step = B + TAG_LEN;
    let mut lens: Vec<usize> = (0..SEAL_HEADER_LEN + TAG_LEN + 40).collect();
    for blocks in 1..=2 {
        let at = SEAL_HEADER_LEN + blocks * step;
        lens.extend(at - 40..at + 40);
    }
    lens.extend(bytes.len() - 40..bytes.len());
    let p = tmp(&dir, "cut");
    for len in lens.into_iter().filter(|&l| l < bytes.len()) {
        std::fs::write(&p, &bytes[..len]).unwrap();
        for id in [Some(written.file_id), None] {
            let lazy = LazyOpened::open(storage.as_ref(), &k, &p, FileKind::StateFile, id);
            let err = lazy.map(|_| ()).unwrap_err();
            assert!(
                err.is_corruption() || matches!(err, Error::AuthenticationFailed { .. }),
                "lazy {len}: {err:?}"
            );
            let err = open_sealed_file(&k, &p, &bytes[..len], FileKind::StateFile, id)
                .map(|_| ())
                .unwrap_err();
            assert!(err.is_corruption(), "whole {len}: {err:?}");
        }
    }
    // A garbage header over a valid body, and the header of another kind.
    let mut garbage = bytes.clone();
    garbage[8..SEAL_HEADER_LEN].fill(0xA5);
    std::fs::write(&p, &garbage).unwrap();
    let err = LazyOpened::open(storage.as_ref(), &k, &p, FileKind::StateFile, None).unwrap_err();
    assert!(err.is_corruption(), "{err:?}");
    let err = LazyOpened::open(storage.as_ref(), &k, &path, FileKind::ArrowPart, None).unwrap_err();
    assert!(err.is_corruption(), "{err:?}");
    // The smallest sealed file (an empty plaintext) opens lazily and whole.
    let e = tmp(&dir, "empty");
    let w = write_sealed(storage.as_ref(), &k, &e, &[]);
    assert_eq!(w.size as usize, SEAL_HEADER_LEN + TAG_LEN);
    let lazy = open_lazy(storage.as_ref(), &k, &e, Some(w.file_id));
    assert_eq!(lazy.get(0..100).unwrap(), &[] as &[u8]);
    // A reversed range reads nothing (and is not a panic).
    let reversed = std::ops::Range { start: 50, end: 10 };
    assert_eq!(lazy.get(reversed).unwrap(), &[] as &[u8]);
    let eb = std::fs::read(&e).unwrap();
    assert!(
        open_sealed_file(&k, &e, &eb, FileKind::StateFile, Some(w.file_id))
            .unwrap()
            .bytes()
            .is_empty()
    ); // MappedFile
}

#[test]
fn a_lazy_get_past_the_end_is_clamped_and_opens_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let k = keys();
    let path = tmp(&dir, "f");
    let plain = data(3 * B + 9);
    let written = write_sealed(storage.as_ref(), &k, &path, &plain);
    let lazy = open_lazy(storage.as_ref(), &k, &path, Some(written.file_id));
    // Hold a slice of the last block, then ask for ranges around it and past the end.
    let tail = lazy.get(3 * B..usize::MAX).unwrap();
    assert_eq!(tail, &plain[3 * B..]);
    assert_eq!(lazy.get(usize::MAX - 1..usize::MAX).unwrap(), &[] as &[u8]);
    assert_eq!(lazy.get(B - 3..3 * B + 100).unwrap(), &plain[B - 3..]);
    assert_eq!(tail, &plain[3 * B..]);
    assert_eq!(lazy.get(0..plain.len()).unwrap(), &plain[..]);
}

/// A sealed file far larger than memory (a sparse file: its header, then a
/// hole) is an error from a lazy open, not an abort of the process in the
/// allocator (`handle_alloc_error`). Not damage: the file may be whole.
#[test]
fn a_lazy_open_of_a_file_larger_than_memory_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let k = keys();
    let path = tmp(&dir, "f");
    write_sealed(storage.as_ref(), &k, &path, &data(B + 1));
    // 4 TiB of plaintext: more than RAM and swap, so the zeroed allocation
    // fails under the kernel's default overcommit heuristic.
    let step = (B + TAG_LEN) as u64;
    let huge = SEAL_HEADER_LEN as u64 + (4u64 << 40) / B as u64 * step;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(huge).unwrap();
    drop(f);
    let err = LazyOpened::open(storage.as_ref(), &k, &path, FileKind::StateFile, None).unwrap_err();
    assert!(!err.is_corruption(), "{err:?}");
    assert_eq!(err.path(), Some(path.as_path()), "{err:?}");
}

/// A storage whose reads return at most 7 bytes (the `StorageFile::read_at`
/// contract allows it; `read_exact_at` loops).
#[derive(Debug)]
struct ShortReads(std::sync::Arc<dyn Storage>);

#[derive(Debug)]
struct ShortFile(std::sync::Arc<dyn StorageFile>);

impl StorageFile for ShortFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = buf.len().min(7);
        self.0.read_at(&mut buf[..n], offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn truncate(&self, len: u64) -> std::io::Result<()> {
        self.0.truncate(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> std::io::Result<()> {
        self.0.sync_all()
    }
}

impl Storage for ShortReads {
    fn open_file(
        &self,
        path: &Path,
        mode: OpenMode,
    ) -> std::io::Result<std::sync::Arc<dyn StorageFile>> {
        Ok(std::sync::Arc::new(ShortFile(
            self.0.open_file(path, mode)?,
        )))
    }
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<crate::storage::DirEntry>> {
        self.0.list_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.0.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.0.remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.0.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        self.0.exists(path)
    }
    fn file_size(&self, path: &Path) -> std::io::Result<u64> {
        self.0.file_size(path)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn crate::storage::StorageLock>> {
        self.0.lock(path)
    }
}

/// Short reads are not damage: a lazy open reads the header to its end.
#[test]
fn a_lazy_open_through_short_reads_opens_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = default_storage();
    let k = keys();
    let path = tmp(&dir, "f");
    let plain = data(2 * B + 3);
    let w = write_sealed(storage.as_ref(), &k, &path, &plain);
    let short = ShortReads(storage);
    let lazy = LazyOpened::open(&short, &k, &path, FileKind::StateFile, Some(w.file_id)).unwrap();
    assert_eq!(lazy.get(0..plain.len()).unwrap(), &plain[..]);
}
