//! The poison mark: what a poisoned log leaves for the next process that opens
//! it in the same boot.
//!
//! After a failed fsync (or write), Linux may have dropped the log's dirty
//! pages: they are never written, yet the page cache still serves them, and
//! reports the error only once. A new process that opened the log would read
//! those records, its first fsync would succeed without writing them, and the
//! records it appended after them would vouch for them; after a power loss the
//! log would have a hole. So the poisoned writer writes this small file with
//! the position up to which it knows the log is durable, and the next open
//! cuts the log back to it (truncating drops the stale pages) and removes the
//! mark, durably, before anything is appended.
//!
//! Invariants:
//! - The mark's position is at most the durable position of the process that
//!   wrote it, and nothing after it was acknowledged (the poison is set before
//!   any waiter is acknowledged), so the cut never removes an acknowledged
//!   record.
//! - The mark is only written, never fsynced: it matters while the page cache
//!   that holds the stale pages holds it too. After a reboot it may or may not
//!   be there; either way cutting at its position is safe (see above).
//! - The mark is removed, and the removal made durable, before the log that
//!   consumed it appends: a stale mark could otherwise cut records acknowledged
//!   later.
//! - A mark that does not verify (torn by a reboot) is ignored with a warning.
//! - The cut never goes below the log's first position (a floor raised since
//!   the mark was left released those records). Recovery reads a mark below
//!   the checkpoint's position as a log that ends there (released, continued
//!   at the position, so positions are never reused), and a read-only
//!   recovery replays nothing after a mark.
//! - A writer poisoned while an earlier mark is still unconsumed keeps the
//!   lower position.
//!
//! Layout: a position file (`position_file.rs`, 28 bytes) with magic
//! `HWPOISON`, version 1.

use crate::error::{IoContext, Result};
use crate::storage::{OpenMode, Storage};
use std::path::Path;

/// The mark's file name in the log directory.
pub const POISON_MARK_FILE_NAME: &str = "POISONED";
const MAGIC: [u8; 8] = *b"HWPOISON";
const VERSION: u32 = 1;
const LEN: usize = super::position_file::POSITION_FILE_LEN;

fn encode(position: u64) -> [u8; LEN] {
    super::position_file::encode(MAGIC, VERSION, position)
}

/// The position in `bytes`, or what is wrong with them.
fn decode(path: &Path, bytes: &[u8]) -> Result<u64> {
    super::position_file::decode(path, "poison mark", MAGIC, VERSION, bytes)
}

/// Leaves the mark in `dir` saying the log is durable up to `durable`. Best
/// effort: the log is already failing, so a failure is only logged.
///
/// A mark already there that verifies and asks for a lower position was not
/// consumed yet (this process poisoned while acting on it): the lower one is
/// kept, since this process's durable position may count records the device
/// dropped before the mark was written.
pub(super) fn leave(storage: &dyn Storage, dir: &Path, durable: u64) {
    let path = dir.join(POISON_MARK_FILE_NAME);
    let durable = match read(storage, dir) {
        Ok(Some(earlier)) => earlier.min(durable),
        _ => durable,
    };
    let written = storage.open_file(&path, OpenMode::Create).and_then(|file| {
        file.truncate(0)?;
        file.write_all_at(&encode(durable), 0)
    });
    match written {
        Ok(()) => {
            tracing::warn!(path = %path.display(), durable, "left a poison mark: the next open cuts the log back to the durable position")
        }
        Err(error) => {
            tracing::error!(path = %path.display(), durable, %error, "could not leave a poison mark: reboot (or drop the page cache of the log directory) before reopening the log")
        }
    }
}

/// The position a mark in `dir` asks the log to be cut back to; `None` when
/// there is no mark or it does not verify.
///
/// # Errors
/// I/O errors reading the mark.
pub(crate) fn read(storage: &dyn Storage, dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(POISON_MARK_FILE_NAME);
    if !storage.exists(&path).ctx("stat", &path)? {
        return Ok(None);
    }
    let file = storage
        .open_file(&path, OpenMode::Read)
        .ctx("open", &path)?;
    let len = file.len().ctx("stat", &path)?;
    let mut bytes = vec![0u8; len.min(LEN as u64 + 1) as usize];
    file.read_exact_at(&mut bytes, 0).ctx("read", &path)?;
    match decode(&path, &bytes) {
        Ok(position) => Ok(Some(position)),
        Err(problem) => {
            tracing::warn!(path = %path.display(), %problem, "ignoring a poison mark that does not verify");
            Ok(None)
        }
    }
}

/// Removes the mark in `dir`, durably.
///
/// # Errors
/// I/O errors of the removal or of the directory fsync.
pub(super) fn clear(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let path = dir.join(POISON_MARK_FILE_NAME);
    storage.remove_file(&path).ctx("remove", &path)?;
    storage.sync_dir(dir).ctx("sync directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_round_trips_and_every_flipped_byte_is_refused() {
        let path = Path::new("POISONED");
        let bytes = encode(1234);
        assert_eq!(decode(path, &bytes).ok(), Some(1234));
        for i in 0..LEN {
            let mut damaged = bytes;
            damaged[i] ^= 0x10;
            assert!(decode(path, &damaged).is_err(), "byte {i}");
        }
        assert!(decode(path, &bytes[..LEN - 1]).is_err());
    }
}
