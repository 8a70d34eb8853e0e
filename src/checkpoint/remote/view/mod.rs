//! [`RemoteStateView`]: a committed checkpoint's state served straight from
//! the object store while it downloads (docs/OBJECT_STORAGE.md, "Remote
//! view").
//!
//! A view opens on a location and a cache directory (which it locks, like a
//! manager: the two exclude each other). It chooses the newest committed
//! checkpoint whose record decodes and whose files all verify (a local copy
//! against the record, an object by its size), opens the part's files (two
//! ranged gets each: header, then root and block table) and answers `get`,
//! range and prefix scans by fetching only the 64 KiB blocks they touch,
//! each verified against the file's block table, verified blocks cached in
//! memory. Meanwhile a background thread downloads the chain into the
//! cache directory; once it is published and verified the view switches to
//! the memory-mapped local files.
//!
//! Invariants:
//! - A value is returned only from verified blocks; a block that fails its
//!   CRC32C is a `StateChecksumMismatch` for the look-up that touched it.
//! - Look-ups before and after the switch answer from the same committed
//!   checkpoint: the layers are replaced whole, and a running iterator keeps
//!   the layers it started with.
//! - The view claims nothing: it fences no writer, and a writer's later
//!   commits do not change what it serves.
//! - Dropping the view cancels the download (no range starts after it;
//!   those in flight finish, nothing partial is published) and waits for
//!   it; the directory lock is released then, or when the
//!   last [`RemoteIter`] of the view is dropped if one outlives it (its
//!   layers may be the cache's mapped files).

pub(crate) mod block_cache;
pub(crate) mod blocks;
mod choose;
mod download;
mod layer;
mod merge;
mod report;

#[cfg(test)]
mod attacks_tests;

pub use merge::RemoteIter;
pub use report::{RemoteLayerReport, RemoteViewReport};

use super::record::CommittedCheckpoint;
use super::transfer::TransferOptions;
use super::{RemoteConfig, TransferProgress};
use crate::blob::BlobStore;
use crate::checkpoint::metadata::IncrementalCheckpointMetadata;
use crate::checkpoint::publish::LOCK_FILE;
use crate::checkpoint::store::part_layers;
use crate::checkpoint::{CheckpointStore, RejectedCheckpoint, DEFAULT_PART};
use crate::error::{Error, Result};
use crate::state::StateKind;
use crate::storage::{default_storage, Storage, StorageLock};
use block_cache::BlockCache;
use blocks::{Fetch, FetchCounts, RemoteStateFile};
use layer::{Layer, Said};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

/// The default memory for a remote view's verified blocks: 64 MiB.
pub const DEFAULT_VIEW_CACHE_BYTES: usize = 64 << 20;

/// How to open a [`RemoteStateView`].
#[derive(Debug, Clone)]
pub struct RemoteViewConfig {
    remote: RemoteConfig,
    dir: PathBuf,
    part: String,
    storage: Arc<dyn Storage>,
    cache_bytes: usize,
    download: bool,
}

impl RemoteViewConfig {
    /// A view of part [`DEFAULT_PART`] of `remote`'s newest committed
    /// checkpoint, downloading it into the cache directory `dir` (the
    /// directory a manager of the same location uses, so that the manager
    /// opened after the view finds its checkpoint cached).
    pub fn new(remote: RemoteConfig, dir: impl AsRef<Path>) -> Self {
        RemoteViewConfig {
            remote,
            dir: dir.as_ref().to_path_buf(),
            part: DEFAULT_PART.to_string(),
            storage: default_storage(),
            cache_bytes: DEFAULT_VIEW_CACHE_BYTES,
            download: true,
        }
    }

    /// The part to serve (default [`DEFAULT_PART`]).
    pub fn with_part(mut self, name: impl Into<String>) -> Self {
        self.part = name.into();
        self
    }

    /// The storage of the cache directory (default: the real file system).
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Memory for verified blocks fetched by look-ups (default
    /// [`DEFAULT_VIEW_CACHE_BYTES`]); the oldest are dropped first.
    pub fn with_block_cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Whether to download the checkpoint in the background and switch to
    /// the local copy (default `true`). Without, every look-up stays remote.
    pub fn with_background_download(mut self, download: bool) -> Self {
        self.download = download;
        self
    }
}

/// Where the background download is.
#[derive(Debug, Default)]
struct DownloadState {
    done: bool,
    error: Option<Arc<Error>>,
}

/// What a view and its download thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    store: Arc<dyn BlobStore>,
    local: CheckpointStore,
    part: String,
    chain: Vec<Arc<CommittedCheckpoint>>,
    present: BTreeSet<u64>,
    rejected: Vec<RejectedCheckpoint>,
    options: TransferOptions,
    cache: BlockCache,
    counts: FetchCounts,
    layers: RwLock<Arc<Vec<Layer>>>,
    local_now: AtomicBool,
    progress: TransferProgress,
    bytes_to_download: u64,
    download: Mutex<DownloadState>,
    finished: Condvar,
    stop: Arc<AtomicBool>,
    _lock: Box<dyn StorageLock>,
}

impl Shared {
    fn fetch(&self) -> Fetch<'_> {
        Fetch {
            store: self.store.as_ref(),
            cache: &self.cache,
            counts: &self.counts,
        }
    }

    fn checkpoint_id(&self) -> u64 {
        self.chain[0].metadata.id
    }

    fn layers(&self) -> Arc<Vec<Layer>> {
        self.layers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_layers(&self, layers: Vec<Layer>) {
        *self.layers.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(layers);
        self.local_now.store(true, Ordering::SeqCst);
    }

    fn lock_download(&self) -> MutexGuard<'_, DownloadState> {
        self.download.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A committed checkpoint's part, served from the object store until its
/// background download is local (module docs).
///
/// # Examples
/// ```
/// # fn main() -> highwater::Result<()> {
/// use highwater::{CheckpointConfig, IncrementalCheckpointManager, RemoteConfig};
/// use highwater::checkpoint::{RemoteStateView, RemoteViewConfig};
/// use highwater::StateSnapshot;
/// use std::collections::HashMap;
///
/// let tmp = tempfile::tempdir().unwrap();
/// let remote = RemoteConfig::open(tmp.path().join("bucket").to_str().unwrap())?;
/// let state = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]).to_bytes()?;
/// {
///     let writer = IncrementalCheckpointManager::new(
///         CheckpointConfig::new(tmp.path().join("writer")).with_remote(remote.clone()),
///     )?;
///     writer.create_checkpoint_with_state(0, HashMap::new(), None, &state)?;
/// }
/// // After a crash: serve the state while it downloads.
/// let view = RemoteStateView::open(RemoteViewConfig::new(remote, tmp.path().join("cache")))?
///     .expect("a committed checkpoint");
/// assert_eq!(view.get(b"k")?, Some(b"v".to_vec()));
/// view.wait()?; // the download is published and verified
/// assert!(view.is_local());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RemoteStateView {
    shared: Arc<Shared>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl RemoteStateView {
    /// Locks the cache directory, chooses the checkpoint, opens the part's
    /// files and starts the background download (module docs). `Ok(None)`
    /// when the location commits no restorable checkpoint.
    ///
    /// # Errors
    /// [`Error::Locked`] when a manager or another view holds the directory;
    /// [`Error::InvalidConfig`] (setting `"remote"`) for a directory of
    /// checkpoints written without a remote location; [`Error::PartNotFound`]
    /// when the chosen checkpoint has no such part; [`Error::WrongStateKind`]
    /// for a part that is not key/value state; [`Error::Blob`] for a failed
    /// request (nothing is skipped for it: retry); local I/O errors. A
    /// checkpoint whose part files are damaged where opening reads them
    /// (header, block table, root) is not an error: it is given up for the
    /// next older one, as a manager's restore gives it up, and listed in
    /// [`RemoteViewReport::rejected`]. Damage in a block opening does not
    /// read is found by the look-ups that touch it and by the download.
    /// A sealed (encrypted) part is refused with [`Error::InvalidArgument`]
    /// (docs/FORMAT.md §8): restore it through a manager instead.
    pub fn open(config: RemoteViewConfig) -> Result<Option<Self>> {
        config.remote.validate()?;
        let storage = config.storage.clone();
        crate::storage::create_dir_all_durable(storage.as_ref(), &config.dir)?;
        let lock = crate::storage::lock_exclusive(storage.as_ref(), &config.dir.join(LOCK_FILE))?;
        let local = CheckpointStore::with_storage(storage.clone(), &config.dir);
        super::cache::remove_leftovers(&local)?;
        super::cache::claim_as_cache(&local)?;
        let store = config.remote.store().clone();
        let cache = BlockCache::new(config.cache_bytes);
        let counts = FetchCounts::default();
        let opened = choose::choose(store.as_ref(), &local, |chosen| {
            // Blocks are cached by layer number: none of a candidate given
            // up may stay for the next one's files.
            cache.clear();
            open_layers(
                store.as_ref(),
                &local,
                chosen,
                &config.part,
                &cache,
                &counts,
            )
        })?;
        let Some((chosen, layers)) = opened else {
            return Ok(None);
        };
        let all_local = layers.iter().all(|l| matches!(l, Layer::Local(_)))
            && chosen
                .chain
                .iter()
                .all(|c| chosen.present.contains(&c.metadata.id));
        let progress = TransferProgress::new();
        let stop = Arc::new(AtomicBool::new(false));
        let bytes_to_download = chosen
            .chain
            .iter()
            .filter(|c| !chosen.present.contains(&c.metadata.id))
            .flat_map(|c| c.files.iter().map(|(f, _)| f.size))
            .fold(0u64, u64::saturating_add);
        let shared = Arc::new(Shared {
            store,
            local,
            part: config.part.clone(),
            chain: chosen.chain,
            present: chosen.present,
            rejected: chosen.rejected,
            options: TransferOptions::of(&config.remote)
                .with_progress(progress.clone())
                .with_cancel(stop.clone()),
            cache,
            counts,
            layers: RwLock::new(Arc::new(layers)),
            local_now: AtomicBool::new(all_local),
            progress,
            bytes_to_download,
            download: Mutex::new(DownloadState {
                done: all_local,
                error: None,
            }),
            finished: Condvar::new(),
            stop,
            _lock: lock,
        });
        let worker = if all_local || !config.download {
            None
        } else {
            let s = shared.clone();
            let span = tracing::Span::current();
            Some(
                std::thread::Builder::new()
                    .name("highwater-remote-view".into())
                    .spawn(move || {
                        let _span = span.enter();
                        download::run(&s)
                    })
                    .map_err(|e| Error::io("spawn", PathBuf::from("highwater-remote-view"), e))?,
            )
        };
        tracing::info!(checkpoint = shared.checkpoint_id(), part = %shared.part, local = all_local, "remote view opened");
        Ok(Some(RemoteStateView { shared, worker }))
    }

    /// The checkpoint served: its id, offsets and watermark (what a
    /// recovering operator resumes its sources from).
    pub fn checkpoint(&self) -> &IncrementalCheckpointMetadata {
        &self.shared.chain[0].metadata
    }

    /// The part served.
    pub fn part(&self) -> &str {
        &self.shared.part
    }

    /// True once look-ups are answered from the mapped local files.
    pub fn is_local(&self) -> bool {
        self.shared.local_now.load(Ordering::SeqCst)
    }

    /// The value of `key` in the checkpoint's state.
    ///
    /// # Errors
    /// [`Error::StateChecksumMismatch`] naming the object (as the path) and
    /// the block's offset when a block on the search path fails its
    /// checksum; `StateCorrupted` for an archive that does not hold
    /// together; [`Error::Blob`] for a failed request. Never a wrong value.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let layers = self.shared.layers();
        let f = self.shared.fetch();
        for layer in layers.iter() {
            match layer.lookup(key, &f)? {
                Said::Put(v) => return Ok(Some(v)),
                Said::Deleted => return Ok(None),
                Said::Absent => {}
            }
        }
        Ok(None)
    }

    /// Every pair, in key order.
    ///
    /// # Errors
    /// As [`get`](Self::get) (also for each item).
    pub fn iter(&self) -> Result<RemoteIter> {
        RemoteIter::new(self.shared.clone(), self.shared.layers(), &[], None)
    }

    /// The pairs with `start <= key < end`, in key order.
    ///
    /// # Errors
    /// As [`get`](Self::get) (also for each item).
    pub fn range(&self, start: &[u8], end: &[u8]) -> Result<RemoteIter> {
        RemoteIter::new(
            self.shared.clone(),
            self.shared.layers(),
            start,
            Some(end.to_vec()),
        )
    }

    /// The pairs whose keys start with `prefix`, in key order.
    ///
    /// # Errors
    /// As [`get`](Self::get) (also for each item).
    pub fn prefix(&self, prefix: &[u8]) -> Result<RemoteIter> {
        RemoteIter::new(
            self.shared.clone(),
            self.shared.layers(),
            prefix,
            prefix_end(prefix),
        )
    }

    /// Waits until the background download has finished: `Ok` once the view
    /// is local (at once without a download).
    ///
    /// # Errors
    /// The download's error, [`Error::RemoteViewPanicked`] as its source when
    /// the download thread panicked (the view stays remote and keeps
    /// answering).
    pub fn wait(&self) -> Result<()> {
        let mut state = self.shared.lock_download();
        loop {
            if let Some(e) = &state.error {
                return Err(Error::RemoteViewDownload {
                    checkpoint_id: self.checkpoint().id,
                    source: e.clone(),
                });
            }
            if state.done || self.worker.is_none() {
                return Ok(());
            }
            state = self
                .shared
                .finished
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// What the view has verified, fetched and downloaded so far.
    pub fn report(&self) -> RemoteViewReport {
        report::build(&self.shared)
    }
}

impl Drop for RemoteStateView {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The smallest key greater than every key starting with `prefix` (`None`
/// when there is none: all `0xff`).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The part's layers, newest first: the local mapped file for a member in
/// the cache, the object otherwise.
fn open_layers(
    store: &dyn BlobStore,
    local: &CheckpointStore,
    chosen: &choose::Chosen,
    part: &str,
    cache: &BlockCache,
    counts: &FetchCounts,
) -> Result<Vec<Layer>> {
    let id = chosen.chain[0].metadata.id;
    let files = part_layers(chosen.chain.iter().map(|c| &c.metadata), part)
        .ok_or_else(|| local.part_not_found(id, part))?;
    let mut layers = Vec::with_capacity(files.len());
    for (n, (meta, p)) in files.iter().enumerate() {
        let expected = match p.kind.state_kind() {
            Some(k @ (StateKind::Snapshot | StateKind::Delta)) => k,
            _ => {
                return Err(Error::WrongStateKind {
                    path: PathBuf::from(&p.file),
                    expected: "key/value state",
                    found: p.kind.name(),
                })
            }
        };
        let layer = if chosen.present.contains(&meta.id) {
            Layer::Local(local.open_layer(meta.id, p)?)
        } else {
            if p.sealed.is_some() {
                // Ranged reads of a sealed file would need its blocks'
                // offsets; not built yet (docs/FORMAT.md §8).
                return Err(Error::invalid_argument(
                    "RemoteStateView::open",
                    format!(
                        "part {part:?} of checkpoint {} is sealed (encrypted): a remote view reads \
                         plaintext parts only; restore it through a manager configured with \
                         with_remote and with_encryption",
                        meta.id
                    ),
                ));
            }
            let member = chosen
                .chain
                .iter()
                .find(|c| c.metadata.id == meta.id)
                .expect("the layers come from the chain");
            let (file, key) = member
                .files
                .iter()
                .find(|(f, _)| f.file == p.file)
                .ok_or_else(|| local.part_not_found(meta.id, part))?;
            Layer::Remote(RemoteStateFile::open(
                store, key, file, n as u64, cache, counts,
            )?)
        };
        crate::state::expect_kind(layer.path(), layer.kind(), expected)?;
        layers.push(layer);
    }
    Ok(layers)
}
