//! The one layout of the log directory's small position files — the floor
//! (`FLOOR`) and the poison mark (`POISONED`): 28 bytes, little-endian.
//!
//! ```text
//! 0        8         12         16         24        28
//! | magic  | version | reserved | position | CRC32C  |
//! | 8 B    | u32     | u32 = 0  | u64      | of 0..24|
//! ```
//!
//! Invariant: nothing but the magic is trusted before the checksum verifies,
//! and a position above 2^62 (no log reaches it) is refused.

use super::damage::{wal_corrupted, DamageClass, Problem};
use super::format::{le_u32, le_u64, MAX_POSITION};
use crate::error::{Error, Result};
use std::path::Path;

/// Length of a position file.
pub const POSITION_FILE_LEN: usize = 28;

/// The bytes of a position file of kind `magic`, version `version`.
pub(super) fn encode(magic: [u8; 8], version: u32, position: u64) -> [u8; POSITION_FILE_LEN] {
    let mut b = [0u8; POSITION_FILE_LEN];
    b[0..8].copy_from_slice(&magic);
    b[8..12].copy_from_slice(&version.to_le_bytes());
    // 12..16 reserved, zero.
    b[16..24].copy_from_slice(&position.to_le_bytes());
    let crc = crc32c::crc32c(&b[0..24]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The position in `b`, a position file of kind `magic` (`what` names it in
/// errors) read from `path`.
///
/// # Errors
/// [`Error::WalCorrupted`] naming `path` and the offset of the bad field for a
/// wrong length, magic, reserved bytes or position;
/// [`Error::WalChecksumMismatch`]; [`Error::UnsupportedVersion`] for a
/// verified file of another version.
pub(super) fn decode(
    path: &Path,
    what: &'static str,
    magic: [u8; 8],
    version: u32,
    b: &[u8],
) -> Result<u64> {
    let bad = |offset: u64, problem: Problem| {
        wal_corrupted(path.to_path_buf(), offset, 0, DamageClass::Corrupt, problem)
    };
    if b.len() != POSITION_FILE_LEN {
        return Err(bad(
            0,
            Problem::FileLength {
                file: what,
                len: b.len() as u64,
                expected: POSITION_FILE_LEN as u64,
            },
        ));
    }
    if b[0..8] != magic {
        return Err(bad(0, Problem::FileMagic { file: what }));
    }
    let stored = le_u32(&b[24..28]);
    let actual = crc32c::crc32c(&b[0..24]);
    if stored != actual {
        return Err(Error::WalChecksumMismatch {
            region: what,
            path: path.to_path_buf(),
            offset: 24,
            position: 0,
            expected: stored,
            actual,
        });
    }
    let found = le_u32(&b[8..12]);
    if found != version {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            supported: version,
        });
    }
    if le_u32(&b[12..16]) != 0 {
        return Err(bad(12, Problem::FileReserved { file: what }));
    }
    let position = le_u64(&b[16..24]);
    if position > MAX_POSITION {
        return Err(bad(
            16,
            Problem::FilePosition {
                file: what,
                position,
            },
        ));
    }
    Ok(position)
}
