//! The checkpoint directory as the cache of a remote location: after a
//! claim, it is made to hold only committed checkpoints, and the newest
//! restorable one (with its chain) is fetched into it unless a matching local
//! copy is there already (docs/OBJECT_STORAGE.md, "Restore through the
//! cache").
//!
//! Invariants:
//! - Only the directory's lock holder calls [`restore_cache`].
//! - Afterwards every checkpoint directory in the cache is committed: a
//!   local directory whose id no live record commits, or whose
//!   `metadata.json` is not byte for byte the record's, is removed.
//! - A local copy is used only after every file verified against the
//!   record's sizes and CRC32Cs (and the state files' own checksums); one
//!   that does not is removed and downloaded again.
//! - A download is published into the cache the way a checkpoint is
//!   (`publish`: temporary directory, every file fsynced, rename, directory
//!   fsync), so a crash during a download leaves a leftover the next open
//!   removes, never a half directory.
//! - A candidate is given up (reported, and the next older one tried) only
//!   for damage: a record that does not decode, a missing object, a size or
//!   checksum mismatch, a chain that does not resolve (see [`is_damage`]).
//!   Any other error (a failed request, a full disk, a record of a newer
//!   format version) is returned: a restore never falls back past a
//!   checkpoint it merely could not read now, or cannot read in this build.

use super::record::{CommittedCheckpoint, SlotRecord};
use super::sequence::{self, ListedSlot};
use super::transfer::{self, DownloadFile, TransferOptions, TransferStats};
use crate::blob::BlobStore;
use crate::checkpoint::metadata::METADATA_FILE;
use crate::checkpoint::parent;
use crate::checkpoint::publish::{self, remove_checkpoint_dir};
use crate::checkpoint::{CheckpointStore, RejectedCheckpoint};
use crate::error::{Error, IoContext, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// True when `e` means the checkpoint (or record) is damaged for good, so a
/// restore may give it up for an older one: what [`parent::is_damage`]
/// calls damage (a missing object or one shorter than its record says, a
/// record or file that does not verify; a failed, throttled, crashed or
/// indeterminate request is not: falling back past it would restore a
/// checkpoint older than one acknowledged), except a record or metadata of
/// a newer format version: a newer build wrote it (the job was rolled
/// back), and this one must not go on from an older checkpoint.
pub(crate) fn is_damage(e: &Error) -> bool {
    match e {
        Error::UnsupportedVersion { .. } => false,
        Error::CheckpointParentUnrestorable { source, .. } => is_damage(source),
        e => parent::is_damage(e),
    }
}

/// What [`restore_cache`] did.
#[derive(Debug, Default)]
pub(crate) struct CacheReport {
    /// The checkpoint the cache now restores (the newest restorable
    /// committed one), if any.
    pub restored: Option<u64>,
    /// Checkpoints used from the cache as they were.
    pub hits: Vec<u64>,
    /// Checkpoints downloaded.
    pub downloaded: Vec<u64>,
    /// Local directories removed (not committed, or not matching).
    pub removed: Vec<u64>,
    /// Committed checkpoints that could not be restored, newest first.
    pub rejected: Vec<RejectedCheckpoint>,
    /// Bytes and requests of the downloads.
    pub stats: TransferStats,
    /// The checkpoint records read, by id.
    pub committed: BTreeMap<u64, Arc<CommittedCheckpoint>>,
}

/// The live checkpoint records among `slots` (those in `floor..below`),
/// by id. A record that does not decode, or whose id does not grow with its
/// slot, is reported in `rejected` and left out.
///
/// # Errors
/// A failed read of a record (not damage).
pub(crate) fn read_committed(
    store: &dyn BlobStore,
    slots: &[ListedSlot],
    floor: u64,
    below: u64,
    rejected: &mut Vec<RejectedCheckpoint>,
) -> Result<BTreeMap<u64, Arc<CommittedCheckpoint>>> {
    let mut committed = BTreeMap::new();
    let mut last_id = 0;
    for s in slots.iter().filter(|s| s.slot >= floor && s.slot < below) {
        match sequence::read_record(store, s.slot) {
            Ok(Some(SlotRecord::Checkpoint(c))) => {
                if c.metadata.id <= last_id {
                    let error = Error::CheckpointCorrupted {
                        path: super::record::record_path(s.slot),
                        offset: None,
                        reason: format!(
                            "commits checkpoint {} after checkpoint {last_id}: ids grow with slots",
                            c.metadata.id
                        ),
                    };
                    rejected.push(RejectedCheckpoint::new(
                        c.metadata.id,
                        super::record::record_path(s.slot),
                        Arc::new(error),
                    ));
                    continue;
                }
                last_id = c.metadata.id;
                committed.insert(c.metadata.id, Arc::new(*c));
            }
            Ok(Some(SlotRecord::Claim { .. })) | Ok(None) => {}
            Err(e) if is_damage(&e) => {
                tracing::warn!(slot = s.slot, error = %e, "skipping a damaged commit record");
                rejected.push(RejectedCheckpoint::new(
                    0,
                    super::record::record_path(s.slot),
                    Arc::new(e),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(committed)
}

/// Makes the cache (marked by [`claim_as_cache`]) hold only committed
/// checkpoints and fetches the newest
/// restorable one (module docs: the rules); with `every`, every restorable
/// committed checkpoint (a mirror, for tools).
///
/// # Errors
/// Listing or reading errors that are not damage; local I/O errors.
pub(crate) fn restore_cache(
    store: &dyn BlobStore,
    local: &CheckpointStore,
    slots: &[ListedSlot],
    floor: u64,
    below: u64,
    opts: &TransferOptions,
    every: bool,
) -> Result<CacheReport> {
    let mut report = CacheReport::default();
    let committed = read_committed(store, slots, floor, below, &mut report.rejected)?;
    let present = prune(local, &committed, &mut report.removed)?;

    // Newest first: the first candidate whose chain is all in the cache,
    // fetched from its base up (nothing is fetched above a member that
    // fails).
    let mut failed: BTreeMap<u64, Arc<Error>> = BTreeMap::new();
    let mut ready: BTreeSet<u64> = BTreeSet::new();
    'candidates: for (&id, c) in committed.iter().rev() {
        let chain = match chain_of(&committed, c) {
            Ok(chain) => chain,
            Err(e) => {
                report.rejected.push(rejection(id, c, Arc::new(e)));
                continue;
            }
        };
        for member in chain.iter().rev() {
            let m_id = member.metadata.id;
            if let Some(e) = failed.get(&m_id) {
                report.rejected.push(rejection(id, c, e.clone()));
                continue 'candidates;
            }
            if ready.contains(&m_id) {
                continue;
            }
            match fetch(
                store,
                local,
                member,
                present.contains(&m_id),
                opts,
                &mut report,
            ) {
                Ok(()) => {
                    ready.insert(m_id);
                }
                Err(e) if is_damage(&e) => {
                    tracing::warn!(checkpoint = m_id, error = %e, "a committed checkpoint cannot be restored; trying an older one");
                    let e = Arc::new(e);
                    failed.insert(m_id, e.clone());
                    report.rejected.push(rejection(id, c, e));
                    continue 'candidates;
                }
                Err(e) => return Err(e),
            }
        }
        report.restored.get_or_insert(id);
        if !every {
            break;
        }
    }
    report.committed = committed;
    Ok(report)
}

/// Removes every local checkpoint that `committed` does not commit exactly
/// (its `metadata.json` byte for byte), noting each in `removed`; returns
/// the ids kept.
///
/// # Errors
/// Local I/O errors.
pub(crate) fn prune(
    local: &CheckpointStore,
    committed: &BTreeMap<u64, Arc<CommittedCheckpoint>>,
    removed: &mut Vec<u64>,
) -> Result<BTreeSet<u64>> {
    let storage = local.storage();
    let dir = local.dir();
    let (ids, _) = local.scan()?;
    let mut present = BTreeSet::new();
    let before = removed.len();
    for id in ids {
        let keep = match committed.get(&id) {
            Some(c) => matches_record(local, id, c)?,
            None => false,
        };
        if keep {
            present.insert(id);
        } else {
            let path = local.checkpoint_path(id);
            tracing::info!(checkpoint = id, path = %path.display(), "removing a cached checkpoint the remote sequence does not commit");
            remove_checkpoint_dir(storage, &path)?;
            removed.push(id);
        }
    }
    if removed.len() > before {
        storage.sync_dir(dir).ctx("sync directory", dir)?;
    }
    Ok(present)
}

/// Removes the leftovers of interrupted publishes (`.tmp-` directories) of
/// `local`, whose lock the caller holds.
///
/// # Errors
/// Local I/O errors.
pub(crate) fn remove_leftovers(local: &CheckpointStore) -> Result<()> {
    let (_, leftovers) = local.scan()?;
    let storage = local.storage();
    for name in &leftovers {
        let path = local.dir().join(name);
        tracing::info!(path = %path.display(), "removing leftover of an interrupted checkpoint");
        storage.remove_dir_all(&path).ctx("remove", &path)?;
    }
    if !leftovers.is_empty() {
        storage
            .sync_dir(local.dir())
            .ctx("sync directory", local.dir())?;
    }
    Ok(())
}

/// The file that marks a checkpoint directory as the cache of a remote
/// location: its checkpoints may be removed when the location does not
/// commit them.
pub(crate) const CACHE_MARKER: &str = ".remote-cache";

/// Marks `local`'s directory as a cache, unless it holds checkpoints written
/// without a remote location (those would be removed: refused).
///
/// # Errors
/// [`Error::InvalidConfig`] for a directory of local checkpoints; local I/O
/// errors.
pub(crate) fn claim_as_cache(local: &CheckpointStore) -> Result<()> {
    let storage = local.storage();
    let marker = local.dir().join(CACHE_MARKER);
    if storage.exists(&marker).ctx("stat", &marker)? {
        return Ok(());
    }
    let (ids, _) = local.scan()?;
    if let Some(id) = ids.last() {
        return Err(Error::invalid_config(
            "remote",
            format!(
                "{} holds checkpoints written without a remote location (the newest is {id}); \
                 a cache of a remote location holds only what the location commits, so they \
                 would be removed: give the remote location its own directory, or remove them",
                local.dir().display()
            ),
        ));
    }
    let file = storage
        .open_file(&marker, crate::storage::OpenMode::CreateNew)
        .ctx("create", &marker)?;
    file.sync_all().ctx("sync", &marker)?;
    storage
        .sync_dir(local.dir())
        .ctx("sync directory", local.dir())
}

pub(crate) fn rejection(id: u64, c: &CommittedCheckpoint, error: Arc<Error>) -> RejectedCheckpoint {
    RejectedCheckpoint::new(id, super::record::record_path(c.slot), error)
}

/// `c` and its ancestors, newest first, all committed.
///
/// # Errors
/// `CheckpointCorrupted` naming `c`'s record when an ancestor is not
/// committed (or the chain loops).
pub(crate) fn chain_of(
    committed: &BTreeMap<u64, Arc<CommittedCheckpoint>>,
    c: &Arc<CommittedCheckpoint>,
) -> Result<Vec<Arc<CommittedCheckpoint>>> {
    let mut chain = vec![c.clone()];
    let mut next = c.metadata.parent_id;
    while let Some(parent) = next {
        let last = chain.last().expect("the chain starts with c").metadata.id;
        let Some(p) = committed.get(&parent).filter(|_| parent < last) else {
            return Err(Error::CheckpointCorrupted {
                path: super::record::record_path(c.slot),
                offset: None,
                reason: format!(
                    "checkpoint {} needs checkpoint {parent}, which no live record commits",
                    c.metadata.id
                ),
            });
        };
        chain.push(p.clone());
        next = p.metadata.parent_id;
    }
    Ok(chain)
}

/// True when the local copy of `id` has `c`'s metadata byte for byte.
///
/// # Errors
/// A local read error that is not a missing file.
fn matches_record(local: &CheckpointStore, id: u64, c: &CommittedCheckpoint) -> Result<bool> {
    let path = local.checkpoint_path(id).join(METADATA_FILE);
    match crate::storage::load_file(local.storage(), &path) {
        Ok(bytes) => Ok(crate::storage::MappedFile::bytes(&bytes) == c.metadata_bytes.as_slice()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Puts committed checkpoint `c` into the cache: the local copy when it
/// verifies, else a download.
pub(crate) fn fetch(
    store: &dyn BlobStore,
    local: &CheckpointStore,
    c: &CommittedCheckpoint,
    present: bool,
    opts: &TransferOptions,
    report: &mut CacheReport,
) -> Result<()> {
    let id = c.metadata.id;
    let storage = local.storage();
    if present {
        match local.verify_checkpoint(id) {
            Ok(_) => {
                report.hits.push(id);
                return Ok(());
            }
            Err(e) if is_damage(&e) => {
                let path = local.checkpoint_path(id);
                tracing::warn!(checkpoint = id, error = %e, "the cached copy is damaged; downloading it again");
                remove_checkpoint_dir(storage, &path)?;
                storage
                    .sync_dir(local.dir())
                    .ctx("sync directory", local.dir())?;
            }
            Err(e) => return Err(e),
        }
    }
    let (_, stats) = publish::publish(storage, local.dir(), id, |tmp, _staged| {
        let files: Vec<DownloadFile> = c
            .files
            .iter()
            .map(|(f, key)| DownloadFile {
                key: key.clone(),
                size: f.size,
                crc32c: f.crc32c,
                dest: tmp.join(&f.file),
            })
            .collect();
        let stats = transfer::download(store, storage, &files, opts)?;
        Ok((c.metadata_bytes.clone(), stats))
    })?;
    tracing::info!(
        checkpoint = id,
        bytes = stats.bytes,
        requests = stats.requests,
        "downloaded a committed checkpoint into the cache"
    );
    report.stats.requests += stats.requests;
    report.stats.bytes += stats.bytes;
    report.downloaded.push(id);
    Ok(())
}
