//! [`FsStorage`]: the [`Storage`] implementation over the real file system. The
//! only place in the crate that calls `std::fs`.

use super::{DirEntry, MappedFile, OpenMode, Storage, StorageFile, StorageLock};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// How long a held lock is tried again before it is reported held (see
/// `FsStorage::lock`).
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(50);

/// The real file system (Unix: positional I/O through `pread`/`pwrite`, locks
/// through `flock`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FsStorage;

#[derive(Debug)]
struct FsFile(File);

impl StorageFile for FsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        start_writeback(&self.0, offset, len)
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: queues the dirty pages of the
/// range for write-back and returns without waiting. Without a `WAIT` flag
/// the call does not check or advance the file's write-back error state
/// (the kernel's `errseq`), so a write-back error of these pages is still
/// reported to the next `fsync`/`fdatasync`, which stays the only thing that
/// makes them durable.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return Ok(()); // beyond any file: nothing to start
    };
    // SAFETY: `sync_file_range` only reads its integer arguments; the
    // descriptor is open for as long as `file` is borrowed, and the call
    // neither retains it nor touches any memory of this process.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere the hint does nothing (the final sync writes everything).
#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) -> io::Result<()> {
    Ok(())
}

/// A read-only memory map of a whole file.
#[derive(Debug)]
struct FsMap(memmap2::Mmap);

impl MappedFile for FsMap {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
fn map_read_only(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes change (or the
    // process gets SIGBUS) if the file is modified or truncated while mapped.
    // highwater maps only published state files: they are written once into a
    // temporary directory, fsynced and renamed into place, and never written,
    // truncated or reopened for writing afterwards; deleting one (retention)
    // unlinks it, which leaves an existing mapping intact. The crate documents
    // that nothing else may modify files in a checkpoint directory.
    unsafe { memmap2::Mmap::map(file) }
}

#[derive(Debug)]
struct FsLock(#[allow(dead_code)] File);

impl StorageLock for FsLock {}

impl Storage for FsStorage {
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::Read => options.read(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::CreateNew => options.read(true).write(true).create_new(true),
            OpenMode::Create => options.read(true).write(true).create(true).truncate(false),
        };
        Ok(Arc::new(FsFile(options.open(path)?)))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let is_dir = entry.file_type()?.is_dir();
            entries.push(DirEntry { name, is_dir });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // A child process this one is starting holds a copy of every lock's
        // descriptor between fork and exec (flock belongs to the open file
        // description): a lock released meanwhile still looks held for a few
        // microseconds. So a held lock is tried again for a short while
        // before it is reported held; a real second writer is still refused.
        let deadline = std::time::Instant::now() + LOCK_PATIENCE;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Box::new(FsLock(file))),
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "the lock is held by another handle",
                    ))
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    fn map_file(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            // Nothing to map (and zero-length maps are refused by some systems).
            return Ok(Arc::new(super::load_file(self, path)?));
        }
        Ok(Arc::new(FsMap(map_read_only(&file)?)))
    }
}
