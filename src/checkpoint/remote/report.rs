//! [`RemoteRestore`]: what a manager found when it opened a remote location.

use super::cache::CacheReport;
use super::writer::RemoteWriter;
use crate::checkpoint::RejectedCheckpoint;

/// What [`IncrementalCheckpointManager::new`](crate::IncrementalCheckpointManager::new)
/// did with a remote location ([`IncrementalCheckpointManager::remote_restore`](crate::IncrementalCheckpointManager::remote_restore)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteRestore {
    /// The generation this manager claimed (its claim's slot): every older
    /// writer of the location is fenced from now on.
    pub generation: u64,
    /// The newest restorable committed checkpoint, now in the cache.
    pub restored: Option<u64>,
    /// Checkpoints whose local copy matched their commit record and was used
    /// as it was.
    pub cache_hits: Vec<u64>,
    /// Checkpoints downloaded into the cache.
    pub downloaded: Vec<u64>,
    /// Local checkpoint directories removed: not committed (a publish that
    /// crashed before its record), or not the committed bytes.
    pub removed: Vec<u64>,
    /// Committed checkpoints newer than `restored` that could not be
    /// restored, and damaged records (id 0, the record's key as path),
    /// newest first.
    pub rejected: Vec<RejectedCheckpoint>,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Requests the downloads took.
    pub requests: u64,
}

impl RemoteRestore {
    pub(crate) fn from_report(writer: Option<&RemoteWriter>, report: CacheReport) -> Self {
        RemoteRestore {
            generation: writer.map_or(0, RemoteWriter::generation),
            restored: report.restored,
            cache_hits: report.hits,
            downloaded: report.downloaded,
            removed: report.removed,
            rejected: report.rejected,
            bytes_downloaded: report.stats.bytes,
            requests: report.stats.requests,
        }
    }
}
