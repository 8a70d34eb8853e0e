//! Verifying every checkpoint of a directory at once, for operators and tools.
//!
//! [`CheckpointStore::verify_all`] reads every byte of every checkpoint once,
//! lists *every* problem of each (not only the first), and then decides which
//! checkpoints are restorable from those results, chains included, without
//! reading anything twice. Its answer to "which one would recovery use" is the
//! newest restorable checkpoint, the same rule as
//! [`CheckpointStore::find_latest`]. It only reads.

use super::store::{Check, CheckpointStore, Memo};
use super::IncrementalCheckpointMetadata;
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// What verifying one checkpoint found.
#[derive(Debug)]
#[non_exhaustive]
pub struct CheckpointVerification {
    /// Its id.
    pub id: u64,
    /// Its directory.
    pub path: PathBuf,
    /// Its metadata, when that reads and verifies.
    pub metadata: Option<IncrementalCheckpointMetadata>,
    /// Every problem found in its own files: the metadata's, or each damaged
    /// part file's, each a typed error naming the file (and the offset, when
    /// the damage has one).
    pub problems: Vec<Error>,
    /// Why it cannot be restored — its own problems, or its parent chain's —
    /// or `None` when it can.
    pub unrestorable: Option<String>,
}

impl CheckpointVerification {
    /// True when this checkpoint and its whole chain verify.
    pub fn is_restorable(&self) -> bool {
        self.unrestorable.is_none()
    }
}

impl CheckpointStore {
    /// Verifies every checkpoint in the directory: metadata, size, CRC32C and
    /// structure of every part file, and then each checkpoint's chain. Ascending
    /// by id. `on_progress` is called after each file with the bytes of part
    /// files read so far.
    ///
    /// The checkpoint recovery would use is the last restorable one in the
    /// result.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed; problems with a checkpoint are
    /// reported in its [`CheckpointVerification`].
    pub fn verify_all(
        &self,
        on_progress: &mut dyn FnMut(u64),
    ) -> Result<Vec<CheckpointVerification>> {
        let mut memo = Memo::new();
        let mut out = Vec::new();
        let mut done = 0;
        for id in self.checkpoint_ids()? {
            let path = self.checkpoint_path(id);
            let mut check = CheckpointVerification {
                id,
                path: path.clone(),
                metadata: None,
                problems: Vec::new(),
                unrestorable: None,
            };
            match self.read_metadata(id) {
                Ok(meta) => {
                    for part in &meta.parts {
                        if let Err(e) = self.verify_part(&path, part) {
                            check.problems.push(e);
                        }
                        done = u64::saturating_add(done, part.size);
                        on_progress(done);
                    }
                    check.metadata = Some(meta);
                }
                Err(e) => check.problems.push(e),
            }
            // Only what verified goes in the memo: a checkpoint with problems
            // has its own first problem as its reason, and a delta on it
            // checks it again to name that problem typed.
            if let (Some(meta), true) = (&check.metadata, check.problems.is_empty()) {
                memo.insert(id, Ok(Arc::new(meta.clone())));
            }
            out.push(check);
        }
        for check in &mut out {
            check.unrestorable = match check.problems.first() {
                Some(first) => Some(first.to_string()),
                None => self
                    .check_chain(check.id, Check::Full, &mut memo)
                    .err()
                    .map(|error| error.to_string()),
            };
        }
        Ok(out)
    }

    /// Directories of checkpoints whose writing never finished (a crash during
    /// a checkpoint). They are never read; the checkpoint manager removes them.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn incomplete_dirs(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .scan()?
            .1
            .into_iter()
            .map(|name| self.dir().join(name))
            .collect())
    }
}
