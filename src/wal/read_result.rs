//! [`WalReadResult`]: what a [`WalReader`](super::WalReader) read next.

use super::entry::WalEntry;
use super::scan::{Damage, DamageClass, Problem};
use std::path::PathBuf;

/// What [`WalReader::read_next`](super::WalReader::read_next) found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalReadResult {
    /// The next entry.
    Entry(WalEntry),
    /// The clean end of the log.
    Eof,
    /// The newest segment ends in an incomplete or garbled record with nothing
    /// valid after it: the trace of a crash. `position` is the end of the valid
    /// prefix; `reason` names the segment, the offset and what is wrong (the
    /// typed [`Damage`], with its [`Problem`]: [`WalReader::damage`](super::WalReader::damage)).
    TornWrite {
        /// Log position of the torn record.
        position: u64,
        /// What is wrong, where.
        reason: String,
    },
    /// A checksum did not match where a torn write is not possible (an older
    /// segment, or valid records follow).
    ChecksumMismatch {
        /// Log position of the damaged record.
        position: u64,
        /// The segment file.
        segment: PathBuf,
        /// Byte offset in that file.
        offset: u64,
        /// The checksum stored in the file.
        expected: u32,
        /// The checksum computed over the bytes read.
        actual: u32,
    },
    /// Damage that is neither a torn tail nor a checksum mismatch: a missing or
    /// misplaced segment, an oversized or undecodable record. `reason` names the
    /// segment file and the offset (the typed [`Damage`]:
    /// [`WalReader::damage`](super::WalReader::damage)).
    Corrupted {
        /// Log position of the damaged record.
        position: u64,
        /// What is wrong, where.
        reason: String,
    },
}

impl WalReadResult {
    pub(super) fn from_damage(d: &Damage) -> Self {
        match (d.class, &d.problem) {
            (DamageClass::Torn, _) => WalReadResult::TornWrite {
                position: d.position,
                reason: d.to_string(),
            },
            (
                DamageClass::Corrupt,
                Problem::HeaderChecksum { expected, actual }
                | Problem::PayloadChecksum { expected, actual }
                | Problem::SegmentHeader(super::format::HeaderProblem::Checksum { expected, actual }),
            ) => WalReadResult::ChecksumMismatch {
                position: d.position,
                segment: d.path.clone(),
                offset: d.offset,
                expected: *expected,
                actual: *actual,
            },
            (DamageClass::Corrupt, _) => WalReadResult::Corrupted {
                position: d.position,
                reason: d.to_string(),
            },
        }
    }
}
