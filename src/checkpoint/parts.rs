//! The parts of a checkpoint being written: what each holds, how big it will
//! be, and writing it (streamed, with write-behind; `publish` fsyncs it) into
//! the temporary directory. A state file the caller gives is verified while
//! it is written, on a second thread when it is large.

use super::metadata::{part_file_name, PartKind, PartMetadata, PartSeal};
use super::publish::{write_file, Unsynced};
use super::request::PartInput;
#[cfg(feature = "arrow")]
use crate::arrow::{check_schema, write_part_file, ArrowBatches, Layer};
use crate::error::IoContext;
use crate::error::Result;
use crate::sealing::{SealKind, Sealing};
use crate::state::{
    header_summary, verify_state_file, write_blob, write_columns, StateDelta, StateKind,
    StateSnapshot, Written,
};
use crate::storage::{OpenMode, Storage, StorageFile, WriteBehind};
#[cfg(feature = "arrow")]
use arrow::datatypes::Schema;
#[cfg(feature = "arrow")]
use arrow::record_batch::RecordBatch;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// A given state file at least this large is verified on a second thread
/// while it is written (smaller ones first, on the caller's thread).
const VERIFY_WHILE_WRITING: usize = 1 << 20;

/// Where a part's bytes come from.
#[derive(Debug)]
pub(crate) enum PartSource<'a> {
    Snapshot(Cow<'a, StateSnapshot>),
    Delta(Cow<'a, StateDelta>),
    Blob(Cow<'a, [u8]>),
    /// A state file given by the caller, written verbatim. Its header and
    /// block table verified when it was planned (they give its kind); every
    /// other byte is verified while it is written, before it can be
    /// published ([`PlannedPart::write`]). `origin` is the path its errors
    /// name.
    File {
        bytes: &'a [u8],
        kind: StateKind,
        origin: PathBuf,
    },
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

/// Plans part `name` from the caller's input. Of a state file only the
/// header and block table are verified here (the rest when it is written, see
/// [`verify_given_files`] for errors on the way there).
///
/// # Errors
/// Corruption errors naming the part's future path for a state file whose
/// header or block table does not verify.
pub(crate) fn plan<'a>(dir: &Path, name: &str, input: PartInput<'a>) -> Result<PlannedPart<'a>> {
    let source = match input {
        PartInput::Snapshot(s) => PartSource::Snapshot(Cow::Borrowed(s)),
        PartInput::Delta(d) => PartSource::Delta(Cow::Borrowed(d)),
        PartInput::Blob(b) => PartSource::Blob(Cow::Borrowed(b)),
        PartInput::StateFile(bytes) => {
            let origin = dir.join(part_file_name(name, PartKind::Snapshot));
            let (kind, _, _) = header_summary(&origin, bytes)?;
            PartSource::File {
                bytes,
                kind,
                origin,
            }
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
            PartSource::File { kind, .. } => PartKind::of(*kind),
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
            PartSource::File { bytes, .. } => bytes.len() as u64,
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

    /// The delta this part holds, decoded (every byte verified) if it was
    /// given as a file.
    pub(crate) fn delta(&self) -> Result<Option<Cow<'_, StateDelta>>> {
        Ok(match &self.source {
            PartSource::Delta(d) => Some(Cow::Borrowed(d.as_ref())),
            PartSource::File {
                bytes,
                kind: StateKind::Delta,
                origin,
            } => {
                // Decoded (and so verified: every block, the archive, the
                // kind) once, its errors naming the part's file.
                Some(Cow::Owned(StateDelta::from_file_bytes(origin, bytes)?))
            }
            _ => None,
        })
    }

    /// Writes the part into `dir` (a new file, not yet synced: the caller
    /// syncs it before publishing) and describes it. A given state file is
    /// verified (every block, the archive's invariants) while it is written:
    /// the part is returned only if it verified.
    ///
    /// # Errors
    /// `Io` naming the file; the corruption error of a given state file that
    /// does not verify (it takes precedence over a write error).
    pub(crate) fn write(
        &self,
        storage: &dyn Storage,
        sealing: &Sealing,
        dir: &Path,
    ) -> Result<(PartMetadata, Unsynced)> {
        let file_name = part_file_name(&self.name, self.kind());
        let path = dir.join(&file_name);
        let out = Out {
            storage,
            sealing,
            path: &path,
            kind: SealKind::of_part(self.kind()),
        };
        let ((written, entries, deleted), unsynced, sealed) = match &self.source {
            PartSource::File {
                bytes,
                kind,
                origin,
            } if sealing.is_on() => {
                verify_given(origin, bytes, *kind)?;
                let (_, entries, deleted) = header_summary(&path, bytes)?;
                out.streamed(entries, deleted, |f| {
                    f.write_all_at(bytes, 0).ctx("write", &path)?;
                    Ok(Written {
                        size: bytes.len() as u64,
                        crc: 0,
                    })
                })?
            }
            PartSource::File {
                bytes,
                kind,
                origin,
            } => {
                let verify = || verify_given(origin, bytes, *kind);
                let (crc, unsynced) = if bytes.len() >= VERIFY_WHILE_WRITING {
                    std::thread::scope(|scope| {
                        let verifying = std::thread::Builder::new()
                            .name("highwater-verify".into())
                            .spawn_scoped(scope, verify);
                        let unsynced = write_file(storage, &path, bytes);
                        let crc = match verifying {
                            Ok(thread) => thread
                                .join()
                                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                            // No second thread: verified after the write.
                            Err(_) => verify(),
                        };
                        (crc, unsynced)
                    })
                } else {
                    let crc = verify()?;
                    (Ok(crc), write_file(storage, &path, bytes))
                };
                let crc = crc?;
                let unsynced = unsynced?;
                let (_, entries, deleted) = header_summary(&path, bytes)?;
                let written = Written {
                    size: bytes.len() as u64,
                    crc,
                };
                ((written, entries, deleted), unsynced, None)
            }
            PartSource::Snapshot(s) => out.streamed(s.len() as u64, 0, |f| {
                write_columns(f, &path, s.columns(), StateKind::Snapshot)
            })?,
            PartSource::Delta(d) => {
                out.streamed(d.puts().len() as u64, d.deletes().len() as u64, |f| {
                    write_columns(f, &path, d.columns(), StateKind::Delta)
                })?
            }
            PartSource::Blob(b) => out.streamed(0, 0, |f| write_blob(f, &path, b))?,
            #[cfg(feature = "arrow")]
            PartSource::Arrow(a) => out.streamed(a.input().num_rows(), 0, |f| {
                write_part_file(f, &path, &a.schema, &a.batches, a.layer)
            })?,
        };
        let meta = PartMetadata {
            name: self.name.clone(),
            kind: self.kind(),
            file: file_name,
            size: written.size,
            crc32c: written.crc,
            entries,
            deleted,
            sealed,
        };
        Ok((meta, unsynced))
    }
}

/// Verifies a given state file of `kind` completely; its whole-file CRC32C.
///
/// # Errors
/// Its corruption error, naming `origin`.
fn verify_given(origin: &Path, bytes: &[u8], kind: StateKind) -> Result<u32> {
    let (verified, crc) = verify_state_file(origin, bytes)?;
    crate::state::expect_kind(origin, verified, kind)?;
    Ok(crc)
}

/// The error a state file given in `request` fails to verify with, if any
/// does: a request with a damaged file is refused for it whatever else
/// fails, as when every file was verified before anything else was done.
pub(crate) fn verify_given_files(
    dir: &Path,
    request: &super::request::CheckpointRequest<'_>,
) -> Option<crate::Error> {
    request
        .parts
        .iter()
        .find_map(|(name, part)| match part.input() {
            Ok(PartInput::StateFile(bytes)) => {
                let origin = dir.join(part_file_name(name, PartKind::Snapshot));
                verify_state_file(&origin, bytes).err()
            }
            _ => None,
        })
}

/// What writing one part file gave: its size and CRC, entries and deleted
/// keys, the file to sync, and its seal when sealed.
type Streamed = ((Written, u64, u64), Unsynced, Option<PartSeal>);

/// Where one part file is written, and how.
struct Out<'a> {
    storage: &'a dyn Storage,
    sealing: &'a Sealing,
    path: &'a Path,
    kind: SealKind,
}

impl Out<'_> {
    /// Creates the file and fills it with `write` (sealed when the sealing
    /// is on), with write-behind; not synced. `entries` and `deleted` are
    /// passed through.
    fn streamed(
        &self,
        entries: u64,
        deleted: u64,
        write: impl FnOnce(&dyn StorageFile) -> Result<Written>,
    ) -> Result<Streamed> {
        let path = self.path;
        let file = self
            .storage
            .open_file(path, OpenMode::CreateNew)
            .ctx("create", path)?;
        let behind = WriteBehind::new(file.as_ref());
        let (written, sealed) = self.sealing.write(&behind, path, self.kind, write)?;
        Ok((
            (written, entries, deleted),
            Unsynced {
                path: path.to_path_buf(),
                file,
            },
            sealed,
        ))
    }
}
