//! The two-phase commit between checkpoints and the exactly-once file sink,
//! crashed between every pair of its steps and failed at each of them.
//!
//! The job is the `exactly_once_pipeline` example's (shared source file), run
//! on `CrashSimStorage`. Every storage operation of a whole run is a step of
//! the protocol: staging output, the pre-commit fsyncs, the checkpoint's
//! files, rename and directory fsync, the commit's rename and fsync, retention.
//! For a crash at each of them, under each crash image:
//! - recovery alone must leave the published output equal, byte for byte, to
//!   a crash-free run's output up to the restored checkpoint's epoch (nothing
//!   lost, nothing twice, nothing ahead of the state), and restore an epoch no
//!   older than the last one acknowledged before the crash;
//! - the job resumed to the end must publish exactly the crash-free output.
//!
//! Failures that do not kill the process (a failed checkpoint, a failed
//! commit) are also injected at every operation; the job carries the pending
//! transactions on and must still publish exactly the crash-free output.
//!
//! CI runs a seeded sample of points; `HIGHWATER_CRASH_EXHAUSTIVE=1` runs all.

use crate::common;
#[path = "../../examples/exactly_once_pipeline/pipeline.rs"]
pub(crate) mod pipeline;

use common::sampling::{Rng, Settings};
use highwater::storage::{CrashImage, CrashSimStorage, SimFault};
use highwater::{
    CheckpointConfig, FileSink, IncrementalCheckpointManager, SinkCoordinator, TransactionalSink,
};
use pipeline::{Event, Job, Paths};
use std::path::Path;
use std::sync::Arc;

const JOB: Job = Job {
    partitions: 3,
    records: 64,
    batch: 4,
    ms_per_record: 100,
};
const SAMPLED_POINTS: usize = 400;

fn paths() -> Paths {
    Paths::under(Path::new("/sim/job"))
}

/// A run of the job on `storage`: its result, and the epochs whose checkpoint
/// it saw acknowledged with their output sizes.
fn run(storage: &CrashSimStorage) -> (highwater::Result<()>, Vec<(u64, u64)>) {
    let mut acked = Vec::new();
    let result = pipeline::run(Arc::new(storage.clone()), &paths(), &JOB, &mut |e| {
        if let Event::Checkpoint {
            epoch,
            output_bytes,
            ..
        } = e
        {
            acked.push((epoch, output_bytes));
        }
    });
    (result, acked)
}

fn published(storage: &CrashSimStorage) -> Vec<u8> {
    let sink = FileSink::open_with(Arc::new(storage.clone()), paths().output, pipeline::SINK)
        .expect("open the sink");
    sink.read_committed().expect("read the published output")
}

/// The crash-free run: its whole output, the output length after each epoch
/// (index = epoch), and its storage operations.
struct Reference {
    output: Vec<u8>,
    published_after: Vec<usize>,
    operations: u64,
}

fn reference() -> Reference {
    let storage = CrashSimStorage::new();
    let (result, acked) = run(&storage);
    result.expect("the crash-free run");
    let operations = storage.operations();
    let mut published_after = vec![0];
    for (i, &(epoch, bytes)) in acked.iter().enumerate() {
        assert_eq!(epoch, i as u64 + 1, "epochs are numbered from 1");
        published_after.push(published_after[i] + bytes as usize);
    }
    let output = published(&storage);
    assert_eq!(output.len(), *published_after.last().unwrap());
    pipeline::verify(&JOB, &output).expect("the crash-free output is right");
    Reference {
        output,
        published_after,
        operations,
    }
}

/// Recovers the sinks alone on `disk` and checks the published output against
/// the reference up to the restored epoch; returns that epoch.
fn recover_and_check(disk: &CrashSimStorage, reference: &Reference) -> Result<u64, String> {
    let storage: Arc<CrashSimStorage> = Arc::new(disk.clone());
    let mut sink = FileSink::open_with(storage.clone(), paths().output, pipeline::SINK)
        .map_err(|e| format!("open the sink: {e}"))?;
    let config = CheckpointConfig::new(paths().checkpoints).with_storage(storage);
    let manager = IncrementalCheckpointManager::new(config).map_err(|e| e.to_string())?;
    let coordinator =
        SinkCoordinator::recover(manager, &mut [&mut sink as &mut dyn TransactionalSink])
            .map_err(|e| format!("recovery failed: {e}"))?;
    let epoch = coordinator.restored().map_or(0, |c| c.epoch);
    let output = sink.read_committed().map_err(|e| e.to_string())?;
    // A run resumed after the job finished adds an empty epoch: past the
    // reference's last epoch, the whole output is expected.
    let last = reference.published_after.len() - 1;
    let expected = &reference.output[..reference.published_after[(epoch as usize).min(last)]];
    if output != expected {
        return Err(format!(
            "restored epoch {epoch}: published {} bytes, the reference has {} up to that epoch",
            output.len(),
            expected.len()
        ));
    }
    Ok(epoch)
}

/// Resumes the job on `disk` to the end and checks its whole output, then
/// loses power and checks that all of it was durable.
fn finish_and_check(disk: &CrashSimStorage, reference: &Reference) -> Result<(), String> {
    run(disk)
        .0
        .map_err(|e| format!("the resumed job failed: {e}"))?;
    let output = published(disk);
    pipeline::verify(&JOB, &output)?;
    if output != reference.output {
        return Err("the output differs from the crash-free run's".into());
    }
    disk.crash();
    let after_power_loss = disk.image(CrashImage::LoseUnsynced);
    let epoch = recover_and_check(&after_power_loss, reference)
        .map_err(|e| format!("after the finished job lost power: {e}"))?;
    let last = reference.published_after.len() as u64 - 1;
    if epoch < last {
        return Err(format!(
            "after the finished job lost power, epoch {epoch} was restored, not {last}"
        ));
    }
    Ok(())
}

#[test]
fn a_crash_at_every_step_loses_and_duplicates_nothing() {
    let settings = Settings::from_env();
    let mut rng = Rng(settings.seed);
    let reference = reference();
    let points = settings.choose(reference.operations, SAMPLED_POINTS, &mut rng);
    let mut restored_epochs = std::collections::BTreeSet::new();
    for &n in &points {
        let crashed = CrashSimStorage::new();
        crashed.crash_at(n);
        let (result, acked) = run(&crashed);
        assert!(result.is_err(), "crash at {n}: the run did not notice");
        let last_acked = acked.last().map_or(0, |a| a.0);
        for image in [
            CrashImage::LoseUnsynced,
            CrashImage::KeepUnsynced,
            CrashImage::Torn { seed: rng.next() },
        ] {
            let disk = crashed.image(image);
            let check = recover_and_check(&disk, &reference).and_then(|epoch| {
                restored_epochs.insert(epoch);
                if epoch < last_acked {
                    return Err(format!(
                        "restored epoch {epoch}, but epoch {last_acked}'s checkpoint was acknowledged"
                    ));
                }
                finish_and_check(&disk, &reference)
            });
            if let Err(e) = check {
                panic!(
                    "crash at operation {n} of {}, {image:?}: {e}; {}",
                    reference.operations,
                    settings.rerun_hint()
                );
            }
        }
    }
    eprintln!(
        "{} crash points of {} x 3 images; restored epochs {:?}",
        points.len(),
        reference.operations,
        restored_epochs
    );
    assert!(
        restored_epochs.len() > 3,
        "the crash points must restore several different epochs"
    );
}

#[test]
fn a_failure_at_every_step_loses_and_duplicates_nothing() {
    let settings = Settings::from_env();
    let mut rng = Rng(settings.seed ^ 0xfa11);
    let reference = reference();
    let points = settings.choose(reference.operations, SAMPLED_POINTS, &mut rng);
    let mut carried_on = 0;
    for &n in &points {
        let storage = CrashSimStorage::new();
        storage.inject(SimFault::at(n));
        let (result, _) = run(&storage);
        let check = if result.is_ok() {
            // The job absorbed the failure (a failed checkpoint or commit was
            // carried to the next one): its output must already be exact.
            carried_on += 1;
            let output = published(&storage);
            pipeline::verify(&JOB, &output).and_then(|()| {
                (output == reference.output)
                    .then_some(())
                    .ok_or_else(|| "the output differs from the crash-free run's".into())
            })
        } else {
            Ok(())
        };
        // Either way, the process dies (a reboot forgets what a failed fsync
        // dropped), recovers and finishes.
        storage.crash();
        let disk = storage.image(CrashImage::LoseUnsynced);
        let check = check
            .and_then(|()| recover_and_check(&disk, &reference))
            .and_then(|_| finish_and_check(&disk, &reference));
        if let Err(e) = check {
            panic!(
                "failure at operation {n} of {} (run result {result:?}): {e}; {}",
                reference.operations,
                settings.rerun_hint()
            );
        }
    }
    eprintln!(
        "{} failure points of {}; the job carried on past {carried_on} of them",
        points.len(),
        reference.operations
    );
    assert!(
        carried_on > 0,
        "some failures must be absorbed without a restart"
    );
}
