//! What a [`CrashSimStorage`](super::CrashSimStorage) can be told to fail: the
//! kinds of operation ([`SimOp`]) and the faults that match them
//! ([`SimFault`]).
//!
//! Invariants:
//! - A fault matches an operation when every condition it was given holds
//!   (its kind, its operation number, its path conditions) and it has failures
//!   left (`times > 0`); `skip` matching operations pass first.
//! - Operation numbers belong to mutating operations only: a fault built with
//!   [`SimFault::at`] never matches a read, and reads never move a crash point.

use super::gate::SimGate;
use super::tree::Tree;
use std::io;
use std::path::{Path, PathBuf};

/// A kind of operation, for [`SimFault`], [`CrashSimStorage::operations_of`]
/// and crash descriptions.
///
/// Every kind but [`SimOp::Read`], [`SimOp::ReadAt`] and
/// [`SimOp::WriteBack`] mutates: it is counted by
/// [`CrashSimStorage::operations`] and may be a crash point. The three others
/// are counted only by [`CrashSimStorage::operations_of`], and only a fault
/// naming them fails them.
///
/// [`CrashSimStorage::operations`]: super::CrashSimStorage::operations
/// [`CrashSimStorage::operations_of`]: super::CrashSimStorage::operations_of
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
    /// A read that finds a file: `open_file` in `Read` mode and `file_size`
    /// (loading or mapping a whole file opens it first). Not mutating.
    Read,
    /// A positional read of an open file (`read_at`, `read_exact_at`). Not
    /// mutating.
    ReadAt,
    /// `start_writeback`, the write-behind hint. Not mutating: it makes
    /// nothing durable and changes nothing a crash image holds, so it is
    /// never a crash point and does not move one.
    WriteBack,
}

impl SimOp {
    /// Whether the operation changes the file system (and so is counted by
    /// `operations` and may be a crash point).
    pub(super) fn mutates(self) -> bool {
        !matches!(self, SimOp::Read | SimOp::ReadAt | SimOp::WriteBack)
    }
}

/// An operation to fail on command: the `skip`+1-th matching operation from
/// now fails, and so do the `times - 1` matching ones after it. It matches
/// operations of one kind ([`SimFault::new`]) or the mutating operation with a
/// given number ([`SimFault::at`]), optionally only on some paths
/// ([`SimFault::on_path`], [`SimFault::under`]).
///
/// A failed write writes the first half of its sectors, as a full device
/// would; a failed file or directory sync forgets its unsynced changes (see
/// the module documentation of the simulator); other failed operations
/// change nothing. A fault stays until its failures are spent or
/// [`CrashSimStorage::clear_faults`](super::CrashSimStorage::clear_faults)
/// removes it (the device "recovers").
///
/// A fault can also hold the matching operation at a [`SimGate`]:
/// [`SimFault::pause`] holds it before it runs (it then succeeds),
/// [`SimFault::paused`] holds a failing one after its failure took effect and
/// before the error is returned (an error that comes back late).
///
/// # Examples
///
/// Every fsync fails from now on, and the next read of anything under
/// `/ckpt/b` fails once (a transient `EIO`):
///
/// ```
/// use highwater::storage::{CrashSimStorage, OpenMode, SimFault, SimOp, Storage};
/// use std::path::Path;
///
/// let sim = CrashSimStorage::new();
/// sim.create_dir_all(Path::new("/ckpt/b")).unwrap();
/// let file = sim.open_file(Path::new("/ckpt/b/f"), OpenMode::CreateNew).unwrap();
/// sim.inject(SimFault::new(SimOp::SyncFile).times(u64::MAX));
/// sim.inject(SimFault::new(SimOp::Read).under("/ckpt/b"));
/// assert!(file.sync_data().is_err());
/// assert!(file.sync_data().is_err());
/// assert!(sim.open_file(Path::new("/ckpt/b/f"), OpenMode::Read).is_err());
/// assert!(sim.open_file(Path::new("/ckpt/b/f"), OpenMode::Read).is_ok());
/// assert_eq!(sim.operations_of(SimOp::SyncFile), 2);
/// ```
#[derive(Debug, Clone)]
pub struct SimFault {
    op: Option<SimOp>,
    at: Option<u64>,
    path_contains: Option<String>,
    under: Option<PathBuf>,
    pub(super) skip: u64,
    pub(super) times: u64,
    pub(super) kind: io::ErrorKind,
    pub(super) fails: bool,
    pub(super) gate: Option<SimGate>,
}

impl SimFault {
    /// Fails the next `op`, once, with an I/O error (`EIO`).
    pub fn new(op: SimOp) -> Self {
        SimFault {
            op: Some(op),
            at: None,
            path_contains: None,
            under: None,
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
    /// [`CrashSimStorage::operations`](super::CrashSimStorage::operations)),
    /// whatever it is, with an I/O error.
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

    /// Only operations on `dir` or a path below it match (compared name by
    /// name, so `/a/b` is not under `/a/bc`). For a rename, the path is the
    /// source.
    pub fn under(mut self, dir: impl Into<PathBuf>) -> Self {
        self.under = Some(dir.into());
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

    /// Whether the fault matches operation `op` on `path`; `n` is its number
    /// when it mutates.
    pub(super) fn matches(&self, n: Option<u64>, op: SimOp, path: &Path) -> bool {
        self.op.is_none_or(|o| o == op)
            && self.at.is_none_or(|at| Some(at) == n)
            && self.times > 0
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.to_string_lossy().contains(p))
            && self.under.as_deref().is_none_or(|dir| is_under(path, dir))
    }
}

/// Whether `path` is `dir` or below it, both spelled canonically.
fn is_under(path: &Path, dir: &Path) -> bool {
    match (Tree::canonical(path), Tree::canonical(dir)) {
        (Ok(path), Ok(dir)) => path.starts_with(dir),
        _ => false,
    }
}
