//! The parts of a checkpoint being written: what each holds, how big it will
//! be, and writing it (streamed, fsynced) into the temporary directory.

use super::metadata::{part_file_name, PartKind, PartMetadata};
use super::publish::write_file_durably;
use super::request::PartInput;
#[cfg(feature = "arrow")]
use crate::arrow::{check_schema, write_part_file, ArrowBatches, Layer};
use crate::error::IoContext;
use crate::error::Result;
use crate::state::{
    encoded_file_crc, header_summary, verify_state_file, write_blob, write_columns, StateDelta,
    StateKind, StateSnapshot, Written,
};
use crate::storage::{OpenMode, Storage, StorageFile};
#[cfg(feature = "arrow")]
use arrow::datatypes::Schema;
#[cfg(feature = "arrow")]
use arrow::record_batch::RecordBatch;
use std::borrow::Cow;
use std::path::Path;

/// Where a part's bytes come from.
#[derive(Debug)]
pub(crate) enum PartSource<'a> {
    Snapshot(Cow<'a, StateSnapshot>),
    Delta(Cow<'a, StateDelta>),
    Blob(Cow<'a, [u8]>),
    /// A verified state file given by the caller, written verbatim.
    File(&'a [u8], StateKind),
    /// Record batches of one schema, written as an Arrow IPC file.
    #[cfg(feature = "arrow")]
    Arrow(ArrowSource<'a>),
}

/// The schema and batches of an Arrow part (or delta) to be written.
#[cfg(feature = "arrow")]
#[derive(Debug)]
pub(crate) struct ArrowSource<'a> {
    pub schema: Cow<'a, Schema>,
    pub batches: Cow<'a, [RecordBatch]>,
    pub layer: Layer,
}

#[cfg(feature = "arrow")]
impl<'a> ArrowSource<'a> {
    /// The caller's batches, as `layer`.
    fn borrowed(input: ArrowBatches<'a>, layer: Layer) -> Self {
        ArrowSource {
            schema: Cow::Borrowed(input.schema()),
            batches: Cow::Borrowed(input.batches()),
            layer,
        }
    }

    /// A whole Arrow part made of `batches`.
    pub(crate) fn full(schema: Schema, batches: Vec<RecordBatch>) -> ArrowSource<'static> {
        ArrowSource {
            schema: Cow::Owned(schema),
            batches: Cow::Owned(batches),
            layer: Layer::Full,
        }
    }

    /// The batches as input.
    pub(crate) fn input(&self) -> ArrowBatches<'_> {
        ArrowBatches::new(&self.schema, &self.batches)
    }
}

/// One part to be written.
#[derive(Debug)]
pub(crate) struct PlannedPart<'a> {
    pub name: String,
    pub source: PartSource<'a>,
}

/// Plans part `name` from the caller's input; a state file is verified first.
///
/// # Errors
/// Corruption errors naming the part's future path for a state file that does
/// not verify.
pub(crate) fn plan<'a>(dir: &Path, name: &str, input: PartInput<'a>) -> Result<PlannedPart<'a>> {
    let source = match input {
        PartInput::Snapshot(s) => PartSource::Snapshot(Cow::Borrowed(s)),
        PartInput::Delta(d) => PartSource::Delta(Cow::Borrowed(d)),
        PartInput::Blob(b) => PartSource::Blob(Cow::Borrowed(b)),
        PartInput::StateFile(f) => {
            let origin = dir.join(part_file_name(name, PartKind::Snapshot));
            let (kind, _) = verify_state_file(&origin, f)?;
            PartSource::File(f, kind)
        }
        #[cfg(feature = "arrow")]
        PartInput::Arrow(b) | PartInput::ArrowDelta(b) => {
            let layer = match input {
                PartInput::ArrowDelta(_) => Layer::Delta,
                _ => Layer::Full,
            };
            let origin = dir.join(part_file_name(name, PartKind::Arrow));
            for batch in b.batches() {
                check_schema(&origin, b.schema(), batch.schema_ref())?;
            }
            PartSource::Arrow(ArrowSource::borrowed(b, layer))
        }
    };
    Ok(PlannedPart {
        name: name.to_string(),
        source,
    })
}

impl<'a> PlannedPart<'a> {
    /// How the part is stored.
    pub(crate) fn kind(&self) -> PartKind {
        match &self.source {
            PartSource::Snapshot(_) => PartKind::Snapshot,
            PartSource::Delta(_) => PartKind::Delta,
            PartSource::Blob(_) => PartKind::Blob,
            PartSource::File(_, kind) => PartKind::of(*kind),
            #[cfg(feature = "arrow")]
            PartSource::Arrow(a) if a.layer == Layer::Delta => PartKind::ArrowDelta,
            #[cfg(feature = "arrow")]
            PartSource::Arrow(_) => PartKind::Arrow,
        }
    }

    /// About how many bytes its file will take (exact for given files).
    pub(crate) fn estimated_size(&self) -> u64 {
        let archive = |data: u64, items: usize| 64 + data + 16 * items as u64 + 64;
        match &self.source {
            PartSource::Snapshot(s) => archive(s.data_bytes(), s.len()),
            PartSource::Delta(d) => archive(d.data_bytes(), d.len()),
            PartSource::Blob(b) => 64 + b.len() as u64,
            PartSource::File(f, _) => f.len() as u64,
            #[cfg(feature = "arrow")]
            PartSource::Arrow(a) => a.input().estimated_size(),
        }
    }

    /// The Arrow batches this part appends, if it is an Arrow delta.
    #[cfg(feature = "arrow")]
    pub(crate) fn arrow_delta(&self) -> Option<&ArrowSource<'a>> {
        match &self.source {
            PartSource::Arrow(a) if a.layer == Layer::Delta => Some(a),
            _ => None,
        }
    }

    /// The delta this part holds, decoded if it was given as a file.
    pub(crate) fn delta(&self) -> Result<Option<Cow<'_, StateDelta>>> {
        Ok(match &self.source {
            PartSource::Delta(d) => Some(Cow::Borrowed(d.as_ref())),
            PartSource::File(f, StateKind::Delta) => Some(Cow::Owned(StateDelta::from_bytes(f)?)),
            _ => None,
        })
    }

    /// Writes the part into `dir` (a new file, fsynced) and describes it.
    ///
    /// # Errors
    /// `Io` naming the file.
    pub(crate) fn write(&self, storage: &dyn Storage, dir: &Path) -> Result<PartMetadata> {
        let file_name = part_file_name(&self.name, self.kind());
        let path = dir.join(&file_name);
        let (written, entries, deleted) = match &self.source {
            PartSource::File(bytes, _) => {
                write_file_durably(storage, &path, bytes)?;
                let (_, entries, deleted) = header_summary(&path, bytes)?;
                let written = Written {
                    size: bytes.len() as u64,
                    crc: encoded_file_crc(&path, bytes)?,
                };
                (written, entries, deleted)
            }
            PartSource::Snapshot(s) => (
                streamed(storage, &path, |f| {
                    write_columns(f, &path, s.columns(), StateKind::Snapshot)
                })?,
                s.len() as u64,
                0,
            ),
            PartSource::Delta(d) => (
                streamed(storage, &path, |f| {
                    write_columns(f, &path, d.columns(), StateKind::Delta)
                })?,
                d.puts().len() as u64,
                d.deletes().len() as u64,
            ),
            PartSource::Blob(b) => (streamed(storage, &path, |f| write_blob(f, &path, b))?, 0, 0),
            #[cfg(feature = "arrow")]
            PartSource::Arrow(a) => (
                streamed(storage, &path, |f| {
                    write_part_file(f, &path, &a.schema, &a.batches, a.layer)
                })?,
                a.input().num_rows(),
                0,
            ),
        };
        Ok(PartMetadata {
            name: self.name.clone(),
            kind: self.kind(),
            file: file_name,
            size: written.size,
            crc32c: written.crc,
            entries,
            deleted,
        })
    }
}

/// Creates `path`, fills it with `write` and fsyncs it.
fn streamed(
    storage: &dyn Storage,
    path: &Path,
    write: impl FnOnce(&dyn StorageFile) -> Result<Written>,
) -> Result<Written> {
    let file = storage
        .open_file(path, OpenMode::CreateNew)
        .ctx("create", path)?;
    let written = write(file.as_ref())?;
    file.sync_all().ctx("sync", path)?;
    Ok(written)
}
