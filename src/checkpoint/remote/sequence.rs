//! The commit sequence of a location: listing its slots and its floor,
//! reading records, claiming a generation, and committing into a slot with
//! the fencing rule (docs/OBJECT_STORAGE.md, "Commit and fencing").
//!
//! Invariants:
//! - [`create_slot`] never reports a slot as ours unless it holds exactly
//!   our bytes: a lost answer (`Indeterminate`) and `AlreadyExists` are both
//!   resolved by reading the slot back and comparing.
//! - A create is repeated only when the slot was read back empty (nothing
//!   was created), after an answer that changed nothing, or after a failed
//!   read-back (a repeated conditional create cannot make a second record:
//!   it finds the first and compares).
//! - Once an answer was lost, no later failure is reported as "nothing was
//!   created": the error is `Indeterminate`.
//! - [`commit`] checks the floor after its create: a slot below the floor is
//!   dead, and its writer is fenced even though the create succeeded.

use super::layout::{commit_key, floor_key, folder, parse_numbered, COMMITS, FLOORS};
use super::record::{self, SlotRecord};
use super::retry::{retried, ATTEMPTS};
use crate::blob::{list_all, BlobError, BlobStore, CreateOutcome};
use crate::error::{Error, Result};
use bytes::Bytes;
use std::time::SystemTime;

/// A slot of the sequence as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListedSlot {
    /// Its number.
    pub slot: u64,
    /// When its record was written (the epoch when the store does not tell).
    pub last_modified: SystemTime,
}

/// Every slot holding a record, sorted; objects under `commits/` that are
/// not `commits/<20 digits>` are ignored with a warning.
///
/// # Errors
/// The store's listing error.
pub(crate) fn list_slots(store: &dyn BlobStore) -> Result<Vec<ListedSlot>> {
    let prefix = folder(COMMITS);
    let objects = retried("list", COMMITS, || list_all(store, Some(&prefix)))?;
    let mut slots: Vec<ListedSlot> = objects
        .into_iter()
        .filter_map(|m| match parse_numbered(COMMITS, &m.key) {
            Some(slot) => Some(ListedSlot {
                slot,
                last_modified: m.last_modified.unwrap_or(SystemTime::UNIX_EPOCH),
            }),
            None => {
                tracing::warn!(key = %m.key, "ignoring an object in commits/ that is not a commit record");
                None
            }
        })
        .collect();
    slots.sort_by_key(|s| s.slot);
    Ok(slots)
}

/// The floor markers' slots, sorted.
///
/// # Errors
/// The store's listing error.
pub(crate) fn floor_markers(store: &dyn BlobStore) -> Result<Vec<u64>> {
    let prefix = folder(FLOORS);
    let objects = retried("list", FLOORS, || list_all(store, Some(&prefix)))?;
    let mut slots: Vec<u64> = objects
        .iter()
        .filter_map(|m| parse_numbered(FLOORS, &m.key))
        .collect();
    slots.sort_unstable();
    Ok(slots)
}

/// The floor: the largest marker (0 when there is none). Slots below it are
/// dead.
///
/// # Errors
/// The store's listing error.
pub(crate) fn floor(store: &dyn BlobStore) -> Result<u64> {
    Ok(floor_markers(store)?.last().copied().unwrap_or(0))
}

/// The bytes of the record in `slot` (`None`: the slot is empty). Reads are
/// bounded by [`record::MAX_RECORD_LEN`] after a `head`.
///
/// # Errors
/// The store's error; `CheckpointCorrupted` for a record over the bound.
pub(crate) fn read_slot(store: &dyn BlobStore, slot: u64) -> Result<Option<Bytes>> {
    let key = commit_key(slot);
    let meta = match retried("head", key.as_str(), || store.head(&key)) {
        Ok(meta) => meta,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if meta.size > record::MAX_RECORD_LEN {
        return Err(Error::CheckpointCorrupted {
            path: record::record_path(slot),
            offset: None,
            reason: format!(
                "record is {} bytes; at most {} are read",
                meta.size,
                record::MAX_RECORD_LEN
            ),
        });
    }
    match retried("get", key.as_str(), || store.get(&key)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The record in `slot`, decoded (`None`: the slot is empty).
///
/// # Errors
/// As [`read_slot`]; [`record::decode`]'s errors for a damaged record.
pub(crate) fn read_record(store: &dyn BlobStore, slot: u64) -> Result<Option<SlotRecord>> {
    read_slot(store, slot)?
        .map(|bytes| record::decode(slot, &bytes))
        .transpose()
}

/// Who holds a slot after [`create_slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SlotOutcome {
    /// It holds our bytes: our create (this one, or an earlier attempt whose
    /// answer was lost).
    Ours,
    /// It holds another record (its bytes).
    Taken(Bytes),
}

/// Decides who holds a slot from what it holds (a pure decision).
pub(crate) fn resolve(ours: &[u8], found: Bytes) -> SlotOutcome {
    if found.as_ref() == ours {
        SlotOutcome::Ours
    } else {
        SlotOutcome::Taken(found)
    }
}

/// Creates `slot` holding `bytes` if it is empty, and says who holds it.
///
/// # Errors
/// `Error::Blob` with [`BlobError::Indeterminate`] when the outcome could not
/// be found out (a read-back failed, and so did what followed it): the slot
/// may hold our record; the store's other errors when nothing was created.
pub(crate) fn create_slot(store: &dyn BlobStore, slot: u64, bytes: &Bytes) -> Result<SlotOutcome> {
    let key = commit_key(slot);
    let mut last_indeterminate: Option<BlobError> = None;
    // After a lost answer, a later failure does not mean "nothing was
    // created": the earlier attempt may have created the record.
    let unknown = |e: Error, last: &Option<BlobError>| match (e, last) {
        (Error::Blob(e), Some(_)) if !e.is_indeterminate() => {
            Error::Blob(BlobError::Indeterminate {
                operation: crate::blob::BlobOp::Create,
                key: key.to_string(),
                reason: format!("an earlier create's answer was lost, and then: {e}"),
            })
        }
        (e, _) => e,
    };
    for attempt in 1..=ATTEMPTS {
        match retried("create", key.as_str(), || {
            store.create_if_absent(&key, bytes.clone())
        }) {
            Ok(CreateOutcome::Created) => return Ok(SlotOutcome::Ours),
            Ok(CreateOutcome::AlreadyExists) => match read_slot(store, slot) {
                Ok(Some(found)) => return Ok(resolve(bytes, found)),
                // Deleted since (garbage collection below the floor): try
                // again; the floor check after the commit decides.
                Ok(None) => continue,
                Err(e) => return Err(unknown(e, &last_indeterminate)),
            },
            Err(e @ BlobError::Indeterminate { .. }) => {
                tracing::warn!(key = %key, attempt, "commit record create indeterminate; reading it back");
                match read_slot(store, slot) {
                    Ok(Some(found)) => return Ok(resolve(bytes, found)),
                    Ok(None) => {}
                    Err(read) => {
                        tracing::warn!(key = %key, error = %read, "reading back an indeterminate create failed");
                    }
                }
                last_indeterminate = Some(e);
            }
            Err(e) => return Err(unknown(e.into(), &last_indeterminate)),
        }
    }
    Err(last_indeterminate
        .unwrap_or_else(|| BlobError::Indeterminate {
            operation: crate::blob::BlobOp::Create,
            key: key.to_string(),
            reason: "the slot kept changing under the create".into(),
        })
        .into())
}

/// The fencing error for a commit into `slot` by `generation` that found a
/// record of `winner_generation` there.
fn fenced_by(slot: u64, generation: u64, winner_generation: Option<u64>) -> Error {
    Error::Fenced {
        key: commit_key(slot).to_string(),
        slot,
        generation,
        winner_generation,
        reason: match winner_generation {
            Some(g) => format!("the slot holds a record of generation {g}"),
            None => "the slot holds another record (it does not decode)".into(),
        },
    }
}

/// Commits `bytes` (a checkpoint record of `generation`) into `slot`.
///
/// # Errors
/// [`Error::Fenced`] when another record holds the slot, or the slot is
/// below the floor; [`create_slot`]'s errors; `Indeterminate` when the
/// record is in but the floor could not be checked.
pub(crate) fn commit(
    store: &dyn BlobStore,
    slot: u64,
    generation: u64,
    bytes: &Bytes,
) -> Result<()> {
    commit_with(store, slot, generation, bytes, |slot, winner| {
        record::decode(slot, winner).ok().map(|r| r.generation())
    })
}

/// [`commit`] for a sequence of other records (the cluster's): `generation_of`
/// reads the winner's generation from its bytes, for the fencing error.
///
/// # Errors
/// As [`commit`].
pub(crate) fn commit_with(
    store: &dyn BlobStore,
    slot: u64,
    generation: u64,
    bytes: &Bytes,
    generation_of: impl Fn(u64, &[u8]) -> Option<u64>,
) -> Result<()> {
    match create_slot(store, slot, bytes)? {
        SlotOutcome::Ours => {}
        SlotOutcome::Taken(winner) => {
            return Err(fenced_by(slot, generation, generation_of(slot, &winner)))
        }
    }
    // The record is in its slot now: a failed floor check leaves the
    // commit's outcome unknown, whatever the listing's error says.
    let floor = floor(store).map_err(|e| match e {
        Error::Blob(b) if !b.is_indeterminate() => Error::Blob(BlobError::Indeterminate {
            operation: crate::blob::BlobOp::Create,
            key: commit_key(slot).to_string(),
            reason: format!("the record is in its slot, but checking the floor failed: {b}"),
        }),
        e => e,
    })?;
    if slot < floor {
        return Err(Error::Fenced {
            key: floor_key(floor).to_string(),
            slot,
            generation,
            winner_generation: None,
            reason: format!("the slot is below the floor {floor}: a newer writer collected it"),
        });
    }
    Ok(())
}

/// A generation claimed by [`claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claimed {
    /// The claim's slot, which is the writer's generation; restores use the
    /// slots below it, commits the slots after it.
    pub generation: u64,
    /// The floor when the claim was made.
    pub floor: u64,
}

/// The most claims tried before giving up (each lost one means another
/// writer created a record in the slot at the same time).
const MAX_CLAIMS: u32 = 64;

/// Who is claiming, for the record: host name and process id.
pub(crate) fn writer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{host}:{}", std::process::id())
}

/// Claims the next generation: creates a claim record in the slot after the
/// newest one. Every older writer's next commit then collides.
///
/// # Errors
/// The store's errors; `Error::Blob` with `Indeterminate` when the claim's
/// outcome could not be found out; `InvalidArgument` when the sequence is
/// full (slot `u64::MAX`) or claims kept losing to other writers.
pub(crate) fn claim(store: &dyn BlobStore) -> Result<Claimed> {
    let writer = writer_name();
    let floor = floor(store)?;
    let mut next = list_slots(store)?
        .last()
        .map_or(Some(1), |s| s.slot.checked_add(1))
        .ok_or_else(|| Error::invalid_argument("claim", "the commit sequence is full"))?
        .max(floor);
    for _ in 0..MAX_CLAIMS {
        let bytes = Bytes::from(record::encode_claim(next, &writer, super::layout::nonce())?);
        match create_slot(store, next, &bytes)? {
            SlotOutcome::Ours => {
                tracing::info!(generation = next, writer, "claimed a writer generation");
                return Ok(Claimed {
                    generation: next,
                    floor,
                });
            }
            SlotOutcome::Taken(_) => {
                next = next.checked_add(1).ok_or_else(|| {
                    Error::invalid_argument("claim", "the commit sequence is full")
                })?;
            }
        }
    }
    Err(Error::invalid_argument(
        "claim",
        format!("{MAX_CLAIMS} claims in a row lost to other writers"),
    ))
}

#[cfg(test)]
#[path = "sequence_tests.rs"]
mod tests;
