//! `metadata.json`: what a checkpoint holds, with a checksum of its own
//! (`docs/FORMAT.md` §3).
//!
//! Invariants:
//! - [`decode`] verifies the body checksum over the body's exact bytes in the file
//!   before deserialising the body, and refuses files over [`MAX_METADATA_LEN`].
//! - Every name that becomes a file name is checked by [`check_part_name`] before
//!   any path is built from it; a decoded metadata value never names a file
//!   outside its checkpoint directory.

use super::envelope;
use crate::error::{Error, Result};
use crate::state::StateKind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The `format` field of every metadata file.
pub(crate) const FORMAT_NAME: &str = "highwater-checkpoint";
/// The metadata format version this build reads and writes.
pub(crate) const METADATA_VERSION: u32 = 1;
/// Metadata files larger than this are refused without being read.
pub(crate) const MAX_METADATA_LEN: u64 = 16 << 20;
/// The name of the metadata file in a checkpoint directory.
pub const METADATA_FILE: &str = "metadata.json";
const MAX_NAME_LEN: usize = 128;
/// The largest sink transaction handle a checkpoint records.
const MAX_HANDLE_LEN: usize = 64 << 10;

/// Whether a checkpoint stands alone or builds on a parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CheckpointKind {
    /// Every part is stored in full.
    Full,
    /// Some parts are deltas over the parent's; unmentioned parts carry over.
    Delta,
}

/// How one part of a checkpoint is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PartKind {
    /// A full key/value snapshot.
    Snapshot,
    /// Keys put and deleted since the same part of the parent chain.
    Delta,
    /// Opaque operator bytes.
    Blob,
    /// A schema and record batches, in the Arrow IPC file format
    /// (`docs/FORMAT.md` §5).
    Arrow,
    /// Record batches appended since the same Arrow part of the parent chain.
    ArrowDelta,
}

impl PartKind {
    /// The state-file kind a part of this kind is stored as (`None` for Arrow
    /// parts, which are Arrow IPC files).
    pub(crate) fn state_kind(self) -> Option<StateKind> {
        match self {
            PartKind::Snapshot => Some(StateKind::Snapshot),
            PartKind::Delta => Some(StateKind::Delta),
            PartKind::Blob => Some(StateKind::Blob),
            PartKind::Arrow | PartKind::ArrowDelta => None,
        }
    }

    /// The part kind of a state file of `kind`.
    pub(crate) fn of(kind: StateKind) -> Self {
        match kind {
            StateKind::Snapshot => PartKind::Snapshot,
            StateKind::Delta => PartKind::Delta,
            StateKind::Blob => PartKind::Blob,
        }
    }

    /// A lower-case name, as in `metadata.json` ("snapshot", "arrow_delta", ...).
    pub fn name(self) -> &'static str {
        match self {
            PartKind::Snapshot => "snapshot",
            PartKind::Delta => "delta",
            PartKind::Blob => "blob",
            PartKind::Arrow => "arrow",
            PartKind::ArrowDelta => "arrow_delta",
        }
    }

    /// True for kinds that build on the same part of the parent chain.
    pub fn is_delta(self) -> bool {
        matches!(self, PartKind::Delta | PartKind::ArrowDelta)
    }

    /// True for Arrow parts (full or delta).
    pub fn is_arrow(self) -> bool {
        matches!(self, PartKind::Arrow | PartKind::ArrowDelta)
    }

    /// The kind at the bottom of a chain of this kind: the snapshot a delta
    /// applies to, the Arrow part an Arrow delta appends to; itself otherwise.
    pub fn base(self) -> PartKind {
        match self {
            PartKind::Delta => PartKind::Snapshot,
            PartKind::ArrowDelta => PartKind::Arrow,
            other => other,
        }
    }
}

impl crate::state::NamedKind for PartKind {
    fn kind_name(self) -> &'static str {
        self.name()
    }
}

/// One named state part of a checkpoint and its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMetadata {
    /// The part's name (one per operator or partition).
    pub name: String,
    /// How it is stored.
    pub kind: PartKind,
    /// File name inside the checkpoint directory (`part-<name>.hwstate`, or
    /// `part-<name>.arrow` for Arrow parts).
    pub file: String,
    /// File size in bytes.
    pub size: u64,
    /// CRC32C of the whole file.
    pub crc32c: u32,
    /// Key/value pairs (snapshot), keys put (delta) or rows (Arrow parts); 0 for
    /// a blob.
    pub entries: u64,
    /// Keys deleted (delta); 0 otherwise.
    pub deleted: u64,
    /// How the file is sealed, for an encrypted part (docs/FORMAT.md §8);
    /// absent for a plaintext file. `size` and `crc32c` are then the sealed
    /// file's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<PartSeal>,
}

/// The seal of an encrypted part file: the key it was sealed with and the
/// file's random id, which its header must repeat (so that another sealed
/// file, an older one of the same part say, put in its place is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSeal {
    /// The key id.
    pub key_id: u32,
    /// The file id (32 hex digits in `metadata.json`).
    #[serde(with = "hex_id")]
    pub file_id: [u8; 16],
}

/// A sink's pre-committed transaction, recorded in the checkpoint that covers
/// its epoch and committed after the checkpoint is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkTransaction {
    /// The sink's name.
    pub sink: String,
    /// The epoch whose output the transaction holds.
    pub epoch: u64,
    /// The sink's opaque handle (stored as hex).
    #[serde(with = "hex_bytes")]
    pub handle: Vec<u8>,
}

/// What a checkpoint holds: where it sits in the log and in the delta chain, the
/// source offsets and watermark its state reflects, and its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IncrementalCheckpointMetadata {
    /// Checkpoint id; increases with every checkpoint written to a directory.
    pub id: u64,
    /// The processing epoch the checkpoint closes.
    pub epoch: u64,
    /// Full or delta.
    pub kind: CheckpointKind,
    /// The checkpoint this delta builds on (`None` for a full checkpoint).
    pub parent_id: Option<u64>,
    /// The full checkpoint at the bottom of this one's chain (itself when full).
    pub base_id: u64,
    /// Number of deltas from the base to this checkpoint (0 when full).
    pub chain_length: u32,
    /// Total size of the delta part files from the base up to this checkpoint.
    pub chain_delta_bytes: u64,
    /// Total size of the base checkpoint's part files.
    pub base_bytes: u64,
    /// The WAL position the state covers: replay resumes here.
    pub wal_position: u64,
    /// Source offsets (per source or partition) the state reflects.
    #[serde(serialize_with = "sorted_map")]
    pub source_offsets: HashMap<String, u64>,
    /// The event-time watermark the state reflects (with per-partition
    /// watermarks: their minimum, see [`SourcePositions`](crate::SourcePositions)).
    pub watermark: Option<i64>,
    /// Watermark per source partition (empty when the operator keeps only the
    /// combined one). Absent in files written before it existed.
    #[serde(default, serialize_with = "sorted_map")]
    pub source_watermarks: HashMap<String, i64>,
    /// Wall-clock creation time, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// The state parts written in this checkpoint.
    pub parts: Vec<PartMetadata>,
    /// Sink transactions pre-committed for this checkpoint's epoch.
    pub sink_transactions: Vec<SinkTransaction>,
}

impl IncrementalCheckpointMetadata {
    /// The checkpoint's directory under `base_dir`.
    pub fn checkpoint_path(&self, base_dir: impl AsRef<Path>) -> PathBuf {
        base_dir.as_ref().join(checkpoint_dir_name(self.id))
    }

    /// True for a delta checkpoint.
    pub fn is_delta(&self) -> bool {
        self.kind == CheckpointKind::Delta
    }

    /// The part named `name` written in this checkpoint (not carried over).
    pub fn part(&self, name: &str) -> Option<&PartMetadata> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// Total size of this checkpoint's part files (saturating: the sizes are
    /// read from disk).
    pub fn parts_bytes(&self) -> u64 {
        self.parts
            .iter()
            .fold(0, |total: u64, p| total.saturating_add(p.size))
    }
}

/// The directory name of checkpoint `id`.
pub fn checkpoint_dir_name(id: u64) -> String {
    format!("checkpoint-{id:020}")
}

/// The id in a checkpoint directory name, if it is one.
pub(crate) fn parse_checkpoint_dir_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("checkpoint-")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The file name of part `name` of `kind`.
pub(crate) fn part_file_name(name: &str, kind: PartKind) -> String {
    if kind.is_arrow() {
        format!("part-{name}.arrow")
    } else {
        format!("part-{name}.hwstate")
    }
}

/// Checks that a part name is safe to turn into a file name.
///
/// # Errors
/// `UnsafeName` naming `origin` (the metadata file or checkpoint directory).
pub(crate) fn check_part_name(origin: &Path, name: &str) -> Result<()> {
    let unsafe_name = |reason| Error::UnsafeName {
        path: origin.to_path_buf(),
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(unsafe_name("part names are 1 to 128 bytes long"));
    }
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return Err(unsafe_name("a part name may not contain '/', '\\' or '..'"));
    }
    if name.starts_with('.') {
        return Err(unsafe_name("a part name may not start with '.'"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(unsafe_name(
            "part names use only A-Z, a-z, 0-9, '_', '-' and '.'",
        ));
    }
    Ok(())
}

/// Serialises metadata into the bytes of `metadata.json`.
///
/// # Errors
/// `InvalidArgument` if serde_json refuses the value (it holds only strings,
/// integers and sequences, so this does not happen in practice).
pub(crate) fn encode(meta: &IncrementalCheckpointMetadata) -> Result<Vec<u8>> {
    envelope::encode("encode metadata", FORMAT_NAME, METADATA_VERSION, meta)
}

fn invalid(path: &Path, offset: Option<u64>, reason: impl Into<String>) -> Error {
    Error::CheckpointCorrupted {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Parses and verifies the bytes of a `metadata.json` read from `path`, and checks
/// that it describes checkpoint `expected_id`.
///
/// # Errors
/// `CheckpointCorrupted` (with the byte offset for JSON errors), `UnsupportedVersion`,
/// `UnsafeName`.
pub(crate) fn decode(
    path: &Path,
    bytes: &[u8],
    expected_id: u64,
) -> Result<IncrementalCheckpointMetadata> {
    let meta: IncrementalCheckpointMetadata =
        envelope::decode(path, bytes, FORMAT_NAME, METADATA_VERSION, "metadata")?;
    validate(path, &meta, expected_id)?;
    Ok(meta)
}

/// Checks the rules of FORMAT.md §3 that one metadata value can be checked for on
/// its own.
fn validate(path: &Path, m: &IncrementalCheckpointMetadata, expected_id: u64) -> Result<()> {
    let bad = |reason: String| Err(invalid(path, None, reason));
    if m.id != expected_id {
        return bad(format!(
            "metadata says id {}, its directory says {expected_id}",
            m.id
        ));
    }
    if m.wal_position > crate::wal::MAX_POSITION {
        return bad(format!(
            "WAL position {} is above the largest log position (2^62)",
            m.wal_position
        ));
    }
    match (m.kind, m.parent_id) {
        (CheckpointKind::Full, None) if m.chain_length == 0 && m.base_id == m.id => {}
        (CheckpointKind::Delta, Some(p)) if p < m.id && m.chain_length > 0 && m.base_id <= p => {}
        _ => {
            return bad(format!(
                "inconsistent chain fields: kind {:?}, parent {:?}, base {}, chain length {}",
                m.kind, m.parent_id, m.base_id, m.chain_length
            ))
        }
    }
    let mut names = std::collections::HashSet::new();
    for part in &m.parts {
        check_part_name(path, &part.name)?;
        if part.file != part_file_name(&part.name, part.kind) {
            return Err(Error::UnsafeName {
                path: path.to_path_buf(),
                name: part.file.clone(),
                reason: "a part's file must be named part-<name>.hwstate (part-<name>.arrow for Arrow parts)",
            });
        }
        if !names.insert(part.name.as_str()) {
            return bad(format!("part {:?} is listed twice", part.name));
        }
        if m.kind == CheckpointKind::Full && part.kind.is_delta() {
            return bad(format!(
                "full checkpoint has {} part {:?}",
                part.kind.name(),
                part.name
            ));
        }
    }
    for t in &m.sink_transactions {
        check_handle(&t.handle)
            .map_err(|problem| invalid(path, None, format!("sink {:?}: {problem}", t.sink)))?;
    }
    Ok(())
}

/// A sink transaction handle longer than a checkpoint records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("its handle is {len} bytes; a checkpoint records at most {max}")]
pub(crate) struct HandleTooLong {
    /// The handle's length.
    pub len: usize,
    /// [`MAX_HANDLE_LEN`].
    pub max: usize,
}

/// Checks that a sink transaction handle fits in a checkpoint: the one rule
/// for writers (the manager, the sink coordinator) and for readers.
///
/// # Errors
/// [`HandleTooLong`].
pub(crate) fn check_handle(handle: &[u8]) -> std::result::Result<(), HandleTooLong> {
    if handle.len() > MAX_HANDLE_LEN {
        return Err(HandleTooLong {
            len: handle.len(),
            max: MAX_HANDLE_LEN,
        });
    }
    Ok(())
}

fn sorted_map<S: serde::Serializer, V: Serialize>(
    map: &HashMap<String, V>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    map.iter().collect::<BTreeMap<_, _>>().serialize(s)
}

mod hex_id {
    use serde::{de::Error as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        super::hex_bytes::serialize(bytes, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let bytes = super::hex_bytes::deserialize(d)?;
        bytes
            .try_into()
            .map_err(|_| D::Error::custom("a file id is 32 hex digits"))
    }
}

mod hex_bytes {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&hex)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        if !s.is_ascii() || s.len() % 2 != 0 || s.len() > 2 * super::MAX_HANDLE_LEN {
            return Err(D::Error::custom("hex handle of odd or excessive length"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&s[i..i + 2], 16)
                    .map_err(|_| D::Error::custom("handle is not hex"))
            })
            .collect()
    }
}
