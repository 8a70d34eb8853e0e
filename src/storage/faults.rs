//! [`FaultInjectingStorage`]: a [`Storage`] that delegates to another one and fails
//! or slows chosen operations on command. For tests of poisoning and of what is
//! acknowledged when the device misbehaves, of transient read errors, and for
//! benchmarks of slow devices.

use super::{DirEntry, OpenMode, Storage, StorageFile, StorageLock};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Switches shared by a [`FaultInjectingStorage`] and every file it opened.
#[derive(Debug)]
pub struct Faults {
    /// Every file and directory fsync fails while set.
    pub fail_sync: AtomicBool,
    /// Every write writes the first half of its bytes, then fails with
    /// `StorageFull`, while set.
    pub fail_write: AtomicBool,
    /// Extra latency added to every file data fsync, in microseconds.
    pub sync_delay_micros: AtomicU64,
    /// File fsyncs attempted so far (failed ones included).
    pub syncs: AtomicU64,
    /// Mutating operations (write, truncate, fsync, create, rename, remove,
    /// directory fsync) attempted so far.
    pub mutations: AtomicU64,
    /// Once `mutations` reaches this count, every later mutating operation fails
    /// without doing anything: the process "crashed" before it. `u64::MAX` (the
    /// default) never fails.
    pub crash_after_mutations: AtomicU64,
    /// Transient read faults: reads (opening a file for reading, a file's size)
    /// of paths under each prefix fail while its count is above zero; every
    /// failed read takes one off. Set with [`Faults::fail_reads_under`].
    read_faults: Mutex<Vec<(PathBuf, u64)>>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            fail_sync: AtomicBool::new(false),
            fail_write: AtomicBool::new(false),
            sync_delay_micros: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            mutations: AtomicU64::new(0),
            crash_after_mutations: AtomicU64::new(u64::MAX),
            read_faults: Mutex::new(Vec::new()),
        }
    }
}

impl Faults {
    /// Makes every mutating operation after the next `n` fail (see
    /// `crash_after_mutations`), counting from now.
    pub fn crash_after(&self, n: u64) {
        self.mutations.store(0, Ordering::SeqCst);
        self.crash_after_mutations.store(n, Ordering::SeqCst);
    }

    /// Counts one mutating operation; fails it once the crash point is reached.
    fn mutation(&self) -> io::Result<()> {
        let n = self.mutations.fetch_add(1, Ordering::SeqCst);
        if n >= self.crash_after_mutations.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected: crashed before this operation"));
        }
        Ok(())
    }

    /// Makes the next `n` reads of files under `prefix` fail with an I/O error
    /// (`EIO`, as a flaky device or network file system would), then succeed
    /// again: a transient read error. A read is opening a file for reading or
    /// asking a file's size (`open_file` in `Read` mode, `file_size`; a whole
    /// file load or map opens it first). Positional reads of files already
    /// open are not failed.
    pub fn fail_reads_under(&self, prefix: impl Into<PathBuf>, n: u64) {
        self.read_faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((prefix.into(), n));
    }

    /// Fails this read of `path` if a read fault covers it.
    fn read(&self, path: &Path) -> io::Result<()> {
        let mut faults = self.read_faults.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, left)) = faults
            .iter_mut()
            .find(|(prefix, left)| *left > 0 && path.starts_with(prefix))
        {
            *left -= 1;
            return Err(io::Error::other(format!(
                "injected: read of {} failed (EIO)",
                path.display()
            )));
        }
        Ok(())
    }

    /// Sets the extra latency of every file data fsync.
    pub fn set_sync_delay(&self, delay: Duration) {
        self.sync_delay_micros
            .store(delay.as_micros() as u64, Ordering::SeqCst);
    }
}

/// A storage that delegates to `inner` and injects the [`Faults`] it shares.
#[derive(Debug, Clone)]
pub struct FaultInjectingStorage {
    inner: Arc<dyn Storage>,
    faults: Arc<Faults>,
}

impl FaultInjectingStorage {
    /// Wraps `inner`; no fault is injected until a switch is set.
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        FaultInjectingStorage {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }

    /// The switches (shared with every file opened through this storage).
    pub fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }

    fn check_sync(&self) -> io::Result<()> {
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected: fsync failed"));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct FaultInjectingFile {
    inner: Arc<dyn StorageFile>,
    faults: Arc<Faults>,
}

impl StorageFile for FaultInjectingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.faults.mutation()?;
        if self.faults.fail_write.load(Ordering::SeqCst) {
            self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected: no space left on device",
            ));
        }
        self.inner.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.faults.mutation()?;
        self.inner.truncate(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        self.faults.mutation()?;
        let delay = self.faults.sync_delay_micros.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_micros(delay));
        }
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected: fsync failed (EIO)"));
        }
        self.inner.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

impl Storage for FaultInjectingStorage {
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        if matches!(mode, OpenMode::Create | OpenMode::CreateNew) {
            self.faults.mutation()?;
        }
        if mode == OpenMode::Read {
            self.faults.read(path)?;
        }
        Ok(Arc::new(FaultInjectingFile {
            inner: self.inner.open_file(path, mode)?,
            faults: self.faults.clone(),
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.faults.mutation()?;
        self.inner.create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.inner.list_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.faults.mutation()?;
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.faults.mutation()?;
        self.inner.remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.faults.mutation()?;
        self.inner.remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.faults.mutation()?;
        self.check_sync()?;
        self.inner.sync_dir(path)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.faults.read(path)?;
        self.inner.file_size(path)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        self.inner.lock(path)
    }
}
