//! The parent of a new checkpoint: what the caller's state was built from, and
//! whether a request may build on it (`docs/FORMAT.md` §3, "The parent rule").
//!
//! Invariants:
//! - A request is applied only to the checkpoint the caller names
//!   ([`CheckpointRequest::with_parent`]) or to the manager's [`Base`] — the
//!   checkpoint it last wrote, or whose state was last loaded through it. It
//!   is never applied to whichever checkpoint happens to be latest.
//! - A request builds on its parent when it holds a delta or does not mention
//!   every part of the parent (those parts are carried over). It may do so only
//!   when the parent is the latest restorable checkpoint and verifies now;
//!   otherwise it is refused and nothing is written. A read error while this is
//!   decided is returned as it is, never taken as "not restorable" and
//!   replaced by an older checkpoint.
//! - A request that gives the whole state (every part of its parent, in full)
//!   needs no parent and is written as a full checkpoint.

use super::chain::{chain_resolves, links_to};
use super::metadata::IncrementalCheckpointMetadata;
use super::request::CheckpointRequest;
use super::store::{Check, CheckpointStore, LatestCheckpoint, Memo, RejectedCheckpoint};
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What the caller's state was built from, as far as the manager knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// Nothing was restored or written through this manager.
    Unknown,
    /// The empty state: the caller restored "no checkpoint"
    /// (`SinkCoordinator::recover` found none).
    Empty,
    /// The state of checkpoint `id`.
    Checkpoint(u64),
    /// The caller's state is beyond every checkpoint: the checkpoint that
    /// would have held it (a background one) failed. Like `Unknown`, but
    /// never taken for the empty state of an empty directory.
    Lost,
}

/// The parent a request builds on (`None`: it builds on nothing and is
/// written as a full checkpoint of what it holds, deltas applied to an empty
/// state), and whether it drops a part of that parent.
#[derive(Debug)]
pub(crate) struct Choice {
    pub parent: Option<Arc<IncrementalCheckpointMetadata>>,
    pub drops_a_part: bool,
}

impl Choice {
    fn none() -> Self {
        Choice {
            parent: None,
            drops_a_part: false,
        }
    }
}

/// Decides what `request` builds on. `base` is the manager's base, `ids` the
/// checkpoint ids present, `verified` the checkpoints whose every checksum this
/// manager verified or wrote (updated when a parent is verified here).
///
/// # Errors
/// `DeltaParentUnknown`, `DeltaParentMismatch`, `CheckpointNotFound` for a
/// named parent that is not present, and the error found while reading or
/// verifying the parent or a newer checkpoint (`Io`, corruption).
pub(crate) fn choose(
    store: &CheckpointStore,
    verified: &mut BTreeSet<u64>,
    base: Base,
    request: &CheckpointRequest<'_>,
    wants_delta: bool,
    ids: &[u64],
) -> Result<Choice> {
    let mentioned = |name: &str| {
        request.parts.iter().any(|(n, _)| n == name) || request.drops.iter().any(|n| n == name)
    };
    let candidate = match (request.parent, base) {
        (Some(id), _) => Base::Checkpoint(id),
        // A directory without any checkpoint: there is nothing else the
        // caller's state can have been built from.
        (None, Base::Unknown) if ids.is_empty() => Base::Empty,
        (None, base) => base,
    };
    let unknown = || Error::DeltaParentUnknown {
        path: store.dir().to_path_buf(),
    };
    // A full request needs no parent if it names every part the latest
    // checkpoint holds.
    let whole_without_parent = || match latest_restorable(store, ids, None)? {
        Some(latest) if !store.part_names(latest.id)?.iter().all(|n| mentioned(n)) => {
            Err(unknown())
        }
        _ => Ok(Choice::none()),
    };
    match candidate {
        Base::Unknown | Base::Lost => {
            if wants_delta {
                return Err(unknown());
            }
            whole_without_parent()
        }
        Base::Empty => {
            if !wants_delta {
                return Ok(Choice::none());
            }
            match latest_restorable(store, ids, None)? {
                None => Ok(Choice::none()),
                Some(latest) => Err(Error::DeltaParentMismatch {
                    path: store.dir().to_path_buf(),
                    parent: None,
                    latest: Some(latest.id),
                }),
            }
        }
        Base::Checkpoint(id) => {
            if !ids.contains(&id) {
                return Err(Error::CheckpointNotFound {
                    dir: store.dir().to_path_buf(),
                    id,
                });
            }
            let light = match verify_chain(store, id, Check::Light) {
                Ok(meta) => meta,
                // The parent was damaged since it was restored or written: a
                // request that gives the whole state is still written in full.
                Err(e) if !wants_delta && is_damage(&e) => {
                    tracing::warn!(checkpoint = id, error = %e, "the parent checkpoint is damaged; writing the request only if it holds the whole state");
                    // Its parts cannot be carried over: the request must name
                    // every part the parent's metadata lists (or drop it),
                    // else a part of the caller's state would be lost.
                    return match listed_parts(store, id) {
                        Ok(names) if names.iter().all(|n| mentioned(n)) => whole_without_parent(),
                        _ => Err(e),
                    };
                }
                Err(e) => return Err(e),
            };
            let names = store.part_names(id)?;
            let carries = names.iter().any(|n| !mentioned(n));
            let drops_a_part = request.drops.iter().any(|d| names.contains(d));
            if !wants_delta && !carries {
                // The whole state is given: a full checkpoint, whatever the
                // parent was.
                return Ok(Choice::none());
            }
            if let Some(latest) = latest_restorable(store, ids, Some(id))? {
                return Err(Error::DeltaParentMismatch {
                    path: store.dir().to_path_buf(),
                    parent: Some(id),
                    latest: Some(latest.id),
                });
            }
            // Every checksum of the chain once per parent per manager; the
            // light check above (metadata, every part file's size) on
            // every request.
            let parent = if verified.contains(&id) {
                light
            } else {
                verify_chain(store, id, Check::Full)?
            };
            verified.insert(id);
            Ok(Choice {
                parent: Some(parent),
                drops_a_part,
            })
        }
    }
}

/// Every part checkpoint `id` holds as its metadata (and its parents', for a
/// delta) lists them, without checking any file.
///
/// # Errors
/// The error reading a metadata file.
fn listed_parts(store: &CheckpointStore, id: u64) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    let mut at = Some(id);
    while let Some(current) = at {
        let meta = store.read_metadata(current)?;
        for part in &meta.parts {
            if !names.contains(&part.name) {
                names.push(part.name.clone());
            }
        }
        at = if meta.is_delta() {
            meta.parent_id
        } else {
            None
        };
    }
    Ok(names)
}

/// Checks checkpoint `id` and its whole chain at `level`, returning the first
/// problem as the typed error it is (an I/O error stays an I/O error).
///
/// # Errors
/// The error of the first checkpoint of the chain that fails; a chain whose
/// links disagree is `CheckpointChainBroken`.
pub(crate) fn verify_chain(
    store: &CheckpointStore,
    id: u64,
    level: Check,
) -> Result<Arc<IncrementalCheckpointMetadata>> {
    let mut chain: Vec<Arc<IncrementalCheckpointMetadata>> = Vec::new();
    let mut at = Some(id);
    while let Some(current) = at {
        let meta = store.check_one(current, level)?;
        if let Some(child) = chain.last() {
            links_to(child, &meta).map_err(|p| store.chain_broken(p))?;
        }
        at = meta.parent_id;
        chain.push(meta);
    }
    chain_resolves(&chain).map_err(|p| store.chain_broken(p))?;
    chain
        .into_iter()
        .next()
        .ok_or_else(|| Error::CheckpointNotFound {
            dir: store.dir().to_path_buf(),
            id,
        })
}

/// The newest restorable checkpoint with an id above `above` (every one when
/// `None`), every checksum of its chain verified. A checkpoint that is
/// damaged (a corruption error, a missing file) is skipped; any other error
/// (a failed read) is returned: whether that checkpoint is restorable is not
/// known now, and an older one must not be taken in its place.
///
/// # Errors
/// The I/O error that kept a checkpoint from being verified.
pub(crate) fn latest_restorable(
    store: &CheckpointStore,
    ids: &[u64],
    above: Option<u64>,
) -> Result<Option<Arc<IncrementalCheckpointMetadata>>> {
    for &id in ids.iter().rev() {
        if above.is_some_and(|a| id <= a) {
            break;
        }
        match verify_chain(store, id, Check::Full) {
            Ok(meta) => return Ok(Some(meta)),
            Err(e) if is_damage(&e) => {
                tracing::debug!(checkpoint = id, error = %e, "not restorable");
            }
            Err(e) => {
                tracing::warn!(checkpoint = id, error = %e, "cannot tell whether a checkpoint is restorable; refusing to build on an older one");
                return Err(e);
            }
        }
    }
    Ok(None)
}

/// [`CheckpointStore::find_latest`] for a writer: a checkpoint whose check
/// fails is checked once more with typed errors, and one that fails with a
/// read error (not damage) stops the search with that error instead of being
/// skipped for an older checkpoint. Rejected reasons are the store's.
///
/// # Errors
/// `Io` when the directory cannot be listed or a checkpoint cannot be read.
pub(crate) fn find_latest_strict(store: &CheckpointStore) -> Result<LatestCheckpoint> {
    let mut out = LatestCheckpoint::default();
    let mut memo = Memo::new();
    for id in store.checkpoint_ids()?.into_iter().rev() {
        let error = match store.check_chain(id, Check::Full, &mut memo) {
            Ok(meta) => {
                out.metadata = Some((*meta).clone());
                break;
            }
            Err(error) => error,
        };
        match verify_chain(store, id, Check::Full) {
            // The first check met a failed read that did not repeat.
            Ok(meta) => {
                out.metadata = Some((*meta).clone());
                break;
            }
            Err(e) if !is_damage(&e) => {
                tracing::warn!(checkpoint = id, error = %e, "cannot tell whether a checkpoint is restorable; not falling back to an older one");
                return Err(e);
            }
            Err(_) => {
                let path = store.checkpoint_path(id);
                tracing::warn!(checkpoint = id, path = %path.display(), %error, "skipping checkpoint that is not restorable");
                out.rejected.push(RejectedCheckpoint::new(id, path, error));
            }
        }
    }
    Ok(out)
}

/// True for errors that say a checkpoint is damaged for good (as opposed to
/// a read that failed and may succeed later). A checkpoint whose parent is
/// unrestorable is damaged exactly when the parent's error is; a build that
/// lacks a feature says nothing about the data.
pub(crate) fn is_damage(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        Error::CheckpointParentUnrestorable { source, .. } => is_damage(source),
        Error::FeatureDisabled { .. } | Error::Fenced { .. } => false,
        // A key not given, or the wrong one, says nothing about the data:
        // every older sealed checkpoint would fail the same way, and
        // falling back past it would restore stale state.
        e if e.is_key_problem() => false,
        // A missing object is damage, like a missing file, and so is one
        // shorter than its record says (a range past its end); a failed
        // request is not.
        Error::Blob(e) => {
            e.is_not_found() || matches!(e, crate::blob::BlobError::InvalidRange { .. })
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;

    fn io(kind: std::io::ErrorKind) -> Error {
        Error::io("read", "/ckpt/x", std::io::Error::from(kind))
    }

    fn under_child(source: Error) -> Error {
        Error::CheckpointParentUnrestorable {
            path: PathBuf::from("/ckpt/checkpoint-2"),
            id: 2,
            parent: 1,
            source: Arc::new(source),
        }
    }

    #[test]
    fn a_missing_object_is_damage_and_a_failed_request_is_not() {
        use crate::blob::{BlobError, BlobOp};
        let missing = Error::Blob(BlobError::NotFound {
            operation: BlobOp::Get,
            key: "parts/x".into(),
        });
        let failed = Error::Blob(BlobError::Transient {
            operation: BlobOp::Get,
            key: "parts/x".into(),
            reason: "503".into(),
        });
        let short = Error::Blob(BlobError::InvalidRange {
            operation: BlobOp::Get,
            key: "parts/x".into(),
            start: 0,
            end: 10,
            size: 5,
        });
        assert!(is_damage(&missing));
        assert!(is_damage(&short));
        assert!(!is_damage(&failed));
        assert!(!is_damage(&under_child(failed)));
    }

    #[test]
    fn a_failed_read_is_not_damage_even_below_a_child() {
        assert!(!is_damage(&io(std::io::ErrorKind::Interrupted)));
        assert!(!is_damage(&under_child(io(
            std::io::ErrorKind::Interrupted
        ))));
        assert!(is_damage(&io(std::io::ErrorKind::NotFound)));
        assert!(is_damage(&under_child(io(std::io::ErrorKind::NotFound))));
        let corrupt = Error::CheckpointCorrupted {
            path: PathBuf::from("/ckpt/checkpoint-1"),
            offset: None,
            reason: "bad".into(),
        };
        assert!(is_damage(&under_child(corrupt)));
        assert!(!is_damage(&Error::FeatureDisabled {
            feature: "arrow",
            what: "a part".into()
        }));
    }
}
