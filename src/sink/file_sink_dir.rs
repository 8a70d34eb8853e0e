//! The contents of a [`FileSink`](super::FileSink) directory: the file names
//! of published and staged epochs, and a read-only listing of them (what
//! `highwater sink ls` shows, and what the sink's recovery decides on).
//!
//! Invariant: every name this module parses maps back to exactly one epoch and
//! one state (published or staged): 20 decimal digits, nothing else.

use super::republish::is_republish_file;
use crate::error::IoContext;
use crate::error::Result;
use crate::storage::{default_storage, Storage};
use std::path::Path;

/// The file name of epoch `epoch`'s published output.
pub fn committed_file_name(epoch: u64) -> String {
    format!("epoch-{epoch:020}.out")
}

pub(super) fn staged_file_name(epoch: u64) -> String {
    format!(".epoch-{epoch:020}.staged")
}

/// The epoch of a published (`false`) or staged (`true`) file name.
fn parse_name(name: &str) -> Option<(u64, bool)> {
    let (digits, staged) = if let Some(rest) = name.strip_prefix(".epoch-") {
        (rest.strip_suffix(".staged")?, true)
    } else {
        (name.strip_prefix("epoch-")?.strip_suffix(".out")?, false)
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, staged))
}

/// Published and staged epochs in a sink directory, sorted.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub committed: Vec<u64>,
    pub staged: Vec<u64>,
    /// Copies an interrupted republish left behind.
    pub leftovers: Vec<String>,
}

/// Lists `dir` (reading only).
///
/// # Errors
/// `Io` when the directory cannot be listed.
pub(super) fn scan(storage: &dyn Storage, dir: &Path) -> Result<Scan> {
    let entries = storage.list_dir(dir).ctx("list", dir)?;
    let mut scan = Scan::default();
    for entry in entries.iter().filter(|e| !e.is_dir) {
        match parse_name(&entry.name) {
            Some((epoch, true)) => scan.staged.push(epoch),
            Some((epoch, false)) => scan.committed.push(epoch),
            None if is_republish_file(&entry.name) => scan.leftovers.push(entry.name.clone()),
            None => {}
        }
    }
    scan.staged.sort_unstable();
    scan.committed.sort_unstable();
    Ok(scan)
}

/// One epoch's file in a sink directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkEpochFile {
    /// The epoch.
    pub epoch: u64,
    /// Its file.
    pub path: std::path::PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a [`FileSink`](super::FileSink) directory holds, read without its lock
/// ([`FileSink::contents`](super::FileSink::contents)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileSinkContents {
    /// Published epochs (`epoch-<E>.out`), in epoch order.
    pub published: Vec<SinkEpochFile>,
    /// Staged epochs (`.epoch-<E>.staged`): output not published (yet), in
    /// epoch order.
    pub staged: Vec<SinkEpochFile>,
}

/// [`FileSink::contents`](super::FileSink::contents).
pub(super) fn contents(dir: &Path) -> Result<FileSinkContents> {
    let storage = default_storage();
    let found = scan(storage.as_ref(), dir)?;
    let file = |epoch: u64, name: String| -> Result<SinkEpochFile> {
        let path = dir.join(name);
        let bytes = storage.file_size(&path).ctx("stat", &path)?;
        Ok(SinkEpochFile { epoch, path, bytes })
    };
    Ok(FileSinkContents {
        published: found
            .committed
            .iter()
            .map(|&e| file(e, committed_file_name(e)))
            .collect::<Result<_>>()?,
        staged: found
            .staged
            .iter()
            .map(|&e| file(e, staged_file_name(e)))
            .collect::<Result<_>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        assert_eq!(parse_name(&committed_file_name(7)), Some((7, false)));
        assert_eq!(
            parse_name(&staged_file_name(u64::MAX)),
            Some((u64::MAX, true))
        );
        for bad in [
            "epoch-7.out",
            ".epoch-0000000000000000000x.staged",
            "x",
            ".lock",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
