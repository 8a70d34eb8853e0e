//! Injected I/O failures: every storage operation of a checkpointing workload
//! fails in turn (an I/O error, or a full device). A failed sync poisons the
//! writer, nothing is acknowledged that was not durable, a failed checkpoint
//! leaves nothing half-published, and the job recovers after a restart.

use crate::common;

use common::put;
use common::sampling::{Rng, Settings};
use common::workload::{count_operations, run, run_new_job, Layout, Model, Plan, Resume};
use highwater::storage::{CrashImage, CrashSimStorage, SimFault, SimOp, Storage};
use highwater::{
    CheckpointConfig, Error, IncrementalCheckpointManager, RecoveryManager, SyncPolicy, WalEntry,
    WalOptions, WriteAheadLog,
};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

const COMMITS: u64 = 40;
const SAMPLED_POINTS: usize = 80;

fn commit(n: u64) -> WalEntry {
    WalEntry::Commit {
        offsets: HashMap::from([("p0".to_string(), n)]),
        watermark: None,
    }
}

fn open_wal(storage: &CrashSimStorage) -> highwater::Result<WriteAheadLog> {
    WriteAheadLog::open(
        "/job/wal",
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(Arc::new(storage.clone())),
    )
}

/// Every checkpoint in what the device would hold if everything written so far
/// reached it verifies (a fresh manager rejects none). Looks at an image, so
/// the manager's own clean-up cannot hide anything.
fn no_half_published_checkpoint(storage: &CrashSimStorage) -> Result<(), String> {
    let disk = storage.image(CrashImage::KeepUnsynced);
    let manager = IncrementalCheckpointManager::new(
        CheckpointConfig::new("/job/checkpoints").with_storage(Arc::new(disk)),
    )
    .map_err(|e| format!("opening the checkpoint directory: {e}"))?;
    let latest = manager
        .store()
        .find_latest()
        .map_err(|e| format!("find_latest: {e}"))?;
    if !latest.rejected.is_empty() {
        return Err(format!("rejected checkpoints: {:?}", latest.rejected));
    }
    Ok(())
}

#[test]
fn every_operation_failing_in_turn_never_acknowledges_what_is_not_durable() {
    let settings = Settings::from_env();
    let plan = Plan {
        retry_failed_checkpoints: true,
        ..Plan::default()
    };
    let model = Model::new(3, COMMITS + 2);
    let (total, _) = count_operations(&plan, model.workload(), COMMITS);
    let mut rng = Rng(settings.seed ^ 3);
    let points = settings.choose(total, SAMPLED_POINTS, &mut rng);
    let mut cases = 0;
    for &point in &points {
        for kind in [io::ErrorKind::Other, io::ErrorKind::StorageFull] {
            let sim = CrashSimStorage::new();
            sim.inject(SimFault::at(point).with_kind(kind));
            let progress = run_new_job(&sim, &plan, model.workload(), COMMITS);
            let fail = |what: String| -> ! {
                panic!(
                    "operation {point} failing with {kind:?} (acked {}, attempted {}, stopped by {:?}): {what}\n{}",
                    progress.acked,
                    progress.attempted,
                    progress.error,
                    settings.rerun_hint()
                )
            };
            if let Err(e) = no_half_published_checkpoint(&sim) {
                fail(e);
            }
            // The process restarts; whatever the device kept must recover to a
            // commit at or after the last acknowledged one.
            sim.crash();
            for image in [
                CrashImage::LoseUnsynced,
                CrashImage::Torn {
                    seed: rng.below(u64::MAX),
                },
            ] {
                let disk = sim.image(image);
                let recovered = RecoveryManager::new(Layout::sim(&disk).recovery())
                    .recover()
                    .unwrap_or_else(|e| fail(format!("{image:?}: recovery failed: {e}")));
                let k = model
                    .check(&recovered, progress.acked, progress.attempted)
                    .unwrap_or_else(|e| fail(format!("{image:?}: {e}")));
                let resumed = run(
                    &Layout::sim(&disk),
                    &plan,
                    model.workload(),
                    k,
                    k + 1,
                    Resume::from_recovered(&recovered),
                    |_| {},
                );
                if let Some(e) = resumed.error {
                    fail(format!("{image:?}: resuming at commit {k}: {e}"));
                }
                cases += 1;
            }
        }
    }
    println!(
        "{} of {total} operations failed in turn, 2 error kinds, {cases} recoveries: all passed",
        points.len()
    );
}

#[test]
fn a_failed_sync_poisons_the_log_and_its_records_are_never_acknowledged() {
    let sim = CrashSimStorage::new();
    let wal = open_wal(&sim).unwrap();
    wal.append(&put("a", "1")).unwrap();
    wal.append(&commit(1)).unwrap();
    wal.sync().unwrap();
    wal.append(&put("b", "2")).unwrap();
    wal.append(&commit(2)).unwrap();
    sim.inject(SimFault::new(SimOp::SyncFile).on_path("/job/wal/"));
    let err = wal.sync().unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    // Poisoned: every later call fails, and the sync is never retried.
    assert!(matches!(
        wal.append(&put("c", "3")),
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(wal.sync(), Err(Error::Poisoned { .. })));
    drop(wal);
    sim.crash();
    // Even a device that kept every unsynced write lacks the second commit: the
    // failed fsync dropped it from the page cache's dirty pages.
    let disk = sim.image(CrashImage::KeepUnsynced);
    let recovered = RecoveryManager::new(Layout::sim(&disk).recovery())
        .recover()
        .unwrap();
    assert_eq!(recovered.source_offsets.get("p0"), Some(&1));
    assert_eq!(
        recovered.state_changes,
        [(b"a".to_vec(), Some(b"1".to_vec()))]
    );
    // The reopened log takes new commits.
    let wal = open_wal(&disk).unwrap();
    wal.append(&put("d", "4")).unwrap();
    wal.append(&commit(2)).unwrap();
    wal.close().unwrap();
    let recovered = RecoveryManager::new(Layout::sim(&disk).recovery())
        .recover()
        .unwrap();
    assert_eq!(recovered.source_offsets.get("p0"), Some(&2));
    assert_eq!(recovered.state_changes.len(), 2);
}

#[test]
fn a_full_device_stops_the_job_and_it_resumes_once_space_is_back() {
    let model = Model::new(4, 30);
    let plan = Plan::default();
    let sim = CrashSimStorage::new();
    sim.inject(
        SimFault::new(SimOp::Write)
            .after(20)
            .times(u64::MAX)
            .with_kind(io::ErrorKind::StorageFull),
    );
    let progress = run_new_job(&sim, &plan, model.workload(), 30);
    let err = progress.error.expect("the device is full");
    let full = match &err {
        Error::Io { source, .. } => source.kind() == io::ErrorKind::StorageFull,
        Error::Poisoned { cause, .. } => {
            cause.contains("StorageFull") || cause.contains("simulated failure")
        }
        _ => false,
    };
    assert!(full, "{err:?}");
    assert!(progress.acked < 30);
    // Space is back (a new process on the same device, no crash in between).
    let disk = sim.image(CrashImage::KeepUnsynced);
    let recovered = RecoveryManager::new(Layout::sim(&disk).recovery())
        .recover()
        .unwrap();
    let k = model
        .check(&recovered, progress.acked, progress.attempted)
        .unwrap();
    let resumed = run(
        &Layout::sim(&disk),
        &plan,
        model.workload(),
        k,
        30,
        Resume::from_recovered(&recovered),
        |_| {},
    );
    assert!(resumed.error.is_none(), "{:?}", resumed.error);
    let recovered = RecoveryManager::new(Layout::sim(&disk).recovery())
        .recover()
        .unwrap();
    assert_eq!(model.check(&recovered, 30, 30).unwrap(), 30);
}

#[test]
fn a_failed_checkpoint_is_invisible_and_the_next_one_carries_its_changes() {
    let model = Model::new(5, 24);
    let plan = Plan {
        retry_failed_checkpoints: true,
        checkpoint_every: 4,
        ..Plan::default()
    };
    for op in [
        SimOp::Write,
        SimOp::SyncFile,
        SimOp::Rename,
        SimOp::SyncDir,
        SimOp::CreateFile,
    ] {
        let sim = CrashSimStorage::new();
        // The second checkpoint (a delta) fails.
        sim.inject(
            SimFault::new(op)
                .on_path("/job/checkpoints/")
                .after(match op {
                    SimOp::Rename | SimOp::SyncDir => 1,
                    _ => 3,
                }),
        );
        let progress = run_new_job(&sim, &plan, model.workload(), 24);
        assert!(progress.error.is_none(), "{op:?}: {:?}", progress.error);
        assert_eq!(progress.failed_checkpoints, 1, "{op:?}");
        no_half_published_checkpoint(&sim).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        sim.crash();
        let disk = sim.image(CrashImage::LoseUnsynced);
        let recovered = RecoveryManager::new(Layout::sim(&disk).recovery())
            .recover()
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
        assert_eq!(model.check(&recovered, 24, 24).unwrap(), 24, "{op:?}");
        assert!(recovered.checkpoint_id.is_some());
    }
}

/// Found in review: when the directory fsync after the publishing rename
/// failed, `create_checkpoint` returned an error but left the checkpoint in
/// place, so a caller that treated the error as "not published" (and aborted
/// what the checkpoint records) could later recover from it.
#[test]
fn a_checkpoint_whose_directory_fsync_failed_is_withdrawn() {
    let sim = CrashSimStorage::new();
    let manager = IncrementalCheckpointManager::new(
        CheckpointConfig::new("/job/checkpoints").with_storage(Arc::new(sim.clone())),
    )
    .unwrap();
    let state = highwater::StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]);
    let request = |position: u64| {
        highwater::CheckpointRequest::new(position)
            .with_offsets(HashMap::from([("p0".to_string(), position)]))
            .with_part(
                highwater::checkpoint::DEFAULT_PART,
                highwater::PartInput::Snapshot(&state),
            )
    };
    manager.create_checkpoint(request(1)).unwrap();
    // Checkpoint 2: the temporary directory's fsync passes, the parent's fails.
    sim.inject(
        SimFault::new(SimOp::SyncDir)
            .on_path("/job/checkpoints")
            .after(1),
    );
    let err = manager.create_checkpoint(request(2)).unwrap_err();
    assert!(
        err.to_string().contains("sync directory /job/checkpoints"),
        "{err}"
    );
    // A reader: the manager above still holds the directory's lock.
    let latest = |storage: CrashSimStorage| {
        highwater::CheckpointStore::with_storage(Arc::new(storage), "/job/checkpoints")
            .find_latest()
            .unwrap()
            .metadata
            .map(|m| m.id)
    };
    assert_eq!(
        latest(sim.clone()),
        Some(1),
        "withdrawn from the live directory"
    );
    assert_eq!(latest(sim.image(CrashImage::KeepUnsynced)), Some(1));
    assert_eq!(latest(sim.image(CrashImage::LoseUnsynced)), Some(1));
    // And the next checkpoint works.
    assert_eq!(
        manager.create_checkpoint(request(3)).unwrap().wal_position,
        3
    );
}

/// Found in review: a directory that exists was taken to be durable, so when
/// the process that created the log's directory died before fsyncing its
/// parent, the next process (same page cache) never fsynced it, and a power
/// loss took the whole log with its acknowledged commits.
#[test]
fn a_log_directory_left_unsynced_by_a_dead_process_is_made_durable() {
    // What the dead process left: the directories, created but never synced.
    let sim = CrashSimStorage::new();
    sim.create_dir_all(Path::new("/job/wal")).unwrap();
    let wal = open_wal(&sim).unwrap();
    wal.append(&put("a", "1")).unwrap();
    wal.append(&commit(1)).unwrap();
    wal.close().unwrap();
    sim.crash();
    let disk = sim.image(CrashImage::LoseUnsynced);
    let recovered = RecoveryManager::new(Layout::sim(&disk).recovery())
        .recover()
        .unwrap();
    assert_eq!(
        recovered.source_offsets.get("p0"),
        Some(&1),
        "the acknowledged commit survives"
    );
}
