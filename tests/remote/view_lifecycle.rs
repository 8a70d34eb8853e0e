//! The remote view's life cycle under attack: look-ups from many threads
//! across the switch, drop during the download (held at a gate, or after a
//! panic of the download thread), the directory lock against managers and
//! iterators that outlive the view, a directory of local checkpoints.

use crate::support::{full, Site};
use crate::view_attacks::{commit, key, open, remote, Model};
use highwater::checkpoint::{RemoteStateView, RemoteViewConfig};
use highwater::{CheckpointConfig, Error, IncrementalCheckpointManager, StateSnapshot};
use std::sync::Arc;

/// Look-ups from many threads while the background download finishes and
/// the view switches: every answer is the committed one.
#[test]
fn look_ups_from_many_threads_across_the_switch_answer_the_same_checkpoint() {
    let site = Site::local();
    let model: Model = (0..30_000)
        .map(|i| (key(i), format!("v{i}-{}", "x".repeat(i % 90)).into_bytes()))
        .collect();
    commit(&site, &model);
    let view = open(&site, "reader", true);
    let model = &model;
    let view = &view;
    std::thread::scope(|s| {
        for t in 0..6usize {
            s.spawn(move || {
                let mut rounds_after_local = 0;
                let mut i = t * 101;
                while rounds_after_local < 200 {
                    let local = view.is_local();
                    let k = key(i % 31_000);
                    assert_eq!(view.get(&k).unwrap(), model.get(&k).cloned(), "key {i}");
                    if i % 50 == 0 {
                        let got: Vec<_> = view
                            .range(&key(i % 30_000), &key(i % 30_000 + 40))
                            .unwrap()
                            .map(Result::unwrap)
                            .collect();
                        let want: Vec<_> = model
                            .range(key(i % 30_000)..key(i % 30_000 + 40))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        assert_eq!(got, want);
                    }
                    if local {
                        rounds_after_local += 1;
                    }
                    i += 7919;
                }
            });
        }
    });
    view.wait().unwrap();
    assert!(view.is_local());
}

/// Dropping the view while it downloads neither deadlocks nor keeps the
/// lock: a manager opens the directory right after, and what the view left
/// there verifies (the manager uses it or downloads again).
#[test]
fn dropping_the_view_during_its_download_releases_the_lock() {
    let site = Site::local();
    let model: Model = (0..50_000).map(|i| (key(i), key(i + 1))).collect();
    commit(&site, &model);
    for _ in 0..3 {
        let view = open(&site, "reader", true);
        drop(view);
        let m = site.manager("reader");
        let restore = m.remote_restore().unwrap();
        assert!(restore.restored.is_some(), "{restore:?}");
        drop(m);
        let entries: Vec<String> = std::fs::read_dir(site.cache("reader"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            entries.iter().all(|n| !n.starts_with(".tmp-")),
            "the manager removed the leftovers: {entries:?}"
        );
        std::fs::remove_dir_all(site.cache("reader")).unwrap();
    }
}

/// A view and a manager on one directory exclude each other, both ways.
#[test]
fn a_view_and_a_manager_on_one_directory_exclude_each_other() {
    let site = Site::local();
    let model: Model = (0..100).map(|i| (key(i), key(i))).collect();
    commit(&site, &model);
    let m = site.manager("reader");
    match RemoteStateView::open(RemoteViewConfig::new(remote(&site), site.cache("reader"))) {
        Err(Error::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(m);
    let view = open(&site, "reader", false);
    match IncrementalCheckpointManager::new(site.config("reader")) {
        Err(Error::Locked { .. }) => {}
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    match RemoteStateView::open(RemoteViewConfig::new(remote(&site), site.cache("reader"))) {
        Err(Error::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(view);
    site.manager("reader");
}

/// A directory of checkpoints written without a remote location is refused
/// and left as it was.
#[test]
fn a_directory_of_local_checkpoints_is_refused_and_kept() {
    let site = Site::local();
    let model: Model = (0..100).map(|i| (key(i), key(i))).collect();
    commit(&site, &model);
    let dir = site.cache("local-job");
    {
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&dir)).unwrap();
        full(
            &m,
            5,
            &StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]),
        )
        .unwrap();
    }
    let before = crate::support::cached_ids(&dir);
    assert_eq!(before.len(), 1);
    match RemoteStateView::open(RemoteViewConfig::new(remote(&site), &dir)) {
        Err(Error::InvalidConfig { setting, .. }) => assert_eq!(setting, "remote"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    assert_eq!(crate::support::cached_ids(&dir), before);
    assert!(!dir.join(".remote-cache").exists());
}

/// A file system that panics at the first rename while armed (a bug in a
/// user's `Storage`, or in ours), and says so on a channel.
#[derive(Debug)]
struct PanickingRename {
    inner: Arc<dyn highwater::storage::Storage>,
    armed: std::sync::atomic::AtomicBool,
    panicked: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
}

impl highwater::storage::Storage for PanickingRename {
    fn open_file(
        &self,
        path: &std::path::Path,
        mode: highwater::storage::OpenMode,
    ) -> std::io::Result<Arc<dyn highwater::storage::StorageFile>> {
        self.inner.open_file(path, mode)
    }
    fn create_dir_all(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list_dir(
        &self,
        path: &std::path::Path,
    ) -> std::io::Result<Vec<highwater::storage::DirEntry>> {
        self.inner.list_dir(path)
    }
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let _ = self.panicked.lock().unwrap().send(());
            panic!("a storage bug at rename");
        }
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn sync_dir(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &std::path::Path) -> std::io::Result<bool> {
        self.inner.exists(path)
    }
    fn file_size(&self, path: &std::path::Path) -> std::io::Result<u64> {
        self.inner.file_size(path)
    }
    fn lock(
        &self,
        path: &std::path::Path,
    ) -> std::io::Result<Box<dyn highwater::storage::StorageLock>> {
        self.inner.lock(path)
    }
}

/// The background download panics (at the publish's rename): `wait` must
/// return an error, not wait forever for a thread that is gone. (The test
/// waits for `wait` on another thread with a generous deadline: a hang
/// detector, not a timing assertion.)
#[test]
fn a_panic_in_the_background_download_is_an_error_for_wait_not_a_hang() {
    let site = Site::local();
    let model: Model = (0..1000).map(|i| (key(i), key(i))).collect();
    commit(&site, &model);
    let (tx, rx) = std::sync::mpsc::channel();
    let storage = Arc::new(PanickingRename {
        inner: highwater::storage::default_storage(),
        armed: std::sync::atomic::AtomicBool::new(true),
        panicked: std::sync::Mutex::new(tx),
    });
    let view = Arc::new(
        RemoteStateView::open(
            RemoteViewConfig::new(remote(&site), site.cache("reader")).with_storage(storage),
        )
        .unwrap()
        .unwrap(),
    );
    rx.recv().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let waiting = view.clone();
    std::thread::spawn(move || {
        let _ = done_tx.send(waiting.wait().map_err(|e| e.to_string()));
    });
    match done_rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(Err(e)) => assert!(e.contains("panicked"), "{e}"),
        Ok(Ok(())) => panic!("wait() says the download succeeded"),
        Err(_) => panic!("wait() still blocks 60 s after the download thread panicked"),
    }
    assert!(!view.is_local());
    assert_eq!(view.get(&key(5)).unwrap(), Some(key(5)));
    assert!(view.report().download_error.is_some());
}

/// An iterator outlives its view: it keeps answering (from the layers it
/// started with), and the directory stays locked until it is dropped too
/// (its layers may be the mapped files of the cache).
#[test]
fn an_iterator_that_outlives_its_view_keeps_the_directory_locked() {
    let site = Site::local();
    let model: Model = (0..3000).map(|i| (key(i), key(i))).collect();
    commit(&site, &model);
    let view = open(&site, "reader", true);
    view.wait().unwrap();
    let mut it = view.iter().unwrap();
    drop(view);
    assert_eq!(it.next().unwrap().unwrap(), (key(0), key(0)));
    match IncrementalCheckpointManager::new(site.config("reader")) {
        Err(Error::Locked { .. }) => {}
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    assert_eq!(it.count(), 2999);
    site.manager("reader");
}

/// Dropped while its download is held at the publish's rename (a gate of
/// the simulated disk): the drop waits for the download (it does not
/// return while the worker holds the lock), the lock is held meanwhile, and
/// once the drop returns a manager opens the directory and finds the
/// checkpoint the download published (verified, used as it is).
#[test]
fn a_view_dropped_while_its_download_is_held_waits_and_then_releases_the_lock() {
    use highwater::storage::{CrashSimStorage, SimFault, SimGate, SimOp};
    let site = Site::local();
    let model: Model = (0..3000).map(|i| (key(i), key(i))).collect();
    commit(&site, &model);
    let disk = CrashSimStorage::new();
    let gate = SimGate::new();
    disk.inject(SimFault::pause(SimOp::Rename, &gate));
    let view = RemoteStateView::open(
        RemoteViewConfig::new(remote(&site), site.cache("reader"))
            .with_storage(Arc::new(disk.clone())),
    )
    .unwrap()
    .unwrap();
    assert!(gate.wait_arrivals(1, std::time::Duration::from_secs(60)));
    let dropping = std::thread::spawn(move || drop(view));
    let config = site.config("reader").with_storage(Arc::new(disk.clone()));
    match IncrementalCheckpointManager::new(config.clone()) {
        Err(Error::Locked { .. }) => {}
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !dropping.is_finished(),
        "the drop returned while its download was still running"
    );
    gate.open();
    dropping.join().unwrap();
    let m = IncrementalCheckpointManager::new(config).unwrap();
    let restore = m.remote_restore().unwrap();
    assert!(restore.downloaded.is_empty(), "{restore:?}");
    assert_eq!(restore.cache_hits.len(), 1, "{restore:?}");
}
