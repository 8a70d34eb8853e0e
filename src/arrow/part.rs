//! [`ArrowPart`]: an Arrow part restored from a checkpoint, its delta chain
//! resolved, its arrays pointing into the mapped files.

use super::read::DecodedFile;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use std::path::{Path, PathBuf};

/// How much of an Arrow part file is checked before its arrays are returned
/// (`docs/FORMAT.md` §5, Reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ArrowVerification {
    /// The whole file's CRC32C is checked before any byte is interpreted, then
    /// the structure and every array. Reads every byte once (no copy).
    #[default]
    Checksums,
    /// The structure and every array are checked (so damage never causes a
    /// panic or an invalid array), but not the CRC32C: damage inside a data
    /// buffer that leaves it valid goes unnoticed. Costs time in proportion to
    /// the batches' metadata (and to variable-length data, which Arrow
    /// validates), not to the file. For callers that verified the checkpoint
    /// already, for example just after recovery chose it.
    Structure,
}

/// One file of an Arrow part's chain, as mapped.
#[derive(Debug, Clone)]
pub struct ArrowPartFile {
    path: PathBuf,
    mapped: Buffer,
    batches: usize,
}

impl ArrowPartFile {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes as mapped: every buffer of its batches points in here.
    pub fn mapped_bytes(&self) -> &[u8] {
        self.mapped.as_slice()
    }

    /// How many of the part's batches came from this file.
    pub fn batches(&self) -> usize {
        self.batches
    }
}

/// An Arrow part of a checkpoint: its schema and its batches in order (the
/// full part's, then each delta's, oldest first).
///
/// The arrays are zero-copy: their buffers point into the mapped part files,
/// which stay mapped for as long as any array (or this value) is alive.
/// Checkpoint files are never modified after they are published; retention
/// deletes them, which does not affect a mapping that is open.
#[derive(Debug, Clone)]
pub struct ArrowPart {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    files: Vec<ArrowPartFile>,
}

impl ArrowPart {
    /// Joins the decoded files of a chain (oldest first); the caller checked
    /// that their schemas are equal.
    pub(crate) fn from_files(schema: SchemaRef, files: Vec<(PathBuf, DecodedFile)>) -> Self {
        let mut batches = Vec::new();
        let files = files
            .into_iter()
            .map(|(path, file)| {
                let count = file.batches.len();
                batches.extend(file.batches);
                ArrowPartFile {
                    path,
                    mapped: file.mapped,
                    batches: count,
                }
            })
            .collect();
        ArrowPart {
            schema,
            batches,
            files,
        }
    }

    /// The part's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The batches, in order.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The batches, in order, taken out.
    pub fn into_batches(self) -> Vec<RecordBatch> {
        self.batches
    }

    /// Rows in all batches.
    pub fn num_rows(&self) -> u64 {
        self.batches
            .iter()
            .fold(0u64, |sum, b| sum.saturating_add(b.num_rows() as u64))
    }

    /// The files the batches came from, oldest first (the full part, then each
    /// delta).
    pub fn files(&self) -> &[ArrowPartFile] {
        &self.files
    }
}
