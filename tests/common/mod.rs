//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod guards;
pub mod sampling;
pub mod workload;

use highwater::{
    CheckpointConfig, IncrementalCheckpointManager, StateSnapshot, WalEntry, WalOptions,
    WalReadResult, WalReader, WriteAheadLog,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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

/// Truncates (or extends) a file to `len` bytes.
pub fn set_file_len(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
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
    set_file_len(&seg, len - 16);
}

/// A full checkpoint in `dir` of `pairs` at log `position`, with offset `offset`
/// for `source`, watermark `offset` and epoch `offset + 100`; returns its id.
pub fn checkpoint_at(
    dir: &Path,
    position: u64,
    source: &str,
    offset: u64,
    pairs: &[(&str, &str)],
) -> u64 {
    checkpoint_on(
        highwater::storage::default_storage(),
        dir,
        position,
        source,
        offset,
        pairs,
    )
}

/// [`checkpoint_at`] on `storage` (a simulator, say).
pub fn checkpoint_on(
    storage: std::sync::Arc<dyn highwater::storage::Storage>,
    dir: &Path,
    position: u64,
    source: &str,
    offset: u64,
    pairs: &[(&str, &str)],
) -> u64 {
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir).with_storage(storage))
        .unwrap();
    m.set_epoch(offset + 100);
    let snap = StateSnapshot::new(
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    );
    m.create_checkpoint_with_state(
        position,
        HashMap::from([(source.to_string(), offset)]),
        Some(offset as i64),
        &snap.to_bytes().unwrap(),
    )
    .unwrap()
    .id
}

/// Every file under a directory, with its bytes.
pub fn read_tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// A job's checkpoint and log directories in a fresh temporary directory.
pub struct Dirs {
    pub _tmp: tempfile::TempDir,
    pub ckpt: PathBuf,
    pub wal: PathBuf,
}

/// New [`Dirs`].
pub fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    Dirs {
        ckpt: tmp.path().join("ckpt"),
        wal: tmp.path().join("wal"),
        _tmp: tmp,
    }
}

/// From now on every file and directory fsync of `sim` fails, until
/// `sim.clear_faults()` (a device that reports `EIO` on every flush).
pub fn fail_every_sync(sim: &highwater::storage::CrashSimStorage) {
    use highwater::storage::{SimFault, SimOp};
    sim.inject(SimFault::new(SimOp::SyncFile).times(u64::MAX));
    sim.inject(SimFault::new(SimOp::SyncDir).times(u64::MAX));
}

/// The next `n` reads that find a file under `dir` (opening it for reading,
/// asking its size) fail with an I/O error, then reads succeed again: a
/// transient read error of a flaky device or network file system.
pub fn fail_reads_under(sim: &highwater::storage::CrashSimStorage, dir: &Path, n: u64) {
    use highwater::storage::{SimFault, SimOp};
    sim.inject(SimFault::new(SimOp::Read).under(dir).times(n));
}

/// A crash simulator holding a copy of the real directory `root` (files and
/// directories, at the same absolute paths), all of it durable: a fixture
/// built with the real-file helpers above, moved onto the simulator.
pub fn sim_copy_of(root: &Path) -> highwater::storage::CrashSimStorage {
    use highwater::storage::{CrashSimStorage, OpenMode, Storage};
    let sim = CrashSimStorage::new();
    let mut dirs = vec![root.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        let dir = dirs[i].clone();
        sim.create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let file = sim.open_file(&path, OpenMode::CreateNew).unwrap();
                file.write_all_at(&std::fs::read(&path).unwrap(), 0)
                    .unwrap();
                file.sync_data().unwrap();
            }
        }
        i += 1;
    }
    for dir in dirs.iter().flat_map(|d| d.ancestors()) {
        sim.sync_dir(dir).unwrap();
    }
    sim
}

/// Checks that the committed fixture at `path` holds exactly `encoded` (the
/// format as the docs spell it, encoded by the test); with
/// `HIGHWATER_REGENERATE_FIXTURES` set, writes it first. `what` names the
/// fixture in the failure.
pub fn assert_fixture(path: &Path, encoded: &[u8], what: &str) {
    if std::env::var_os("HIGHWATER_REGENERATE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().expect("a fixture has a directory")).unwrap();
        std::fs::write(path, encoded).unwrap();
    }
    let committed = std::fs::read(path).expect("fixture file is committed");
    assert_eq!(committed, encoded, "docs/FORMAT.md and {what} disagree");
}
