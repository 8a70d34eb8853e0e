//! Walking the records of one segment file and classifying what stops the walk.
//!
//! [`SegmentScanner`] never modifies the file. It verifies each record header's
//! checksum before it uses the length, checks the length against the maximum
//! record size and against the bytes present before it reads the payload, and
//! verifies the payload checksum. When a record does not verify, it decides
//! between a **torn tail** and **corruption** (docs/FORMAT.md, "What counts as a
//! torn tail"): only the newest segment can have a torn tail, and only when no
//! valid record follows the damage.

pub use super::damage::{Damage, DamageClass, Problem};
use super::format::{
    record_size, HeaderProblem, RecordHeader, RecordHeaderProblem, SegmentHeader, RECORD_ALIGN,
    RECORD_HEADER_LEN, SEALED_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::seal::SEAL_LEN;
use super::segment::{read_header, SegmentMeta};
use crate::error::{IoContext, Result};
use crate::storage::{OpenMode, Storage, StorageFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes read from the file at a time.
const WINDOW: usize = 1 << 20;

/// One step of a scan.
#[derive(Debug)]
pub enum Step<'a> {
    /// A verified record.
    Record {
        /// Its log position.
        position: u64,
        /// Its kind byte.
        kind: u8,
        /// Its payload (checksum verified).
        payload: &'a [u8],
    },
    /// The segment's records end cleanly here.
    End,
    /// The walk stops at damage.
    Damaged(Damage),
}

/// Walks the records of one segment.
#[derive(Debug)]
pub struct SegmentScanner {
    pub(super) file: Arc<dyn StorageFile>,
    pub(super) path: PathBuf,
    header: SegmentHeader,
    /// A sealed segment's seal header (checked without a key).
    seal: Option<[u8; SEAL_LEN]>,
    pub(super) file_len: u64,
    /// File offset of the next record.
    offset: u64,
    /// Where the next segment starts, for an older segment; `None` for the newest.
    pub(super) next_start: Option<u64>,
    pub(super) max_record_size: u32,
    window: Vec<u8>,
    window_start: u64,
    /// Where the payload of the last record returned lies in `window`.
    last_payload: std::ops::Range<usize>,
}

impl SegmentScanner {
    /// Opens `segment` for scanning from position `from`: its start, or the
    /// log's floor (the record there is verified when it is read, and nothing
    /// before it is). `next_start` is the start of the following segment, or
    /// `None` if this is the newest. A header that does not verify is returned
    /// as damage: torn when the segment is the newest, holds nothing but (part
    /// of) its header and is read from its start; corrupt otherwise.
    ///
    /// # Errors
    /// I/O errors, [`crate::Error::UnsupportedVersion`], and
    /// [`crate::Error::InvalidArgument`] for a `from` before the segment's
    /// start or above 2^62.
    pub fn open_from(
        storage: &dyn Storage,
        segment: &SegmentMeta,
        from: u64,
        next_start: Option<u64>,
        max_record_size: u32,
    ) -> Result<std::result::Result<Self, Damage>> {
        let skip = from
            .checked_sub(segment.start)
            .filter(|_| from <= super::format::MAX_POSITION)
            .ok_or_else(|| {
                crate::Error::invalid_argument(
                    "scan segment",
                    format!(
                        "scan of {} from position {from}, before its start {}",
                        segment.path.display(),
                        segment.start
                    ),
                )
            })?;
        let file = storage
            .open_file(&segment.path, OpenMode::Read)
            .ctx("open", &segment.path)?;
        match read_header(file.as_ref(), segment)? {
            Ok((header, seal)) => {
                let mut scanner =
                    Self::new(file, &segment.path, header, next_start, max_record_size)?;
                scanner.seal = seal;
                // Cannot overflow: both are at most 2^62.
                scanner.offset = header.records_offset() + skip;
                Ok(Ok(scanner))
            }
            Err(problem) => {
                let file_len = file.len().ctx("stat", &segment.path)?;
                // A seal header is written with the segment header: a
                // sealed segment whose seal header is torn holds no record.
                let header_len = match problem {
                    HeaderProblem::Seal(_) => SEALED_HEADER_LEN,
                    _ => SEGMENT_HEADER_LEN,
                };
                let class = if next_start.is_none() && file_len <= header_len && skip == 0 {
                    DamageClass::Torn
                } else {
                    DamageClass::Corrupt
                };
                Ok(Err(Damage {
                    class,
                    path: segment.path.clone(),
                    offset: 0,
                    position: from,
                    problem: Problem::SegmentHeader(problem),
                }))
            }
        }
    }

    /// Moves the scanner to file `offset` (a record verified there by
    /// [`verified_record_at`](Self::verified_record_at)).
    pub fn seek_offset(&mut self, offset: u64) {
        self.offset = offset.max(self.header.records_offset());
    }

    /// The first 8-aligned file offset in `(after, until]` where a record
    /// verifies (header and payload checksums, at its own position, within the
    /// file and the maximum record size), if any. Only reads.
    ///
    /// # Errors
    /// I/O errors.
    pub fn verified_record_after(&mut self, after: u64, until: u64) -> Result<Option<u64>> {
        // No record header fits past this offset.
        let last = self.file_len.saturating_sub(RECORD_HEADER_LEN as u64);
        let until = until.min(last);
        let mut at = after.checked_add(RECORD_ALIGN);
        while let Some(offset) = at.filter(|&o| o <= until) {
            if self.verified_record_at(offset)?.is_some() {
                return Ok(Some(offset));
            }
            at = offset.checked_add(RECORD_ALIGN);
        }
        Ok(None)
    }

    /// The header of the record at file offset `at`, if one verifies there
    /// (header and payload checksums, at its own position, within the file and
    /// the maximum record size).
    ///
    /// # Errors
    /// I/O errors.
    pub fn verified_record_at(&mut self, at: u64) -> Result<Option<RecordHeader>> {
        let Some(end) = at.checked_add(RECORD_HEADER_LEN as u64) else {
            return Ok(None);
        };
        if at < self.header.records_offset() || end > self.file_len {
            return Ok(None);
        }
        let mut raw = [0u8; RECORD_HEADER_LEN];
        raw.copy_from_slice(self.bytes_at(at, RECORD_HEADER_LEN)?);
        let position = self.position_of(at);
        let Ok(h) = RecordHeader::decode(&raw, self.header.segment_id, position) else {
            return Ok(None);
        };
        let size = record_size(h.payload_len);
        if h.payload_len > self.max_record_size || at.saturating_add(size) > self.file_len {
            return Ok(None);
        }
        let payload = self.bytes_at(end, h.payload_len as usize)?;
        Ok((crc32c::crc32c(payload) == h.payload_crc).then_some(h))
    }

    /// A scanner positioned at the first record. `next_start` is the start of the
    /// following segment, or `None` if this is the newest segment.
    ///
    /// # Errors
    /// I/O errors reading the file length.
    pub fn new(
        file: Arc<dyn StorageFile>,
        path: &Path,
        header: SegmentHeader,
        next_start: Option<u64>,
        max_record_size: u32,
    ) -> Result<Self> {
        let file_len = file.len().ctx("stat", path)?;
        Ok(SegmentScanner {
            file,
            path: path.to_path_buf(),
            header,
            seal: None,
            file_len,
            offset: header.records_offset(),
            next_start,
            max_record_size,
            window: Vec::new(),
            window_start: 0,
            last_payload: 0..0,
        })
    }

    /// The segment's header.
    pub fn header(&self) -> SegmentHeader {
        self.header
    }

    /// A sealed segment's seal header (`None` for a plaintext segment).
    pub(crate) fn seal_header(&self) -> Option<&[u8; SEAL_LEN]> {
        self.seal.as_ref()
    }

    /// Reads `buf.len()` bytes of the file at `offset`.
    ///
    /// # Errors
    /// I/O errors (a short file: `UnexpectedEof`).
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// The file offset of log `position` (at or after the segment's start).
    pub fn offset_of(&self, position: u64) -> u64 {
        self.header.records_offset() + (position - self.header.first_position)
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The payload of the last record [`next_record`](Self::next_record)
    /// returned (checksum verified).
    pub fn last_payload(&self) -> &[u8] {
        &self.window[self.last_payload.clone()]
    }

    /// File offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Log position of the next record.
    pub fn position(&self) -> u64 {
        self.position_of(self.offset)
    }

    pub(super) fn position_of(&self, offset: u64) -> u64 {
        self.header.first_position + (offset - self.header.records_offset())
    }

    /// Bytes `[offset, offset + len)` of the file; the caller ensures they
    /// exist (below the length the scanner saw).
    ///
    /// A live log's file can get shorter under a reader: a durable writer
    /// cuts the zeros it preallocated when it seals or closes the segment,
    /// and `cut_from` cuts records. Bytes that are gone read as zeros — a
    /// clean end, which is what the file now says there — never as an error.
    fn bytes_at(&mut self, offset: u64, len: usize) -> Result<&[u8]> {
        let in_window = offset >= self.window_start
            && offset + len as u64 <= self.window_start + self.window.len() as u64;
        if !in_window {
            let want = (len.max(WINDOW) as u64).min(self.file_len - offset) as usize;
            self.window.resize(want, 0);
            let mut filled = 0;
            while filled < want {
                match self
                    .file
                    .read_at(&mut self.window[filled..], offset + filled as u64)
                {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).ctx("read", &self.path),
                }
            }
            if filled < want {
                tracing::debug!(path = %self.path.display(), offset, expected = self.file_len, now = offset + filled as u64, "segment got shorter while read; the rest reads as a clean end");
                self.window[filled..].fill(0);
            }
            self.window_start = offset;
        }
        let start = (offset - self.window_start) as usize;
        Ok(&self.window[start..start + len])
    }

    fn damage(&self, class: DamageClass, offset: u64, problem: Problem) -> Step<'static> {
        Step::Damaged(Damage {
            class,
            path: self.path.clone(),
            offset,
            position: self.position_of(offset),
            problem,
        })
    }

    /// The next record, or why there is none. After `End` or `Damaged` the scanner
    /// stays where it is.
    ///
    /// # Errors
    /// I/O errors.
    pub fn next_record(&mut self) -> Result<Step<'_>> {
        let offset = self.offset;
        if let Some(next) = self.next_start {
            let position = self.position_of(offset);
            if position == next {
                return Ok(Step::End);
            }
            if position > next {
                return Ok(self.damage(
                    DamageClass::Corrupt,
                    offset,
                    Problem::CrossesNext { next_start: next },
                ));
            }
        }
        let remaining = self.file_len.saturating_sub(offset);
        if remaining < RECORD_HEADER_LEN as u64 {
            return self.short_tail(offset, remaining);
        }
        let mut raw = [0u8; RECORD_HEADER_LEN];
        raw.copy_from_slice(self.bytes_at(offset, RECORD_HEADER_LEN)?);
        let header =
            match RecordHeader::decode(&raw, self.header.segment_id, self.position_of(offset)) {
                Ok(h) => h,
                Err(RecordHeaderProblem::Zero) => return self.zero_header(offset),
                Err(_) if self.written_since(offset, &raw)? => return Ok(Step::End),
                Err(RecordHeaderProblem::Checksum { expected, actual }) => {
                    return self.classify(offset, Problem::HeaderChecksum { expected, actual })
                }
                Err(RecordHeaderProblem::BadSyncDistance) => {
                    return self.classify(offset, Problem::BadSyncDistance)
                }
            };
        if header.payload_len > self.max_record_size {
            let problem = Problem::TooLarge {
                len: header.payload_len,
                max: self.max_record_size,
            };
            return Ok(self.damage(DamageClass::Corrupt, offset, problem));
        }
        let size = record_size(header.payload_len);
        if let Some(next) = self.next_start {
            if self.position_of(offset) + size > next {
                return Ok(self.damage(
                    DamageClass::Corrupt,
                    offset,
                    Problem::CrossesNext { next_start: next },
                ));
            }
        }
        if offset + size > self.file_len {
            let class = if self.next_start.is_none() {
                DamageClass::Torn
            } else {
                DamageClass::Corrupt
            };
            let problem = Problem::Incomplete {
                needed: size,
                available: remaining,
            };
            return Ok(self.damage(class, offset, problem));
        }
        let payload_start = offset + RECORD_HEADER_LEN as u64;
        let actual = crc32c::crc32c(self.bytes_at(payload_start, header.payload_len as usize)?);
        if actual != header.payload_crc {
            if self.written_since(offset, &raw)? {
                return Ok(Step::End);
            }
            let problem = Problem::PayloadChecksum {
                expected: header.payload_crc,
                actual,
            };
            return self.classify(offset, problem);
        }
        let position = self.position_of(offset);
        self.offset = offset + size;
        let len = header.payload_len as usize;
        self.bytes_at(payload_start, len)?;
        let start = (payload_start - self.window_start) as usize;
        self.last_payload = start..start + len;
        let payload = &self.window[self.last_payload.clone()];
        Ok(Step::Record {
            position,
            kind: header.kind,
            payload,
        })
    }

    /// Fewer bytes than a record header remain.
    fn short_tail(&mut self, offset: u64, remaining: u64) -> Result<Step<'_>> {
        if let Some(next) = self.next_start {
            return Ok(self.damage(
                DamageClass::Corrupt,
                offset,
                Problem::EndsEarly { next_start: next },
            ));
        }
        if remaining == 0 || self.rest_is_zero(offset)? {
            return Ok(Step::End);
        }
        let problem = Problem::Incomplete {
            needed: RECORD_HEADER_LEN as u64,
            available: remaining,
        };
        Ok(self.damage(DamageClass::Torn, offset, problem))
    }

    /// A record header of all zeros.
    fn zero_header(&mut self, offset: u64) -> Result<Step<'_>> {
        if let Some(next) = self.next_start {
            return Ok(self.damage(
                DamageClass::Corrupt,
                offset,
                Problem::EndsEarly { next_start: next },
            ));
        }
        if self.rest_is_zero(offset)? || self.written_since(offset, &[0; RECORD_HEADER_LEN])? {
            return Ok(Step::End);
        }
        self.classify(offset, Problem::GarbageAfterZeros)
    }

    /// Torn or corrupt: torn only in the newest segment, and only when no valid
    /// record after the damage proves that the damaged bytes were already durable.
    fn classify(&mut self, offset: u64, problem: Problem) -> Result<Step<'_>> {
        let class = if self.next_start.is_none() && !self.durable_before_later_record(offset)? {
            DamageClass::Torn
        } else {
            DamageClass::Corrupt
        };
        Ok(self.damage(class, offset, problem))
    }

    fn rest_is_zero(&mut self, mut offset: u64) -> Result<bool> {
        while offset < self.file_len {
            let n = ((self.file_len - offset) as usize).min(WINDOW);
            if self.bytes_at(offset, n)?.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            offset += n as u64;
        }
        Ok(true)
    }

    /// Whether a record that verifies (header and payload checksums, at its own
    /// position) starts at an aligned offset after `offset` and says, through its
    /// sync distance, that the log was already durable past the damaged record when
    /// it was written. Records written in the same unsynced batch as the damaged
    /// one prove nothing: a crash may persist a batch's pages in any order.
    fn durable_before_later_record(&mut self, offset: u64) -> Result<bool> {
        let damaged = self.position_of(offset);
        let mut at = offset + RECORD_ALIGN;
        while at + RECORD_HEADER_LEN as u64 <= self.file_len {
            if let Some(h) = self.verified_record_at(at)? {
                if h.durable_when_written(self.position_of(at))
                    .is_some_and(|d| d > damaged)
                {
                    tracing::debug!(path = %self.path.display(), damaged_offset = offset, valid_offset = at, "a later record shows the damaged record was durable");
                    return Ok(true);
                }
            }
            at += RECORD_ALIGN;
        }
        Ok(false)
    }
}
