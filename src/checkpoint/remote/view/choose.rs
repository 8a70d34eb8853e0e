//! Which committed checkpoint a remote view serves: the newest whose commit
//! record decodes, whose chain is committed, and whose files are all either
//! a verified local copy in the cache or an object of the recorded size.
//!
//! Invariants:
//! - The cache directory (whose lock the caller holds) is first made to
//!   hold only committed checkpoints, as a manager's open does
//!   (`cache::prune`).
//! - A candidate is given up for the next older one only for damage
//!   (`cache::is_damage`: a missing object, a size that differs from the
//!   record, a local copy that does not verify is removed and fetched
//!   again; then, opening its part's files, a header, table or root that
//!   does not verify), as a manager's restore gives it up; a failed request
//!   is returned, never skipped past.
//! - Nothing is claimed: a view fences no writer.

use super::super::cache::{self, chain_of, is_damage, rejection};
use super::super::record::CommittedCheckpoint;
use super::super::sequence;
use crate::blob::BlobStore;
use crate::checkpoint::publish::remove_checkpoint_dir;
use crate::checkpoint::{CheckpointStore, RejectedCheckpoint};
use crate::error::{Error, IoContext, Result};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// The checkpoint a view serves.
#[derive(Debug)]
pub(crate) struct Chosen {
    /// It and its ancestors, newest first.
    pub chain: Vec<Arc<CommittedCheckpoint>>,
    /// Members whose local copy verified.
    pub present: BTreeSet<u64>,
    /// Newer committed checkpoints given up, newest first.
    pub rejected: Vec<RejectedCheckpoint>,
}

/// Chooses (module docs) and opens the candidate with `open` (the part's
/// files: their headers, tables and roots); a candidate whose files turn
/// out damaged there ([`is_file_damage`]) is given up like one whose sizes
/// differ. `Ok(None)` when the location commits nothing restorable.
///
/// # Errors
/// Failed requests and local I/O errors (not damage); `open`'s other
/// errors (a missing part, a wrong kind: the caller's mistake, not damage).
pub(crate) fn choose<T>(
    store: &dyn BlobStore,
    local: &CheckpointStore,
    mut open: impl FnMut(&Chosen) -> Result<T>,
) -> Result<Option<(Chosen, T)>> {
    let slots = sequence::list_slots(store)?;
    let floor = sequence::floor(store)?;
    let mut rejected = Vec::new();
    let committed = cache::read_committed(store, &slots, floor, u64::MAX, &mut rejected)?;
    let mut removed = Vec::new();
    let mut present = cache::prune(local, &committed, &mut removed)?;
    let mut verified = BTreeSet::new();
    'candidates: for (&id, c) in committed.iter().rev() {
        let chain = match chain_of(&committed, c) {
            Ok(chain) => chain,
            Err(e) => {
                rejected.push(rejection(id, c, Arc::new(e)));
                continue;
            }
        };
        for member in &chain {
            let m = member.metadata.id;
            if verified.contains(&m) {
                continue;
            }
            let checked = if present.contains(&m) {
                check_local(local, m, &mut present)
            } else {
                Ok(())
            }
            .and_then(|()| {
                if present.contains(&m) {
                    Ok(())
                } else {
                    check_sizes(store, member)
                }
            });
            match checked {
                Ok(()) => {
                    verified.insert(m);
                }
                Err(e) if is_damage(&e) => {
                    tracing::warn!(checkpoint = m, error = %e, "a committed checkpoint cannot be served; trying an older one");
                    rejected.push(rejection(id, c, Arc::new(e)));
                    continue 'candidates;
                }
                Err(e) => return Err(e),
            }
        }
        let chosen = Chosen {
            chain,
            present: present.clone(),
            rejected: rejected.clone(),
        };
        match open(&chosen) {
            Ok(opened) => return Ok(Some((chosen, opened))),
            Err(e) if is_file_damage(&e) => {
                tracing::warn!(checkpoint = id, error = %e, "a committed checkpoint's part cannot be served; trying an older one");
                rejected.push(rejection(id, c, Arc::new(e)));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Damage found while opening a candidate's files: a header, table or root
/// that does not verify or hold together, a file that does not derive its
/// record's checksum, an object gone or shorter than its record. Not a
/// failed request, nor a part that is missing or of the wrong kind.
fn is_file_damage(e: &Error) -> bool {
    match e {
        Error::StateCorrupted { .. }
        | Error::StateChecksumMismatch { .. }
        | Error::CheckpointFileMismatch { .. } => true,
        Error::Blob(_) | Error::Io { .. } => is_damage(e),
        _ => false,
    }
}

/// Verifies the local copy of `id`; a damaged one is removed (and `id`
/// leaves `present`, so it is fetched).
fn check_local(local: &CheckpointStore, id: u64, present: &mut BTreeSet<u64>) -> Result<()> {
    match local.verify_checkpoint(id) {
        Ok(_) => Ok(()),
        Err(e) if is_damage(&e) => {
            let path = local.checkpoint_path(id);
            tracing::warn!(checkpoint = id, error = %e, "the cached copy is damaged; it will be fetched again");
            remove_checkpoint_dir(local.storage(), &path)?;
            local
                .storage()
                .sync_dir(local.dir())
                .ctx("sync directory", local.dir())?;
            present.remove(&id);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Every object of `c` exists with the size its record says.
fn check_sizes(store: &dyn BlobStore, c: &CommittedCheckpoint) -> Result<()> {
    for (file, key) in &c.files {
        let meta = super::super::retry::retried("head", key.as_str(), || store.head(key))
            .map_err(Error::Blob)?;
        if meta.size != file.size {
            return Err(Error::CheckpointFileMismatch {
                path: PathBuf::from(key.as_str()),
                expected_size: file.size,
                actual_size: meta.size,
                expected_crc: file.crc32c,
                actual_crc: 0,
            });
        }
    }
    Ok(())
}
