//! Commit records: the one small object per slot of a location's commit
//! sequence (`commits/<slot>`), created with a conditional create. A record
//! is a **claim** (a new writer takes a generation) or a **checkpoint** (the
//! publish of one checkpoint). Byte layout: docs/FORMAT.md §6.
//!
//! Invariants:
//! - A record is the checksummed JSON envelope of `metadata.json`
//!   (`envelope`), format `highwater-commit`, version 1; nothing is read
//!   from a record whose body fails its checksum.
//! - [`decode`] refuses records over [`MAX_RECORD_LEN`], a slot that is not
//!   the one in the key, a claim whose generation is not its slot, a
//!   checkpoint whose generation is not below its slot (its claim came
//!   first), embedded metadata that does not verify or names another
//!   checkpoint, and files that are not exactly the metadata's part files
//!   with their sizes and checksums, each under a `parts/` key.
//! - Two writers never encode the same bytes: a claim holds a random nonce,
//!   a checkpoint its writer's generation. Equal bytes in a slot therefore
//!   mean the writer's own create.

use super::layout::{commit_key, PARTS};
use crate::blob::BlobKey;
use crate::checkpoint::envelope;
use crate::checkpoint::metadata::{self, IncrementalCheckpointMetadata, MAX_METADATA_LEN};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `format` field of every commit record.
pub(crate) const RECORD_FORMAT: &str = "highwater-commit";
/// The commit record version this build reads and writes.
pub(crate) const RECORD_VERSION: u32 = 1;
/// Records larger than this are refused without being parsed (the embedded
/// metadata, escaped, plus the file list).
pub const MAX_RECORD_LEN: u64 = 3 * MAX_METADATA_LEN;
const MAX_WRITER_LEN: usize = 256;
const MAX_NONCE_LEN: usize = 64;

/// One part file of a committed checkpoint and the object that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFile {
    /// The file's name in the checkpoint directory (`part-<name>.hwstate`).
    pub file: String,
    /// The object holding its bytes (under `parts/`).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// CRC32C of the whole file.
    pub crc32c: u32,
}

/// What a slot of the commit sequence holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordBody {
    /// A writer took generation `slot`: every slot before it is closed to
    /// older writers, whose next commit collides.
    Claim {
        /// Who claimed (host name and process id), for operators.
        writer: String,
        /// Random: keeps two claims' bytes apart.
        nonce: String,
    },
    /// A published checkpoint.
    Checkpoint {
        /// Its id (also in the metadata).
        checkpoint_id: u64,
        /// Its part files and their objects.
        files: Vec<RemoteFile>,
        /// The exact text of its `metadata.json`.
        metadata: String,
    },
}

/// A commit record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// The slot it occupies.
    pub slot: u64,
    /// The generation of the writer that created it (a claim's is its slot).
    pub generation: u64,
    /// Wall-clock creation time, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// Claim or checkpoint.
    #[serde(flatten)]
    pub body: RecordBody,
}

/// A checkpoint record, decoded and verified, with its metadata parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedCheckpoint {
    /// The slot it occupies.
    pub slot: u64,
    /// The generation of the writer that committed it.
    pub generation: u64,
    /// Its metadata (as in `metadata.json`).
    pub metadata: IncrementalCheckpointMetadata,
    /// The exact bytes of its `metadata.json`.
    pub metadata_bytes: Vec<u8>,
    /// Its part files, in the metadata's order.
    pub files: Vec<(RemoteFile, BlobKey)>,
}

/// A slot's record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotRecord {
    /// A claim of generation `generation` (= its slot).
    Claim {
        /// The slot and generation.
        generation: u64,
        /// Who claimed it.
        writer: String,
    },
    /// A committed checkpoint.
    Checkpoint(Box<CommittedCheckpoint>),
}

impl SlotRecord {
    /// The generation of the writer that created the record.
    pub fn generation(&self) -> u64 {
        match self {
            SlotRecord::Claim { generation, .. } => *generation,
            SlotRecord::Checkpoint(c) => c.generation,
        }
    }
}

/// The path errors name for the record in `slot`: its key.
pub(crate) fn record_path(slot: u64) -> PathBuf {
    PathBuf::from(commit_key(slot).as_str())
}

/// Now, in milliseconds since the Unix epoch (0 before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The bytes of a claim of generation `slot` by `writer`.
///
/// # Errors
/// `InvalidArgument` if serde_json refuses the value.
pub(crate) fn encode_claim(slot: u64, writer: &str, nonce: u64) -> Result<Vec<u8>> {
    let mut writer = writer.to_string();
    writer.truncate(MAX_WRITER_LEN);
    let record = CommitRecord {
        slot,
        generation: slot,
        created_unix_ms: now_ms(),
        body: RecordBody::Claim {
            writer,
            nonce: format!("{nonce:016x}"),
        },
    };
    envelope::encode(
        "encode commit record",
        RECORD_FORMAT,
        RECORD_VERSION,
        &record,
    )
}

/// The bytes of the record committing checkpoint `meta` (whose
/// `metadata.json` is `metadata_bytes`) in `slot` for `generation`, its part
/// files held by `keys` (file name → key).
///
/// # Errors
/// `InvalidArgument` when `metadata_bytes` is not UTF-8 or a part file has no
/// key.
pub(crate) fn encode_checkpoint(
    slot: u64,
    generation: u64,
    meta: &IncrementalCheckpointMetadata,
    metadata_bytes: &[u8],
    keys: &BTreeMap<String, BlobKey>,
) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(metadata_bytes).map_err(|e| {
        Error::invalid_argument(
            "encode commit record",
            format!("metadata is not UTF-8: {e}"),
        )
    })?;
    let files = meta
        .parts
        .iter()
        .map(|p| {
            let key = keys.get(&p.file).ok_or_else(|| {
                Error::invalid_argument(
                    "encode commit record",
                    format!("part file {} has no object", p.file),
                )
            })?;
            Ok(RemoteFile {
                file: p.file.clone(),
                key: key.to_string(),
                size: p.size,
                crc32c: p.crc32c,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let record = CommitRecord {
        slot,
        generation,
        created_unix_ms: now_ms(),
        body: RecordBody::Checkpoint {
            checkpoint_id: meta.id,
            files,
            metadata: text.to_string(),
        },
    };
    envelope::encode(
        "encode commit record",
        RECORD_FORMAT,
        RECORD_VERSION,
        &record,
    )
}

/// `CheckpointCorrupted` naming `path`, with no byte offset.
pub(crate) fn corrupted(path: &Path, reason: impl Into<String>) -> Error {
    Error::CheckpointCorrupted {
        path: path.to_path_buf(),
        offset: None,
        reason: reason.into(),
    }
}

/// The envelope (`format`, `version`, `what` names it in messages) of the
/// record read from `slot`'s key: at most [`MAX_RECORD_LEN`] bytes, its
/// checksum verified, and `slot_of` it the key's slot. Shared by every kind
/// of record a commit sequence holds.
///
/// # Errors
/// `CheckpointCorrupted` naming the key; `UnsupportedVersion`.
pub(crate) fn decode_slot_envelope<T: serde::de::DeserializeOwned>(
    slot: u64,
    bytes: &[u8],
    (format, version, what): (&str, u32, &str),
    slot_of: impl Fn(&T) -> u64,
) -> Result<T> {
    let path = record_path(slot);
    if bytes.len() as u64 > MAX_RECORD_LEN {
        return Err(corrupted(
            &path,
            format!(
                "record is {} bytes; at most {MAX_RECORD_LEN} are read",
                bytes.len()
            ),
        ));
    }
    let record: T = envelope::decode(&path, bytes, format, version, what)?;
    if slot_of(&record) != slot {
        return Err(corrupted(
            &path,
            format!("record says slot {}, its key says {slot}", slot_of(&record)),
        ));
    }
    Ok(record)
}

/// Parses and verifies the bytes of the record read from `slot`'s key.
///
/// # Errors
/// `CheckpointCorrupted` naming the key (with the byte offset where one is
/// known), `UnsupportedVersion`, `UnsafeName`, `CheckpointFileMismatch`
/// never (sizes are compared with the metadata, not with objects).
pub fn decode(slot: u64, bytes: &[u8]) -> Result<SlotRecord> {
    let path = record_path(slot);
    let record: CommitRecord = decode_slot_envelope(
        slot,
        bytes,
        (RECORD_FORMAT, RECORD_VERSION, "commit record"),
        |r: &CommitRecord| r.slot,
    )?;
    match record.body {
        RecordBody::Claim { writer, nonce } => {
            if record.generation != slot {
                return Err(corrupted(
                    &path,
                    format!(
                        "a claim's generation is its slot; this one says {}",
                        record.generation
                    ),
                ));
            }
            if writer.len() > MAX_WRITER_LEN || nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
                return Err(corrupted(&path, "claim's writer or nonce is out of bounds"));
            }
            Ok(SlotRecord::Claim {
                generation: slot,
                writer,
            })
        }
        RecordBody::Checkpoint {
            checkpoint_id,
            files,
            metadata: text,
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
            let meta = metadata::decode(&path, text.as_bytes(), checkpoint_id)?;
            let files = check_files(&path, &meta, files)?;
            Ok(SlotRecord::Checkpoint(Box::new(CommittedCheckpoint {
                slot,
                generation: record.generation,
                metadata: meta,
                metadata_bytes: text.into_bytes(),
                files,
            })))
        }
    }
}

/// `files`, checked to be exactly `meta`'s part files (same order, sizes and
/// checksums), each with a valid key under `parts/`.
fn check_files(
    path: &Path,
    meta: &IncrementalCheckpointMetadata,
    files: Vec<RemoteFile>,
) -> Result<Vec<(RemoteFile, BlobKey)>> {
    if files.len() != meta.parts.len() {
        return Err(corrupted(
            path,
            format!(
                "{} files listed for {} parts",
                files.len(),
                meta.parts.len()
            ),
        ));
    }
    files
        .into_iter()
        .zip(&meta.parts)
        .map(|(f, p)| {
            if f.file != p.file || f.size != p.size || f.crc32c != p.crc32c {
                return Err(corrupted(
                    path,
                    format!(
                        "file {:?} ({} bytes, CRC32C {:#010x}) is not part file {:?} ({} bytes, CRC32C {:#010x})",
                        f.file, f.size, f.crc32c, p.file, p.size, p.crc32c
                    ),
                ));
            }
            let key = BlobKey::new(f.key.clone())
                .map_err(|e| corrupted(path, format!("file {:?}: {e}", f.file)))?;
            if !key.as_str().starts_with(&format!("{PARTS}/")) {
                return Err(corrupted(
                    path,
                    format!("file {:?} is held outside {PARTS}/: {key}", f.file),
                ));
            }
            Ok((f, key))
        })
        .collect()
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
