//! The coordinator process: `distributed_pipeline coordinator --store URL
//! --workers N [--stall-after K]`.
//!
//! It claims a new run (`Coordinator::start`: the claim fences every older
//! coordinator and its workers), republishes the restored base's sink
//! handles (the previous coordinator may have died before it published
//! them), discards what older runs staged for epochs that never committed,
//! and then for each epoch: lets the workers start it ([`pace`]), waits for
//! all reports (`StoreTransport::wait` with a deadline), commits, and only
//! then publishes the epoch's handles and says so (`sinks_committed`).
//!
//! Lines on stdout: `generation <g> <workers> <restored epoch|->`,
//! `republished <epoch> <handles> <newly published>`, `discarded <objects>`,
//! `committed <epoch> <handles>`, `stalling <epoch>`, `done`; a refused commit
//! prints `fenced: commit of epoch <e> refused: <error>` and exits with
//! [`FENCED_EXIT`].
//!
//! `--stall-after K` is the supervisor's hook for freezing a coordinator at
//! a point where it holds every report of an epoch: after K commits it
//! prints `stalling <epoch>` and waits for a line on its stdin before
//! committing: the supervisor freezes it there (SIGSTOP), lets a new run
//! take over, then resumes it (SIGCONT) and sends the line. No timing
//! window: the commit cannot happen before the freeze.

use crate::job::EPOCHS;
use crate::pace::{self, RUN_AHEAD};
use crate::{say, sink, Stop, FENCED_EXIT};
use highwater::blob::BlobStore;
use highwater::cluster::{Coordinator, CoordinatorConfig, StoreTransport};
use highwater::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long the coordinator waits for an epoch's reports before it aborts
/// the epoch (a worker's first epoch includes its restore).
const DEADLINE: Duration = Duration::from_secs(30);

/// Runs a coordinator of `workers` workers on `store`.
pub fn run(store: Arc<dyn BlobStore>, workers: u32, stall_after: Option<u64>) -> ExitCode {
    match coordinate(store, workers, stall_after) {
        Ok(()) => {
            say("done");
            ExitCode::SUCCESS
        }
        Err(Stop::Fenced(why)) => {
            say(&format!("fenced: {why}"));
            ExitCode::from(FENCED_EXIT)
        }
        Err(Stop::Failed(why)) => {
            eprintln!("coordinator: {why}");
            ExitCode::FAILURE
        }
    }
}

fn coordinate(
    store: Arc<dyn BlobStore>,
    workers: u32,
    stall_after: Option<u64>,
) -> Result<(), Stop> {
    let mut coordinator = Coordinator::start(CoordinatorConfig::new(store.clone(), workers))?;
    let generation = coordinator.generation();
    let base = coordinator.restored().cloned();
    say(&format!(
        "generation {generation} {workers} {}",
        base.as_ref()
            .map_or("-".to_string(), |b| b.epoch.to_string())
    ));
    let mut keep = Vec::new();
    if let Some(base) = &base {
        keep = base.sink_handles();
        let mut new = 0;
        for handle in &keep {
            new += usize::from(sink::publish(store.as_ref(), handle)?);
        }
        coordinator.sinks_committed(base.epoch)?;
        say(&format!("republished {} {} {new}", base.epoch, keep.len()));
    }
    let discarded = sink::discard_staged(store.as_ref(), generation, &keep)?;
    say(&format!("discarded {discarded}"));

    let transport =
        StoreTransport::new(store.clone()).with_poll_interval(Duration::from_millis(10));
    for (committed, epoch) in (coordinator.next_epoch()..=EPOCHS).enumerate() {
        pace::allow(store.as_ref(), generation, epoch + RUN_AHEAD - 1)
            .map_err(|e| e.to_string())?;
        let reports = transport.wait(generation, epoch, workers, DEADLINE)?;
        if stall_after == Some(committed as u64) {
            say(&format!("stalling {epoch}"));
            // Until the supervisor says go (or its end of the pipe closes).
            let mut go = String::new();
            let _ = std::io::stdin().read_line(&mut go);
        }
        let global = match coordinator.commit(epoch, reports) {
            Ok(global) => global,
            Err(e @ Error::Fenced { .. }) => {
                return Err(Stop::Fenced(format!(
                    "commit of epoch {epoch} refused: {e}"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        // Only now, with the epoch record created, is the output published.
        let handles = global.sink_handles();
        for handle in &handles {
            sink::publish(store.as_ref(), handle)?;
        }
        coordinator.sinks_committed(epoch)?;
        say(&format!("committed {epoch} {}", handles.len()));
    }
    Ok(())
}
