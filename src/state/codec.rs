//! Encoding columns into a state file and decoding a whole state file back,
//! verifying everything on the way in.

use super::archive_writer::{estimate, write_archive};
use super::columns::{self, ArchivedStateColumns, StateColumns};
use super::format::{self, corrupted, FileLayout, StateKind, HEADER_LEN};
use super::shared::AlignedBytes;
use super::snapshot_repr::Cols;
use crate::error::{Error, Result};
use crate::storage::MappedFile;
use rkyv::util::AlignedVec;
use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// The bytes of a state file, as produced by `to_bytes`. Derefs to `&[u8]`; the
/// buffer is 16-byte aligned so that it can be read in place. The bytes are
/// shared and immutable: cloning is cheap, and a snapshot restored from a file
/// returns its verified file bytes without copying them.
#[derive(Clone)]
pub struct StateBytes(Arc<dyn MappedFile>);

impl PartialEq for StateBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.bytes() == other.0.bytes()
    }
}

impl Eq for StateBytes {}

impl StateBytes {
    /// Copies the bytes into a plain `Vec<u8>`.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.bytes().to_vec()
    }

    /// Bytes in one aligned buffer.
    pub(crate) fn from_aligned(buf: AlignedVec<16>) -> Self {
        StateBytes(Arc::new(AlignedBytes(buf)))
    }

    /// Bytes already shared (a verified state file).
    pub(crate) fn shared(file: Arc<dyn MappedFile>) -> Self {
        StateBytes(file)
    }
}

impl Deref for StateBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.bytes()
    }
}

impl AsRef<[u8]> for StateBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.bytes()
    }
}

impl fmt::Debug for StateBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateBytes({} bytes)", self.0.bytes().len())
    }
}

/// The path used in errors about an in-memory buffer.
pub(crate) fn memory_path() -> &'static Path {
    Path::new("<bytes>")
}

/// The largest archive this build's rkyv format can address (relative pointers
/// are signed and as wide as the archived `usize`).
fn max_archive_len() -> u64 {
    match std::mem::size_of::<rkyv::primitive::ArchivedUsize>() {
        2 => i16::MAX as u64,
        4 => i32::MAX as u64,
        _ => i64::MAX as u64,
    }
}

/// Checks that `columns` fit in one archive.
///
/// # Errors
/// `StateTooLarge` when the archive would exceed what rkyv can address.
pub(crate) fn check_archivable(columns: &StateColumns) -> Result<u64> {
    let ends = columns.key_ends.len() + columns.value_ends.len() + columns.deleted_ends.len();
    check_estimate(columns.data_bytes() + 8 * ends as u64 + 256)
}

/// Checks that an archive of (at most) `estimate` bytes can be addressed.
///
/// # Errors
/// `StateTooLarge` when it cannot.
pub(crate) fn check_estimate(estimate: u64) -> Result<u64> {
    if estimate > max_archive_len() {
        return Err(Error::StateTooLarge {
            size: estimate,
            max: max_archive_len(),
        });
    }
    Ok(estimate)
}

/// Archives `columns` into a complete state file of `kind`.
///
/// # Errors
/// `StateTooLarge` when the archive would exceed what rkyv can address.
pub(crate) fn encode(columns: &StateColumns, kind: StateKind) -> Result<StateBytes> {
    let estimate = check_archivable(columns)?;
    let buf = format::new_file_buffer(estimate as usize);
    let mut buf =
        rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(columns, buf).map_err(|e| {
            Error::invalid_argument("archive state", format!("state could not be archived: {e}"))
        })?;
    format::seal(
        &mut buf,
        kind,
        columns.len() as u64,
        columns.deleted_len() as u64,
    );
    Ok(StateBytes::from_aligned(buf))
}

/// Encodes the snapshot `cols` as a complete state file, in one pass into one
/// buffer sized for the whole file (archive, then the block table).
///
/// # Errors
/// `StateTooLarge` when the archive would exceed what rkyv can address.
pub(crate) fn encode_snapshot(cols: &Cols<'_>) -> Result<StateBytes> {
    if let Cols::File(f) = cols {
        // Already a verified snapshot file: the same bytes, shared.
        return Ok(StateBytes::shared(f.file().clone()));
    }
    let archive = check_estimate(estimate(cols.len(), cols.data_bytes()))? as usize;
    let table = 4 * (archive >> format::BLOCK_SHIFT) + 4;
    let mut buf = AlignedVec::<16>::with_capacity(HEADER_LEN + archive + table);
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    write_archive(cols, &mut buf)?;
    format::seal(&mut buf, StateKind::Snapshot, cols.len() as u64, 0);
    Ok(StateBytes::from_aligned(buf))
}

/// Gives `file` at a 16-byte aligned address (so its payload is aligned for the
/// archive), copying only when the caller's buffer is not aligned.
fn aligned<'a>(file: &'a [u8], copy: &'a mut AlignedVec<16>) -> &'a [u8] {
    if (file.as_ptr() as usize).is_multiple_of(16) {
        file
    } else {
        copy.extend_from_slice(file);
        copy
    }
}

/// Verifies every checksum of `file`, then accesses and validates its archive.
fn validated<'a>(
    path: &Path,
    file: &'a [u8],
    copy: &'a mut AlignedVec<16>,
) -> Result<(FileLayout, Option<&'a ArchivedStateColumns>)> {
    let layout = FileLayout::parse(path, file)?;
    layout.verify_payload(path, file)?;
    if layout.header.kind == StateKind::Blob {
        return Ok((layout, None));
    }
    let file = aligned(file, copy);
    let archived = access(path, layout.payload(file))?;
    columns::validate(
        path,
        file,
        archived,
        layout.header.entries,
        layout.header.deleted,
    )?;
    Ok((layout, Some(archived)))
}

/// Accesses the archive of a verified payload with bytecheck.
///
/// # Errors
/// `StateCorrupted` when bytecheck rejects the archive.
pub(crate) fn access<'a>(path: &Path, payload: &'a [u8]) -> Result<&'a ArchivedStateColumns> {
    rkyv::access::<ArchivedStateColumns, rkyv::rancor::Error>(payload).map_err(|e| {
        corrupted(
            path,
            HEADER_LEN as u64,
            format!("archive does not validate: {e}"),
        )
    })
}

/// A kind of stored state with a name for errors: a state file's kind or a
/// checkpoint part's kind.
pub(crate) trait NamedKind: Copy + PartialEq {
    /// Its lower-case name.
    fn kind_name(self) -> &'static str;
}

impl NamedKind for StateKind {
    fn kind_name(self) -> &'static str {
        self.name()
    }
}

/// `WrongStateKind` unless `found` is `expected`.
pub(crate) fn expect_kind<K: NamedKind>(path: &Path, found: K, expected: K) -> Result<()> {
    if found != expected {
        return Err(Error::WrongStateKind {
            path: path.to_path_buf(),
            expected: expected.kind_name(),
            found: found.kind_name(),
        });
    }
    Ok(())
}

/// Verifies a whole state file of kind `expected` (snapshot or delta) and
/// returns its columns.
///
/// # Errors
/// Every error of [`FileLayout::parse`], `StateChecksumMismatch` for a damaged
/// block, `StateCorrupted` for an archive that breaks an invariant, and
/// `WrongStateKind` for a file of another kind.
pub(crate) fn decode(path: &Path, file: &[u8], expected: StateKind) -> Result<StateColumns> {
    let mut copy = AlignedVec::<16>::new();
    let (layout, archived) = validated(path, file, &mut copy)?;
    expect_kind(path, layout.header.kind, expected)?;
    match archived {
        Some(archived) => Ok(StateColumns::from_archived(archived)),
        None => Err(corrupted(path, 12, "a blob has no archive")),
    }
}

/// Verifies a whole state file of kind blob and returns its payload.
///
/// # Errors
/// As [`decode`].
pub(crate) fn decode_blob(path: &Path, file: &[u8]) -> Result<Vec<u8>> {
    let layout = FileLayout::parse(path, file)?;
    expect_kind(path, layout.header.kind, StateKind::Blob)?;
    layout.verify_payload(path, file)?;
    Ok(layout.payload(file).to_vec())
}

/// Verifies a whole state file without decoding it (header, table, every block,
/// and for archives the archive's invariants). Returns the header's kind and the
/// CRC32C of the whole file, derived from the verified checksums without a
/// second pass over the bytes.
///
/// # Errors
/// As [`decode`] (a blob is accepted).
pub(crate) fn verify(path: &Path, file: &[u8]) -> Result<(StateKind, u32)> {
    let mut copy = AlignedVec::<16>::new();
    let (layout, _) = validated(path, file, &mut copy)?;
    let h = &layout.header;
    let table_len = file.len() - HEADER_LEN - h.payload_len as usize;
    let header = header_bytes(file);
    Ok((h.kind, layout_crc(&header, h.payload_len, table_len)))
}

/// The CRC32C of a whole state file this process just encoded, derived from its
/// header and table checksums (no pass over the payload).
///
/// # Errors
/// As [`FileLayout::parse`].
pub(crate) fn encoded_file_crc(path: &Path, file: &[u8]) -> Result<u32> {
    let layout = FileLayout::parse(path, file)?;
    let payload_len = layout.header.payload_len;
    let table_len = file.len() - HEADER_LEN - payload_len as usize;
    Ok(layout_crc(&header_bytes(file), payload_len, table_len))
}

/// The header of a file that `FileLayout::parse` accepted (so it is long enough).
fn header_bytes(file: &[u8]) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&file[..HEADER_LEN]);
    header
}

/// The whole-file CRC32C of a state file, from its encoded header (which holds
/// the payload and table CRCs) and the payload and table lengths.
pub(crate) fn layout_crc(header: &[u8; HEADER_LEN], payload_len: u64, table_len: usize) -> u32 {
    let field = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let crc = crc32c::crc32c(header);
    let crc = crc32c::crc32c_combine(crc, field(40), payload_len as usize);
    crc32c::crc32c_combine(crc, field(44), table_len)
}

/// Kind and counts (entries, deleted) from a state file's verified header.
///
/// # Errors
/// As [`FileLayout::parse`].
pub(crate) fn header_summary(path: &Path, file: &[u8]) -> Result<(StateKind, u64, u64)> {
    let h = FileLayout::parse(path, file)?.header;
    Ok((h.kind, h.entries, h.deleted))
}
