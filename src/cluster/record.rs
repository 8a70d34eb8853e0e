//! Cluster commit records: a coordinator's **claim** (its generation and the
//! run's plan) and an **epoch record** (the commit of one epoch across every
//! worker), one per slot of the location's commit sequence, created with a
//! conditional create (docs/DISTRIBUTED.md; bytes: docs/FORMAT.md §7).
//!
//! Invariants (checked by [`decode`]):
//! - The bytes are the checksummed JSON envelope, format
//!   `highwater-cluster-commit`, version 1, at most the single-writer
//!   record bound; the slot inside is the key's.
//! - A claim's generation is its slot; its plan's base is below it.
//! - An epoch record's epoch is in `1..u64::MAX`, its generation below its
//!   slot; its reports are one per
//!   worker, each of the record's generation and epoch, their ranges
//!   contiguous and covering every key group, their partitions disjoint
//!   ([`super::protocol::check_cover`]).
//! - Two coordinators never encode the same bytes: a claim holds a random
//!   nonce, an epoch record its coordinator's generation.

use super::key_group::KeyGroups;
use super::protocol;
use super::report::{SinkHandle, SourcePosition, WorkerReport};
use crate::checkpoint::envelope;
use crate::checkpoint::remote::record::{corrupted, decode_slot_envelope, now_ms, record_path};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const FORMAT: &str = "highwater-cluster-commit";
const VERSION: u32 = 1;
const MAX_NAME_LEN: usize = 256;

/// What a run does, fixed by its coordinator's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPlan {
    /// How many workers the run has.
    pub workers: u32,
    /// The job's key-group count.
    pub key_groups: u32,
    /// The slot of the epoch record the run restores (`None`: a new job).
    pub base_slot: Option<u64>,
    /// The epoch it restores (0 for a new job); the run's first epoch is
    /// the next one.
    pub base_epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Body {
    Claim {
        coordinator: String,
        nonce: String,
        plan: RunPlan,
    },
    Epoch {
        epoch: u64,
        key_groups: u32,
        reports: Vec<WorkerReport>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    slot: u64,
    generation: u64,
    created_unix_ms: u64,
    #[serde(flatten)]
    body: Body,
}

/// One committed epoch of a cluster job: every worker's report, as the
/// epoch record holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalCheckpoint {
    /// The slot of its record.
    pub slot: u64,
    /// The generation of the coordinator that committed it.
    pub generation: u64,
    /// The epoch.
    pub epoch: u64,
    /// The job's key-group count.
    pub key_groups: u32,
    /// One report per worker, in key-group order.
    pub reports: Vec<WorkerReport>,
}

impl GlobalCheckpoint {
    /// Every partition's position at the epoch's barrier.
    pub fn positions(&self) -> BTreeMap<String, SourcePosition> {
        self.reports
            .iter()
            .flat_map(|r| r.positions.iter().map(|(k, v)| (k.clone(), *v)))
            .collect()
    }

    /// Every worker's sink handles for the epoch: publish them (idempotent
    /// commits) once the record exists, and again after a restore of it.
    pub fn sink_handles(&self) -> Vec<&SinkHandle> {
        self.reports.iter().flat_map(|r| r.sinks.iter()).collect()
    }

    /// How many workers committed it.
    pub fn workers(&self) -> u32 {
        self.reports.len() as u32
    }

    /// Every part object its chains name.
    pub fn part_keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.reports
            .iter()
            .flat_map(|r| r.chain.iter().map(|p| p.key.as_str()))
    }
}

/// A slot's record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterRecord {
    /// A coordinator claimed generation `generation` (its slot) for a run.
    Claim {
        /// The slot and generation.
        generation: u64,
        /// Who claimed it (host name and process id).
        coordinator: String,
        /// The run's plan.
        plan: RunPlan,
    },
    /// A committed epoch.
    Epoch(Box<GlobalCheckpoint>),
}

impl ClusterRecord {
    /// The generation of the coordinator that created the record.
    pub fn generation(&self) -> u64 {
        match self {
            ClusterRecord::Claim { generation, .. } => *generation,
            ClusterRecord::Epoch(c) => c.generation,
        }
    }
}

fn encode(record: &Record) -> Result<Vec<u8>> {
    envelope::encode("encode cluster record", FORMAT, VERSION, record)
}

/// The bytes of a claim of generation `slot` for `plan`.
///
/// # Errors
/// `InvalidArgument` if serde_json refuses the value.
pub(crate) fn encode_claim(
    slot: u64,
    coordinator: &str,
    plan: RunPlan,
    nonce: u64,
) -> Result<Vec<u8>> {
    let mut coordinator = coordinator.to_string();
    coordinator.truncate(MAX_NAME_LEN);
    encode(&Record {
        slot,
        generation: slot,
        created_unix_ms: now_ms(),
        body: Body::Claim {
            coordinator,
            nonce: format!("{nonce:016x}"),
            plan,
        },
    })
}

/// The bytes of the epoch record committing `reports` (checked, sorted) in
/// `slot` for `generation`.
///
/// # Errors
/// `InvalidArgument` if serde_json refuses the value.
pub(crate) fn encode_epoch(
    slot: u64,
    generation: u64,
    epoch: u64,
    key_groups: u32,
    reports: &[WorkerReport],
) -> Result<Vec<u8>> {
    encode(&Record {
        slot,
        generation,
        created_unix_ms: now_ms(),
        body: Body::Epoch {
            epoch,
            key_groups,
            reports: reports.to_vec(),
        },
    })
}

/// Parses and verifies the bytes read from `slot`'s key.
///
/// # Errors
/// `CheckpointCorrupted` naming the key (with the byte offset for JSON
/// errors) for damaged bytes or a record that breaks an invariant (module
/// docs); `UnsupportedVersion`. A single writer's record is refused too:
/// its format is another.
pub fn decode(slot: u64, bytes: &[u8]) -> Result<ClusterRecord> {
    let path = record_path(slot);
    let record: Record = decode_slot_envelope(
        slot,
        bytes,
        (FORMAT, VERSION, "cluster record"),
        |r: &Record| r.slot,
    )?;
    match record.body {
        Body::Claim {
            coordinator,
            nonce,
            plan,
        } => {
            if record.generation != slot {
                return Err(corrupted(&path, "a claim's generation is not its slot"));
            }
            if coordinator.len() > MAX_NAME_LEN || nonce.is_empty() || nonce.len() > 64 {
                return Err(corrupted(
                    &path,
                    "claim's coordinator or nonce is out of bounds",
                ));
            }
            let groups =
                KeyGroups::new(plan.key_groups).map_err(|e| corrupted(&path, e.to_string()))?;
            if plan.workers == 0 || plan.workers > groups.count() {
                return Err(corrupted(
                    &path,
                    format!("a plan of {} workers", plan.workers),
                ));
            }
            if plan.base_slot.is_some_and(|b| b >= slot)
                || (plan.base_slot.is_none() && plan.base_epoch != 0)
            {
                return Err(corrupted(&path, "the plan's base is not an earlier slot"));
            }
            Ok(ClusterRecord::Claim {
                generation: slot,
                coordinator,
                plan,
            })
        }
        Body::Epoch {
            epoch,
            key_groups,
            reports,
        } => {
            if record.generation == 0 || record.generation >= slot {
                return Err(corrupted(
                    &path,
                    format!(
                        "generation {} did not claim a slot before {slot}",
                        record.generation
                    ),
                ));
            }
            // Epochs count from 1; the last number has no next epoch.
            if epoch == 0 || epoch == u64::MAX {
                return Err(corrupted(&path, format!("epoch {epoch} is out of bounds")));
            }
            let groups = KeyGroups::new(key_groups).map_err(|e| corrupted(&path, e.to_string()))?;
            for r in &reports {
                r.check(&path)?;
            }
            protocol::check_cover(
                groups,
                record.generation,
                epoch,
                reports.len() as u32,
                &reports,
            )
            .map_err(|reason| corrupted(&path, reason))?;
            Ok(ClusterRecord::Epoch(Box::new(GlobalCheckpoint {
                slot,
                generation: record.generation,
                epoch,
                key_groups,
                reports,
            })))
        }
    }
}
