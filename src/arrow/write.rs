//! Writing Arrow IPC files: checkpoint part files (streamed into storage while
//! their CRC32C is computed) and standalone exports (`IpcFileExport`).
//!
//! Both use one set of IPC options (`options`): format V5, 64-byte alignment,
//! no compression, one dictionary per column per file. The alignment is what lets a reader hand
//! out buffers that point into a page-aligned mapping.

use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::state::Written;
use crate::storage::{SequentialWriter, StorageFile};
use arrow::array::{Array, ArrayRef};
use arrow::compute::concat;
use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use arrow::ipc::writer::{DictionaryHandling, FileWriter, IpcWriteOptions};
use arrow::ipc::MetadataVersion;
use arrow::record_batch::RecordBatch;
use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Footer key naming the file's format.
pub(crate) const FORMAT_KEY: &str = "highwater.format";
/// Its value.
pub(crate) const FORMAT_VALUE: &str = "arrow-part";
/// Footer key holding the format version.
pub(crate) const VERSION_KEY: &str = "highwater.version";
/// The version this build writes and reads.
pub(crate) const VERSION_VALUE: &str = "1";
/// Footer key naming the layer.
pub(crate) const LAYER_KEY: &str = "highwater.layer";
/// Buffer alignment inside the file.
pub(crate) const ALIGNMENT: usize = 64;

/// What one Arrow part file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
    /// The whole part.
    Full,
    /// Batches appended since the parent chain's part.
    Delta,
}

impl Layer {
    /// Its footer value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layer::Full => "full",
            Layer::Delta => "delta",
        }
    }
}

/// The IPC options of every file highwater writes. Dictionaries are written
/// once per file: [`one_dictionary_per_column`] makes batches share them.
fn options() -> std::result::Result<IpcWriteOptions, ArrowError> {
    Ok(
        IpcWriteOptions::try_new(ALIGNMENT, false, MetadataVersion::V5)?
            .with_dictionary_handling(DictionaryHandling::Resend),
    )
}

/// Whether values of `t` hold a dictionary anywhere.
fn has_dictionary(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(..) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::Map(f, _) => has_dictionary(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_dictionary(f.data_type())),
        DataType::Union(fields, _) => fields.iter().any(|(_, f)| has_dictionary(f.data_type())),
        DataType::RunEndEncoded(_, v) => has_dictionary(v.data_type()),
        _ => false,
    }
}

/// True when every batch's column `i` is a top-level dictionary array with the
/// very same values array as the first batch's.
fn shares_dictionary(batches: &[RecordBatch], i: usize) -> bool {
    let values = |b: &RecordBatch| b.column(i).to_data().child_data().first().cloned();
    let Some(first) = batches.first().and_then(values) else {
        return false;
    };
    matches!(batches[0].column(i).data_type(), DataType::Dictionary(..))
        && batches[1..]
            .iter()
            .all(|b| values(b).is_some_and(|v| v.ptr_eq(&first)))
}

/// The batches with one dictionary per dictionary-holding column across all
/// of them. The IPC file format holds one dictionary per column: a replaced
/// one cannot be written, and delta dictionaries are copied by readers and
/// refused by some. Batches built independently, or taken from several files
/// of a chain, each carry their own, so such columns are concatenated (their
/// dictionaries merged) and sliced back to the batches' lengths. Other
/// columns are untouched, and batches that already share their dictionaries
/// are returned as they are.
fn one_dictionary_per_column<'b>(
    path: &Path,
    schema: &Schema,
    batches: &'b [RecordBatch],
) -> Result<Cow<'b, [RecordBatch]>> {
    let columns: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| has_dictionary(schema.field(i).data_type()))
        .filter(|&i| batches.len() > 1 && !shares_dictionary(batches, i))
        .collect();
    if columns.is_empty() {
        return Ok(Cow::Borrowed(batches));
    }
    let err = |source| Error::ArrowEncode {
        path: path.to_path_buf(),
        source,
    };
    let mut out: Vec<Vec<ArrayRef>> = batches.iter().map(|b| b.columns().to_vec()).collect();
    for i in columns {
        let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
        let merged = concat(&arrays).map_err(err)?;
        let mut at = 0;
        for (b, batch) in batches.iter().enumerate() {
            out[b][i] = merged.slice(at, batch.num_rows());
            at += batch.num_rows();
        }
    }
    let schema = Arc::new(schema.clone());
    let normalized = out
        .into_iter()
        .map(|columns| RecordBatch::try_new(schema.clone(), columns).map_err(err))
        .collect::<Result<Vec<_>>>()?;
    Ok(Cow::Owned(normalized))
}

/// An Arrow error met while writing `path`: I/O errors become [`Error::Io`].
fn write_error(path: &Path, e: ArrowError) -> Error {
    match e {
        ArrowError::IoError(_, source) => Error::io("write", path, source),
        source => Error::ArrowEncode {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Checks that `found` (a batch's schema, or a delta's) is exactly `schema`,
/// the schema of the part at `path`.
///
/// # Errors
/// `ArrowSchemaMismatch` naming `path`.
pub(crate) fn check_schema(path: &Path, schema: &Schema, found: &Schema) -> Result<()> {
    if found != schema {
        return Err(Error::ArrowSchemaMismatch {
            path: path.to_path_buf(),
            expected: schema.to_string(),
            found: found.to_string(),
        });
    }
    Ok(())
}

/// An [`io::Write`] over a new storage file that computes the CRC32C of what it
/// writes.
struct PartSink<'f> {
    out: SequentialWriter<'f>,
    crc: u32,
}

impl Write for PartSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.put(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes `batches` (each of `schema`) as an Arrow part file of `layer` into
/// the new, empty `file` at `path`, and returns its size and CRC32C. The
/// caller fsyncs.
///
/// Batches given by a caller were checked against `schema` when the
/// checkpoint was planned (before any I/O); Arrow's writer refuses any other
/// schema too.
///
/// # Errors
/// `ArrowEncode` when Arrow cannot encode a batch; `Io` naming `path`.
pub(crate) fn write_part_file(
    file: &dyn StorageFile,
    path: &Path,
    schema: &Schema,
    batches: &[RecordBatch],
    layer: Layer,
) -> Result<Written> {
    let batches = one_dictionary_per_column(path, schema, batches)?;
    let sink = PartSink {
        out: SequentialWriter::new(file),
        crc: 0,
    };
    let err = |e| write_error(path, e);
    let mut writer =
        FileWriter::try_new_with_options(sink, schema, options().map_err(err)?).map_err(err)?;
    for batch in batches.iter() {
        writer.write(batch).map_err(err)?;
    }
    writer.write_metadata(FORMAT_KEY, FORMAT_VALUE);
    writer.write_metadata(VERSION_KEY, VERSION_VALUE);
    writer.write_metadata(LAYER_KEY, layer.name());
    writer.finish().map_err(err)?;
    let mut sink = writer.into_inner().map_err(err)?;
    sink.flush().ctx("write", path)?;
    Ok(Written {
        size: sink.out.position(),
        crc: sink.crc,
    })
}

/// Record batches written to a standalone Arrow IPC file, for Arrow tools
/// (`highwater export`). The file appears at its path only when
/// [`finish`](Self::finish) succeeds: it is written as `<path>.tmp-<pid>`,
/// fsynced and renamed, so an interrupted export never leaves a half-written file under the
/// final name.
///
/// ```
/// use highwater::arrow::{kv_schema, IpcFileExport, KvBatchBuilder};
/// # fn main() -> highwater::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("state.arrow");
/// let mut rows = KvBatchBuilder::new();
/// rows.append(b"k", Some(b"v"));
/// let mut export = IpcFileExport::create(&path, &kv_schema())?;
/// export.write(&rows.finish()?)?;
/// assert_eq!(export.finish()?.rows, 1);
/// # Ok(()) }
/// ```
pub struct IpcFileExport {
    path: PathBuf,
    tmp: PathBuf,
    schema: Schema,
    writer: Option<FileWriter<BufWriter<File>>>,
    batches: u64,
    rows: u64,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportSummary {
    /// Record batches written.
    pub batches: u64,
    /// Rows written.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

impl std::fmt::Debug for IpcFileExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpcFileExport")
            .field("path", &self.path)
            .field("batches", &self.batches)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl IpcFileExport {
    /// Starts an export of batches of `schema` to `path`. An existing file at
    /// `path` is replaced only when `finish` succeeds.
    ///
    /// # Errors
    /// `Io` naming `<path>.tmp-<pid>` when it cannot be created;
    /// `ArrowEncode` when Arrow cannot encode the schema.
    pub fn create(path: &Path, schema: &Schema) -> Result<Self> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .ctx("create", &tmp)?;
        let writer = options()
            .and_then(|o| FileWriter::try_new_with_options(BufWriter::new(file), schema, o))
            .map_err(|e| write_error(&tmp, e));
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        Ok(IpcFileExport {
            path: path.to_path_buf(),
            tmp,
            schema: schema.clone(),
            writer: Some(writer),
            batches: 0,
            rows: 0,
        })
    }

    /// The schema every batch must have.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Appends `batch`.
    ///
    /// # Errors
    /// `ArrowSchemaMismatch` for a batch of another schema; `ArrowEncode`; `Io`.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        check_schema(&self.tmp, &self.schema, batch.schema_ref())?;
        let writer = self.writer.as_mut().ok_or_else(|| {
            Error::invalid_argument(
                "IpcFileExport::write",
                "the export has already failed or finished",
            )
        })?;
        if let Err(e) = writer.write(batch) {
            // The file may hold part of the batch: it can never be finished.
            self.writer = None;
            let _ = std::fs::remove_file(&self.tmp);
            return Err(write_error(&self.tmp, e));
        }
        self.batches += 1;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Appends `batches`, first giving them one dictionary per
    /// dictionary-holding column (the IPC file format holds one; see
    /// `docs/FORMAT.md` §5). Use it for batches that do not share their
    /// dictionaries, such as the batches of an Arrow part's chain.
    ///
    /// # Errors
    /// As [`write`](Self::write); `ArrowEncode` when the dictionaries cannot
    /// be merged (for example a merged dictionary too large for its key type).
    pub fn write_all(&mut self, batches: &[RecordBatch]) -> Result<()> {
        for batch in batches {
            check_schema(&self.tmp, &self.schema, batch.schema_ref())?;
        }
        for batch in one_dictionary_per_column(&self.tmp, &self.schema, batches)?.iter() {
            self.write(batch)?;
        }
        Ok(())
    }

    /// Writes the footer, fsyncs the file, renames it to its path and fsyncs
    /// the directory.
    ///
    /// # Errors
    /// `Io` naming the file or directory; `ArrowEncode`.
    pub fn finish(mut self) -> Result<ExportSummary> {
        let writer = self.writer.take().ok_or_else(|| {
            Error::invalid_argument(
                "IpcFileExport::finish",
                "the export has already failed or finished",
            )
        })?;
        let result = self.complete(writer);
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }

    fn complete(&self, writer: FileWriter<BufWriter<File>>) -> Result<ExportSummary> {
        let file = writer
            .into_inner()
            .map_err(|e| write_error(&self.tmp, e))?
            .into_inner()
            .map_err(|e| Error::io("write", &self.tmp, e.into_error()))?;
        file.sync_all().ctx("sync", &self.tmp)?;
        let bytes = file.metadata().ctx("stat", &self.tmp)?.len();
        std::fs::rename(&self.tmp, &self.path).ctx("rename", &self.tmp)?;
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .ctx("sync directory", dir)?;
        Ok(ExportSummary {
            batches: self.batches,
            rows: self.rows,
            bytes,
        })
    }
}

impl Drop for IpcFileExport {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            // Not finished: the temporary file is not an export.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
