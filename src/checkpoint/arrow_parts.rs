//! Restoring Arrow parts from a checkpoint directory: the chain of an Arrow
//! part resolved (full part, then deltas oldest first), every file mapped and
//! decoded zero-copy (`docs/FORMAT.md` §5).
//!
//! Invariant: every file of a returned part passed the reading rules at the
//! requested [`ArrowVerification`] and carries the same schema as the full
//! part at the bottom of the chain.

use super::metadata::{PartKind, PartMetadata};
use super::store::CheckpointStore;
use crate::arrow::{decode_part_file, read_schema, ArrowPart, ArrowVerification, Layer};
use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::state::expect_kind;
use crate::storage::MappedFile;
use arrow::datatypes::SchemaRef;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The layer an Arrow part file of `kind` holds.
fn layer(kind: PartKind) -> Layer {
    if kind.is_delta() {
        Layer::Delta
    } else {
        Layer::Full
    }
}

impl CheckpointStore {
    /// Restores Arrow part `name` of checkpoint `id`: the full part and every
    /// delta since, each file memory-mapped, its whole CRC32C verified, and its
    /// batches decoded in place ([`ArrowVerification::Checksums`]).
    ///
    /// # Errors
    /// As [`resolve_part`](Self::resolve_part); `WrongStateKind` for a part
    /// that is not an Arrow part; `CheckpointFileMismatch` or `ArrowCorrupted`
    /// naming the damaged file (and offset).
    pub fn open_arrow_part(&self, id: u64, name: &str) -> Result<ArrowPart> {
        self.open_arrow_part_verified(id, name, ArrowVerification::default())
    }

    /// [`open_arrow_part`](Self::open_arrow_part) at the given verification.
    ///
    /// # Errors
    /// As [`open_arrow_part`](Self::open_arrow_part).
    pub fn open_arrow_part_verified(
        &self,
        id: u64,
        name: &str,
        verification: ArrowVerification,
    ) -> Result<ArrowPart> {
        let mut layers = self.resolve_part(id, name)?;
        layers.reverse();
        let mut files = Vec::with_capacity(layers.len());
        let mut schema: Option<SchemaRef> = None;
        for (at, (path, part)) in layers.into_iter().enumerate() {
            let expected = if at == 0 {
                PartKind::Arrow
            } else {
                PartKind::ArrowDelta
            };
            expect_kind(&path, part.kind, expected)?;
            let decoded = self.decode_arrow_file(&path, &part, verification)?;
            match &schema {
                None => schema = Some(decoded.schema.clone()),
                Some(base) if base == &decoded.schema => {}
                Some(base) => {
                    return Err(Error::ArrowCorrupted {
                        path,
                        offset: None,
                        reason: format!(
                            "delta schema {} differs from the part's schema {base}",
                            decoded.schema
                        ),
                    })
                }
            }
            files.push((path, decoded));
        }
        let schema = schema.ok_or_else(|| Error::PartNotFound {
            path: self.dir().to_path_buf(),
            checkpoint_id: id,
            part: name.to_string(),
        })?;
        Ok(ArrowPart::from_files(schema, files))
    }

    /// Maps and decodes one Arrow part file.
    pub(crate) fn decode_arrow_file(
        &self,
        path: &Path,
        part: &PartMetadata,
        verification: ArrowVerification,
    ) -> Result<crate::arrow::DecodedFile> {
        decode_part_file(
            path,
            self.map(path, part)?,
            part,
            layer(part.kind),
            verification,
        )
    }

    /// Maps the part file at `path`; a sealed one is checked (sealed size
    /// and CRC) and opened into memory instead (docs/FORMAT.md §8: sealed
    /// Arrow parts are not zero-copy).
    fn map(&self, path: &Path, part: &PartMetadata) -> Result<Arc<dyn MappedFile>> {
        if part.sealed.is_some() {
            return Ok(Arc::new(self.load_part_file(path, part)?));
        }
        self.storage().map_file(path).ctx("map", path)
    }

    /// The schema of Arrow part `name` of checkpoint `id` (from the footer of
    /// its newest file, which every file of its chain shares), with that file;
    /// `None` when the part is missing or not an Arrow part.
    ///
    /// # Errors
    /// `ArrowCorrupted` for a damaged footer; `Io`.
    pub(crate) fn arrow_schema(&self, id: u64, name: &str) -> Result<Option<(PathBuf, SchemaRef)>> {
        let Some(layers) = self.find_part(id, name)? else {
            return Ok(None);
        };
        match layers.last() {
            Some((_, base)) if base.kind == PartKind::Arrow => {}
            _ => return Ok(None),
        }
        let (path, newest) = &layers[0];
        let map = self.map(path, newest)?;
        Ok(Some((
            path.clone(),
            read_schema(path, map.as_ref(), layer(newest.kind))?,
        )))
    }
}
