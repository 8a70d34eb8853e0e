//! Checking the directories given on the command line before reading them.
//!
//! The library reads a missing directory as empty (no checkpoints, an empty
//! log), which is right for a job starting fresh but wrong for an operator's
//! typo: `verify /typo` must not say "OK". So every path argument must name an
//! existing directory, and a log directory must hold at least one segment
//! file (a log the library opened always does).

use crate::bytes::show_path;
use crate::output::{Exit, Failure};
use highwater::inspect::parse_segment_name;
use std::path::Path;

/// `dir` must be an existing directory (a job's checkpoint directory that may
/// hold no checkpoint yet: `recover`, `wal repair --checkpoints`).
pub fn existing_dir(dir: &Path) -> Result<(), Failure> {
    if dir.is_dir() {
        return Ok(());
    }
    Err(Failure::message(
        format!("no checkpoint directory at {}", show_path(dir)),
        Exit::NotFound,
    ))
}

/// Whether `dir` looks like a checkpoint directory: it holds a checkpoint
/// (or the leftover of one) or a manager's lock file.
fn holds_checkpoints(dir: &Path) -> bool {
    let names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    // A file sink's directory has a `.lock` too: its epoch files tell it apart.
    let sink = names
        .iter()
        .any(|n| n.starts_with("epoch-") || n.starts_with(".epoch-"));
    !sink
        && names
            .iter()
            .any(|n| n.starts_with("checkpoint-") || n == highwater::inspect::LOCK_FILE)
}

/// `dir` must be an existing checkpoint directory: one that holds a
/// checkpoint or a manager's lock file. An empty directory or a job's root is
/// refused (naming the subdirectory that is one, if any), so that a wrong
/// path is never reported as "OK".
pub fn checkpoint_dir(dir: &Path) -> Result<(), Failure> {
    if !dir.is_dir() {
        return Err(Failure::message(
            format!("no checkpoint directory at {}", show_path(dir)),
            Exit::NotFound,
        ));
    }
    if holds_checkpoints(dir) {
        return Ok(());
    }
    let inside: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir() && holds_checkpoints(p))
                .map(|p| show_path(&p))
                .collect()
        })
        .unwrap_or_default();
    let hint = match inside.as_slice() {
        [] => "it holds no checkpoints".to_string(),
        found => format!(
            "it holds no checkpoints; did you mean {}?",
            found.join(" or ")
        ),
    };
    Err(Failure::message(
        format!("{} is not a checkpoint directory: {hint}", show_path(dir)),
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
