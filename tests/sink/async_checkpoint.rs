//! `SinkCoordinator::begin_checkpoint` / `finish_checkpoint`: the checkpoint
//! is written in the background, the sinks commit only once it is durable and
//! only on a later call, a failed one keeps its transactions pending for the
//! next, and a crash with one in flight recovers exactly once.

use highwater::storage::{CrashImage, CrashSimStorage, SimFault, SimGate, SimOp};
use highwater::{
    CheckpointConfig, CheckpointRequest, Error, FileSink, IncrementalCheckpointManager,
    SinkCoordinator, StateSnapshot,
};
use std::sync::Arc;
use std::time::Duration;

fn open(storage: &CrashSimStorage) -> (FileSink, IncrementalCheckpointManager) {
    let storage: Arc<CrashSimStorage> = Arc::new(storage.clone());
    let sink = FileSink::open_with(storage.clone(), "/job/out", "out").unwrap();
    let config = CheckpointConfig::new("/job/ckpt").with_storage(storage);
    (sink, IncrementalCheckpointManager::new(config).unwrap())
}

fn state(n: u8) -> StateSnapshot {
    StateSnapshot::new(vec![(b"n".to_vec(), vec![n])])
}

#[test]
fn the_sinks_commit_only_after_the_checkpoint_is_durable_on_a_later_call() {
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    let gate = SimGate::new();
    storage.inject(SimFault::pause(SimOp::Rename, &gate).under("/job/ckpt"));
    sink.write(b"one\n").unwrap();
    let ticket = coordinator
        .begin_checkpoint(
            CheckpointRequest::new(0).with_owned_part("state", state(1)),
            &mut [&mut sink],
        )
        .unwrap();
    assert_eq!(coordinator.checkpoint_in_flight(), Some(ticket));
    assert_eq!(coordinator.epoch(), 2, "the next epoch has begun");
    assert!(gate.wait_arrivals(1, Duration::from_secs(30)));
    assert!(coordinator
        .poll_checkpoint(&mut [&mut sink])
        .unwrap()
        .is_none());
    assert!(sink.committed_epochs().unwrap().is_empty());
    // Processing goes on in epoch 2 while epoch 1's checkpoint is written.
    sink.write(b"two\n").unwrap();
    gate.open();
    // Durable now, but the sink commits only when the coordinator is told.
    let checkpoint = loop {
        if let Some(c) = coordinator.poll_checkpoint(&mut [&mut sink]).unwrap() {
            break c;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(checkpoint.epoch, 1);
    assert_eq!(checkpoint.sink_transactions.len(), 1);
    assert_eq!(sink.committed_epochs().unwrap(), [1]);
    assert_eq!(sink.read_committed().unwrap(), b"one\n");
    assert!(coordinator.pending().is_empty());
    assert!(coordinator
        .finish_checkpoint(&mut [&mut sink])
        .unwrap()
        .is_none());
}

#[test]
fn a_failed_background_checkpoint_keeps_its_transactions_for_the_next() {
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    storage.inject(SimFault::new(SimOp::Rename).under("/job/ckpt"));
    sink.write(b"one\n").unwrap();
    coordinator
        .begin_checkpoint(
            CheckpointRequest::new(0).with_owned_part("state", state(1)),
            &mut [&mut sink],
        )
        .unwrap();
    let failed = coordinator.finish_checkpoint(&mut [&mut sink]);
    assert!(matches!(failed, Err(Error::Io { .. })), "{failed:?}");
    assert_eq!(coordinator.pending().len(), 1);
    assert_eq!(coordinator.epoch(), 2, "the next epoch began anyway");
    assert!(sink.committed_epochs().unwrap().is_empty());
    sink.write(b"two\n").unwrap();
    coordinator
        .begin_checkpoint(
            CheckpointRequest::new(0).with_owned_part("state", state(2)),
            &mut [&mut sink],
        )
        .unwrap();
    let checkpoint = coordinator
        .finish_checkpoint(&mut [&mut sink])
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint.epoch, 2);
    let epochs: Vec<u64> = checkpoint
        .sink_transactions
        .iter()
        .map(|t| t.epoch)
        .collect();
    assert_eq!(epochs, [1, 2], "the failed epoch is recorded in the next");
    assert_eq!(sink.committed_epochs().unwrap(), [1, 2]);
    assert_eq!(sink.read_committed().unwrap(), b"one\ntwo\n");
}

#[test]
fn beginning_a_checkpoint_finishes_the_one_in_flight_first() {
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    for (n, line) in [(1, "one\n"), (2, "two\n")] {
        sink.write(line.as_bytes()).unwrap();
        coordinator
            .begin_checkpoint(
                CheckpointRequest::new(0).with_owned_part("state", state(n)),
                &mut [&mut sink],
            )
            .unwrap();
    }
    // Epoch 1 was finished (committed) before epoch 2 was pre-committed.
    assert!(sink.committed_epochs().unwrap().contains(&1));
    let first = coordinator
        .finish_checkpoint(&mut [&mut sink])
        .unwrap()
        .unwrap();
    let second = coordinator
        .finish_checkpoint(&mut [&mut sink])
        .unwrap()
        .unwrap();
    assert_eq!((first.epoch, second.epoch), (1, 2));
    assert_eq!(second.parent_id, None, "a whole state needs no parent");
    assert_eq!(
        second
            .sink_transactions
            .iter()
            .map(|t| t.epoch)
            .collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(sink.committed_epochs().unwrap(), [1, 2]);
    // A synchronous checkpoint afterwards goes on from there.
    sink.write(b"three\n").unwrap();
    let third = coordinator
        .checkpoint(
            CheckpointRequest::new(0).with_owned_part("state", state(3)),
            &mut [&mut sink],
        )
        .unwrap();
    assert_eq!(third.epoch, 3);
    assert_eq!(sink.read_committed().unwrap(), b"one\ntwo\nthree\n");
}

#[test]
fn finishing_with_other_sinks_is_refused_and_keeps_the_outcome() {
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut other = FileSink::open_with(Arc::new(storage.clone()), "/job/other", "other").unwrap();
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    sink.write(b"one\n").unwrap();
    coordinator
        .begin_checkpoint(CheckpointRequest::new(0), &mut [&mut sink])
        .unwrap();
    let refused = coordinator.finish_checkpoint(&mut [&mut other]);
    assert!(
        matches!(refused, Err(Error::SinkMismatch { .. })),
        "{refused:?}"
    );
    assert!(coordinator
        .finish_checkpoint(&mut [&mut sink])
        .unwrap()
        .is_some());
    assert_eq!(sink.committed_epochs().unwrap(), [1]);
}

#[test]
fn a_crash_with_a_checkpoint_in_flight_recovers_exactly_once() {
    let storage = CrashSimStorage::new();
    let (mut sink, manager) = open(&storage);
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    sink.write(b"one\n").unwrap();
    coordinator
        .checkpoint(
            CheckpointRequest::new(0).with_owned_part("state", state(1)),
            &mut [&mut sink],
        )
        .unwrap();
    let gate = SimGate::new();
    storage.inject(SimFault::pause(SimOp::SyncDir, &gate).under("/job/ckpt"));
    sink.write(b"two\n").unwrap();
    coordinator
        .begin_checkpoint(
            CheckpointRequest::new(0).with_owned_part("state", state(2)),
            &mut [&mut sink],
        )
        .unwrap();
    assert!(gate.wait_arrivals(1, Duration::from_secs(30)));
    // Crash: epoch 2 is pre-committed, its checkpoint not yet published.
    let image = storage.image(CrashImage::LoseUnsynced);
    gate.open();
    drop(coordinator);
    let (mut sink, manager) = open(&image);
    let coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    let restored = coordinator.restored().unwrap();
    assert_eq!(restored.epoch, 1);
    assert_eq!(
        coordinator
            .manager()
            .load_snapshot(restored.id, "state")
            .unwrap(),
        state(1)
    );
    assert_eq!(sink.read_committed().unwrap(), b"one\n");
}
