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
//! - reads can fail too, on command ([`SimOp::Read`], [`SimOp::ReadAt`]): a
//!   transient error of a flaky device or network file system, which the
//!   next read of the same file does not repeat. Reads are not mutating
//!   operations: they are never a crash point and do not move one;
//! - every operation is counted by kind ([`CrashSimStorage::operations_of`]),
//!   so a test can check, say, that a poisoned writer never fsyncs again;
//! - an operation can be held at a [`SimGate`] (before it runs, or after a
//!   failure took effect and before its error is returned), so that a test
//!   decides how threads interleave;
//! - `remove_dir_all` unlinks entry by entry, depth first, so a crash may leave
//!   a directory half emptied;
//! - `lock` creates its file when missing, like `FsStorage` (the creation is
//!   not counted as an operation: no crash point or fault lands on it);
//! - the write-behind hint (`start_writeback`, [`SimOp::WriteBack`]) makes
//!   nothing durable, as `sync_file_range` does not: it is counted and can be
//!   failed, and is otherwise without effect;
//! - the operation at the crash point is in flight: a write, truncate or
//!   directory change is applied (unsynced, so the image may tear or drop it),
//!   a sync is not.
//!
//! Not modelled: hard links, `..` in paths, file modes, and the rename of a
//! directory into a different parent being atomic (it is two changes, one per
//! parent, each durable with its own directory's sync; highwater only renames
//! within a directory).

mod fault;
mod file;
mod gate;
mod image;
mod tree;

pub use fault::{SimFault, SimOp};
pub use gate::SimGate;
pub use image::{CrashImage, SECTOR};

use super::{DirEntry, OpenMode, Storage, StorageFile, StorageLock};
use file::{SimFile, SimLock};
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tree::Tree;

#[derive(Debug)]
struct SimState {
    tree: Tree,
    /// Mutating operations attempted so far.
    operations: u64,
    /// Operations attempted so far, by kind (reads included).
    by_kind: HashMap<SimOp, u64>,
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

    /// Counts an operation and decides its fate: a mutating one gets the
    /// next operation number and may be the crash point; any one may match
    /// a fault.
    fn admit(&mut self, op: SimOp, path: &Path) -> io::Result<Admit> {
        self.alive()?;
        *self.by_kind.entry(op).or_default() += 1;
        let n = if op.mutates() {
            let n = self.operations;
            self.operations += 1;
            if n >= self.crash_at {
                self.crashed = Some(format!("operation {n}: {op:?} {}", path.display()));
                return Ok(Admit::Crash {
                    in_flight: !matches!(op, SimOp::SyncFile | SimOp::SyncDir),
                });
            }
            Some(n)
        } else {
            None
        };
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
                by_kind: HashMap::new(),
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

    /// Operations of kind `op` attempted so far (failed ones included;
    /// reads too, for the read kinds), e.g. how many file fsyncs a workload
    /// made.
    pub fn operations_of(&self, op: SimOp) -> u64 {
        self.state().by_kind.get(&op).copied().unwrap_or(0)
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

    /// Fails an operation on command (see [`SimFault`]). Faults are tried in
    /// the order they were injected; the first that matches decides.
    pub fn inject(&self, fault: SimFault) {
        self.state().faults.push(fault);
    }

    /// Removes every injected fault, spent or not: from now on operations
    /// succeed again (the device "recovered"). What failed faults did stays
    /// done: forgotten writes are still never durable.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
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

    /// Runs a read-only query on a live process (one no fault can fail,
    /// such as a length or a listing).
    fn read<T>(&self, run: impl FnOnce(&Tree) -> io::Result<T>) -> io::Result<T> {
        let s = self.state();
        s.alive()?;
        run(&s.tree)
    }

    /// Runs a non-mutating operation of kind `op` ([`SimOp::Read`],
    /// [`SimOp::ReadAt`] or [`SimOp::WriteBack`]) on a live process: counted
    /// by kind, and failed or held by a matching fault.
    fn read_op<T>(
        &self,
        op: SimOp,
        path: &Path,
        run: impl FnOnce(&Tree) -> io::Result<T>,
    ) -> io::Result<T> {
        debug_assert!(!op.mutates());
        let mut s = self.state();
        match s.admit(op, path)? {
            Admit::Run => {}
            Admit::Crash { .. } => unreachable!("a read is never a crash point"),
            Admit::Fail(kind, gate) => {
                drop(s);
                if let Some(gate) = gate {
                    gate.pass();
                }
                return Err(injected(kind, op, path));
            }
            Admit::Pause(gate) => {
                drop(s);
                gate.pass();
                s = self.state();
                s.alive()?;
            }
        }
        run(&s.tree)
    }
}

impl Storage for CrashSimStorage {
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let lookup = |t: &Tree| match t.lookup_file(path) {
            Ok(ino) => Ok(Some(ino)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        let existing = if mode == OpenMode::Read {
            self.read_op(SimOp::Read, path, lookup)?
        } else {
            self.read(lookup)?
        };
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
        self.read_op(SimOp::Read, path, |t| {
            Ok(t.file(t.lookup_file(path)?).live.len() as u64)
        })
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
