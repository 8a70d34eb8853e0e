//! What is wrong where in a log: [`Damage`] (the segment file, offset and
//! position), its [`DamageClass`] (torn tail or corruption) and the exact
//! [`Problem`], with the typed error each becomes.
//!
//! [`Problem`] is the log's typed problem: the scanner finds it, and
//! [`Error::WalCorrupted`](crate::Error::WalCorrupted),
//! [`RepairReport`](super::RepairReport),
//! [`WalReader::damage`](super::WalReader::damage) and the recovery report
//! carry it as is; its `Display` is the message.

use super::entry::DecodeError;
use super::format::HeaderProblem;
use std::path::PathBuf;

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
    Undecodable(DecodeError),
    /// The segment header does not verify.
    SegmentHeader(HeaderProblem),
    /// A position file of the log (`file`: "floor file", "poison mark") has
    /// the wrong length.
    FileLength {
        /// Which file.
        file: &'static str,
        /// Its length.
        len: u64,
        /// The length it must have.
        expected: u64,
    },
    /// A position file of the log has the wrong magic number.
    FileMagic {
        /// Which file.
        file: &'static str,
    },
    /// A position file's reserved bytes are not zero.
    FileReserved {
        /// Which file.
        file: &'static str,
    },
    /// A position file holds a position above the largest a log can reach.
    FilePosition {
        /// Which file.
        file: &'static str,
        /// The position it holds.
        position: u64,
    },
    /// A transaction read a second time (it was larger than the replay
    /// buffer) ended before its Commit: the log changed under the reader.
    RereadEnded,
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
            Problem::FileLength {
                file,
                len,
                expected,
            } => write!(f, "{file}: {len} bytes, expected {expected}"),
            Problem::FileMagic { file } => write!(f, "{file}: bad magic"),
            Problem::FileReserved { file } => {
                write!(f, "{file}: reserved bytes are not zero")
            }
            Problem::FilePosition { file, position } => {
                write!(f, "{file}: position {position} above 2^62")
            }
            Problem::RereadEnded => {
                write!(f, "the log ended while a transaction was read again")
            }
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

/// "`problem` in `path` at offset `offset`": the `reason` of
/// [`WalReadResult::TornWrite`](super::WalReadResult::TornWrite) and
/// [`WalReadResult::Corrupted`](super::WalReadResult::Corrupted).
impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {} at offset {}",
            self.problem,
            self.path.display(),
            self.offset
        )
    }
}

impl Damage {
    /// The typed error for this damage.
    pub fn to_error(&self) -> crate::Error {
        match self.problem {
            Problem::HeaderChecksum { expected, actual }
            | Problem::PayloadChecksum { expected, actual }
            | Problem::SegmentHeader(HeaderProblem::Checksum { expected, actual }) => {
                crate::Error::WalChecksumMismatch {
                    region: match self.problem {
                        Problem::HeaderChecksum { .. } => "record header",
                        Problem::PayloadChecksum { .. } => "payload",
                        _ => "segment header",
                    },
                    path: self.path.clone(),
                    offset: self.offset,
                    position: self.position,
                    expected,
                    actual,
                }
            }
            // The header verified, so the length is what the writer wrote: a
            // reader configured with a smaller limit, not damage.
            Problem::TooLarge { len, max } => crate::Error::RecordExceedsMaxSize {
                path: self.path.clone(),
                offset: self.offset,
                position: self.position,
                len,
                max,
            },
            _ => wal_corrupted(
                self.path.clone(),
                self.offset,
                self.position,
                self.class,
                self.problem.clone(),
            ),
        }
    }
}

/// The one way to build [`Error::WalCorrupted`](crate::Error::WalCorrupted):
/// its `reason` is made from `class` and `problem` here.
pub(crate) fn wal_corrupted(
    path: PathBuf,
    offset: u64,
    position: u64,
    class: DamageClass,
    problem: Problem,
) -> crate::Error {
    let reason = match class {
        DamageClass::Torn => format!("torn tail: {problem}"),
        DamageClass::Corrupt => problem.to_string(),
    };
    crate::Error::WalCorrupted {
        path,
        offset,
        position,
        class,
        problem,
        reason,
    }
}
