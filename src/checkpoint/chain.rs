//! [`ChainProblem`]: why a checkpoint's metadata does not fit its delta chain
//! (the typed value of [`Error::CheckpointChainBroken`](crate::Error::CheckpointChainBroken)),
//! and the two checks that find one.

use super::metadata::{IncrementalCheckpointMetadata, PartKind};
use std::sync::Arc;

/// What does not fit in a checkpoint's chain. Values are as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainProblem {
    /// The checkpoint's base and chain length do not follow from its
    /// parent's (same base, chain length one more).
    LinkMismatch {
        /// The checkpoint.
        id: u64,
        /// The base it claims.
        base_id: u64,
        /// The chain length it claims.
        chain_length: u32,
        /// Its parent.
        parent: u64,
        /// The parent's base.
        parent_base_id: u64,
        /// The parent's chain length.
        parent_chain_length: u32,
    },
    /// A delta part has no part of its base kind and name further down the
    /// chain to apply to.
    NoBase {
        /// The checkpoint holding the delta.
        id: u64,
        /// The part's name.
        part: String,
        /// The delta's kind.
        kind: PartKind,
    },
}

impl ChainProblem {
    /// The checkpoint whose metadata does not fit.
    pub fn checkpoint_id(&self) -> u64 {
        match self {
            ChainProblem::LinkMismatch { id, .. } | ChainProblem::NoBase { id, .. } => *id,
        }
    }
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainProblem::LinkMismatch {
                id,
                base_id,
                chain_length,
                parent,
                parent_base_id,
                parent_chain_length,
            } => write!(
                f,
                "checkpoint {id} claims base {base_id} and chain length {chain_length}, but its parent {parent} has base {parent_base_id} and chain length {parent_chain_length}"
            ),
            ChainProblem::NoBase { id, part, kind } => write!(
                f,
                "{} part {part:?} of checkpoint {id} has no {} part to apply to",
                kind.name(),
                kind.base().name()
            ),
        }
    }
}

/// Checks that `child`'s chain fields agree with its parent's (values read
/// from disk: no arithmetic that can overflow).
///
/// # Errors
/// [`ChainProblem::LinkMismatch`].
pub(crate) fn links_to(
    child: &IncrementalCheckpointMetadata,
    parent: &IncrementalCheckpointMetadata,
) -> Result<(), ChainProblem> {
    if child.base_id != parent.base_id
        || parent.chain_length.checked_add(1) != Some(child.chain_length)
    {
        return Err(ChainProblem::LinkMismatch {
            id: child.id,
            base_id: child.base_id,
            chain_length: child.chain_length,
            parent: parent.id,
            parent_base_id: parent.base_id,
            parent_chain_length: parent.chain_length,
        });
    }
    Ok(())
}

/// Checks that every delta part of every checkpoint of `chain` (newest first)
/// applies to a snapshot of the same name further down the chain.
///
/// # Errors
/// [`ChainProblem::NoBase`] for the first delta part that does not.
pub(crate) fn chain_resolves(
    chain: &[Arc<IncrementalCheckpointMetadata>],
) -> Result<(), ChainProblem> {
    for (at, meta) in chain.iter().enumerate() {
        for part in meta.parts.iter().filter(|p| p.kind.is_delta()) {
            let base = chain[at + 1..]
                .iter()
                .find_map(|older| older.part(&part.name).filter(|p| !p.kind.is_delta()));
            if base.is_none_or(|b| b.kind != part.kind.base()) {
                return Err(ChainProblem::NoBase {
                    id: meta.id,
                    part: part.name.clone(),
                    kind: part.kind,
                });
            }
        }
    }
    Ok(())
}
