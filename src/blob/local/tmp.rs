//! The temporary files of a [`LocalBlobStore`](super::LocalBlobStore): their
//! names, and the collection of those a crashed process left behind.
//!
//! Invariants:
//! - a temporary name is `<pid>-<nanos since the epoch>-<counter>`: unique
//!   among the processes sharing the directory, and recognisable, so a
//!   collection removes only files of this format;
//! - a collection removes a file only when its mtime is before the time it
//!   is given: a write in progress renews its mtime with every write, so it
//!   survives any grace period longer than its pauses.

use crate::blob::{BlobError, BlobOp, BlobResult};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh temporary file name; `n` is the store's counter.
pub(super) fn name(n: u64) -> String {
    let nanos = UNIX_EPOCH.elapsed().map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{nanos}-{n}", std::process::id())
}

/// True when `name` is of [`name`]'s format.
fn is_temp_name(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let fields: Vec<&str> = name.split('-').collect();
    fields.len() == 3
        && fields
            .iter()
            .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the temporary files in `dir` last modified before `older_than`;
/// returns how many.
///
/// # Errors
/// [`BlobError::Io`] (operation `Abort`, key `.tmp`) naming the directory if
/// it cannot be read, or the first file that could not be examined or
/// removed; the other files are still removed.
pub(super) fn remove_older_than(dir: &Path, older_than: SystemTime) -> BlobResult<u64> {
    let io_err = |path: &Path, e: io::Error| BlobError::io(BlobOp::Abort, ".tmp", path, e);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut removed = 0;
    let mut first_error = None;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if !is_temp_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let old = match entry.metadata() {
            Ok(m) => m.is_file() && m.modified().is_ok_and(|t| t < older_than),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                first_error.get_or_insert(io_err(&path, e));
                false
            }
        };
        if !old {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            // Its writer finished (or another collection won) meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                first_error.get_or_insert(io_err(&path, e));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_the_format_are_temporary() {
        assert!(is_temp_name(OsStr::new(&name(7))));
        for other in ["notes.txt", "1-2", "1-2-3-4", "1--3", "a-2-3", ".tmp"] {
            assert!(!is_temp_name(OsStr::new(other)), "{other}");
        }
    }

    #[test]
    fn old_temporary_files_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(name(1));
        let young = dir.path().join(name(2));
        let foreign = dir.path().join("keep-me");
        for p in [&old, &young, &foreign] {
            fs::write(p, b"x").unwrap();
        }
        let cutoff = SystemTime::now() + std::time::Duration::from_secs(3600);
        let an_hour_ago = SystemTime::now() - std::time::Duration::from_secs(7200);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        fs::File::options()
            .write(true)
            .open(&foreign)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        // Before the epoch nothing is older.
        assert_eq!(remove_older_than(dir.path(), UNIX_EPOCH).unwrap(), 0);
        let middle = SystemTime::now() - std::time::Duration::from_secs(3600);
        assert_eq!(remove_older_than(dir.path(), middle).unwrap(), 1);
        assert!(!old.exists() && young.exists() && foreign.exists());
        assert_eq!(remove_older_than(dir.path(), cutoff).unwrap(), 1);
        assert!(!young.exists() && foreign.exists());
        assert_eq!(
            remove_older_than(&dir.path().join("missing"), cutoff).unwrap(),
            0
        );
    }
}
