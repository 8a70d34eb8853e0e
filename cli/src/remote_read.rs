//! `verify URL`, `checkpoints show URL ID` and the state commands on a remote
//! location: its committed checkpoints are mirrored into a temporary
//! directory (verified as they download) and the local code reads the
//! mirror. What could not be mirrored is reported from the commit records:
//! as damage by `verify` and `show`, as an error by the state commands.
//!
//! Invariants:
//! - Paths in the reports are the location's (the record's URL), never the
//!   temporary mirror's, which is gone when the command ends.
//! - A state command answers from the newest checkpoint that mirrored unless
//!   `--checkpoint` names one; every newer committed checkpoint it skips is
//!   named on stderr, as for a local directory.

use crate::args::StateSource;
use crate::checkpoints::{CheckpointDetail, CheckpointTable};
use crate::output::{Exit, Failure, Outcome, Problem};
use crate::remote::{self, Mirror, Remote};
use highwater::inspect::CommittedCheckpoint;
use highwater::RejectedCheckpoint;
use std::path::Path;

/// Whether `r`'s error is in `c`'s own objects or record (else in its parent
/// chain). An error naming no object is counted as its own.
fn own_damage(c: &CommittedCheckpoint, r: &RejectedCheckpoint) -> bool {
    match r.error.path() {
        Some(p) => {
            p == r.path.as_path() || c.files.iter().any(|(_, key)| Path::new(key.as_str()) == p)
        }
        None => true,
    }
}

/// A rejection's problem, its object named by URL.
fn problem(remote: &Remote, r: &RejectedCheckpoint) -> Problem {
    let mut p = Problem::of(&r.error);
    p.file = r.error.path().map(|path| remote.key_url(path));
    p
}

/// `verify URL [--wal WAL]`: every committed checkpoint must mirror (its
/// objects download and verify) and verify in the mirror.
pub fn verify(
    location: &str,
    wal: Option<&Path>,
    max_record_size: u32,
    progress: bool,
) -> Result<Outcome, Failure> {
    let remote = Remote::open(location)?;
    let mirror = remote.mirror()?;
    let mut table = CheckpointTable::read(&mirror.dir, progress)?;
    table.relocate(&remote.location, |id| remote.record_url(id));
    for r in &mirror.restore.rejected {
        let committed = (r.id != 0).then(|| remote.committed(r.id)).flatten();
        table.add_rejected(
            remote.key_url(&r.path),
            committed.map(|c| &c.metadata),
            committed.is_none_or(|c| own_damage(c, r)),
            problem(&remote, r),
        );
    }
    crate::verify::finish(table, &mirror.dir, wal, max_record_size, progress)
}

/// `checkpoints show URL ID`.
pub fn show(location: &str, id: u64) -> Result<Outcome, Failure> {
    let remote = Remote::open(location)?;
    let mirror = remote.mirror()?;
    if let (Some(r), Some(c)) = (mirror.rejection(id), remote.committed(id)) {
        let detail = CheckpointDetail::rejected(
            remote.key_url(&r.path),
            c.metadata.clone(),
            own_damage(c, r),
            problem(&remote, r),
        );
        return Ok(detail.outcome());
    }
    let Some(url) = remote.record_url(id) else {
        return Err(not_found(&remote, id));
    };
    let mut detail = CheckpointDetail::read(&mirror.dir, id)?;
    detail.set_path(url);
    Ok(detail.outcome())
}

fn not_found(remote: &Remote, id: u64) -> Failure {
    highwater::Error::CheckpointNotFound {
        dir: remote.location.clone().into(),
        id,
    }
    .into()
}

/// Runs `f` on `source`, or, when its directory is a remote location, on a
/// mirror of it with the checkpoint pinned (module docs).
///
/// # Errors
/// `f`'s; for a remote location also: the checkpoint asked for is not
/// committed (exit 3) or could not be mirrored (its error: exit 1 for
/// damage), or none could (exit 3).
pub fn with_source<T>(
    source: &StateSource,
    f: impl FnOnce(&StateSource) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let Some(location) = remote::location(&source.dir) else {
        return f(source);
    };
    let remote = Remote::open(location)?;
    let mirror = remote.mirror()?;
    let checkpoint = pinned(&remote, &mirror, source.checkpoint)?;
    f(&StateSource {
        dir: mirror.dir.clone(),
        checkpoint: Some(checkpoint),
        part: source.part.clone(),
    })
}

/// The checkpoint a state command reads from the mirror.
fn pinned(remote: &Remote, mirror: &Mirror, asked: Option<u64>) -> Result<u64, Failure> {
    if let Some(id) = asked {
        if let Some(r) = mirror.rejection(id) {
            let mut failure = Failure::of(&r.error);
            failure.file = r.error.path().map(|p| remote.key_url(p));
            return Err(failure);
        }
        if remote.committed(id).is_none() {
            return Err(not_found(remote, id));
        }
        return Ok(id);
    }
    let Some(id) = mirror.restore.restored else {
        return Err(Failure::message(
            format!("no restorable checkpoint in {}", remote.location),
            Exit::NotFound,
        ));
    };
    // Never answer from an older checkpoint silently.
    for skipped in mirror.restore.rejected.iter().filter(|r| r.id > id) {
        eprintln!(
            "highwater: note: answering from checkpoint {id} (the newest restorable); skipped newer checkpoint {}: {}",
            skipped.id,
            crate::bytes::sanitize(&skipped.reason)
        );
    }
    Ok(id)
}
