//! The simulated file system's namespace and file contents, each in two versions:
//! what the process sees (`live`) and what a crash would leave (`durable`), plus
//! the changes made since the last sync (`pending`) that a crash may or may not
//! keep.
//!
//! Invariants:
//! - For a file, `durable` with every `pending` op applied in order is what a
//!   successful sync makes durable. `live` is what reads return; it equals that
//!   too, except after a failed sync, whose pending writes are dropped from
//!   `pending` but stay in `live` (Linux marks the pages clean: they are never
//!   written, yet still read back).
//! - For a directory, `durable` with every `pending` op applied equals `live`,
//!   except after a failed sync, whose pending changes are dropped in the same
//!   way. Directory entries name inodes, so a renamed file keeps its contents.
//! - Inodes are never freed while the simulation runs: an unlinked file may still
//!   be durable under its old name, and an open handle keeps working.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Component, Path};

/// An inode number; the root directory is [`ROOT`].
pub(super) type Ino = u64;
/// The root directory's inode.
pub(super) const ROOT: Ino = 0;

/// One unsynced change to a file's bytes.
#[derive(Debug, Clone)]
pub(super) enum FileOp {
    /// `data` written at `offset` (zero-filling any gap after the end).
    Write { offset: u64, data: Vec<u8> },
    /// The length set by a truncate.
    SetLen(u64),
}

impl FileOp {
    /// Applies the change to `bytes`.
    pub(super) fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            FileOp::Write { offset, data } => write_at(bytes, *offset, data),
            FileOp::SetLen(len) => bytes.resize(*len as usize, 0),
        }
    }
}

/// Writes `data` at `offset` into `bytes`, zero-filling a gap after the end.
pub(super) fn write_at(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    let end = start + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[start..end].copy_from_slice(data);
}

/// A regular file.
#[derive(Debug, Clone, Default)]
pub(super) struct FileNode {
    pub(super) live: Vec<u8>,
    pub(super) durable: Vec<u8>,
    pub(super) pending: Vec<FileOp>,
    /// A failed background write-back not yet reported: the next sync fails.
    pub(super) writeback_error: bool,
}

impl FileNode {
    /// A file whose live and durable contents are both `bytes`.
    pub(super) fn settled(bytes: Vec<u8>) -> Self {
        FileNode {
            live: bytes.clone(),
            durable: bytes,
            pending: Vec::new(),
            writeback_error: false,
        }
    }

    /// Records a change: visible now, durable after the next sync.
    pub(super) fn change(&mut self, op: FileOp) {
        op.apply(&mut self.live);
        self.pending.push(op);
    }

    /// A successful sync: every pending change becomes durable.
    pub(super) fn sync(&mut self) {
        for op in self.pending.drain(..) {
            op.apply(&mut self.durable);
        }
    }

    /// A failed sync: the pending changes are forgotten (never made durable)
    /// while the process still reads them back.
    pub(super) fn fail_sync(&mut self) {
        self.pending.clear();
    }
}

/// One unsynced change to a directory's entries.
#[derive(Debug, Clone)]
pub(super) enum DirOp {
    /// `name` now refers to `ino` (replacing what it referred to).
    Link { name: String, ino: Ino },
    /// `name` was removed.
    Unlink { name: String },
    /// `from` was renamed to `to` in the same directory: one atomic change.
    Rename { from: String, to: String },
}

impl DirOp {
    /// Applies the change to a directory's entries; a rename of a missing name
    /// does nothing (its creation may not have survived).
    pub(super) fn apply(&self, entries: &mut BTreeMap<String, Ino>) {
        match self {
            DirOp::Link { name, ino } => {
                entries.insert(name.clone(), *ino);
            }
            DirOp::Unlink { name } => {
                entries.remove(name);
            }
            DirOp::Rename { from, to } => {
                if let Some(ino) = entries.remove(from) {
                    entries.insert(to.clone(), ino);
                }
            }
        }
    }
}

/// A directory.
#[derive(Debug, Clone, Default)]
pub(super) struct DirNode {
    pub(super) live: BTreeMap<String, Ino>,
    pub(super) durable: BTreeMap<String, Ino>,
    pub(super) pending: Vec<DirOp>,
}

impl DirNode {
    /// A directory whose live and durable entries are both `entries`.
    pub(super) fn settled(entries: BTreeMap<String, Ino>) -> Self {
        DirNode {
            live: entries.clone(),
            durable: entries,
            pending: Vec::new(),
        }
    }

    fn change(&mut self, op: DirOp) {
        op.apply(&mut self.live);
        self.pending.push(op);
    }

    /// A successful directory sync.
    pub(super) fn sync(&mut self) {
        for op in self.pending.drain(..) {
            op.apply(&mut self.durable);
        }
    }

    /// A failed sync: the pending changes are forgotten (never made durable
    /// by a later sync) while the process still sees them.
    fn fail_sync(&mut self) {
        self.pending.clear();
    }
}

/// A file or a directory.
#[derive(Debug, Clone)]
pub(super) enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// Every inode of the simulated file system.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    nodes: HashMap<Ino, Node>,
    next: Ino,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

fn error(kind: io::ErrorKind, path: &Path, what: &str) -> io::Error {
    io::Error::new(kind, format!("{}: {what}", path.display()))
}

impl Tree {
    /// A file system holding only an empty root directory.
    pub(super) fn new() -> Self {
        Tree {
            nodes: HashMap::from([(ROOT, Node::Dir(DirNode::default()))]),
            next: ROOT + 1,
        }
    }

    /// Adds a node that no directory refers to yet.
    pub(super) fn add(&mut self, node: Node) -> Ino {
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(ino, node);
        ino
    }

    /// Replaces the node of an inode made by [`add`](Self::add).
    pub(super) fn set(&mut self, ino: Ino, node: Node) {
        self.nodes.insert(ino, node);
    }

    pub(super) fn node(&self, ino: Ino) -> &Node {
        &self.nodes[&ino]
    }

    /// Every file inode, linked or not (the blocks a crash image may reuse).
    pub(super) fn files(&self) -> impl Iterator<Item = &FileNode> {
        self.nodes.values().filter_map(|n| match n {
            Node::File(f) => Some(f),
            Node::Dir(_) => None,
        })
    }

    pub(super) fn file_mut(&mut self, ino: Ino) -> &mut FileNode {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(f)) => f,
            _ => unreachable!("inode {ino} is a file"),
        }
    }

    pub(super) fn file(&self, ino: Ino) -> &FileNode {
        match &self.nodes[&ino] {
            Node::File(f) => f,
            Node::Dir(_) => unreachable!("inode {ino} is a file"),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> &mut DirNode {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(d)) => d,
            _ => unreachable!("inode {ino} is a directory"),
        }
    }

    fn dir(&self, ino: Ino) -> &DirNode {
        match &self.nodes[&ino] {
            Node::Dir(d) => d,
            Node::File(_) => unreachable!("inode {ino} is a directory"),
        }
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(self.nodes[&ino], Node::Dir(_))
    }

    /// The names of `path`; `..` is refused, `.` and the root are skipped.
    fn names(path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => names.push(
                    n.to_str()
                        .ok_or_else(|| error(io::ErrorKind::InvalidInput, path, "not UTF-8"))?
                        .to_string(),
                ),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(error(
                        io::ErrorKind::InvalidInput,
                        path,
                        "`..` is not supported by the simulator",
                    ))
                }
            }
        }
        Ok(names)
    }

    /// `path` spelled one way: absolute, without `.` (so that two spellings
    /// of one file compare equal).
    pub(super) fn canonical(path: &Path) -> io::Result<std::path::PathBuf> {
        let mut canonical = std::path::PathBuf::from("/");
        canonical.extend(Self::names(path)?);
        Ok(canonical)
    }

    /// The inode `path` names, following live entries.
    pub(super) fn lookup(&self, path: &Path) -> io::Result<Ino> {
        let mut at = ROOT;
        for name in Self::names(path)? {
            if !self.is_dir(at) {
                return Err(error(io::ErrorKind::NotADirectory, path, "not a directory"));
            }
            at = *self
                .dir(at)
                .live
                .get(&name)
                .ok_or_else(|| not_found(path))?;
        }
        Ok(at)
    }

    /// The inode of a file.
    pub(super) fn lookup_file(&self, path: &Path) -> io::Result<Ino> {
        let ino = self.lookup(path)?;
        if self.is_dir(ino) {
            return Err(error(io::ErrorKind::IsADirectory, path, "is a directory"));
        }
        Ok(ino)
    }

    /// The inode of a directory.
    pub(super) fn lookup_dir(&self, path: &Path) -> io::Result<Ino> {
        let ino = self.lookup(path)?;
        if !self.is_dir(ino) {
            return Err(error(io::ErrorKind::NotADirectory, path, "not a directory"));
        }
        Ok(ino)
    }

    /// The directory that holds `path`, and `path`'s last name.
    fn parent_of(&self, path: &Path) -> io::Result<(Ino, String)> {
        let mut names = Self::names(path)?;
        let name = names
            .pop()
            .ok_or_else(|| error(io::ErrorKind::InvalidInput, path, "names no entry"))?;
        let mut at = ROOT;
        for n in names {
            at = match self.dir(at).live.get(&n) {
                Some(&ino) if self.is_dir(ino) => ino,
                Some(_) => {
                    return Err(error(io::ErrorKind::NotADirectory, path, "not a directory"))
                }
                None => return Err(not_found(path)),
            };
        }
        Ok((at, name))
    }

    /// Creates an empty file at `path` (its parent must exist); fails if the name
    /// is taken.
    pub(super) fn create_file(&mut self, path: &Path) -> io::Result<Ino> {
        let (parent, name) = self.parent_of(path)?;
        if self.dir(parent).live.contains_key(&name) {
            return Err(error(io::ErrorKind::AlreadyExists, path, "already exists"));
        }
        let ino = self.add(Node::File(FileNode::default()));
        self.dir_mut(parent).change(DirOp::Link { name, ino });
        Ok(ino)
    }

    /// Creates `path` and its missing parents as directories.
    pub(super) fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
        let mut at = ROOT;
        for name in Self::names(path)? {
            at = match self.dir(at).live.get(&name) {
                Some(&ino) if self.is_dir(ino) => ino,
                Some(_) => return Err(error(io::ErrorKind::AlreadyExists, path, "is a file")),
                None => {
                    let ino = self.add(Node::Dir(DirNode::default()));
                    self.dir_mut(at).change(DirOp::Link { name, ino });
                    ino
                }
            };
        }
        Ok(())
    }

    /// Removes the entry `path` (a file when `dir` is false, a whole directory
    /// and everything in it otherwise).
    pub(super) fn remove(&mut self, path: &Path, dir: bool) -> io::Result<()> {
        let (parent, name) = self.parent_of(path)?;
        let ino = *self
            .dir(parent)
            .live
            .get(&name)
            .ok_or_else(|| not_found(path))?;
        match (dir, self.is_dir(ino)) {
            (false, true) => {
                return Err(error(io::ErrorKind::IsADirectory, path, "is a directory"))
            }
            (true, false) => {
                return Err(error(io::ErrorKind::NotADirectory, path, "not a directory"))
            }
            _ => {}
        }
        if dir {
            self.unlink_children(ino);
        }
        self.dir_mut(parent).change(DirOp::Unlink { name });
        Ok(())
    }

    /// Unlinks everything below directory `ino`, one entry at a time and
    /// depth first, as a recursive removal does: a crash may keep any subset.
    fn unlink_children(&mut self, ino: Ino) {
        let children: Vec<(String, Ino)> = self
            .dir(ino)
            .live
            .iter()
            .map(|(name, &child)| (name.clone(), child))
            .collect();
        for (name, child) in children {
            if self.is_dir(child) {
                self.unlink_children(child);
            }
            self.dir_mut(ino).change(DirOp::Unlink { name });
        }
    }

    /// Renames `from` to `to`, replacing a file or an empty directory at `to`.
    pub(super) fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = self.parent_of(from)?;
        let ino = *self
            .dir(from_dir)
            .live
            .get(&from_name)
            .ok_or_else(|| not_found(from))?;
        let (to_dir, to_name) = self.parent_of(to)?;
        if let Some(&target) = self.dir(to_dir).live.get(&to_name) {
            if target == ino {
                return Ok(());
            }
            match (self.is_dir(ino), self.is_dir(target)) {
                (false, true) => {
                    return Err(error(io::ErrorKind::IsADirectory, to, "is a directory"))
                }
                (true, false) => {
                    return Err(error(io::ErrorKind::NotADirectory, to, "not a directory"))
                }
                (true, true) if !self.dir(target).live.is_empty() => {
                    return Err(error(io::ErrorKind::DirectoryNotEmpty, to, "not empty"))
                }
                _ => {}
            }
        }
        if from_dir == to_dir {
            self.dir_mut(from_dir).change(DirOp::Rename {
                from: from_name,
                to: to_name,
            });
        } else {
            // Two changes, each durable with its own directory's sync.
            self.dir_mut(from_dir)
                .change(DirOp::Unlink { name: from_name });
            self.dir_mut(to_dir)
                .change(DirOp::Link { name: to_name, ino });
        }
        Ok(())
    }

    /// Makes a directory's entries durable.
    pub(super) fn sync_dir(&mut self, ino: Ino) {
        self.dir_mut(ino).sync();
    }

    /// A failed `sync_dir`: the directory's unsynced changes are forgotten.
    pub(super) fn fail_sync_dir(&mut self, ino: Ino) {
        self.dir_mut(ino).fail_sync();
    }

    /// A directory's live entries as (name, is_dir), sorted by name.
    pub(super) fn list(&self, ino: Ino) -> Vec<(String, bool)> {
        self.dir(ino)
            .live
            .iter()
            .map(|(name, &child)| (name.clone(), self.is_dir(child)))
            .collect()
    }
}
