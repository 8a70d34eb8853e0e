//! Walking the records of one segment file and classifying what stops the walk.
//!
//! [`SegmentScanner`] never modifies the file. It verifies each record header's
//! checksum before it uses the length, checks the length against the maximum
//! record size and against the bytes present before it reads the payload, and
//! verifies the payload checksum. When a record does not verify, it decides
//! between a **torn tail** and **corruption** (docs/FORMAT.md, "What counts as a
//! torn tail"): only the newest segment can have a torn tail, and only when no
//! valid record follows the damage.

use super::format::{
    record_size, HeaderProblem, RecordHeader, RecordHeaderProblem, SegmentHeader, RECORD_ALIGN,
    RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::segment::{read_header, SegmentMeta};
use crate::error::{IoContext, Result};
use crate::storage::{OpenMode, Storage, StorageFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes read from the file at a time.
const WINDOW: usize = 1 << 20;

/// Whether damage is the expected trace of a crash or real corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageClass {
    /// An incomplete or garbled tail of the newest segment with nothing valid after.
    Torn,
    /// Anything else.
    Corrupt,
}

/// What exactly is wrong at the damaged offset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The record header's checksum does not match.
    HeaderChecksum {
        /// Stored.
        expected: u32,
        /// Computed.
        actual: u32,
    },
    /// The payload's checksum does not match.
    PayloadChecksum {
        /// Stored.
        expected: u32,
        /// Computed.
        actual: u32,
    },
    /// The record extends past the end of the file.
    Incomplete {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// A verified header announces a payload above the maximum record size.
    TooLarge {
        /// Announced payload length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A verified header's sync distance points before position 0.
    BadSyncDistance,
    /// A zeroed record header followed by non-zero bytes.
    GarbageAfterZeros,
    /// A sealed segment's records stop before the next segment starts.
    EndsEarly {
        /// Where the next segment starts.
        next_start: u64,
    },
    /// A record of a sealed segment runs into the next segment's range.
    CrossesNext {
        /// Where the next segment starts.
        next_start: u64,
    },
    /// The payload verified but does not decode as an entry.
    Undecodable(String),
    /// The segment header does not verify.
    SegmentHeader(HeaderProblem),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::HeaderChecksum { expected, actual } => write!(
                f,
                "record header checksum mismatch (stored {expected:#010x}, computed {actual:#010x})"
            ),
            Problem::PayloadChecksum { expected, actual } => write!(
                f,
                "payload checksum mismatch (stored {expected:#010x}, computed {actual:#010x})"
            ),
            Problem::Incomplete { needed, available } => write!(
                f,
                "incomplete record: needs {needed} bytes, {available} present"
            ),
            Problem::TooLarge { len, max } => write!(
                f,
                "record length {len} exceeds the maximum record size {max}"
            ),
            Problem::BadSyncDistance => {
                write!(f, "sync distance points before the start of the log")
            }
            Problem::GarbageAfterZeros => {
                write!(f, "zeroed record header followed by non-zero bytes")
            }
            Problem::EndsEarly { next_start } => write!(
                f,
                "segment ends before the next segment's start position {next_start}"
            ),
            Problem::CrossesNext { next_start } => write!(
                f,
                "record crosses the next segment's start position {next_start}"
            ),
            Problem::Undecodable(why) => write!(f, "payload does not decode: {why}"),
            Problem::SegmentHeader(p) => write!(f, "{p}"),
        }
    }
}

/// Damage found by the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damage {
    /// Torn tail or corruption.
    pub class: DamageClass,
    /// The segment file.
    pub path: PathBuf,
    /// File offset of the damaged record.
    pub offset: u64,
    /// Log position of the damaged record (the end of the valid prefix).
    pub position: u64,
    /// What is wrong.
    pub problem: Problem,
}

impl Damage {
    /// The typed error for this damage.
    pub fn to_error(&self) -> crate::Error {
        match self.problem {
            Problem::HeaderChecksum { expected, actual }
            | Problem::PayloadChecksum { expected, actual }
            | Problem::SegmentHeader(HeaderProblem::Checksum { expected, actual }) => {
                crate::Error::WalChecksumMismatch {
                    path: self.path.clone(),
                    offset: self.offset,
                    position: self.position,
                    expected,
                    actual,
                }
            }
            _ => crate::Error::WalCorrupted {
                path: self.path.clone(),
                offset: self.offset,
                position: self.position,
                reason: match self.class {
                    DamageClass::Torn => format!("torn tail: {}", self.problem),
                    DamageClass::Corrupt => self.problem.to_string(),
                },
            },
        }
    }
}

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
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    header: SegmentHeader,
    file_len: u64,
    /// File offset of the next record.
    offset: u64,
    /// Where the next segment starts, for a sealed segment; `None` for the newest.
    next_start: Option<u64>,
    max_record_size: u32,
    window: Vec<u8>,
    window_start: u64,
    /// Where the payload of the last record returned lies in `window`.
    last_payload: std::ops::Range<usize>,
}

impl SegmentScanner {
    /// Opens `segment` for scanning. `next_start` is the start of the following
    /// segment, or `None` if this is the newest. A header that does not verify is
    /// returned as damage: torn when the segment is the newest and holds nothing
    /// but (part of) its header, corrupt otherwise.
    ///
    /// # Errors
    /// I/O errors and [`crate::Error::UnsupportedVersion`].
    pub fn open(
        storage: &dyn Storage,
        segment: &SegmentMeta,
        next_start: Option<u64>,
        max_record_size: u32,
    ) -> Result<std::result::Result<Self, Damage>> {
        let file = storage
            .open_file(&segment.path, OpenMode::Read)
            .ctx("open", &segment.path)?;
        match read_header(file.as_ref(), segment)? {
            Ok(header) => Ok(Ok(Self::new(
                file,
                &segment.path,
                header,
                next_start,
                max_record_size,
            )?)),
            Err(problem) => {
                let file_len = file.len().ctx("stat", &segment.path)?;
                let class = if next_start.is_none() && file_len <= SEGMENT_HEADER_LEN {
                    DamageClass::Torn
                } else {
                    DamageClass::Corrupt
                };
                Ok(Err(Damage {
                    class,
                    path: segment.path.clone(),
                    offset: 0,
                    position: segment.start,
                    problem: Problem::SegmentHeader(problem),
                }))
            }
        }
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
            file_len,
            offset: SEGMENT_HEADER_LEN,
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

    fn position_of(&self, offset: u64) -> u64 {
        self.header.first_position + (offset - SEGMENT_HEADER_LEN)
    }

    /// Bytes `[offset, offset + len)` of the file; the caller ensures they exist.
    fn bytes_at(&mut self, offset: u64, len: usize) -> Result<&[u8]> {
        let in_window = offset >= self.window_start
            && offset + len as u64 <= self.window_start + self.window.len() as u64;
        if !in_window {
            let want = (len.max(WINDOW) as u64).min(self.file_len - offset) as usize;
            self.window.resize(want, 0);
            self.file
                .read_exact_at(&mut self.window, offset)
                .ctx("read", &self.path)?;
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
        if self.rest_is_zero(offset)? {
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
            let mut raw = [0u8; RECORD_HEADER_LEN];
            raw.copy_from_slice(self.bytes_at(at, RECORD_HEADER_LEN)?);
            let position = self.position_of(at);
            if let Ok(h) = RecordHeader::decode(&raw, self.header.segment_id, position) {
                let size = record_size(h.payload_len);
                let vouches = h
                    .durable_when_written(position)
                    .is_some_and(|d| d > damaged);
                if vouches && h.payload_len <= self.max_record_size && at + size <= self.file_len {
                    let payload =
                        self.bytes_at(at + RECORD_HEADER_LEN as u64, h.payload_len as usize)?;
                    if crc32c::crc32c(payload) == h.payload_crc {
                        tracing::debug!(path = %self.path.display(), damaged_offset = offset, valid_offset = at, "a later record shows the damaged record was durable");
                        return Ok(true);
                    }
                }
            }
            at += RECORD_ALIGN;
        }
        Ok(false)
    }
}
