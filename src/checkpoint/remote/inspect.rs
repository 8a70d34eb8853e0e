//! Reading a remote location without writing to it, for tools (the CLI's
//! `checkpoints ls s3://…`): the commit sequence as listed, and a mirror of
//! its committed checkpoints in a local directory. Nothing here claims a
//! generation or fences a writer.

use super::cache::{restore_cache, CacheReport};
use super::record::SlotRecord;
use super::sequence;
use super::transfer::TransferOptions;
use super::{RemoteConfig, RemoteRestore};
use crate::checkpoint::CheckpointStore;
use crate::error::{Error, Result};
use crate::storage::create_dir_all_durable;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// One slot of a location's commit sequence, as [`read_commit_sequence`]
/// found it.
#[derive(Debug, Clone)]
pub struct ListedCommit {
    /// Its slot.
    pub slot: u64,
    /// When the record was written, when the store tells.
    pub last_modified: Option<SystemTime>,
    /// The record, or why it does not decode (or could not be read).
    pub record: std::result::Result<SlotRecord, Arc<Error>>,
}

/// A location's commit sequence: its floor and every record at or above it.
#[derive(Debug, Clone)]
pub struct CommitSequence {
    /// Slots below this are dead (garbage collection raised it).
    pub floor: u64,
    /// The records at or above the floor, by slot.
    pub commits: Vec<ListedCommit>,
}

/// Lists and decodes the commit sequence of `remote`'s location.
///
/// # Errors
/// The store's listing errors (a record that cannot be read or decoded is
/// reported in its [`ListedCommit`], not as an error).
pub fn read_commit_sequence(remote: &RemoteConfig) -> Result<CommitSequence> {
    let store = remote.store().as_ref();
    let floor = sequence::floor(store)?;
    let commits = sequence::list_slots(store)?
        .into_iter()
        .filter(|s| s.slot >= floor)
        .map(|s| ListedCommit {
            slot: s.slot,
            last_modified: Some(s.last_modified).filter(|t| *t != SystemTime::UNIX_EPOCH),
            record: match sequence::read_record(store, s.slot) {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(Arc::new(Error::Blob(crate::blob::BlobError::NotFound {
                    operation: crate::blob::BlobOp::Get,
                    key: super::layout::commit_key(s.slot).to_string(),
                }))),
                Err(e) => Err(Arc::new(e)),
            },
        })
        .collect();
    Ok(CommitSequence { floor, commits })
}

/// Makes `dir` (created if missing; use a directory of its own, no manager
/// may write it) a mirror of every restorable committed checkpoint of
/// `remote`'s location: local copies that match are kept, others
/// downloaded, and directories the location does not commit removed. Read
/// it then with [`CheckpointStore`].
///
/// # Errors
/// The store's errors that are not damage (damaged checkpoints are in the
/// report's `rejected`); local I/O errors.
pub fn mirror_committed(remote: &RemoteConfig, dir: &Path) -> Result<RemoteRestore> {
    let storage = crate::storage::default_storage();
    create_dir_all_durable(storage.as_ref(), dir)?;
    let local = CheckpointStore::with_storage(storage, dir);
    super::cache::claim_as_cache(&local)?;
    let store = remote.store().as_ref();
    let floor = sequence::floor(store)?;
    let slots = sequence::list_slots(store)?;
    let report: CacheReport = restore_cache(
        store,
        &local,
        &slots,
        floor,
        u64::MAX,
        &TransferOptions::of(remote),
        true,
    )?;
    Ok(RemoteRestore::from_report(None, report))
}
