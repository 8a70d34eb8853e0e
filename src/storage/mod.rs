//! The storage layer: every byte highwater reads or writes goes through the
//! [`Storage`] trait.
//!
//! The real file system ([`FsStorage`]) is the default. Tests substitute
//! [`CrashSimStorage`], which simulates crashes and fails chosen operations,
//! which is why no other module of the crate touches `std::fs`.
//!
//! Invariants an implementation must keep:
//! - `write_all_at` either writes every byte or returns an error; after an error the
//!   file's contents in that range are unspecified (the caller poisons itself).
//! - Nothing is durable until `sync_data`/`sync_all` returned `Ok` for the file
//!   (`start_writeback` is a hint that makes nothing durable), and
//!   a created, renamed or removed directory entry is durable only once
//!   `sync_dir` of its parent returned `Ok`.
//! - `lock` is exclusive across processes and across handles in one process, and is
//!   released when the returned guard is dropped.
//! - An open handle keeps its file: removing the name, or renaming another file
//!   over it, leaves the handle reading what it read before.
//!
//! [`conformance`] checks these rules, and the rest of the contract documented on
//! the traits, against any implementation.

pub mod conformance;
mod fs;
mod sequential;
mod sim;
mod write_behind;

pub use fs::FsStorage;
pub(crate) use sequential::SequentialWriter;
pub use sim::{CrashImage, CrashSimStorage, SimFault, SimGate, SimOp, SECTOR};
pub(crate) use write_behind::WriteBehind;

use crate::error::IoContext;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// How [`Storage::open_file`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenMode {
    /// Open an existing file for reading.
    Read,
    /// Open an existing file for reading and writing.
    ReadWrite,
    /// Create a new file for reading and writing; fail if it exists.
    CreateNew,
    /// Open for reading and writing, creating the file if it does not exist.
    Create,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The file name (entries whose names are not UTF-8 are not listed).
    pub name: String,
    /// True for a directory.
    pub is_dir: bool,
}

/// An open file. Positional reads and writes take `&self` so that one handle can be
/// written by one thread while another fsyncs it.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at
    /// the end of the file).
    ///
    /// # Errors
    /// Any I/O error of the underlying storage.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `offset`, extending the file if needed.
    ///
    /// # Errors
    /// Any I/O error; after an error the range's contents are unspecified.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// The file's current length in bytes.
    ///
    /// # Errors
    /// Any I/O error of the underlying storage.
    fn len(&self) -> io::Result<u64>;

    /// True when the file is empty.
    ///
    /// # Errors
    /// Any I/O error of the underlying storage.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Sets the file's length (cuts or zero-extends).
    ///
    /// # Errors
    /// Any I/O error of the underlying storage.
    fn truncate(&self, len: u64) -> io::Result<()>;

    /// Makes the file's data (and its length) durable, like `fdatasync`.
    ///
    /// # Errors
    /// Any I/O error. A failed sync must never be retried: the caller cannot know
    /// which pages were lost.
    fn sync_data(&self) -> io::Result<()>;

    /// Makes the file's data and all of its metadata durable, like `fsync`.
    ///
    /// # Errors
    /// As [`StorageFile::sync_data`].
    fn sync_all(&self) -> io::Result<()>;

    /// Starts writing the `len` bytes at `offset` back to the device, without
    /// waiting for it: a hint, so that a later [`sync_data`](Self::sync_data) or
    /// [`sync_all`](Self::sync_all) of a large file has less left to write
    /// (write-behind). It makes **nothing** durable — only a sync does — and it
    /// never consumes a write-back error a later sync must report.
    /// [`FsStorage`] calls `sync_file_range(SYNC_FILE_RANGE_WRITE)` on Linux;
    /// the default does nothing.
    ///
    /// # Errors
    /// Any I/O error of the underlying storage; highwater treats it like a
    /// failed write (the file is abandoned).
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// `UnexpectedEof` when the file ends first, or any I/O error.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ended before the requested range",
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends `buf` at the current end of the file and returns the offset it was
    /// written at.
    ///
    /// # Errors
    /// As [`StorageFile::write_all_at`].
    fn append(&self, buf: &[u8]) -> io::Result<u64> {
        let offset = self.len()?;
        self.write_all_at(buf, offset)?;
        Ok(offset)
    }
}

/// The whole contents of a file, readable in place: a read-only memory map for
/// [`FsStorage`], a loaded copy for other storages. The bytes start at a 16-byte
/// aligned address.
pub trait MappedFile: Send + Sync + fmt::Debug {
    /// The file's bytes.
    fn bytes(&self) -> &[u8];
}

/// A file's bytes loaded into memory (the default [`Storage::map_file`]).
#[derive(Debug)]
pub struct LoadedFile(Loaded);

/// The buffer of a [`LoadedFile`]: 16-byte aligned either way.
#[derive(Debug)]
enum Loaded {
    Aligned(rkyv::util::AlignedVec<16>),
    /// A plain vector whose address was found 16-byte aligned.
    Vec(Vec<u8>),
    /// Anonymous memory (page-aligned), of which the first `len` bytes.
    Anon(memmap2::MmapMut, usize),
}

impl MappedFile for LoadedFile {
    fn bytes(&self) -> &[u8] {
        match &self.0 {
            Loaded::Aligned(b) => b,
            Loaded::Vec(b) => b,
            Loaded::Anon(m, len) => &m[..*len],
        }
    }
}

impl LoadedFile {
    /// The bytes of `bytes`: kept as they are when their address is
    /// 16-byte aligned (a large zeroed vector comes straight from the
    /// system, page by page as it is written), else copied to an aligned
    /// buffer.
    #[cfg_attr(not(feature = "encryption"), allow(dead_code))]
    pub(crate) fn from_vec(bytes: Vec<u8>) -> Self {
        if (bytes.as_ptr() as usize).is_multiple_of(16) {
            LoadedFile(Loaded::Vec(bytes))
        } else {
            Self::from_bytes(&bytes)
        }
    }

    /// A new buffer of `len` zero bytes to fill through `fill`, for file
    /// `path`: a large one is anonymous memory the system is asked to back
    /// with huge pages (fewer page faults while it is filled), a small one
    /// a vector.
    ///
    /// # Errors
    /// `fill`'s; `Io` naming `path` when the memory cannot be mapped.
    #[cfg_attr(not(feature = "encryption"), allow(dead_code))]
    pub(crate) fn filled(
        path: &Path,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> crate::Result<()>,
    ) -> crate::Result<Self> {
        const LARGE: usize = 4 << 20;
        if len < LARGE {
            let mut bytes = vec![0u8; len];
            fill(&mut bytes)?;
            return Ok(Self::from_vec(bytes));
        }
        let mut map = memmap2::MmapMut::map_anon(len).ctx("map memory for", path)?;
        // Only advice: without huge pages the memory is the same, slower.
        let _ = map.advise(memmap2::Advice::HugePage);
        fill(&mut map[..len])?;
        Ok(LoadedFile(Loaded::Anon(map, len)))
    }

    /// A copy of `bytes` (16-byte aligned).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut buf = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        buf.extend_from_slice(bytes);
        LoadedFile(Loaded::Aligned(buf))
    }
}

/// Reads a whole file into a 16-byte aligned buffer; the allocation is the
/// file's actual size.
///
/// # Errors
/// Any I/O error of the storage.
pub fn load_file<S: Storage + ?Sized>(storage: &S, path: &Path) -> io::Result<LoadedFile> {
    let file = storage.open_file(path, OpenMode::Read)?;
    let len = usize::try_from(file.len()?)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "file too large to load"))?;
    let mut buf = rkyv::util::AlignedVec::<16>::with_capacity(len);
    buf.resize(len, 0);
    file.read_exact_at(&mut buf, 0)?;
    Ok(LoadedFile(Loaded::Aligned(buf)))
}

/// A held exclusive lock; dropping it releases the lock.
pub trait StorageLock: Send + Sync + fmt::Debug {}

/// A file system, real or simulated.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Opens (or creates) a file.
    ///
    /// # Errors
    /// `NotFound` for a missing file in `Read`/`ReadWrite` mode, `AlreadyExists` in
    /// `CreateNew` mode, or any other I/O error.
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>>;

    /// Creates a directory and its missing parents.
    ///
    /// # Errors
    /// Any I/O error.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Lists a directory: its direct children, sorted by name.
    ///
    /// # Errors
    /// `NotFound` when it does not exist, or any I/O error.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;

    /// Renames a file or directory, replacing `to` if it is a file.
    ///
    /// # Errors
    /// Any I/O error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file.
    ///
    /// # Errors
    /// Any I/O error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything in it.
    ///
    /// # Errors
    /// Any I/O error.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Makes the entries of a directory (creations, renames, removals) durable.
    ///
    /// # Errors
    /// Any I/O error; like a file sync, it must not be retried.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Whether a file or directory exists.
    ///
    /// # Errors
    /// Any I/O error other than "not found".
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// The size of a file in bytes.
    ///
    /// # Errors
    /// `NotFound` or any other I/O error.
    fn file_size(&self, path: &Path) -> io::Result<u64>;

    /// Takes an exclusive lock on the file at `path`, creating it if needed, without
    /// waiting.
    ///
    /// # Errors
    /// `WouldBlock` when another holder has it, or any I/O error.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>>;

    /// Makes a whole file readable in place. The default loads it into memory;
    /// [`FsStorage`] maps it. Only files that are never modified again may be
    /// mapped (highwater maps only published state files).
    ///
    /// # Errors
    /// Any I/O error.
    fn map_file(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>> {
        Ok(Arc::new(load_file(self, path)?))
    }
}

/// Creates `dir` and any missing parents, and makes every directory entry on
/// the way durable: the parent of each component is fsynced, top down, whether
/// or not this call created it. An entry that exists is not necessarily
/// durable: the process that created it may have died before fsyncing its
/// parent, and the page cache outlives it.
///
/// # Errors
/// [`crate::Error::Io`] naming the directory that could not be created or synced.
pub fn create_dir_all_durable(storage: &dyn Storage, dir: &Path) -> crate::Result<()> {
    if storage.exists(dir).ctx("stat", dir)? {
        // Something is there: it must be a directory (a file is an error
        // naming it, not a lock conflict later).
        storage.list_dir(dir).ctx("open directory", dir)?;
    } else {
        storage.create_dir_all(dir).ctx("create directory", dir)?;
    }
    let mut chain: Vec<&Path> = dir
        .ancestors()
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    chain.reverse();
    for d in chain {
        let parent = match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            Some(_) => Path::new("."),
            None => continue, // the root has no parent to sync
        };
        storage.sync_dir(parent).ctx("sync directory", parent)?;
    }
    Ok(())
}

/// Takes the exclusive lock `lock_path` for the one writer of a directory
/// (a log, a checkpoint directory, a sink).
///
/// # Errors
/// [`crate::Error::Locked`] when another writer (in this process or another)
/// holds it; [`crate::Error::Io`] for any other failure, naming the file.
pub fn lock_exclusive(
    storage: &dyn Storage,
    lock_path: &Path,
) -> crate::Result<Box<dyn StorageLock>> {
    storage.lock(lock_path).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock => crate::Error::Locked {
            path: lock_path.to_path_buf(),
            source: e,
        },
        _ => crate::Error::io("lock", lock_path, e),
    })
}

/// The storage used when none is configured: the real file system.
pub fn default_storage() -> Arc<dyn Storage> {
    Arc::new(FsStorage)
}
