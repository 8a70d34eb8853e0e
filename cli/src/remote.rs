//! Remote checkpoint locations (`s3://bucket/prefix`, `gs://…`, `az://…`,
//! `file:///path`): telling them from checkpoint directories, opening them,
//! and mirroring their committed checkpoints into a temporary directory that
//! the local commands then read (docs/CLI.md, "Remote locations").
//!
//! Invariants:
//! - An argument is a remote location exactly when it starts with a URL
//!   scheme and `://`; every other argument is a local checkpoint directory,
//!   read as before. Unknown schemes go to the library, which names them.
//! - Nothing here writes to a location: the sequence is only listed and read
//!   (no generation is claimed, no writer fenced). A `file://` location must
//!   already be a directory (the blob store would create it).
//! - A location with no commit record and no floor is refused as not found,
//!   as an empty directory is: a typo must never verify as "OK".
//! - A mirror lives in a temporary directory removed when it is dropped, and
//!   holds only committed checkpoints that downloaded and verified; what
//!   could not be mirrored is in its `rejected`.

use crate::bytes::sanitize;
use crate::output::{Exit, Failure};
use highwater::inspect::{mirror_committed, read_commit_sequence, CommitSequence, SlotRecord};
use highwater::{RemoteConfig, RemoteRestore};
use std::path::{Path, PathBuf};

/// The location string when `arg` is a remote location (`scheme://…`).
pub fn location(arg: &Path) -> Option<&str> {
    let text = arg.to_str()?;
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_valid = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (starts_with_letter && rest_valid).then_some(text)
}

/// A location whose commit sequence was read.
pub struct Remote {
    /// The location as given.
    pub location: String,
    /// Its store and transfer settings.
    pub config: RemoteConfig,
    /// Its floor and every record at or above it.
    pub sequence: CommitSequence,
}

impl Remote {
    /// Opens `location` and reads its commit sequence.
    ///
    /// # Errors
    /// Not found (exit 3) for a `file://` location that is no directory or a
    /// location that holds no commit record; the library's errors otherwise
    /// (a cloud URL in a build without the `object-store` feature names it).
    pub fn open(location: &str) -> Result<Self, Failure> {
        if let Some(path) = location.strip_prefix("file://") {
            if path.starts_with('/') && !Path::new(path).is_dir() {
                return Err(Failure::message(
                    format!(
                        "no remote checkpoint location at {location}: {path} is not a directory"
                    ),
                    Exit::NotFound,
                ));
            }
        }
        let config = RemoteConfig::open(location).map_err(open_failure)?;
        let sequence = read_commit_sequence(&config)?;
        if sequence.floor == 0 && sequence.commits.is_empty() {
            return Err(Failure::message(
                format!(
                    "{location} is not a remote checkpoint location: it holds no commit records"
                ),
                Exit::NotFound,
            ));
        }
        Ok(Remote {
            location: location.to_string(),
            config,
            sequence,
        })
    }

    /// The location's key `key` as one string (`s3://bucket/job/commits/…`).
    pub fn key_url(&self, key: &Path) -> String {
        format!("{}/{}", self.location.trim_end_matches('/'), key.display())
    }

    /// The URL of the record committing checkpoint `id`, if one does.
    pub fn record_url(&self, id: u64) -> Option<String> {
        let slot = self.committed(id)?.slot;
        Some(self.key_url(&record_key(slot)))
    }

    /// The record committing checkpoint `id`, if one does (the newest, should
    /// several).
    pub fn committed(&self, id: u64) -> Option<&highwater::inspect::CommittedCheckpoint> {
        self.sequence
            .commits
            .iter()
            .rev()
            .find_map(|c| match &c.record {
                Ok(SlotRecord::Checkpoint(cp)) if cp.metadata.id == id => Some(cp.as_ref()),
                _ => None,
            })
    }

    /// Mirrors every restorable committed checkpoint into a fresh temporary
    /// directory, and says on stderr how much it downloaded.
    ///
    /// # Errors
    /// The store's errors that are not damage; local I/O errors.
    pub fn mirror(&self) -> Result<Mirror, Failure> {
        let tmp = tempfile::Builder::new()
            .prefix("highwater-mirror-")
            .tempdir()
            .map_err(|e| {
                Failure::message(
                    format!("creating a temporary directory for the mirror: {e}"),
                    Exit::Failed,
                )
            })?;
        let dir = tmp.path().join("checkpoints");
        let restore = mirror_committed(&self.config, &dir)?;
        eprintln!(
            "highwater: mirrored {} committed checkpoints of {}: downloaded {} bytes in {} requests",
            restore.downloaded.len(),
            sanitize(&self.location),
            restore.bytes_downloaded,
            restore.requests
        );
        Ok(Mirror {
            _tmp: tmp,
            dir,
            restore,
        })
    }
}

/// Why a location does not open; in a build without the `object-store`
/// feature, a cloud URL's error says how to build one with it.
fn open_failure(e: highwater::Error) -> Failure {
    let unsupported = matches!(
        &e,
        highwater::Error::Blob(highwater::blob::BlobError::Unsupported { .. })
    );
    let mut failure = Failure::of(&e);
    if unsupported && cfg!(not(feature = "object-store")) {
        failure.error.push_str(
            " (this highwater CLI was built without it: install it with \
             `cargo install highwater-cli --features object-store`)",
        );
    }
    failure
}

/// The key of the commit record in `slot` (docs/OBJECT_STORAGE.md, "Key
/// layout").
pub fn record_key(slot: u64) -> PathBuf {
    PathBuf::from(format!("commits/{slot:020}"))
}

/// A location's committed checkpoints in a temporary checkpoint directory.
pub struct Mirror {
    _tmp: tempfile::TempDir,
    /// The checkpoint directory the local commands read.
    pub dir: PathBuf,
    /// What the mirror downloaded and what it could not restore.
    pub restore: RemoteRestore,
}

impl Mirror {
    /// Why checkpoint `id` could not be mirrored, when it could not.
    pub fn rejection(&self, id: u64) -> Option<&highwater::RejectedCheckpoint> {
        self.restore.rejected.iter().find(|r| r.id == id && id != 0)
    }
}

/// A location where a command takes only a checkpoint directory: refused
/// (exit 2), naming the commands that do take one.
pub fn refused(command: &str, location: &str) -> Failure {
    Failure::message(
        format!(
            "`{command}` needs a local checkpoint directory, not the remote location {}; \
             remote locations are read by `checkpoints ls`, `checkpoints show`, `verify`, \
             `state get`, `state dump` and `export state`",
            sanitize(location)
        ),
        Exit::Usage,
    )
}
