//! A worker process: `distributed_pipeline worker --store URL --generation G
//! --index I --seed S`.
//!
//! It joins run `G` as worker `I`, restores its key groups from the run's
//! base, and reads the partitions of its groups (partition `p` is group
//! `p`'s) from the base's offsets. For each epoch it may start (the
//! coordinator's [pace](crate::pace)), it reads up to the barrier, emits the
//! windows its watermark closed into the sink's staging, checkpoints
//! (`ClusterWorker::checkpoint`) and sends its report through the store.
//! It prints one line per step (flushed: it may be killed at any moment):
//! `joined <generation> <index> <groups> <epoch> <keys> <bytes read>`,
//! `checkpoint <epoch>`, `finished`, or `fenced: <why>` before exiting with
//! [`FENCED_EXIT`](crate::FENCED_EXIT).

use crate::job::{self, partition_name, partition_of, EPOCHS, RECORDS};
use crate::{pace, say, sink, Stop, FENCED_EXIT};
use highwater::blob::BlobStore;
use highwater::cluster::{ClusterWorker, StoreTransport, WorkerConfig};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How often a worker waiting for its next epoch checks that its run is
/// still the newest.
const FENCE_CHECK: Duration = Duration::from_millis(200);

/// Runs worker `index` of run `generation`.
pub fn run(store: Arc<dyn BlobStore>, generation: u64, index: u32, seed: u64) -> ExitCode {
    match work(store, generation, index, seed) {
        Ok(()) => {
            say("finished");
            ExitCode::SUCCESS
        }
        Err(Stop::Fenced(why)) => {
            say(&format!(
                "fenced: worker {index} of run {generation}: {why}"
            ));
            ExitCode::from(FENCED_EXIT)
        }
        Err(Stop::Failed(e)) => {
            eprintln!("worker {index} of run {generation}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn work(store: Arc<dyn BlobStore>, generation: u64, index: u32, seed: u64) -> Result<(), Stop> {
    let words = job::vocabulary();
    let config = WorkerConfig::new(store.clone(), generation, index);
    let (mut worker, restored) = ClusterWorker::join(config)?;
    let groups = worker.key_groups();
    let mine: Vec<u32> = (groups.start..groups.end).collect();
    let mut sources =
        restored.source_positions(|name| partition_of(name).is_some_and(|p| groups.contains(p)));
    for &p in &mine {
        if sources.offset(&partition_name(p)).is_none() {
            sources.seek_offset(partition_name(p), 0);
        }
    }
    let mut state = restored.state;
    say(&format!(
        "joined {generation} {index} {groups} {} {} {}",
        restored.epoch,
        state.len(),
        restored.counts.bytes
    ));
    let transport = StoreTransport::new(store.clone());
    for epoch in restored.epoch + 1..=EPOCHS {
        pace::wait_for(store.as_ref(), generation, epoch, FENCE_CHECK, || {
            worker.check_generation()
        })?;
        let delivered = std::time::Instant::now() + job::EPOCH_DELIVERY;
        for &p in &mine {
            job::read_epoch(&words, seed, p, epoch, &mut state, &mut sources)?;
        }
        std::thread::sleep(delivered.saturating_duration_since(std::time::Instant::now()));
        let at_end = mine
            .iter()
            .all(|p| sources.offset(&partition_name(*p)) == Some(RECORDS));
        let watermark = if at_end {
            i64::MAX
        } else {
            sources.combined_watermark().unwrap_or(i64::MIN)
        };
        let output = job::emit_closed(&mut state, watermark);
        let mut sinks = Vec::new();
        if !output.is_empty() {
            let handle = sink::stage(store.as_ref(), generation, epoch, index, groups, output)
                .map_err(|e| format!("staging epoch {epoch}: {e}"))?;
            sinks.push(handle);
        }
        let report = worker.checkpoint(epoch, &mut state, &sources, sinks)?;
        transport.send(&report)?;
        say(&format!("checkpoint {epoch}"));
    }
    Ok(())
}
