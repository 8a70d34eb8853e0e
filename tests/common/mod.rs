//! Helpers shared by the integration tests.
#![allow(dead_code)]

use highwater::storage::{DirEntry, FsStorage, OpenMode, Storage, StorageFile, StorageLock};
use highwater::{WalEntry, WalOptions, WalReadResult, WalReader, WriteAheadLog};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub fn put(key: &str, value: &str) -> WalEntry {
    WalEntry::Put {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

pub fn commit(offset: u64) -> WalEntry {
    WalEntry::Commit {
        offsets: HashMap::from([("src-0".to_string(), offset)]),
        watermark: Some(offset as i64 * 10),
    }
}

/// Reads until a terminal result; returns the entries and that result.
pub fn read_all(reader: &mut WalReader) -> (Vec<WalEntry>, WalReadResult) {
    let mut entries = Vec::new();
    loop {
        match reader.read_next().expect("read_next") {
            WalReadResult::Entry(e) => entries.push(e),
            other => return (entries, other),
        }
    }
}

/// Sorted segment files of a log directory.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

pub fn manual(dir: &Path) -> WriteAheadLog {
    WriteAheadLog::open(
        dir,
        WalOptions::default().with_sync_policy(highwater::SyncPolicy::Manual),
    )
    .expect("open")
}

/// Writes `n` Put+Commit pairs and returns their entries.
pub fn write_pairs(wal: &WriteAheadLog, n: u64) -> Vec<WalEntry> {
    let mut all = Vec::new();
    for i in 0..n {
        let p = put(&format!("key-{i:04}"), &format!("value-{i}"));
        let c = commit(i);
        wal.append(&p).unwrap();
        wal.append(&c).unwrap();
        all.push(p);
        all.push(c);
    }
    all
}

pub fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// A storage that delegates to the real file system and fails chosen operations
/// on command.
#[derive(Debug, Default)]
pub struct FaultyStorage {
    pub fail_sync: AtomicBool,
    pub fail_write: AtomicBool,
    pub syncs: AtomicU64,
}

impl FaultyStorage {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    storage: Arc<FaultyStorage>,
}

impl StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.storage.fail_write.load(Ordering::SeqCst) {
            // A partial write, then the failure.
            let half = buf.len() / 2;
            self.inner.write_all_at(&buf[..half], offset)?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected: no space left",
            ));
        }
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.storage.syncs.fetch_add(1, Ordering::SeqCst);
        if self.storage.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected: fsync failed (EIO)"));
        }
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

/// `Arc<FaultyStorage>` as a `Storage` (keeps a handle to the switches).
#[derive(Debug, Clone)]
pub struct FaultyHandle(pub Arc<FaultyStorage>);

impl Storage for FaultyHandle {
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let inner = FsStorage.open_file(path, mode)?;
        Ok(Arc::new(FaultyFile {
            inner,
            storage: self.0.clone(),
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        FsStorage.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        FsStorage.list_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        FsStorage.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        FsStorage.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        FsStorage.remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.0.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected: directory fsync failed"));
        }
        FsStorage.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        FsStorage.exists(path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        FsStorage.file_size(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        FsStorage.lock(path)
    }
}

/// Removes the sync marker a clean close appends to the newest segment, turning
/// the log into what a crash right after the last fsync would have left.
pub fn strip_close_marker(dir: &Path) {
    let seg = segments(dir).pop().unwrap();
    let len = file_len(&seg);
    let bytes = std::fs::read(&seg).unwrap();
    let marker = &bytes[(len - 16) as usize..];
    assert_eq!(marker[0..4], [0, 0, 0, 0], "marker has an empty payload");
    assert_eq!(marker[4], 5, "the log does not end with a close marker");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 16)
        .unwrap();
}
