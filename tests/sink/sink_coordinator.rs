//! `SinkCoordinator` and `FileSink` cases that a single crash or fault cannot
//! reach: commits that keep failing while later epochs are checkpointed, a
//! sink whose handle is too large to record, and staged output that no
//! checkpoint names.

use highwater::recovery::SinkError;
use highwater::storage::{CrashImage, CrashSimStorage, OpenMode, SimFault, SimOp, Storage};
use highwater::{
    CheckpointConfig, CheckpointRequest, Error, FileSink, IncrementalCheckpointManager,
    SinkCoordinator, SinkTransaction, TransactionalSink,
};
use std::sync::Arc;

fn open(storage: &CrashSimStorage) -> (FileSink, IncrementalCheckpointManager) {
    let storage: Arc<CrashSimStorage> = Arc::new(storage.clone());
    let sink = FileSink::open_with(storage.clone(), "/job/out", "out").unwrap();
    let config = CheckpointConfig::new("/job/ckpt").with_storage(storage);
    (sink, IncrementalCheckpointManager::new(config).unwrap())
}

#[test]
fn a_failing_commit_holds_back_the_later_epochs_of_its_sink() {
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    // Epoch 1's publishing rename fails twice.
    storage.inject(
        SimFault::new(SimOp::Rename)
            .on_path(".epoch-00000000000000000001.staged")
            .times(2),
    );
    for (epoch, line) in [(1, "one\n"), (2, "two\n")] {
        sink.write(line.as_bytes()).unwrap();
        let result = coordinator.checkpoint(CheckpointRequest::new(0), &mut [&mut sink]);
        assert!(
            matches!(result, Err(Error::SinkCommitPending { epoch: 1, .. })),
            "epoch {epoch}: {result:?}"
        );
        assert_eq!(
            sink.committed_epochs().unwrap(),
            Vec::<u64>::new(),
            "epoch 2 must not be published before epoch 1"
        );
    }
    assert_eq!(coordinator.pending().len(), 2);
    sink.write(b"three\n").unwrap();
    coordinator
        .checkpoint(CheckpointRequest::new(0), &mut [&mut sink])
        .unwrap();
    assert_eq!(sink.committed_epochs().unwrap(), [1, 2, 3]);
    assert_eq!(sink.read_committed().unwrap(), b"one\ntwo\nthree\n");
    assert!(coordinator.pending().is_empty());
}

#[test]
fn a_commit_found_done_is_made_durable_before_it_is_forgotten() {
    // The rename of epoch 1 happens, the directory fsync after it fails (the
    // simulator forgets the rename, as Linux may); the next checkpoint finds
    // the file published and forgets the transaction. Fsyncing the directory
    // again would succeed without the rename: the commit must publish again.
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    sink.write(b"one\n").unwrap();
    storage.inject(
        SimFault::new(SimOp::SyncDir).on_path("/job/out").after(1), // the pre-commit's directory fsync succeeds
    );
    let first = coordinator.checkpoint(CheckpointRequest::new(0), &mut [&mut sink]);
    assert!(
        matches!(first, Err(Error::SinkCommitPending { .. })),
        "{first:?}"
    );
    // Epochs 2 and 3 have no output: no pre-commit fsyncs the directory, and
    // checkpoint 3 no longer records epoch 1.
    for _ in 2..=3 {
        coordinator
            .checkpoint(CheckpointRequest::new(0), &mut [&mut sink])
            .unwrap();
    }
    assert!(coordinator.pending().is_empty());
    drop((coordinator, sink));

    // Power loss.
    storage.crash();
    let disk = storage.image(CrashImage::LoseUnsynced);
    let (mut sink, manager) = open(&disk);
    let coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    assert_eq!(coordinator.restored().map(|c| c.epoch), Some(3));
    assert_eq!(sink.read_committed().unwrap(), b"one\n");
}

#[test]
fn a_restart_after_a_failed_directory_fsync_publishes_the_output_durably_once() {
    // The commit's directory fsync fails, the process exits (no reboot), a new
    // one recovers on the same machine, then the machine loses power.
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    sink.write(b"one\n").unwrap();
    storage.inject(SimFault::new(SimOp::SyncDir).on_path("/job/out").after(1));
    let first = coordinator.checkpoint(CheckpointRequest::new(0), &mut [&mut sink]);
    assert!(
        matches!(first, Err(Error::SinkCommitPending { .. })),
        "{first:?}"
    );
    drop((coordinator, sink));
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    assert_eq!(sink.read_committed().unwrap(), b"one\n");
    // Later epochs without output: the newest checkpoint no longer names
    // epoch 1, so only the restart's commit can have made it durable.
    for _ in 0..2 {
        coordinator
            .checkpoint(CheckpointRequest::new(0), &mut [&mut sink])
            .unwrap();
    }
    drop((coordinator, sink));

    storage.crash();
    let disk = storage.image(CrashImage::LoseUnsynced);
    let (mut sink, manager) = open(&disk);
    SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    assert_eq!(sink.read_committed().unwrap(), b"one\n");
    let names: Vec<String> = disk
        .list_dir("/job/out".as_ref())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != ".lock")
        .collect();
    assert_eq!(
        names,
        ["epoch-00000000000000000001.out"],
        "no staged or copied leftovers"
    );
}

/// A sink whose handles do not fit in a checkpoint.
struct HugeHandles;

impl TransactionalSink for HugeHandles {
    fn name(&self) -> &str {
        "huge"
    }
    fn begin(&mut self, _: u64) -> Result<(), SinkError> {
        Ok(())
    }
    fn pre_commit(&mut self, _: u64) -> Result<Vec<u8>, SinkError> {
        Ok(vec![0; 70_000])
    }
    fn commit(&mut self, _: u64, _: &[u8]) -> Result<(), SinkError> {
        panic!("a handle that no checkpoint can record must never be committed")
    }
    fn abort_after(&mut self, _: u64) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn a_handle_too_large_to_record_fails_the_pre_commit() {
    let storage = CrashSimStorage::new();
    let (_, manager) = open(&storage);
    let mut sink = HugeHandles;
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    let result = coordinator.checkpoint(CheckpointRequest::new(0), &mut [&mut sink]);
    assert!(
        matches!(
            &result,
            Err(Error::Sink {
                operation: "pre-commit",
                ..
            })
        ),
        "{result:?}"
    );
    assert!(coordinator.manager().list_checkpoints().unwrap().is_empty());
    let again = coordinator.checkpoint(CheckpointRequest::new(0), &mut [&mut sink]);
    assert!(
        matches!(again, Err(Error::SinkCoordinatorFailed { .. })),
        "{again:?}"
    );
}

#[test]
fn the_manager_refuses_to_write_a_handle_it_could_not_read_back() {
    let storage = CrashSimStorage::new();
    let (_, manager) = open(&storage);
    let request = CheckpointRequest::new(0).with_sink_transaction(SinkTransaction {
        sink: "huge".into(),
        epoch: 1,
        handle: vec![0; 70_000],
    });
    let result = manager.create_checkpoint(request);
    assert!(
        matches!(result, Err(Error::InvalidArgument(_))),
        "{result:?}"
    );
    assert!(manager.list_checkpoints().unwrap().is_empty());
}

#[test]
fn owed_output_that_no_checkpoint_names_is_an_error_not_a_loss() {
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    sink.write(b"one\n").unwrap();
    coordinator
        .checkpoint(CheckpointRequest::new(0), &mut [&mut sink])
        .unwrap();
    drop((coordinator, sink));
    // Someone (a bug, a restore from backup) left epoch 1's output staged.
    let file = storage
        .open_file(
            "/job/out/.epoch-00000000000000000001.staged".as_ref(),
            OpenMode::CreateNew,
        )
        .unwrap();
    file.write_all_at(b"one\n", 0).unwrap();
    let (mut sink, manager) = open(&storage);
    let result = SinkCoordinator::recover(manager, &mut [&mut sink]);
    assert!(
        matches!(&result, Err(Error::Sink { operation: "abort", source, .. })
            if source.to_string().contains("no transaction of it names it")),
        "{result:?}"
    );
}

#[test]
fn a_checkpoint_without_the_recovered_sinks_is_refused_and_changes_nothing() {
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    sink.write(b"one\n").unwrap();
    let forgotten = coordinator.checkpoint(CheckpointRequest::new(0), &mut []);
    match forgotten {
        Err(Error::SinkMismatch { registered, given }) => {
            assert_eq!(registered, ["out"]);
            assert!(given.is_empty());
        }
        other => panic!("expected SinkMismatch, got {other:?}"),
    }
    assert!(coordinator.manager().list_checkpoints().unwrap().is_empty());
    // The right call still works: the refusal did not fail the coordinator.
    coordinator
        .checkpoint(CheckpointRequest::new(0), &mut [&mut sink])
        .unwrap();
    assert_eq!(sink.read_committed().unwrap(), b"one\n");
    drop((coordinator, sink));
    let (mut sink, manager) = open(&storage);
    SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    assert_eq!(sink.read_committed().unwrap(), b"one\n");
}

#[test]
fn a_second_live_coordinator_over_the_same_sink_is_refused() {
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let first = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    sink.write(b"one\n").unwrap();
    let other: Arc<CrashSimStorage> = Arc::new(storage.clone());
    let second_manager =
        IncrementalCheckpointManager::new(CheckpointConfig::new("/job/ckpt2").with_storage(other))
            .unwrap();
    let second = SinkCoordinator::recover(second_manager, &mut [&mut sink]);
    match &second {
        Err(Error::Sink {
            operation: "attach",
            source,
            ..
        }) => assert!(
            matches!(
                source.downcast_ref::<Error>(),
                Some(Error::SinkInUse { .. })
            ),
            "{source}"
        ),
        other => panic!("expected SinkInUse, got {other:?}"),
    }
    drop(first);
    let second_manager = IncrementalCheckpointManager::new(
        CheckpointConfig::new("/job/ckpt3").with_storage(Arc::new(storage.clone())),
    )
    .unwrap();
    SinkCoordinator::recover(second_manager, &mut [&mut sink]).unwrap();
}

#[test]
fn a_sink_opened_on_a_file_says_it_is_not_a_directory_not_locked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out");
    std::fs::write(&file, b"not a directory").unwrap();
    match FileSink::open(&file, "out") {
        Err(Error::Io { path, source, .. }) => {
            assert_eq!(path, file);
            assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory, "{source}");
        }
        other => panic!("expected an I/O error naming the file, got {other:?}"),
    }
}

/// The names in the sink's directory other than its lock file.
fn sink_dir_names(storage: &CrashSimStorage) -> Vec<String> {
    storage
        .list_dir("/job/out".as_ref())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != ".lock")
        .collect()
}

#[test]
fn a_crash_at_any_step_of_a_republishing_recovery_recovers_exactly_once() {
    // Epoch 1 is published; a restart re-commits it (republish: copy, rename
    // over, create and remove the staged name, directory fsync). A crash at
    // any operation of that restart, whatever the device kept, must recover
    // to exactly "one\n" with nothing left behind, and must not be stuck.
    let setup = || {
        let storage = CrashSimStorage::new();
        let (mut sink, manager) = open(&storage);
        let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
        sink.write(b"one\n").unwrap();
        coordinator
            .checkpoint(CheckpointRequest::new(0), &mut [&mut sink])
            .unwrap();
        drop((coordinator, sink));
        storage
    };
    let probe = setup();
    let start = probe.operations();
    {
        let (mut sink, manager) = open(&probe);
        SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    }
    let end = probe.operations();
    assert!(end > start + 4, "the restart republished ({start}..{end})");
    let policies = [
        CrashImage::LoseUnsynced,
        CrashImage::KeepUnsynced,
        CrashImage::Torn { seed: 1 },
        CrashImage::Torn { seed: 2 },
        CrashImage::Torn { seed: 3 },
    ];
    let mut failures = Vec::new();
    for n in start..end {
        for policy in policies {
            let storage = setup();
            storage.crash_at(n);
            let _ = (|| -> highwater::Result<()> {
                let shared: Arc<CrashSimStorage> = Arc::new(storage.clone());
                let mut sink = FileSink::open_with(shared.clone(), "/job/out", "out")?;
                let config = CheckpointConfig::new("/job/ckpt").with_storage(shared);
                let manager = IncrementalCheckpointManager::new(config)?;
                SinkCoordinator::recover(manager, &mut [&mut sink])?;
                Ok(())
            })();
            storage.crash();
            let disk = storage.image(policy);
            let recovered = {
                let (mut sink, manager) = open(&disk);
                SinkCoordinator::recover(manager, &mut [&mut sink])
                    .map(|_| sink.read_committed().unwrap())
            };
            match recovered {
                Ok(bytes) if bytes == b"one\n" => {
                    let names = sink_dir_names(&disk);
                    if names != ["epoch-00000000000000000001.out"] {
                        failures.push(format!("crash at {n}, {policy:?}: left {names:?}"));
                    }
                }
                Ok(bytes) => failures.push(format!(
                    "crash at {n}, {policy:?}: output {:?}",
                    String::from_utf8_lossy(&bytes)
                )),
                Err(e) => failures.push(format!("crash at {n}, {policy:?}: stuck: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
