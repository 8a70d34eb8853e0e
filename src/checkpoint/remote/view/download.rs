//! The background download of a remote view: the chain's missing
//! checkpoints fetched into the cache directory from the base up, each
//! published like a manager's restore publishes it (temporary directory,
//! files verified against the record's sizes and CRC32Cs, fsync, rename),
//! then the view switched to the mapped local files.
//!
//! Invariants: the view goes local only after every member of its chain is
//! published in the cache and its part's files open with the record's
//! sizes and CRC32Cs; a crash leaves only `.tmp-` leftovers (removed by the
//! next open) and published copies (verified by the next open before use).
//! A failed download leaves the view remote (look-ups go on) and is
//! reported by [`RemoteStateView::wait`](super::RemoteStateView::wait); so
//! is a panic of the download thread (an outcome is always recorded).

use super::layer::Layer;
use super::Shared;
use crate::checkpoint::remote::cache::{self, CacheReport};
use crate::checkpoint::store::part_layers;
use crate::error::{Error, Result};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Runs the download and the switch; records the outcome in `shared` (a
/// panic too: `wait` must not wait for a thread that is gone).
pub(crate) fn run(shared: &Shared) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        download(shared).and_then(|()| switch(shared))
    }))
    .unwrap_or_else(|panic| {
        Err(Error::RemoteViewPanicked {
            message: crate::checkpoint::background::panic_message(panic.as_ref()),
        })
    });
    let mut state = shared.lock_download();
    match outcome {
        Ok(()) => state.done = true,
        Err(e) => {
            tracing::warn!(checkpoint = shared.checkpoint_id(), error = %e, "the background download of a remote view failed; look-ups stay remote");
            state.error = Some(Arc::new(e));
        }
    }
    drop(state);
    shared.finished.notify_all();
}

fn download(shared: &Shared) -> Result<()> {
    let mut report = CacheReport::default();
    for member in shared.chain.iter().rev() {
        let id = member.metadata.id;
        if shared.present.contains(&id) {
            continue;
        }
        if shared.stop.load(Ordering::SeqCst) {
            return Err(Error::invalid_argument(
                "RemoteStateView",
                "the view was dropped before its download finished",
            ));
        }
        cache::fetch(
            shared.store.as_ref(),
            &shared.local,
            member,
            false,
            &shared.options,
            &mut report,
        )?;
    }
    Ok(())
}

/// Replaces the layers by the mapped local files of the part.
fn switch(shared: &Shared) -> Result<()> {
    let view = shared
        .local
        .open_state_view(shared.checkpoint_id(), &shared.part)?;
    let layers: Vec<Layer> = view.into_layers().into_iter().map(Layer::Local).collect();
    let metas = shared.chain.iter().map(|c| &c.metadata);
    let expected = part_layers(metas, &shared.part).map_or(0, |l| l.len());
    if layers.len() != expected {
        return Err(Error::invalid_argument(
            "RemoteStateView",
            format!(
                "the cached part has {} layers, the records {expected}",
                layers.len()
            ),
        ));
    }
    shared.set_layers(layers);
    shared.cache.clear();
    tracing::info!(checkpoint = shared.checkpoint_id(), part = %shared.part, "remote view switched to the local copy");
    Ok(())
}
