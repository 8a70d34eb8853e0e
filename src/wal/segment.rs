//! Segment files: naming, listing, creating and opening them.
//!
//! Invariant: a segment is named by the log position of its first record
//! ([`segment_file_name`]), and its header repeats that position. A new segment's
//! header and directory entry are durable before [`create_segment`] returns.

use super::format::{HeaderProblem, SegmentHeader, SEALED_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::seal::{check_seal_header, Keys, Sealer, SEAL_LEN};
use crate::error::{Error, IoContext, Result};
use crate::storage::{OpenMode, Storage, StorageFile};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// File extension of segment files.
pub const SEGMENT_EXTENSION: &str = ".wal";
/// Name of the lock file in a log directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// A segment file found in a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Position of its first record (from the file name).
    pub start: u64,
    /// Full path of the file.
    pub path: PathBuf,
}

/// The file name of the segment whose first record is at `start`.
pub fn segment_file_name(start: u64) -> String {
    format!("{start:020}{SEGMENT_EXTENSION}")
}

/// The start position encoded in a segment file name, or `None` if `name` is not
/// a segment file name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_EXTENSION)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse()
        .ok()
        .filter(|&start| start <= super::format::MAX_POSITION)
}

/// The segments of the log in `dir`, oldest first. A missing directory has none.
///
/// # Errors
/// I/O errors other than "not found".
pub fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<SegmentMeta>> {
    let entries = match storage.list_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut segments = Vec::new();
    for entry in entries {
        match parse_segment_name(&entry.name) {
            Some(start) if !entry.is_dir => segments.push(SegmentMeta {
                start,
                path: dir.join(&entry.name),
            }),
            _ if entry.name == LOCK_FILE_NAME
                || entry.name == super::floor::FLOOR_FILE_NAME
                || entry.name == super::floor::FLOOR_TEMP_NAME => {}
            _ => {
                tracing::debug!(dir = %dir.display(), file = %entry.name, "ignoring non-segment file in log directory")
            }
        }
    }
    segments.sort_by_key(|s| s.start);
    Ok(segments)
}

/// A fresh random, non-zero segment identity.
pub fn new_segment_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        h.write_u32(std::process::id());
        let id = h.finish();
        if id != 0 {
            return id;
        }
    }
}

/// A segment [`create_segment`] made.
pub(crate) struct NewSegment {
    /// The file, open for writing.
    pub file: Arc<dyn StorageFile>,
    /// Its header.
    pub header: SegmentHeader,
    /// Its path.
    pub path: PathBuf,
    /// For a sealed segment: what seals its records (only this process has
    /// it, and only for this file).
    pub sealer: Option<Sealer>,
}

/// Creates (or re-initialises) the segment starting at `start`: writes a fresh
/// header (and, with `keys`, a seal header with a new file id: a sealed
/// segment), fsyncs the file and then the directory.
///
/// # Errors
/// Any I/O error, naming the file; the key provider's errors.
pub(crate) fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    start: u64,
    keys: &Keys,
) -> Result<NewSegment> {
    let path = dir.join(segment_file_name(start));
    let sealer = keys.sealer()?;
    let file = storage
        .open_file(&path, OpenMode::Create)
        .ctx("create", &path)?;
    let header = SegmentHeader {
        segment_id: new_segment_id(),
        first_position: start,
        sealed: sealer.is_some(),
    };
    let mut bytes = header.encode().to_vec();
    if let Some(sealer) = &sealer {
        bytes.extend_from_slice(&sealer.header());
    }
    file.truncate(0).ctx("truncate", &path)?;
    file.write_all_at(&bytes, 0).ctx("write", &path)?;
    file.sync_all().ctx("sync", &path)?;
    storage.sync_dir(dir).ctx("sync directory", dir)?;
    tracing::debug!(path = %path.display(), start, sealed = header.sealed, "created segment");
    Ok(NewSegment {
        file,
        header,
        path,
        sealer,
    })
}

/// A verified segment header and, for a sealed segment, its seal header
/// (checked without a key).
pub(crate) type Headers = (SegmentHeader, Option<[u8; SEAL_LEN]>);

/// Reads and checks the header of `segment` (and a sealed segment's seal
/// header). `Ok(Err(problem))` is a header that did not verify; an
/// unsupported version is an `Err`.
///
/// # Errors
/// I/O errors and [`Error::UnsupportedVersion`].
pub(crate) fn read_header(
    file: &dyn StorageFile,
    segment: &SegmentMeta,
) -> Result<std::result::Result<Headers, HeaderProblem>> {
    let mut buf = [0u8; SEALED_HEADER_LEN as usize];
    let mut got = 0;
    while got < buf.len() {
        let n = file
            .read_at(&mut buf[got..], got as u64)
            .ctx("read", &segment.path)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let header = match SegmentHeader::decode(&buf[..got]) {
        Err(HeaderProblem::Version(found)) => {
            return Err(Error::UnsupportedVersion {
                path: segment.path.clone(),
                found,
                supported: super::format::SEALED_SEGMENT_VERSION,
            })
        }
        Err(problem) => return Ok(Err(problem)),
        Ok(h) if h.first_position != segment.start => {
            return Ok(Err(HeaderProblem::Invalid(
                "first_position does not match the file name",
            )))
        }
        Ok(h) => h,
    };
    if !header.sealed {
        return Ok(Ok((header, None)));
    }
    let seal = &buf[SEGMENT_HEADER_LEN as usize..got];
    Ok(check_seal_header(seal).map(|seal| (header, Some(seal))))
}

/// Bytes of the log in `dir`: every segment file, the newest one up to the end
/// of its records (zeros a durable writer preallocated after them are not
/// counted; a newest segment that does not end cleanly counts whole). 0 when
/// the log does not exist.
///
/// # Errors
/// I/O errors other than "not found".
pub fn log_size(storage: &dyn Storage, dir: &Path) -> Result<u64> {
    let segments = list_segments(storage, dir)?;
    let mut total = 0;
    for (i, s) in segments.iter().enumerate() {
        match storage.file_size(&s.path) {
            Ok(n) if i + 1 == segments.len() => total += records_end(storage, dir, s, n)?,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", &s.path, e)),
        }
    }
    Ok(total)
}

/// The file offset where the records of the newest segment `s` (a file of
/// `len` bytes) end cleanly; `len` when the file does not end in zeros (no
/// preallocated tail) or does not end cleanly. Reads the segment otherwise.
fn records_end(storage: &dyn Storage, dir: &Path, s: &SegmentMeta, len: u64) -> Result<u64> {
    if len <= SEGMENT_HEADER_LEN {
        return Ok(len);
    }
    // A floor that does not read: the segment counts whole.
    let Ok(floor) = super::floor::read_floor(storage, dir) else {
        return Ok(len);
    };
    let from = s.start.max(floor);
    let max = super::options::MAX_RECORD_SIZE_LIMIT;
    let mut scanner = match super::scan::SegmentScanner::open_from(storage, s, from, None, max) {
        Ok(Ok(scanner)) => scanner,
        Ok(Err(_)) | Err(Error::UnsupportedVersion { .. }) => return Ok(len),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(0)
        }
        Err(e) => return Err(e),
    };
    let records = scanner.header().records_offset();
    if len <= records || scanner.offset() >= len {
        return Ok(len);
    }
    let mut last = [0u8; 8];
    let tail = (len - records).min(8) as usize;
    scanner
        .read_exact_at(&mut last[..tail], len - tail as u64)
        .ctx("read", &s.path)?;
    if last.iter().any(|&b| b != 0) {
        return Ok(len);
    }
    loop {
        match scanner.next_record()? {
            super::scan::Step::Record { .. } => {}
            super::scan::Step::End => return Ok(scanner.offset().min(len)),
            super::scan::Step::Damaged(_) => return Ok(len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_lookalikes() {
        assert_eq!(segment_file_name(67), "00000000000000000067.wal");
        assert_eq!(
            parse_segment_name(&segment_file_name(1 << 40)),
            Some(1 << 40)
        );
        // Out of the position range: not a segment of ours.
        assert_eq!(parse_segment_name(&segment_file_name(u64::MAX)), None);
        assert_eq!(parse_segment_name("0000000000000000067.wal"), None);
        assert_eq!(parse_segment_name("0000000000000000006x.wal"), None);
        assert_eq!(parse_segment_name("00000000000000000067.tmp"), None);
        assert_eq!(parse_segment_name("99999999999999999999.wal"), None);
    }
}
