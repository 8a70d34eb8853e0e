//! `checkpoints delete DIR ID [--dry-run]`: deletes one checkpoint the way
//! the job's manager would (`IncrementalCheckpointManager::delete_checkpoint`,
//! under the directory's lock), after saying what recovery would use instead.

use crate::output::{Exit, Failure, Human, Outcome};
use highwater::{CheckpointConfig, Error, IncrementalCheckpointManager};
use serde::Serialize;
use std::io::{self, Write};
use std::path::Path;

/// What `checkpoints delete` did, or would do.
#[derive(Debug, Serialize)]
struct Deletion {
    dry_run: bool,
    id: u64,
    path: String,
    deleted: bool,
    /// The checkpoint recovery uses now, and would use after the deletion.
    recovery_uses_before: Option<u64>,
    recovery_uses_after: Option<u64>,
}

/// `checkpoints delete DIR ID [--dry-run]`.
pub fn run(dir: &Path, id: u64, dry_run: bool, force: bool) -> Result<Outcome, Failure> {
    let store = crate::keys::store(dir);
    let all = store.list_checkpoints()?;
    if !store.checkpoint_path(id).exists() {
        return Err(Error::CheckpointNotFound {
            dir: dir.to_path_buf(),
            id,
        }
        .into());
    }
    let dependents: Vec<u64> = all
        .iter()
        .filter(|m| m.parent_id == Some(id))
        .map(|m| m.id)
        .collect();
    if !dependents.is_empty() {
        return Err(Error::CheckpointHasDependents { id, dependents }.into());
    }
    let before = store.find_latest()?.metadata.map(|m| m.id);
    // After the deletion: the newest restorable checkpoint other than `id`
    // (one whose chain does not pass through `id`; none does, see above).
    let after = if before == Some(id) {
        store
            .verify_all(&mut |_| {})?
            .into_iter()
            .rev()
            .find(|v| v.id != id && v.is_restorable())
            .map(|v| v.id)
    } else {
        before
    };
    if !dry_run && before == Some(id) && !force {
        return Err(Failure::message(
            format!(
                "checkpoint {id} is the one recovery uses now; deleting it makes the job restore {} — check that with `highwater verify {} --wal WAL` and `highwater recover {} WAL --dry-run --sink OUT` first, then add --force",
                after.map_or("no checkpoint".to_string(), |a| format!("checkpoint {a}")),
                dir.display(),
                dir.display()
            ),
            Exit::Failed,
        ));
    }
    if !dry_run {
        let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir))?;
        manager.delete_checkpoint(id)?;
    }
    Ok(Outcome::new(
        Deletion {
            dry_run,
            id,
            path: store.checkpoint_path(id).display().to_string(),
            deleted: !dry_run,
            recovery_uses_before: before,
            recovery_uses_after: after,
        },
        Exit::Ok,
    ))
}

impl Human for Deletion {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        writeln!(out, "{verb} checkpoint {} ({})", self.id, self.path)?;
        let uses = |c: Option<u64>| {
            c.map_or("no checkpoint (the log from its start)".to_string(), |c| {
                format!("checkpoint {c}")
            })
        };
        writeln!(
            out,
            "recovery uses {} now; {} {} after",
            uses(self.recovery_uses_before),
            if self.dry_run { "would use" } else { "uses" },
            uses(self.recovery_uses_after)
        )
    }
}
