//! [`ChainProblem`]: why a checkpoint's metadata does not fit its delta chain
//! (the typed value of [`Error::CheckpointChainBroken`](crate::Error::CheckpointChainBroken)),
//! and the two checks that find one.

use super::metadata::{IncrementalCheckpointMetadata, PartKind};
use std::collections::HashMap;
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
/// applies to a snapshot of the same name further down the chain: the
/// nearest older part of that name that is not a delta has the delta's base
/// kind. One pass from the oldest checkpoint up (linear in the chain, not
/// quadratic), reporting the problem a scan from the newest finds first.
///
/// # Errors
/// [`ChainProblem::NoBase`] for the first delta part (newest checkpoint
/// first, in part order) that does not.
pub(crate) fn chain_resolves(
    chain: &[Arc<IncrementalCheckpointMetadata>],
) -> Result<(), ChainProblem> {
    // The nearest base-form part of each name below the checkpoint at hand.
    let mut bases: HashMap<&str, PartKind> = HashMap::new();
    let mut newest_problem = None;
    for meta in chain.iter().rev() {
        let problem = meta
            .parts
            .iter()
            .filter(|p| p.kind.is_delta())
            .find(|part| bases.get(part.name.as_str()).copied() != Some(part.kind.base()));
        if let Some(part) = problem {
            newest_problem = Some(ChainProblem::NoBase {
                id: meta.id,
                part: part.name.clone(),
                kind: part.kind,
            });
        }
        for part in meta.parts.iter().filter(|p| !p.kind.is_delta()) {
            bases.insert(part.name.as_str(), part.kind);
        }
    }
    newest_problem.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::metadata::PartMetadata;

    /// The quadratic definition: for each delta part, the nearest older
    /// part of its name that is not a delta.
    fn by_definition(chain: &[Arc<IncrementalCheckpointMetadata>]) -> Result<(), ChainProblem> {
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

    fn meta(id: u64, parts: &[(&str, PartKind)]) -> Arc<IncrementalCheckpointMetadata> {
        let json = serde_json::json!({
            "id": id, "epoch": id, "kind": "delta", "parent_id": null, "base_id": 0,
            "chain_length": 0, "chain_delta_bytes": 0, "base_bytes": 0,
            "wal_position": 0, "source_offsets": {}, "watermark": null,
            "created_unix_ms": 0, "parts": [], "sink_transactions": []
        });
        let mut m: IncrementalCheckpointMetadata = serde_json::from_value(json).unwrap();
        m.parts = parts
            .iter()
            .map(|(name, kind)| PartMetadata {
                name: name.to_string(),
                kind: *kind,
                file: format!("{name}.{}", kind.name()),
                size: 0,
                crc32c: 0,
                entries: 0,
                deleted: 0,
                sealed: None,
            })
            .collect();
        Arc::new(m)
    }

    #[test]
    fn one_pass_agrees_with_the_definition() {
        use PartKind::{Blob, Delta, Snapshot};
        let kinds = [Snapshot, Delta, Blob];
        // Every chain of up to 4 checkpoints, each holding nothing, or parts
        // "a" and/or "b" of any kind: the newest problem is the same.
        let options: Vec<Vec<(&str, PartKind)>> = std::iter::once(vec![])
            .chain(kinds.iter().map(|k| vec![("a", *k)]))
            .chain(kinds.iter().map(|k| vec![("b", *k), ("a", Delta)]))
            .collect();
        let mut checked = 0;
        for len in 1..=4u32 {
            let total = options.len().pow(len);
            for mut n in 0..total {
                let chain: Vec<_> = (0..len as u64)
                    .map(|i| {
                        let pick = &options[n % options.len()];
                        n /= options.len();
                        meta(10 - i, pick)
                    })
                    .collect();
                assert_eq!(chain_resolves(&chain), by_definition(&chain), "{chain:?}");
                checked += 1;
            }
        }
        assert!(checked > 1000);
    }
}
