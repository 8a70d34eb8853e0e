//! A slow device for benchmarks: a [`Storage`] that delegates to another one
//! and adds a fixed latency to every file data fsync. Not a fault injector
//! (tests use `CrashSimStorage` for that); it only makes fsyncs cost what a
//! slower disk's would, so group commit can be measured against it.

use highwater::storage::{DirEntry, MappedFile, OpenMode, Storage, StorageFile, StorageLock};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The real file system with `delay` added to every file fsync.
pub fn slow_fsync_storage(delay: Duration) -> Arc<dyn Storage> {
    Arc::new(SlowSync {
        inner: highwater::storage::default_storage(),
        delay,
    })
}

#[derive(Debug)]
struct SlowSync {
    inner: Arc<dyn Storage>,
    delay: Duration,
}

#[derive(Debug)]
struct SlowSyncFile {
    inner: Arc<dyn StorageFile>,
    delay: Duration,
}

impl StorageFile for SlowSyncFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        std::thread::sleep(self.delay);
        self.inner.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        std::thread::sleep(self.delay);
        self.inner.sync_all()
    }
}

impl Storage for SlowSync {
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(SlowSyncFile {
            inner: self.inner.open_file(path, mode)?,
            delay: self.delay,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.inner.list_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_size(path)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        self.inner.lock(path)
    }

    fn map_file(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>> {
        self.inner.map_file(path)
    }
}
