//! [`CrashSimStorage`]: an in-memory [`Storage`] that simulates crashes and fails
//! operations on command, for crash-consistency tests of highwater and of the
//! pipelines built on it.
//!
//! It keeps, for every file and directory, what the process sees apart from
//! what a crash would leave behind (`tree.rs` states the invariants). A test runs
//! a workload against it, crashes it at a chosen mutating operation (or at once),
//! and takes a [`CrashImage`] of it: a fresh storage holding what a reboot would
//! find, on which recovery runs. Handles of the crashed "process" fail every
//! call from then on, so nothing it does after the crash reaches the image.
//!
//! Operations it models as the Linux page cache does:
//! - writes, truncates and directory changes are visible at once and durable
//!   only after `sync_data`/`sync_all` of the file or `sync_dir` of the
//!   directory;
//! - a failed file sync forgets the file's unsynced writes: they are still read
//!   back but never reach the device, even if a later sync succeeds. The error
//!   is reported once, to the sync that failed; the next sync of the file
//!   succeeds. A failed background write-back
//!   ([`CrashSimStorage::fail_writeback`]) forgets them too and reports its
//!   error to the next sync of the file, whichever thread makes it, and to that
//!   one only;
//! - a failed directory sync forgets the directory's unsynced changes in the
//!   same way: still seen by the process, never made durable by a later sync;
//! - an operation can be held at a [`SimGate`] (before it runs, or after a
//!   failure took effect and before its error is returned), so that a test
//!   decides how threads interleave;
//! - `remove_dir_all` unlinks entry by entry, depth first, so a crash may leave
//!   a directory half emptied;
//! - `lock` creates its file when missing, like `FsStorage` (the creation is
//!   not counted as an operation: no crash point or fault lands on it);
//! - the operation at the crash point is in flight: a write, truncate or
//!   directory change is applied (unsynced, so the image may tear or drop it),
//!   a sync is not.
//!
//! Not modelled: hard links, `..` in paths, file modes, and the rename of a
//! directory into a different parent being atomic (it is two changes, one per
//! parent, each durable with its own directory's sync; highwater only renames
//! within a directory).

mod gate;
mod image;
mod tree;

pub use gate::SimGate;
pub use image::{CrashImage, SECTOR};

use super::{DirEntry, OpenMode, Storage, StorageFile, StorageLock};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tree::{FileOp, Ino, Tree};

/// A kind of mutating operation, for [`SimFault`] and crash descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SimOp {
    /// `write_all_at` (and `append`).
    Write,
    /// `truncate`.
    Truncate,
    /// `sync_data` / `sync_all`.
    SyncFile,
    /// `open_file` in a creating mode.
    CreateFile,
    /// `create_dir_all`.
    CreateDir,
    /// `rename`.
    Rename,
    /// `remove_file` / `remove_dir_all`.
    Remove,
    /// `sync_dir`.
    SyncDir,
}

/// An operation to fail on command: the `skip`+1-th matching operation from
/// now fails, and so do the `times - 1` matching ones after it. It matches
/// operations of one kind ([`SimFault::new`]) or the operation with a given
/// number ([`SimFault::at`]), optionally only on some paths.
///
/// A failed write writes the first half of its sectors, as a full device
/// would; a failed file or directory sync forgets its unsynced changes (see
/// the module documentation); other failed operations change nothing.
///
/// A fault can also hold the matching operation at a [`SimGate`]:
/// [`SimFault::pause`] holds it before it runs (it then succeeds),
/// [`SimFault::paused`] holds a failing one after its failure took effect and
/// before the error is returned (an error that comes back late).
#[derive(Debug, Clone)]
pub struct SimFault {
    op: Option<SimOp>,
    at: Option<u64>,
    path_contains: Option<String>,
    skip: u64,
    times: u64,
    kind: io::ErrorKind,
    fails: bool,
    gate: Option<SimGate>,
}

impl SimFault {
    /// Fails the next `op`, once, with an I/O error (`EIO`).
    pub fn new(op: SimOp) -> Self {
        SimFault {
            op: Some(op),
            at: None,
            path_contains: None,
            skip: 0,
            times: 1,
            kind: io::ErrorKind::Other,
            fails: true,
            gate: None,
        }
    }

    /// Holds the next `op` at `gate` before it runs; once the gate is open it
    /// runs and succeeds (unless the process crashed meanwhile).
    pub fn pause(op: SimOp, gate: &SimGate) -> Self {
        SimFault {
            fails: false,
            gate: Some(gate.clone()),
            ..Self::new(op)
        }
    }

    /// Holds the failing operation at `gate` after its failure took effect (a
    /// failed sync has forgotten the unsynced writes) and before its error is
    /// returned.
    pub fn paused(mut self, gate: &SimGate) -> Self {
        self.gate = Some(gate.clone());
        self
    }

    /// Fails mutating operation number `n` (as counted by
    /// [`CrashSimStorage::operations`]), whatever it is, with an I/O error.
    pub fn at(n: u64) -> Self {
        SimFault {
            op: None,
            at: Some(n),
            ..Self::new(SimOp::Write)
        }
    }

    /// Only operations on a path containing `part` match.
    pub fn on_path(mut self, part: impl Into<String>) -> Self {
        self.path_contains = Some(part.into());
        self
    }

    /// Lets `n` matching operations succeed first.
    pub fn after(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    /// Fails `n` matching operations (`u64::MAX`: every one from then on).
    pub fn times(mut self, n: u64) -> Self {
        self.times = n;
        self
    }

    /// The error kind returned, e.g. `StorageFull` for a device out of space.
    pub fn with_kind(mut self, kind: io::ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    fn matches(&self, n: u64, op: SimOp, path: &Path) -> bool {
        self.op.is_none_or(|o| o == op)
            && self.at.is_none_or(|at| at == n)
            && self.times > 0
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.to_string_lossy().contains(p))
    }
}

#[derive(Debug)]
struct SimState {
    tree: Tree,
    /// Mutating operations attempted so far.
    operations: u64,
    /// The operation number that crashes the process.
    crash_at: u64,
    /// Set once crashed: what the process was doing.
    crashed: Option<String>,
    faults: Vec<SimFault>,
    locks: BTreeSet<PathBuf>,
}

/// What a mutating operation may do after the crash and fault checks.
enum Admit {
    /// Carry it out.
    Run,
    /// The process crashes here; an `in_flight` operation is carried out
    /// (unsynced) first.
    Crash {
        /// Whether the operation's effect may reach the crash image.
        in_flight: bool,
    },
    /// Fail it with this error, after the fault's effect, then wait at the
    /// gate, if any, before returning the error.
    Fail(io::ErrorKind, Option<SimGate>),
    /// Wait at the gate, then carry it out.
    Pause(SimGate),
}

impl SimState {
    fn alive(&self) -> io::Result<()> {
        match &self.crashed {
            Some(at) => Err(io::Error::other(format!(
                "simulated crash (at: {at}): the process is gone"
            ))),
            None => Ok(()),
        }
    }

    /// Counts a mutating operation and decides its fate.
    fn admit(&mut self, op: SimOp, path: &Path) -> io::Result<Admit> {
        self.alive()?;
        let n = self.operations;
        self.operations += 1;
        if n >= self.crash_at {
            self.crashed = Some(format!("operation {n}: {op:?} {}", path.display()));
            return Ok(Admit::Crash {
                in_flight: !matches!(op, SimOp::SyncFile | SimOp::SyncDir),
            });
        }
        for fault in &mut self.faults {
            if fault.matches(n, op, path) {
                if fault.skip > 0 {
                    fault.skip -= 1;
                    continue;
                }
                fault.times -= 1;
                return Ok(match (fault.fails, &fault.gate) {
                    (false, Some(gate)) => Admit::Pause(gate.clone()),
                    (false, None) => Admit::Run,
                    (true, gate) => Admit::Fail(fault.kind, gate.clone()),
                });
            }
        }
        Ok(Admit::Run)
    }
}

fn injected(kind: io::ErrorKind, op: SimOp, path: &Path) -> io::Error {
    io::Error::new(
        kind,
        format!("simulated failure of {op:?} on {}", path.display()),
    )
}

/// The crash-simulating storage. Clones share the same simulated machine.
#[derive(Debug, Clone)]
pub struct CrashSimStorage {
    state: Arc<Mutex<SimState>>,
}

impl Default for CrashSimStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl CrashSimStorage {
    /// An empty file system (just a root directory).
    pub fn new() -> Self {
        Self::from_tree(Tree::new())
    }

    fn from_tree(tree: Tree) -> Self {
        CrashSimStorage {
            state: Arc::new(Mutex::new(SimState {
                tree,
                operations: 0,
                crash_at: u64::MAX,
                crashed: None,
                faults: Vec::new(),
                locks: BTreeSet::new(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mutating operations attempted so far (failed ones included): the crash
    /// points of a workload are `0..operations()` of a run without a crash.
    pub fn operations(&self) -> u64 {
        self.state().operations
    }

    /// Crashes the process at mutating operation number `n` (counted from the
    /// creation of this storage, 0-based): that operation is in flight (see the
    /// module documentation) and fails, and so does every call after it.
    pub fn crash_at(&self, n: u64) {
        self.state().crash_at = n;
    }

    /// Crashes the process now.
    pub fn crash(&self) {
        let mut s = self.state();
        if s.crashed.is_none() {
            s.crashed = Some(format!("explicit crash after {} operations", s.operations));
        }
    }

    /// What the process was doing when it crashed; `None` while it runs.
    pub fn crashed(&self) -> Option<String> {
        self.state().crashed.clone()
    }

    /// Fails an operation on command (see [`SimFault`]).
    pub fn inject(&self, fault: SimFault) {
        self.state().faults.push(fault);
    }

    /// A background write-back of `path` fails now, as when the device reports
    /// an error for pages the kernel flushed on its own: the file's unsynced
    /// writes are forgotten (still read back, never durable) and the next sync
    /// of the file, by whichever handle or thread, fails once; the syncs after
    /// it succeed. Not counted as an operation of the process.
    ///
    /// # Errors
    /// `NotFound` when there is no such file.
    pub fn fail_writeback(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        let ino = s.tree.lookup_file(path)?;
        let file = s.tree.file_mut(ino);
        file.fail_sync();
        file.writeback_error = true;
        Ok(())
    }

    /// The machine after a reboot: a new storage holding what `image` says a
    /// crash leaves of this one, all of it durable, with no locks held and no
    /// faults set. This storage is left as it is (crash it first to stop the
    /// old process from writing on).
    pub fn image(&self, image: CrashImage) -> CrashSimStorage {
        Self::from_tree(image::crash_image(&self.state().tree, image))
    }

    /// Runs a mutating operation: the crash and fault checks, then `run`
    /// (also for the in-flight operation of a crash); an injected fault runs
    /// `on_fault` instead.
    fn mutate<T>(
        &self,
        op: SimOp,
        path: &Path,
        run: impl FnOnce(&mut Tree) -> io::Result<T>,
        on_fault: impl FnOnce(&mut Tree),
    ) -> io::Result<T> {
        let mut s = self.state();
        match s.admit(op, path)? {
            Admit::Run => run(&mut s.tree),
            Admit::Crash { in_flight } => {
                if in_flight {
                    let _ = run(&mut s.tree);
                }
                s.alive()?;
                unreachable!("admit crashed the process")
            }
            Admit::Fail(kind, gate) => {
                on_fault(&mut s.tree);
                drop(s);
                if let Some(gate) = gate {
                    gate.pass();
                }
                Err(injected(kind, op, path))
            }
            Admit::Pause(gate) => {
                drop(s);
                gate.pass();
                let mut s = self.state();
                s.alive()?;
                run(&mut s.tree)
            }
        }
    }

    /// Runs a read-only operation on a live process.
    fn read<T>(&self, run: impl FnOnce(&Tree) -> io::Result<T>) -> io::Result<T> {
        let s = self.state();
        s.alive()?;
        run(&s.tree)
    }
}

/// An open file of a [`CrashSimStorage`].
#[derive(Debug)]
struct SimFile {
    storage: CrashSimStorage,
    ino: Ino,
    path: PathBuf,
    writable: bool,
}

impl SimFile {
    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{}: opened read-only", self.path.display()),
            ))
        }
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.storage.read(|t| {
            let live = &t.file(self.ino).live;
            let start = (offset as usize).min(live.len());
            let n = buf.len().min(live.len() - start);
            buf[..n].copy_from_slice(&live[start..start + n]);
            Ok(n)
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_writable()?;
        let write = |t: &mut Tree, data: &[u8]| {
            t.file_mut(self.ino).change(FileOp::Write {
                offset,
                data: data.to_vec(),
            })
        };
        self.storage.mutate(
            SimOp::Write,
            &self.path,
            |t| {
                write(t, buf);
                Ok(())
            },
            |t| {
                let sectors = (buf.len() as u64).div_ceil(SECTOR) / 2;
                write(t, &buf[..(sectors * SECTOR) as usize]);
            },
        )
    }

    fn len(&self) -> io::Result<u64> {
        self.storage
            .read(|t| Ok(t.file(self.ino).live.len() as u64))
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        self.storage.mutate(
            SimOp::Truncate,
            &self.path,
            |t| {
                t.file_mut(self.ino).change(FileOp::SetLen(len));
                Ok(())
            },
            |_| {},
        )
    }

    fn sync_data(&self) -> io::Result<()> {
        self.storage.mutate(
            SimOp::SyncFile,
            &self.path,
            |t| {
                let file = t.file_mut(self.ino);
                if std::mem::take(&mut file.writeback_error) {
                    return Err(io::Error::other(format!(
                        "simulated write-back error reported by sync of {}",
                        self.path.display()
                    )));
                }
                file.sync();
                Ok(())
            },
            |t| t.file_mut(self.ino).fail_sync(),
        )
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

#[derive(Debug)]
struct SimLock {
    storage: CrashSimStorage,
    path: PathBuf,
}

impl StorageLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.storage.state().locks.remove(&self.path);
    }
}

impl Storage for CrashSimStorage {
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let existing = self.read(|t| match t.lookup_file(path) {
            Ok(ino) => Ok(Some(ino)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })?;
        let ino = match (mode, existing) {
            (OpenMode::CreateNew, Some(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: already exists", path.display()),
                ))
            }
            (OpenMode::Read | OpenMode::ReadWrite | OpenMode::Create, Some(ino)) => ino,
            (OpenMode::Read | OpenMode::ReadWrite, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: no such file", path.display()),
                ))
            }
            (OpenMode::Create | OpenMode::CreateNew, None) => {
                self.mutate(SimOp::CreateFile, path, |t| t.create_file(path), |_| {})?
            }
        };
        Ok(Arc::new(SimFile {
            storage: self.clone(),
            ino,
            path: path.to_path_buf(),
            writable: mode != OpenMode::Read,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.mutate(SimOp::CreateDir, path, |t| t.create_dir_all(path), |_| {})
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.read(|t| {
            let ino = t.lookup_dir(path)?;
            Ok(t.list(ino)
                .into_iter()
                .map(|(name, is_dir)| DirEntry { name, is_dir })
                .collect())
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.mutate(SimOp::Rename, from, |t| t.rename(from, to), |_| {})
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.mutate(SimOp::Remove, path, |t| t.remove(path, false), |_| {})
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.mutate(SimOp::Remove, path, |t| t.remove(path, true), |_| {})
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.mutate(
            SimOp::SyncDir,
            path,
            |t| {
                let ino = t.lookup_dir(path)?;
                t.sync_dir(ino);
                Ok(())
            },
            |t| {
                if let Ok(ino) = t.lookup_dir(path) {
                    t.fail_sync_dir(ino);
                }
            },
        )
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.read(|t| match t.lookup(path) {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        })
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.read(|t| Ok(t.file(t.lookup_file(path)?).live.len() as u64))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        let path = &Tree::canonical(path)?;
        let mut s = self.state();
        s.alive()?;
        // The lock file is created when missing, as `FsStorage` does (not
        // counted as an operation: no crash point or fault lands on it; the
        // entry is durable with the next `sync_dir` of its directory).
        match s.tree.lookup_file(path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                s.tree.create_file(path)?;
            }
            Err(e) => return Err(e),
        }
        if !s.locks.insert(path.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{}: the lock is held by another handle", path.display()),
            ));
        }
        Ok(Box::new(SimLock {
            storage: self.clone(),
            path: path.to_path_buf(),
        }))
    }
}
