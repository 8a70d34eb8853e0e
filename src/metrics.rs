//! What highwater measures, through the [`metrics`](https://docs.rs/metrics)
//! facade: the library records, the application installs the recorder and
//! exporter it wants (Prometheus, StatsD, a test recorder). With no recorder
//! installed, recording costs an atomic load.
//!
//! The names below are part of the public contract (docs/OPERATIONS.md,
//! "Metrics"); every histogram of durations is in seconds.

use crate::checkpoint::CheckpointKind;
use std::time::Duration;

/// Counter: records appended to write-ahead logs.
pub const WAL_APPENDS: &str = "highwater_wal_appends_total";
/// Histogram: duration of each fsync of a log segment, in seconds.
pub const WAL_FSYNC_SECONDS: &str = "highwater_wal_fsync_seconds";
/// Counter: failed fsyncs of log segments (each poisons its log).
pub const WAL_FSYNC_FAILURES: &str = "highwater_wal_fsync_failures_total";
/// Histogram: committers one group-commit fsync made durable.
pub const WAL_GROUP_COMMIT_SIZE: &str = "highwater_wal_group_commit_size";
/// Counter: checkpoints published, labelled `kind` = `full` or `delta`.
pub const CHECKPOINTS: &str = "highwater_checkpoints_total";
/// Histogram: duration of a checkpoint, labelled `kind`, in seconds.
pub const CHECKPOINT_SECONDS: &str = "highwater_checkpoint_seconds";
/// Histogram: bytes of the part files a checkpoint wrote, labelled `kind`.
pub const CHECKPOINT_BYTES: &str = "highwater_checkpoint_bytes";
/// Gauge: the delta chain length of the newest checkpoint (0 for a full one).
pub const CHECKPOINT_CHAIN_LENGTH: &str = "highwater_checkpoint_chain_length";
/// Histogram: duration of each recovery phase, labelled `phase` = `checkpoint`,
/// `repair`, `replay`, `tail_cut` or `total`, in seconds.
pub const RECOVERY_PHASE_SECONDS: &str = "highwater_recovery_phase_seconds";
/// Counter: newer checkpoints a recovery rejected (damaged, or their chain
/// broken) before the one it restored.
pub const RECOVERY_REJECTED_CHECKPOINTS: &str = "highwater_recovery_rejected_checkpoints_total";
/// Counter: HTTP requests the object-store blob backend sent (retries
/// included), labelled `operation` (create, put, get, …).
pub const BLOB_REQUESTS: &str = "highwater_blob_requests_total";
/// Counter: responses of the object store that asked to slow down (HTTP 429
/// or 503, S3 `SlowDown`), labelled `operation`; each is retried with backoff
/// and logged as a tracing warning.
pub const BLOB_THROTTLED: &str = "highwater_blob_throttled_total";
/// Counter: what garbage collection of a remote checkpoint location removed,
/// labelled `kind` = `record` (commit records below the floor), `part` (part
/// objects), `floor_marker` (old floor markers) or `upload` (abandoned
/// multipart uploads aborted).
pub const REMOTE_GC_DELETED: &str = "highwater_remote_gc_deleted_total";
/// Counter: bytes of the part objects garbage collection deleted.
pub const REMOTE_GC_BYTES_FREED: &str = "highwater_remote_gc_bytes_freed_total";
/// Counter: calls of garbage collection that failed (each logged as a
/// tracing warning; the next collection retries).
pub const REMOTE_GC_FAILURES: &str = "highwater_remote_gc_failures_total";

/// Counter: bytes of checkpoint part files moved to or from the remote blob
/// store, labelled `direction` = `upload` or `download`; advanced as each
/// range is written locally or each part's request succeeds, so a long
/// transfer shows its progress.
pub const REMOTE_BYTES: &str = "highwater_remote_bytes_total";
/// Gauge: bytes of the running checkpoint transfers not yet moved, labelled
/// `direction`: raised by a transfer's total when it starts, lowered as its
/// bytes land and by what is left when it ends (success or failure), so it
/// returns to 0 once no transfer runs.
pub const REMOTE_TRANSFER_PENDING_BYTES: &str = "highwater_remote_transfer_pending_bytes";
/// Counter: blob-store requests of checkpoint transfers (retries included),
/// labelled `direction`.
pub const REMOTE_REQUESTS: &str = "highwater_remote_requests_total";
/// Counter: transfer requests retried after a transient, throttled or
/// indeterminate answer, labelled `direction`.
pub const REMOTE_RETRIES: &str = "highwater_remote_retries_total";

fn kind_label(kind: CheckpointKind) -> &'static str {
    match kind {
        CheckpointKind::Full => "full",
        CheckpointKind::Delta => "delta",
    }
}

/// A checkpoint was published.
pub(crate) fn checkpoint_published(
    kind: CheckpointKind,
    elapsed: Duration,
    bytes: u64,
    chain: u32,
) {
    let kind = kind_label(kind);
    ::metrics::counter!(CHECKPOINTS, "kind" => kind).increment(1);
    ::metrics::histogram!(CHECKPOINT_SECONDS, "kind" => kind).record(elapsed.as_secs_f64());
    ::metrics::histogram!(CHECKPOINT_BYTES, "kind" => kind).record(bytes as f64);
    ::metrics::gauge!(CHECKPOINT_CHAIN_LENGTH).set(f64::from(chain));
}

/// A recovery finished.
pub(crate) fn recovered(timings: &crate::recovery::PhaseTimings, rejected: usize) {
    for (phase, d) in [
        ("checkpoint", timings.checkpoint),
        ("repair", timings.repair),
        ("replay", timings.replay),
        ("tail_cut", timings.tail_cut),
        ("total", timings.total),
    ] {
        ::metrics::histogram!(RECOVERY_PHASE_SECONDS, "phase" => phase).record(d.as_secs_f64());
    }
    ::metrics::counter!(RECOVERY_REJECTED_CHECKPOINTS).increment(rejected as u64);
}

/// A transfer (`direction` = `upload` or `download`) ended, successfully or
/// not, after `requests` requests (retries included) of which `retries`
/// were retries. Recorded on the caller's thread.
pub(crate) fn remote_transfer(direction: &'static str, requests: u64, retries: u64) {
    ::metrics::counter!(REMOTE_REQUESTS, "direction" => direction).increment(requests);
    ::metrics::counter!(REMOTE_RETRIES, "direction" => direction).increment(retries);
}

/// The byte metrics of one running transfer: handles registered on the
/// caller's thread (with the caller's recorder, local or global) and
/// advanced by the transfer's workers as bytes land.
#[derive(Debug)]
pub(crate) struct RemoteTransferMetrics {
    bytes: ::metrics::Counter,
    pending: ::metrics::Gauge,
}

impl RemoteTransferMetrics {
    /// A transfer in `direction` of `total` bytes starts: they are pending.
    pub(crate) fn start(direction: &'static str, total: u64) -> Self {
        let pending = ::metrics::gauge!(REMOTE_TRANSFER_PENDING_BYTES, "direction" => direction);
        pending.increment(total as f64);
        RemoteTransferMetrics {
            bytes: ::metrics::counter!(REMOTE_BYTES, "direction" => direction),
            pending,
        }
    }

    /// `bytes` landed (written locally, or answered by the store).
    pub(crate) fn landed(&self, bytes: u64) {
        self.bytes.increment(bytes);
        self.pending.decrement(bytes as f64);
    }

    /// The transfer ended with `remaining` of its bytes never moved.
    pub(crate) fn ended(&self, remaining: u64) {
        self.pending.decrement(remaining as f64);
    }
}

/// A garbage collection of a remote checkpoint location finished.
pub(crate) fn remote_gc_finished(report: &crate::checkpoint::remote::GcReport) {
    for (kind, n) in [
        ("record", report.records_deleted),
        ("part", report.parts_deleted),
        ("floor_marker", report.floor_markers_deleted),
        ("upload", report.uploads_aborted),
    ] {
        ::metrics::counter!(REMOTE_GC_DELETED, "kind" => kind).increment(n);
    }
    ::metrics::counter!(REMOTE_GC_BYTES_FREED).increment(report.bytes_freed);
    ::metrics::counter!(REMOTE_GC_FAILURES).increment(report.failures);
}

/// Counter: bytes a remote state view fetched from the object store for its
/// look-ups (the background download is counted in [`REMOTE_BYTES`]).
pub const REMOTE_VIEW_BYTES: &str = "highwater_remote_view_bytes_total";
/// Counter: ranged gets a remote state view sent for its look-ups (retries
/// included).
pub const REMOTE_VIEW_REQUESTS: &str = "highwater_remote_view_requests_total";

/// A remote state view fetched `bytes` with one request.
pub(crate) fn remote_view_fetch(bytes: u64) {
    ::metrics::counter!(REMOTE_VIEW_REQUESTS).increment(1);
    ::metrics::counter!(REMOTE_VIEW_BYTES).increment(bytes);
}
