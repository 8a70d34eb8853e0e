//! The cluster's commit sequence: reading claims and epoch records, finding
//! the base a run restores, claiming a coordinator generation, committing an
//! epoch with the fencing rule, and a worker's check that its run is still
//! the newest (docs/DISTRIBUTED.md, "The protocol").
//!
//! Invariants:
//! - The base is the epoch record in the newest slot at or above the floor
//!   that holds one; a damaged record there is an error, never skipped (an
//!   older epoch would publish output a second time).
//! - A claim is made in the slot after the newest record, holding the base
//!   found below it; a lost race moves to the next slot and looks again.
//! - Commits go through the single writer's `create_slot` and floor check:
//!   only our own bytes in the slot are our commit.

use super::record::{self, ClusterRecord, GlobalCheckpoint, RunPlan};
use crate::blob::BlobStore;
use crate::checkpoint::remote::record::{corrupted, record_path};
use crate::checkpoint::remote::sequence::{self as seq, SlotOutcome};
use crate::error::{Error, Result};
use bytes::Bytes;

/// The record in `slot`, decoded (`None`: the slot is empty).
///
/// # Errors
/// The store's errors; `CheckpointCorrupted` for a damaged record.
pub(crate) fn read(store: &dyn BlobStore, slot: u64) -> Result<Option<ClusterRecord>> {
    seq::read_slot(store, slot)?
        .map(|b| record::decode(slot, &b))
        .transpose()
}

/// The newest epoch record at or above the floor, the newest slot listed,
/// and the floor.
///
/// # Errors
/// The store's errors; `CheckpointCorrupted` for a damaged record on the
/// way down to it.
fn newest_epoch(store: &dyn BlobStore) -> Result<(Option<GlobalCheckpoint>, u64, u64)> {
    let floor = seq::floor(store)?;
    let slots = seq::list_slots(store)?;
    let newest = slots.last().map_or(0, |s| s.slot);
    for s in slots.iter().rev().filter(|s| s.slot >= floor) {
        if let Some(ClusterRecord::Epoch(e)) = read(store, s.slot)? {
            return Ok((Some(*e), newest, floor));
        }
    }
    Ok((None, newest, floor))
}

/// A run a coordinator claimed.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub generation: u64,
    pub plan: RunPlan,
    pub base: Option<GlobalCheckpoint>,
}

const MAX_CLAIMS: u32 = 64;

/// Claims the next generation for a run of `workers` over `key_groups`.
///
/// # Errors
/// The store's errors; `InvalidConfig` when the base was written with
/// another key-group count; `Indeterminate` when the claim's outcome is
/// unknown.
pub(crate) fn claim(store: &dyn BlobStore, workers: u32, key_groups: u32) -> Result<Claimed> {
    let coordinator = seq::writer_name();
    for _ in 0..MAX_CLAIMS {
        let (base, newest, floor) = newest_epoch(store)?;
        if let Some(b) = &base {
            if b.key_groups != key_groups {
                return Err(Error::InvalidConfig {
                    setting: "key_groups",
                    reason: format!(
                        "the job has {} key groups (epoch {} at slot {}); it cannot change to {key_groups}",
                        b.key_groups, b.epoch, b.slot
                    ),
                });
            }
        }
        let slot = newest
            .checked_add(1)
            .ok_or_else(|| Error::invalid_argument("claim", "the commit sequence is full"))?
            .max(floor);
        let plan = RunPlan {
            workers,
            key_groups,
            base_slot: base.as_ref().map(|b| b.slot),
            base_epoch: base.as_ref().map_or(0, |b| b.epoch),
        };
        let bytes = Bytes::from(record::encode_claim(
            slot,
            &coordinator,
            plan,
            crate::checkpoint::remote::layout::nonce(),
        )?);
        if seq::create_slot(store, slot, &bytes)? == SlotOutcome::Ours {
            tracing::info!(
                generation = slot,
                workers,
                base_epoch = plan.base_epoch,
                "claimed a coordinator generation"
            );
            return Ok(Claimed {
                generation: slot,
                plan,
                base,
            });
        }
    }
    Err(Error::invalid_argument(
        "claim",
        format!("{MAX_CLAIMS} claims in a row lost to other coordinators"),
    ))
}

/// Commits epoch record `bytes` of `generation` into `slot`.
///
/// # Errors
/// `Fenced` when another record holds the slot or it is below the floor;
/// the store's errors; `Indeterminate` when the outcome is unknown.
pub(crate) fn commit(
    store: &dyn BlobStore,
    slot: u64,
    generation: u64,
    bytes: &Bytes,
) -> Result<()> {
    seq::commit_with(store, slot, generation, bytes, |slot, winner| {
        record::decode(slot, winner).ok().map(|r| r.generation())
    })
}

/// The claim of run `generation` and the base it restores.
///
/// # Errors
/// `InvalidArgument` when the slot holds no claim; `CheckpointCorrupted`
/// when the base slot holds no epoch record; the store's errors.
pub(crate) fn run(
    store: &dyn BlobStore,
    generation: u64,
) -> Result<(RunPlan, Option<GlobalCheckpoint>)> {
    let plan = match read(store, generation)? {
        Some(ClusterRecord::Claim { plan, .. }) => plan,
        other => {
            return Err(Error::invalid_argument(
                "join",
                format!(
                    "slot {generation} holds {}, not a coordinator's claim",
                    if other.is_some() {
                        "an epoch record"
                    } else {
                        "nothing"
                    }
                ),
            ))
        }
    };
    let base = match plan.base_slot {
        None => None,
        Some(slot) => match read(store, slot)? {
            Some(ClusterRecord::Epoch(e)) if e.epoch == plan.base_epoch => Some(*e),
            _ => {
                return Err(corrupted(
                    &record_path(slot),
                    format!(
                        "the claim of run {generation} restores epoch {} from this slot, which does not hold it",
                        plan.base_epoch
                    ),
                ))
            }
        },
    };
    Ok((plan, base))
}

/// Whether a newer run has claimed the location: `Fenced` naming the newer
/// run's record when the newest slot holds one. A newer claim is always
/// above every record of this run (it is made after the newest slot), so
/// the newest record decides: of this run, we are current; of a newer one,
/// fenced.
///
/// # Errors
/// `Fenced`; the store's errors.
pub(crate) fn check_current(store: &dyn BlobStore, generation: u64) -> Result<()> {
    let slots = seq::list_slots(store)?;
    for s in slots.iter().rev().take_while(|s| s.slot >= generation) {
        let Some(record) = read(store, s.slot)? else {
            continue;
        };
        let newer = record.generation();
        if newer == generation {
            return Ok(());
        }
        if newer > generation {
            return Err(Error::Fenced {
                key: crate::checkpoint::remote::layout::commit_key(s.slot).to_string(),
                slot: s.slot,
                generation,
                winner_generation: Some(newer),
                reason: format!("run {newer} has started; run {generation} is over"),
            });
        }
    }
    Ok(())
}
