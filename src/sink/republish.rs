//! Making a published epoch durable again without retrying a failed fsync.
//!
//! A commit renames the staged file into place and fsyncs the directory. When
//! that fsync fails, the rename is still visible but may never reach the
//! device, and a later fsync of the directory can succeed without carrying it
//! (a failed fsync's changes are dropped; the error is reported once). So a
//! commit that finds its file already published (a retry, or a restart after
//! a crash) does not just fsync the directory: it makes both halves of the
//! lost rename again, as fresh changes, then fsyncs the directory once:
//! - the published name: a verified copy of the file, fsynced, renamed over
//!   it (readers see the published file at every moment: the rename replaces
//!   it atomically with the same bytes);
//! - the staged name, which the device may still hold: created empty and
//!   removed again, so its removal is a change made after the failure (an
//!   empty staged file left by an interrupted republish is just removed).
//!
//! The fsync that vouches for the entries then covers changes made after any
//! earlier failure.
//!
//! Invariants:
//! - The copy is written under a hidden name (`republish_file_name`) that
//!   readers and the staged-file scan ignore; a crash leaves it behind for
//!   `abort_epochs_after` to remove.
//! - Nothing is renamed unless the copy's length and CRC32C are the handle's.

use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage};
use std::path::Path;

/// The hidden name of a copy made to publish epoch `epoch` again.
pub(super) fn republish_file_name(epoch: u64) -> String {
    format!(".epoch-{epoch:020}.republish")
}

/// Whether `name` is a leftover copy of [`republish`].
pub(super) fn is_republish_file(name: &str) -> bool {
    name.starts_with(".epoch-") && name.ends_with(".republish")
}

/// What the published file must hold.
pub(super) struct Expected {
    pub len: u64,
    pub crc32c: u32,
}

/// The names one epoch's output has had (all in one directory).
pub(super) struct Names<'a> {
    /// The published file.
    pub published: &'a Path,
    /// Its staged name before the rename (absent now).
    pub staged: &'a Path,
    /// Where the copy is written.
    pub copy: &'a Path,
}

/// Publishes an epoch's file (in `dir`) again, as the module documentation
/// describes.
///
/// # Errors
/// `SinkTransactionInvalid` when the published file is not what the handle
/// names; I/O errors naming the file.
pub(super) fn republish(
    storage: &dyn Storage,
    dir: &Path,
    names: Names<'_>,
    epoch: u64,
    expected: Expected,
) -> Result<()> {
    let (published, temp) = (names.published, names.copy);
    let source = storage
        .open_file(published, OpenMode::Read)
        .ctx("open", published)?;
    let copy = storage
        .open_file(temp, OpenMode::Create)
        .ctx("create", temp)?;
    copy.truncate(0).ctx("truncate", temp)?;
    let mut buf = vec![0; 1 << 20];
    let (mut crc, mut offset) = (0u32, 0u64);
    loop {
        let n = source.read_at(&mut buf, offset).ctx("read", published)?;
        if n == 0 {
            break;
        }
        copy.write_all_at(&buf[..n], offset).ctx("write", temp)?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        offset += n as u64;
    }
    if offset != expected.len || crc != expected.crc32c {
        drop(copy);
        storage.remove_file(temp).ctx("remove", temp)?;
        return Err(Error::SinkTransactionInvalid {
            path: published.to_path_buf(),
            epoch,
            reason: format!(
                "published file holds {offset} bytes with CRC32C {crc:#010x}, the handle says {} bytes with {:#010x}",
                expected.len, expected.crc32c
            ),
        });
    }
    copy.sync_all().ctx("sync", temp)?;
    storage.rename(temp, published).ctx("rename", temp)?;
    // An empty staged file next to the published one is ours: an earlier
    // republish was interrupted between creating and removing it (its
    // removal now is the fresh change). A staged file with bytes is not ours
    // to remove: recovery's abort step judges it.
    let staged = names.staged;
    let exists = storage.exists(staged).ctx("stat", staged)?;
    if exists {
        let size = storage.file_size(staged).ctx("stat", staged)?;
        if size == 0 {
            storage.remove_file(staged).ctx("remove", staged)?;
        }
    } else {
        storage
            .open_file(staged, OpenMode::CreateNew)
            .ctx("create", staged)?;
        storage.remove_file(staged).ctx("remove", staged)?;
    }
    storage.sync_dir(dir).ctx("sync directory", dir)
}
