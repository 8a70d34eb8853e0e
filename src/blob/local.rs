//! [`LocalBlobStore`]: a blob store in a local directory (or a shared mount).
//!
//! An object `a/b/c` is the file `<root>/a/b/c`. Invariants:
//! - every object is written to a temporary file under `<root>/.tmp/`,
//!   fsynced, then linked (create) or renamed (put, multipart) into place,
//!   and the directory holding it is fsynced; so an object is whole or absent,
//!   before and after a crash. Directories on the way are created one at a
//!   time, each followed by an fsync of its parent.
//! - create-if-absent is `link(2)`, which fails if the name exists: atomic
//!   among processes of one machine and over NFS alike.
//! - a failed directory fsync after the link or rename makes the outcome
//!   [`BlobError::Indeterminate`] (the entry may not survive a crash), never
//!   a success; the fsync is not retried.
//! - `.tmp` is never listed (no key segment starts with `.`) and never
//!   cleaned by a write: another process may be writing there. Its file
//!   names hold the writer's process id and a clock; only
//!   [`abort_abandoned_uploads`](BlobStore::abort_abandoned_uploads) removes
//!   them, those of that format last modified before the time it is given.
//!
//! One limit of directories: a key that is also a prefix of another key
//! (`a` and `a/b`) cannot both exist; the second write is
//! [`BlobError::Unsupported`], never a wrong answer.

use super::{
    check_range, page_limit, BlobError, BlobKey, BlobMeta, BlobOp, BlobResult, BlobStore,
    CreateOutcome, ListPage, MultipartUpload,
};
use bytes::Bytes;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

mod tmp;

/// The directory of temporary files, under the root.
const TMP_DIR: &str = ".tmp";

/// A blob store in a directory (module docs: the invariants).
///
/// # Examples
/// ```
/// use highwater::blob::{BlobKey, BlobStore, CreateOutcome, LocalBlobStore};
/// let dir = tempfile::tempdir().unwrap();
/// let store = LocalBlobStore::open(dir.path())?;
/// let key = BlobKey::new("job/commits/1")?;
/// assert_eq!(store.create_if_absent(&key, "a".into())?, CreateOutcome::Created);
/// assert_eq!(store.create_if_absent(&key, "b".into())?, CreateOutcome::AlreadyExists);
/// assert_eq!(&store.get(&key)?[..], b"a");
/// # Ok::<(), highwater::blob::BlobError>(())
/// ```
#[derive(Debug)]
pub struct LocalBlobStore {
    root: PathBuf,
    counter: AtomicU64,
    /// Directories this store has made durable (their entry in their parent
    /// fsynced, and the parent's likewise up to the root): an entry that
    /// merely exists is not necessarily durable (another process may have
    /// created it and not synced its parent yet).
    durable: Mutex<HashSet<PathBuf>>,
}

impl LocalBlobStore {
    /// Opens (creating if missing) the store rooted at `root`.
    ///
    /// # Errors
    /// [`BlobError::Io`] if the directory cannot be created or made durable.
    pub fn open(root: impl Into<PathBuf>) -> BlobResult<Self> {
        let root = root.into();
        let root_str = root.display().to_string();
        let durable = Mutex::new(HashSet::new());
        create_dirs_durably(&root, None, &durable, BlobOp::Open, &root_str)?;
        let tmp = root.join(TMP_DIR);
        create_dirs_durably(&tmp, Some(&root), &durable, BlobOp::Open, &root_str)?;
        Ok(LocalBlobStore {
            root,
            counter: AtomicU64::new(0),
            durable,
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`.
    fn path(&self, key: &BlobKey) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.segments());
        path
    }

    /// A fresh temporary file, open for writing.
    fn temp_file(&self, op: BlobOp, key: &BlobKey) -> BlobResult<(PathBuf, File)> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join(TMP_DIR).join(tmp::name(n));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| BlobError::io(op, key.as_str(), &path, e))?;
        Ok((path, file))
    }

    /// Writes `bytes` to a new temporary file and fsyncs it.
    fn staged(&self, op: BlobOp, key: &BlobKey, bytes: &[u8]) -> BlobResult<PathBuf> {
        let (path, mut file) = self.temp_file(op, key)?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&path);
            return Err(BlobError::io(op, key.as_str(), &path, e));
        }
        Ok(path)
    }

    /// Creates the directories of `key`'s parent, refusing a file on the way.
    fn parent_dirs(&self, op: BlobOp, key: &BlobKey) -> BlobResult<PathBuf> {
        let dest = self.path(key);
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        create_dirs_durably(&parent, Some(&self.root), &self.durable, op, key.as_str()).map_err(
            |e| match e {
                BlobError::Io { ref source, .. } if is_not_a_directory(source) => {
                    key_is_prefix(op, key)
                }
                e => e,
            },
        )?;
        if dest.is_dir() {
            return Err(key_is_prefix(op, key));
        }
        Ok(dest)
    }

    /// Moves the staged file into place (`link` for a create, `rename`
    /// otherwise) and makes the entry durable.
    fn publish(&self, op: BlobOp, key: &BlobKey, staged: &Path, create: bool) -> BlobResult<bool> {
        let dest = match self.parent_dirs(op, key) {
            Ok(dest) => dest,
            Err(e) => {
                let _ = fs::remove_file(staged);
                return Err(e);
            }
        };
        let placed = if create {
            let linked = fs::hard_link(staged, &dest);
            let _ = fs::remove_file(staged);
            match linked {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if dest.is_dir() {
                        return Err(key_is_prefix(op, key));
                    }
                    return Ok(false);
                }
                other => other,
            }
        } else {
            let renamed = fs::rename(staged, &dest);
            if renamed.is_err() {
                let _ = fs::remove_file(staged);
            }
            renamed
        };
        placed.map_err(|e| BlobError::io(op, key.as_str(), &dest, e))?;
        let dir = dest.parent().unwrap_or(&self.root);
        sync_dir(dir).map_err(|e| BlobError::Indeterminate {
            operation: op,
            key: key.to_string(),
            reason: format!(
                "fsync of {} failed after the object was placed: {e}",
                dir.display()
            ),
        })?;
        Ok(true)
    }

    /// The metadata of `key`'s file (`NotFound` for a directory).
    fn file_meta(&self, op: BlobOp, key: &BlobKey) -> BlobResult<fs::Metadata> {
        let path = self.path(key);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(m),
            Ok(_) => Err(not_found(op, key)),
            Err(e) if is_missing(&e) => Err(not_found(op, key)),
            Err(e) => Err(BlobError::io(op, key.as_str(), &path, e)),
        }
    }

    /// Every object key under `dir` (a directory of the store), unsorted.
    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<(String, fs::Metadata)>,
    ) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = entry.metadata()?;
            if meta.is_dir() {
                self.walk(&entry.path(), &key, out)?;
            } else if meta.is_file() {
                out.push((key, meta));
            }
        }
        Ok(())
    }
}

impl BlobStore for LocalBlobStore {
    fn create_if_absent(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<CreateOutcome> {
        let staged = self.staged(BlobOp::Create, key, &bytes)?;
        Ok(match self.publish(BlobOp::Create, key, &staged, true)? {
            true => CreateOutcome::Created,
            false => CreateOutcome::AlreadyExists,
        })
    }

    fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        let staged = self.staged(BlobOp::Put, key, &bytes)?;
        self.publish(BlobOp::Put, key, &staged, false).map(|_| ())
    }

    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>> {
        let (path, file) = self.temp_file(BlobOp::Multipart, key)?;
        Ok(Box::new(LocalUpload {
            store: LocalBlobStore {
                root: self.root.clone(),
                counter: AtomicU64::new(0),
                // Its own set: the upload syncs the directories it needs again.
                durable: Mutex::new(HashSet::new()),
            },
            key: key.clone(),
            path,
            file: Some(file),
        }))
    }

    fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        self.file_meta(BlobOp::Get, key)?;
        let path = self.path(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(bytes.into()),
            Err(e) if is_missing(&e) => Err(not_found(BlobOp::Get, key)),
            Err(e) => Err(BlobError::io(BlobOp::Get, key.as_str(), &path, e)),
        }
    }

    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<Bytes> {
        check_range(key, &range)?;
        let path = self.path(key);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if is_missing(&e) => return Err(not_found(BlobOp::Get, key)),
            Err(e) => return Err(BlobError::io(BlobOp::Get, key.as_str(), &path, e)),
        };
        let io_err = |e| BlobError::io(BlobOp::Get, key.as_str(), &path, e);
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(not_found(BlobOp::Get, key));
        }
        if range.end > meta.len() {
            return Err(BlobError::InvalidRange {
                operation: BlobOp::Get,
                key: key.to_string(),
                start: range.start,
                end: range.end,
                size: meta.len(),
            });
        }
        let len =
            usize::try_from(range.end - range.start).map_err(|_| BlobError::InvalidRange {
                operation: BlobOp::Get,
                key: key.to_string(),
                start: range.start,
                end: range.end,
                size: meta.len(),
            })?;
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, range.start).map_err(io_err)?;
        Ok(buf.into())
    }

    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta> {
        let meta = self.file_meta(BlobOp::Head, key)?;
        Ok(to_meta(key.clone(), &meta))
    }

    fn list(
        &self,
        prefix: Option<&BlobKey>,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<ListPage> {
        let (dir, base) = match prefix {
            Some(p) => (self.path(p), p.as_str()),
            None => (self.root.clone(), ""),
        };
        let mut found = Vec::new();
        self.walk(&dir, base, &mut found)
            .map_err(|e| BlobError::io(BlobOp::List, base, &dir, e))?;
        let mut objects: Vec<BlobMeta> = found
            .into_iter()
            .filter_map(|(k, m)| BlobKey::new(k).ok().map(|k| (k, m)))
            .filter(|(k, _)| after.is_none_or(|a| k > a))
            .map(|(k, m)| to_meta(k, &m))
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(ListPage::from_sorted(objects, page_limit(limit)))
    }

    /// Removes the files under `.tmp/` of the temporary-name format whose
    /// mtime is before `older_than`: uploads and staged writes of crashed
    /// processes (a write in progress renews its mtime).
    fn abort_abandoned_uploads(&self, older_than: SystemTime) -> BlobResult<u64> {
        tmp::remove_older_than(&self.root.join(TMP_DIR), older_than)
    }

    fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if is_missing(&e) || path.is_dir() => return Ok(()),
            Err(e) => return Err(BlobError::io(BlobOp::Delete, key.as_str(), &path, e)),
        }
        let dir = path.parent().unwrap_or(&self.root);
        sync_dir(dir).map_err(|e| BlobError::Indeterminate {
            operation: BlobOp::Delete,
            key: key.to_string(),
            reason: format!("fsync of {} failed after the removal: {e}", dir.display()),
        })
    }
}

/// A multipart upload into a temporary file of a [`LocalBlobStore`].
#[derive(Debug)]
struct LocalUpload {
    store: LocalBlobStore,
    key: BlobKey,
    path: PathBuf,
    /// `None` once completed or aborted.
    file: Option<File>,
}

impl MultipartUpload for LocalUpload {
    fn put_part(&mut self, bytes: Bytes) -> BlobResult<()> {
        let file = self
            .file
            .as_mut()
            .expect("an upload is open until consumed");
        file.write_all(&bytes)
            .map_err(|e| BlobError::io(BlobOp::Multipart, self.key.as_str(), &self.path, e))
    }

    fn complete(mut self: Box<Self>) -> BlobResult<()> {
        let file = self.file.take().expect("an upload is open until consumed");
        if let Err(e) = file.sync_all() {
            let _ = fs::remove_file(&self.path);
            return Err(BlobError::io(
                BlobOp::Complete,
                self.key.as_str(),
                &self.path,
                e,
            ));
        }
        drop(file);
        self.store
            .publish(BlobOp::Complete, &self.key, &self.path, false)
            .map(|_| ())
    }

    fn abort(mut self: Box<Self>) -> BlobResult<()> {
        self.file = None;
        match fs::remove_file(&self.path) {
            Err(e) if !is_missing(&e) => Err(BlobError::io(
                BlobOp::Abort,
                self.key.as_str(),
                &self.path,
                e,
            )),
            _ => Ok(()),
        }
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Abandoned: its temporary file is of no use to anyone.
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn to_meta(key: BlobKey, meta: &fs::Metadata) -> BlobMeta {
    BlobMeta {
        key,
        size: meta.len(),
        // A replace is a rename of a new file: a new inode, so a new tag.
        etag: Some(format!(
            "{:x}-{:x}-{:x}",
            meta.ino(),
            meta.mtime_nsec(),
            meta.len()
        )),
        last_modified: meta.modified().ok(),
    }
}

/// Makes `dir` durable: creates it if missing and fsyncs its parent, after
/// doing the same for the parent, up to `stop` (a directory already made
/// durable: the store's root) or the file system's root. As
/// `storage::create_dir_all_durable`, a directory that exists is synced into
/// its parent too (it may not be durable yet); `durable` remembers the
/// directories done, so each is synced once per store.
fn create_dirs_durably(
    dir: &Path,
    stop: Option<&Path>,
    durable: &Mutex<HashSet<PathBuf>>,
    op: BlobOp,
    key: &str,
) -> BlobResult<()> {
    let done = |d: &Path| {
        Some(d) == stop
            || durable
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .contains(d)
    };
    if done(dir) {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        create_dirs_durably(parent, stop, durable, op, key)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(BlobError::io(op, key, dir, e)),
    }
    // The file system's root has no entry to sync.
    if dir.parent().is_some() {
        let parent = parent.unwrap_or(Path::new("."));
        sync_dir(parent).map_err(|e| BlobError::io(op, key, parent, e))?;
    }
    durable
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(dir.to_path_buf());
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory
}

fn is_not_a_directory(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotADirectory || e.kind() == io::ErrorKind::AlreadyExists
}

fn not_found(operation: BlobOp, key: &BlobKey) -> BlobError {
    BlobError::NotFound {
        operation,
        key: key.to_string(),
    }
}

fn key_is_prefix(operation: BlobOp, key: &BlobKey) -> BlobError {
    BlobError::Unsupported {
        operation,
        key: key.to_string(),
        reason: "in a local directory a key cannot also be the prefix of another key".into(),
    }
}
