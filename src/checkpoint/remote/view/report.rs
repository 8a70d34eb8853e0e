//! [`RemoteViewReport`]: what a remote view has verified, fetched and
//! downloaded so far.

use super::layer::Layer;
use super::Shared;
use crate::checkpoint::RejectedCheckpoint;
use crate::error::Error;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One file of the view's part.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteLayerReport {
    /// The object's key (as a path) while remote, the local file once local.
    pub file: PathBuf,
    /// Whether it is read from the mapped local copy.
    pub local: bool,
    /// Payload blocks of the file.
    pub blocks: u64,
    /// How many of them were verified so far.
    pub verified_blocks: u64,
    /// Which, as ranges of block numbers (remote files only; a local file's
    /// blocks are verified as the mapping is read).
    pub verified: Vec<Range<u64>>,
}

/// What a [`RemoteStateView`](super::RemoteStateView) did so far.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteViewReport {
    /// The checkpoint served.
    pub checkpoint_id: u64,
    /// Whether look-ups are answered from the mapped local files.
    pub local: bool,
    /// The part's files, newest first.
    pub layers: Vec<RemoteLayerReport>,
    /// Ranged gets the look-ups sent (opening the files included).
    pub requests: u64,
    /// Bytes those gets fetched.
    pub bytes_fetched: u64,
    /// Bytes the background download has written so far (as ranges land).
    pub bytes_downloaded: u64,
    /// Bytes it downloads in all: the part files of the chain's checkpoints
    /// that were not in the cache (0 when the view opened local).
    pub bytes_to_download: u64,
    /// Whether the background download finished (successfully).
    pub download_done: bool,
    /// Why the background download failed, if it did.
    pub download_error: Option<Arc<Error>>,
    /// Newer committed checkpoints that could not be served, newest first.
    pub rejected: Vec<RejectedCheckpoint>,
}

pub(super) fn build(shared: &Shared) -> RemoteViewReport {
    let layers = shared
        .layers()
        .iter()
        .map(|layer| match layer {
            Layer::Local(v) => {
                let (verified_blocks, blocks) = v.verified_blocks();
                RemoteLayerReport {
                    file: v.path().to_path_buf(),
                    local: true,
                    blocks,
                    verified_blocks,
                    verified: Vec::new(),
                }
            }
            Layer::Remote(r) => {
                let (verified, blocks) = r.verified_ranges();
                RemoteLayerReport {
                    file: r.path().to_path_buf(),
                    local: false,
                    blocks,
                    verified_blocks: verified.iter().map(|r| r.end - r.start).sum(),
                    verified,
                }
            }
        })
        .collect();
    let download = shared.lock_download();
    RemoteViewReport {
        checkpoint_id: shared.checkpoint_id(),
        local: shared.local_now.load(Ordering::SeqCst),
        layers,
        requests: shared.counts.requests.load(Ordering::Relaxed),
        bytes_fetched: shared.counts.bytes.load(Ordering::Relaxed),
        bytes_downloaded: shared.progress.download().bytes_done,
        bytes_to_download: shared.bytes_to_download,
        download_done: download.done,
        download_error: download.error.clone(),
        rejected: shared.rejected.clone(),
    }
}
