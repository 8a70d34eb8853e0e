//! The parts of a checkpoint being composed over its parent: deltas for parts
//! the parent chain does not hold in a base form are stored so they still
//! resolve, and a full checkpoint that replaces a chain gets the parent's whole
//! state with the request applied (unmentioned parts carried over, dropped
//! ones left out).

use super::metadata::{IncrementalCheckpointMetadata, PartKind};
#[cfg(feature = "arrow")]
use super::parts::ArrowSource;
use super::parts::{PartSource, PlannedPart};
use super::store::CheckpointStore;
#[cfg(feature = "arrow")]
use crate::arrow::{check_schema, Layer};
use crate::error::Result;
use crate::state::StateSnapshot;
use std::borrow::Cow;

/// In a delta checkpoint, a delta part whose name has no snapshot in the
/// parent chain (a new part, or one stored as a blob) is written as the
/// snapshot it yields over an empty state, so every delta part resolves.
pub(crate) fn rebase_orphan_deltas<'a>(
    store: &CheckpointStore,
    planned: Vec<PlannedPart<'a>>,
    parent: &IncrementalCheckpointMetadata,
) -> Result<Vec<PlannedPart<'a>>> {
    planned
        .into_iter()
        .map(|part| {
            #[cfg(feature = "arrow")]
            if part.arrow_delta().is_some() {
                return rebase_orphan_arrow_delta(store, part, parent);
            }
            if part.kind() != PartKind::Delta {
                return Ok(part);
            }
            let has_base = store
                .find_part(parent.id, &part.name)?
                .and_then(|layers| layers.last().map(|(_, base)| base.kind))
                == Some(PartKind::Snapshot);
            // A delta that applies is written as it is (a given file is
            // verified while it is written); only an orphan is decoded.
            if has_base {
                return Ok(part);
            }
            let Some(delta) = part.delta()? else {
                return Ok(part);
            };
            let snapshot = StateSnapshot::default().apply(&delta);
            Ok(PlannedPart {
                name: part.name.clone(),
                source: PartSource::Snapshot(Cow::Owned(snapshot)),
            })
        })
        .collect()
}

/// An Arrow delta whose part has no Arrow part in the parent chain is
/// written as the whole part; one that has must share its schema.
#[cfg(feature = "arrow")]
fn rebase_orphan_arrow_delta<'a>(
    store: &CheckpointStore,
    part: PlannedPart<'a>,
    parent: &IncrementalCheckpointMetadata,
) -> Result<PlannedPart<'a>> {
    let PartSource::Arrow(arrow) = part.source else {
        return Ok(part);
    };
    let source = match store.arrow_schema(parent.id, &part.name)? {
        Some((path, schema)) => {
            check_schema(&path, &schema, &arrow.schema)?;
            arrow
        }
        None => ArrowSource {
            layer: Layer::Full,
            ..arrow
        },
    };
    Ok(PlannedPart {
        name: part.name,
        source: PartSource::Arrow(source),
    })
}

/// The whole Arrow part `name` of checkpoint `id` as a source for a full
/// checkpoint (every checksum verified, arrays mapped, not copied).
#[cfg(feature = "arrow")]
fn arrow_base(store: &CheckpointStore, id: u64, name: &str) -> Result<ArrowSource<'static>> {
    let part = store.open_arrow_part(id, name)?;
    let schema = part.schema().as_ref().clone();
    Ok(ArrowSource::full(schema, part.into_batches()))
}

/// The parts of a full checkpoint: requested deltas merged into the parent's
/// state (or an empty one), other requested parts as they are, and (when the
/// request builds on a parent) the parent's unmentioned parts carried over,
/// except those in `drops`.
pub(crate) fn full_parts<'a>(
    store: &CheckpointStore,
    planned: Vec<PlannedPart<'a>>,
    parent: Option<&IncrementalCheckpointMetadata>,
    drops: &[String],
) -> Result<Vec<PlannedPart<'a>>> {
    let parent_parts = match parent {
        Some(p) => store.part_names(p.id)?,
        None => Vec::new(),
    };
    let mut parts = Vec::with_capacity(planned.len() + parent_parts.len());
    for part in &planned {
        #[cfg(feature = "arrow")]
        if let Some(appended) = part.arrow_delta() {
            let existing = match parent {
                Some(p) => store.arrow_schema(p.id, &part.name)?.map(|s| (p.id, s)),
                None => None,
            };
            let mut whole = match existing {
                Some((id, (path, schema))) => {
                    check_schema(&path, &schema, &appended.schema)?;
                    arrow_base(store, id, &part.name)?
                }
                None => ArrowSource::full(appended.schema.as_ref().clone(), Vec::new()),
            };
            whole
                .batches
                .to_mut()
                .extend(appended.batches.iter().cloned());
            parts.push(PlannedPart {
                name: part.name.clone(),
                source: PartSource::Arrow(whole),
            });
        }
        if let Some(delta) = part.delta()? {
            let base = match parent {
                Some(p) if parent_parts.contains(&part.name) => {
                    store.load_snapshot(p.id, &part.name)?
                }
                _ => StateSnapshot::default(),
            };
            parts.push(PlannedPart {
                name: part.name.clone(),
                source: PartSource::Snapshot(Cow::Owned(base.apply(&delta))),
            });
        }
    }
    let merged: Vec<String> = parts.iter().map(|p| p.name.clone()).collect();
    parts.extend(planned.into_iter().filter(|p| !merged.contains(&p.name)));
    if let Some(p) = parent {
        for name in parent_parts {
            if parts.iter().any(|part| part.name == name) || drops.contains(&name) {
                continue;
            }
            let layers = store.resolve_part(p.id, &name)?;
            let source = match layers.as_slice() {
                [(_, only)] if only.kind == PartKind::Blob => {
                    PartSource::Blob(Cow::Owned(store.load_blob(p.id, &name)?))
                }
                [.., (_, base)] if base.kind == PartKind::Arrow => {
                    carried_arrow(store, p.id, &name)?
                }
                _ => PartSource::Snapshot(Cow::Owned(store.load_snapshot(p.id, &name)?)),
            };
            parts.push(PlannedPart { name, source });
        }
    }
    Ok(parts)
}

/// Arrow part `name` of checkpoint `id`, carried over whole into a full
/// checkpoint.
#[cfg(feature = "arrow")]
fn carried_arrow(store: &CheckpointStore, id: u64, name: &str) -> Result<PartSource<'static>> {
    Ok(PartSource::Arrow(arrow_base(store, id, name)?))
}

/// Without the `arrow` feature an Arrow part cannot be rewritten into a full
/// checkpoint (its chain would have to be decoded): the checkpoint is refused,
/// never written without the part. Delta checkpoints carry it over unchanged.
#[cfg(not(feature = "arrow"))]
fn carried_arrow(_: &CheckpointStore, id: u64, name: &str) -> Result<PartSource<'static>> {
    Err(crate::Error::FeatureDisabled {
        feature: "arrow",
        what: format!(
            "carrying Arrow part {name:?} of checkpoint {id} into a full checkpoint (drop the part, or build highwater with the `arrow` feature)"
        ),
    })
}
