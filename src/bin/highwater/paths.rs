//! Checking the directories given on the command line before reading them.
//!
//! The library reads a missing directory as empty (no checkpoints, an empty
//! log), which is right for a job starting fresh but wrong for an operator's
//! typo: `verify /typo` must not say "OK". So every path argument must name an
//! existing directory, and a log directory must hold at least one segment
//! file (a log the library opened always does).

use crate::bytes::show_path;
use crate::output::{Exit, Failure};
use highwater::wal::parse_segment_name;
use std::path::Path;

/// `dir` must be an existing directory.
pub fn checkpoint_dir(dir: &Path) -> Result<(), Failure> {
    if dir.is_dir() {
        return Ok(());
    }
    Err(Failure::message(
        format!("no checkpoint directory at {}", show_path(dir)),
        Exit::NotFound,
    ))
}

/// `dir` must be a directory holding at least one segment file.
pub fn wal_dir(dir: &Path) -> Result<(), Failure> {
    let has_segment = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            e.file_name()
                .to_str()
                .and_then(parse_segment_name)
                .is_some()
        })
    });
    if has_segment {
        return Ok(());
    }
    let why = if dir.is_dir() {
        "it holds no segment files"
    } else {
        "it is not a directory"
    };
    Err(Failure::message(
        format!("no write-ahead log at {}: {why}", show_path(dir)),
        Exit::NotFound,
    ))
}
