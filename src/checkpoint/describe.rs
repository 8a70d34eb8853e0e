//! The metadata of a checkpoint about to be published: its chain fields
//! from its parent, its watermarks never below the previous checkpoint's.

use super::metadata::{CheckpointKind, IncrementalCheckpointMetadata, PartMetadata};
use super::request::CheckpointRequest;
use crate::error::{Error, Result};
use crate::recovery::watermarks;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The metadata of a checkpoint about to be published.
pub(super) fn describe(
    dir: &Path,
    id: u64,
    epoch: u64,
    kind: CheckpointKind,
    parent: Option<&IncrementalCheckpointMetadata>,
    request: &CheckpointRequest<'_>,
    parts: Vec<PartMetadata>,
) -> Result<IncrementalCheckpointMetadata> {
    let bytes = parts.iter().fold(0, |n: u64, p| n.saturating_add(p.size));
    let (parent_id, base_id, chain_length, chain_delta_bytes, base_bytes) = match (kind, parent) {
        (CheckpointKind::Delta, Some(p)) => (
            Some(p.id),
            p.base_id,
            p.chain_length
                .checked_add(1)
                .ok_or_else(|| Error::CheckpointCorrupted {
                    path: p.checkpoint_path(dir),
                    offset: None,
                    reason: format!("chain length {} has no successor", p.chain_length),
                })?,
            p.chain_delta_bytes.saturating_add(bytes),
            p.base_bytes,
        ),
        _ => (None, id, 0, 0, bytes),
    };
    Ok(IncrementalCheckpointMetadata {
        id,
        epoch,
        kind,
        parent_id,
        base_id,
        chain_length,
        chain_delta_bytes,
        base_bytes,
        wal_position: request.wal_position,
        source_offsets: request.source_offsets.clone(),
        watermark: request.watermark,
        source_watermarks: request.source_watermarks.clone(),
        created_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        parts,
        sink_transactions: request.sink_transactions.clone(),
    })
}

/// `meta` with its watermarks raised to `previous`'s (its parent, or else the
/// newest checkpoint) where they are lower, for the partitions it records: a
/// watermark only grows.
pub(super) fn raise_watermarks(
    mut meta: IncrementalCheckpointMetadata,
    previous: Option<&IncrementalCheckpointMetadata>,
) -> IncrementalCheckpointMetadata {
    let Some(p) = previous else { return meta };
    let regressions = watermarks::raise_to_previous(
        &mut meta.watermark,
        &mut meta.source_watermarks,
        p.watermark,
        &p.source_watermarks,
    );
    if regressions > 0 {
        tracing::warn!(
            checkpoint = meta.id,
            previous = p.id,
            regressions,
            "checkpoint watermarks below the previous checkpoint's were raised to its"
        );
    }
    meta
}
