//! Guards of the checkpoint manager (issue 17, cases 4, 5, 6 and 12): a delta
//! is applied only to the checkpoint its state was built from; one writer per
//! checkpoint directory; numbers read from disk never wrap or panic; a
//! checkpoint never drops state it was not asked to drop.

use highwater::inspect::METADATA_FILE;
use highwater::storage::{CrashSimStorage, FsStorage, Storage};
use highwater::{
    CheckpointConfig, CheckpointKind, CheckpointRequest, CheckpointStore, Error, FileSink,
    IncrementalCheckpointManager, PartInput, RecoveryManager, SinkCoordinator, StateSnapshot,
};
use std::path::Path;
use std::sync::Arc;

use crate::common;
use common::guards::{checkpoint_dir, kv, manager_on, offsets, put};

/// Full checkpoint 1 holding `a`, delta checkpoint 2 adding `b`: the state of
/// checkpoint 2 is {a, b}, its offsets 2.
fn two_checkpoints(m: &IncrementalCheckpointManager) {
    m.create_checkpoint_with_state(1, offsets(1), None, &kv(&[("a", "1")]).to_bytes().unwrap())
        .unwrap();
    let second = m
        .create_delta_checkpoint_with_state(2, offsets(2), None, &put("b", "2").to_bytes().unwrap())
        .unwrap();
    assert_eq!(second.parent_id, Some(1));
}

fn state_of(m: &IncrementalCheckpointManager, id: u64) -> StateSnapshot {
    StateSnapshot::from_bytes(&m.store().load_checkpoint_state(id).unwrap()).unwrap()
}

// ---------------------------------------------------------------- case 4

/// After a restart the caller restored checkpoint 2 (state {a, b}). One
/// transient read error while the manager checks checkpoint 2 must not make
/// the next delta apply to checkpoint 1: the delta is refused, nothing is
/// written, and the retried delta builds on checkpoint 2.
#[test]
fn a_transient_read_error_of_the_parent_refuses_the_delta_instead_of_rebasing() {
    let sim = CrashSimStorage::new();
    let dir = Path::new("/ckpt");
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    two_checkpoints(&manager_on(dir, storage.clone()));

    let m = manager_on(dir, storage);
    let restored = StateSnapshot::from_bytes(&m.load_checkpoint_state(2).unwrap()).unwrap();
    assert_eq!(restored, kv(&[("a", "1"), ("b", "2")]));
    common::fail_reads_under(&sim, &checkpoint_dir(dir, 2), 1);
    let delta = put("c", "3").to_bytes().unwrap();
    let refused = m.create_delta_checkpoint_with_state(3, offsets(3), None, &delta);
    // The read error itself, retryable, not a rebase onto checkpoint 1.
    assert!(
        matches!(refused, Err(Error::Io { .. })),
        "a delta was written over the wrong parent: {refused:?}"
    );
    assert_eq!(
        m.store().checkpoint_ids().unwrap(),
        [1, 2],
        "nothing written"
    );

    let third = m
        .create_delta_checkpoint_with_state(3, offsets(3), None, &delta)
        .unwrap();
    assert_eq!(third.parent_id, Some(2));
    assert_eq!(
        state_of(&m, third.id),
        kv(&[("a", "1"), ("b", "2"), ("c", "3")])
    );
}

/// A fresh manager on a directory that holds checkpoints knows nothing of the
/// caller's state: a delta without a named parent is refused with
/// `DeltaParentUnknown`.
#[test]
fn a_delta_from_a_manager_that_restored_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    two_checkpoints(&manager_on(dir.path(), Arc::new(FsStorage)));
    let m = manager_on(dir.path(), Arc::new(FsStorage));
    let err = m
        .create_delta_checkpoint_with_state(3, offsets(3), None, &put("c", "3").to_bytes().unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::DeltaParentUnknown { .. }), "{err}");
    assert_eq!(m.store().checkpoint_ids().unwrap(), [1, 2]);
}

/// A delta whose parent is named explicitly builds on it; one naming a parent
/// that is not the latest restorable checkpoint is refused.
#[test]
fn a_delta_names_its_parent_with_with_parent() {
    let dir = tempfile::tempdir().unwrap();
    two_checkpoints(&manager_on(dir.path(), Arc::new(FsStorage)));
    let m = manager_on(dir.path(), Arc::new(FsStorage));
    let d = put("c", "3");
    let err = m
        .create_checkpoint(
            CheckpointRequest::new(3)
                .with_parent(1)
                .with_part("state", PartInput::Delta(&d)),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DeltaParentMismatch {
                parent: Some(1),
                latest: Some(2),
                ..
            }
        ),
        "{err}"
    );
    let meta = m
        .create_checkpoint(
            CheckpointRequest::new(3)
                .with_offsets(offsets(3))
                .with_parent(2)
                .with_part("state", PartInput::Delta(&d)),
        )
        .unwrap();
    assert_eq!(meta.parent_id, Some(2));
    assert_eq!(
        state_of(&m, meta.id),
        kv(&[("a", "1"), ("b", "2"), ("c", "3")])
    );
}

/// After a point-in-time restore to checkpoint 1, a delta (changes since 1)
/// must not be applied to checkpoint 2: it is refused with
/// `DeltaParentMismatch`; the caller's whole state is written as a full
/// checkpoint.
#[test]
fn a_delta_after_a_point_in_time_restore_is_refused_and_the_whole_state_is_written_in_full() {
    let dir = tempfile::tempdir().unwrap();
    two_checkpoints(&manager_on(dir.path(), Arc::new(FsStorage)));
    let m = manager_on(dir.path(), Arc::new(FsStorage));
    let restored = m.load_snapshot(1, "state").unwrap();
    assert_eq!(restored, kv(&[("a", "1")]));
    let err = m
        .create_delta_checkpoint_with_state(3, offsets(3), None, &put("c", "3").to_bytes().unwrap())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DeltaParentMismatch {
                parent: Some(1),
                latest: Some(2),
                ..
            }
        ),
        "{err}"
    );
    let whole = restored.apply(&put("c", "3"));
    let meta = m
        .create_checkpoint_with_state(3, offsets(3), None, &whole.to_bytes().unwrap())
        .unwrap();
    assert_eq!(meta.kind, CheckpointKind::Full);
    assert_eq!(state_of(&m, meta.id), kv(&[("a", "1"), ("c", "3")]));
}

/// With no restorable checkpoint left (the only one is damaged), a delta from
/// a manager that restored nothing is refused: it would be applied to an
/// empty state.
#[test]
fn a_delta_with_no_restorable_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager_on(dir.path(), Arc::new(FsStorage));
    m.create_checkpoint_with_state(1, offsets(1), None, &kv(&[("a", "1")]).to_bytes().unwrap())
        .unwrap();
    drop(m);
    let part = checkpoint_dir(dir.path(), 1).join("part-state.hwstate");
    let mut bytes = std::fs::read(&part).unwrap();
    let at = bytes.len() - 8;
    bytes[at] ^= 0x40;
    std::fs::write(&part, bytes).unwrap();
    let m = manager_on(dir.path(), Arc::new(FsStorage));
    let refused = m.create_delta_checkpoint_with_state(
        2,
        offsets(2),
        None,
        &put("b", "2").to_bytes().unwrap(),
    );
    assert!(
        matches!(refused, Err(Error::DeltaParentUnknown { .. })),
        "{refused:?}"
    );
}

/// A transient read error of a checkpoint newer than the caller's parent:
/// whether the parent is still the latest is unknown, so the delta is
/// refused (it is not applied to the parent either).
#[test]
fn a_transient_read_error_of_a_newer_checkpoint_refuses_the_delta() {
    let sim = CrashSimStorage::new();
    let dir = Path::new("/ckpt");
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    two_checkpoints(&manager_on(dir, storage.clone()));
    let m = manager_on(dir, storage);
    common::fail_reads_under(&sim, &checkpoint_dir(dir, 2), 1);
    let d = put("c", "3");
    let refused = m.create_checkpoint(
        CheckpointRequest::new(3)
            .with_parent(1)
            .with_part("state", PartInput::Delta(&d)),
    );
    assert!(matches!(refused, Err(Error::Io { .. })), "{refused:?}");
    let refused = m.create_checkpoint(
        CheckpointRequest::new(3)
            .with_parent(1)
            .with_part("state", PartInput::Delta(&d)),
    );
    assert!(
        matches!(
            refused,
            Err(Error::DeltaParentMismatch {
                parent: Some(1),
                latest: Some(2),
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(m.store().checkpoint_ids().unwrap(), [1, 2]);
}

/// A writer restores what it builds on: a read error of the newest
/// checkpoint while recovering through the coordinator (or asking the
/// manager for the latest) is an error, never a restore of an older
/// checkpoint (whose recovery would abort output the newest one owes).
#[test]
fn a_transient_read_error_at_sink_recovery_never_restores_an_older_checkpoint() {
    let (ckpt, out) = (Path::new("/job/ckpt"), Path::new("/job/out"));
    let sim = CrashSimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    two_checkpoints(&manager_on(ckpt, storage.clone()));
    let mut sink = FileSink::open_with(storage.clone(), out, "out").unwrap();

    let m = manager_on(ckpt, storage.clone());
    common::fail_reads_under(&sim, &checkpoint_dir(ckpt, 2), 2);
    let latest = m.find_latest_checkpoint();
    assert!(matches!(latest, Err(Error::Io { .. })), "{latest:?}");
    common::fail_reads_under(&sim, &checkpoint_dir(ckpt, 2), 2);
    let recovered = SinkCoordinator::recover(m, &mut [&mut sink]);
    assert!(matches!(recovered, Err(Error::Io { .. })), "{recovered:?}");

    // One failed read that does not repeat is not a reason to fall back.
    let m = manager_on(ckpt, storage);
    common::fail_reads_under(&sim, &checkpoint_dir(ckpt, 2), 1);
    let coordinator = SinkCoordinator::recover(m, &mut [&mut sink]).unwrap();
    assert_eq!(coordinator.restored().map(|c| c.id), Some(2));
    assert!(coordinator.rejected().is_empty());
}

/// `SinkCoordinator::recover` makes the restored checkpoint the parent: the
/// next delta builds on it after a restart without further ado.
#[test]
fn a_delta_after_sink_coordinator_recovery_builds_on_the_restored_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    let mut sink = FileSink::open(tmp.path().join("out"), "out").unwrap();
    two_checkpoints(&IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap());
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    assert_eq!(coordinator.restored().map(|c| c.id), Some(2));
    let d = put("c", "3");
    let meta = coordinator
        .checkpoint(
            CheckpointRequest::new(3).with_part("state", PartInput::Delta(&d)),
            &mut [&mut sink],
        )
        .unwrap();
    assert_eq!(
        (meta.kind, meta.parent_id),
        (CheckpointKind::Delta, Some(2))
    );
    assert_eq!(
        state_of(coordinator.manager(), meta.id),
        kv(&[("a", "1"), ("b", "2"), ("c", "3")])
    );
}

/// An epoch without changes, repeated past the chain limit: the full
/// checkpoint that closes the chain holds the whole carried-over state.
#[test]
fn a_chain_limit_full_checkpoint_keeps_the_carried_over_state() {
    let dir = tempfile::tempdir().unwrap();
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path())
            .with_max_delta_chain(2)
            .with_max_retained(10),
    )
    .unwrap();
    two_checkpoints(&m);
    let mut kinds = Vec::new();
    for i in 3..6 {
        let meta = m
            .create_checkpoint(CheckpointRequest::new(i).with_offsets(offsets(i)))
            .unwrap();
        kinds.push(meta.kind);
        assert_eq!(state_of(&m, meta.id), kv(&[("a", "1"), ("b", "2")]), "{i}");
    }
    use CheckpointKind::{Delta, Full};
    assert_eq!(kinds, [Delta, Full, Delta]);
}

/// The manager's parent was damaged after it was written: a delta over it is
/// refused with the damage, and the whole state is still written in full.
#[test]
fn a_damaged_parent_refuses_deltas_but_takes_the_whole_state() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager_on(dir.path(), Arc::new(FsStorage));
    two_checkpoints(&m);
    let part = checkpoint_dir(dir.path(), 2).join("part-state.hwstate");
    let len = std::fs::metadata(&part).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let refused = m.create_delta_checkpoint_with_state(
        3,
        offsets(3),
        None,
        &put("c", "3").to_bytes().unwrap(),
    );
    assert!(
        matches!(refused, Err(Error::CheckpointFileMismatch { .. })),
        "{refused:?}"
    );
    let whole = kv(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let meta = m
        .create_checkpoint_with_state(3, offsets(3), None, &whole.to_bytes().unwrap())
        .unwrap();
    assert_eq!(meta.kind, CheckpointKind::Full);
    assert_eq!(state_of(&m, meta.id), whole);
}

/// The obvious flows keep working: full then deltas in one process, and
/// after a restart once the state was loaded through the manager.
#[test]
fn deltas_after_loading_the_state_through_the_manager_build_on_it() {
    let dir = tempfile::tempdir().unwrap();
    two_checkpoints(&manager_on(dir.path(), Arc::new(FsStorage)));
    let m = manager_on(dir.path(), Arc::new(FsStorage));
    let latest = m.find_latest_checkpoint().unwrap().unwrap();
    m.load_checkpoint_state(latest.id).unwrap();
    let meta = m
        .create_delta_checkpoint_with_state(3, offsets(3), None, &put("c", "3").to_bytes().unwrap())
        .unwrap();
    assert_eq!(
        (meta.kind, meta.parent_id),
        (CheckpointKind::Delta, Some(2))
    );
    assert_eq!(state_of(&m, 3), kv(&[("a", "1"), ("b", "2"), ("c", "3")]));
}

// ---------------------------------------------------------------- case 5

/// A second manager on a directory, in the same process, is refused with
/// `Locked` and leaves the first one's temporary directory alone; readers
/// need no lock.
#[test]
fn a_second_manager_on_the_same_directory_is_locked_out() {
    let sim = CrashSimStorage::new();
    let fs: Arc<dyn Storage> = Arc::new(FsStorage);
    let sim: Arc<dyn Storage> = Arc::new(sim);
    for storage in [fs, sim] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ckpt");
        let first = manager_on(&dir, storage.clone());
        first
            .create_checkpoint_with_state(1, offsets(1), None, b"state")
            .unwrap();
        // The first writer's checkpoint in flight.
        let in_flight = dir.join(format!(".tmp-checkpoint-{:020}", 2));
        storage.create_dir_all(&in_flight).unwrap();

        let second = IncrementalCheckpointManager::new(
            CheckpointConfig::new(&dir).with_storage(storage.clone()),
        );
        assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
        assert!(
            storage.exists(&in_flight).unwrap(),
            "the second manager removed the first one's temporary directory"
        );

        // Readers work alongside the writer.
        let store = CheckpointStore::with_storage(storage.clone(), &dir);
        assert_eq!(store.find_latest().unwrap().metadata.unwrap().id, 1);
        assert_eq!(store.checkpoint_ids().unwrap(), [1]);
        assert!(store.verify_all(&mut |_| {}).unwrap()[0].is_restorable());

        // Once the first one is gone the directory can be opened again, and
        // the leftover is cleaned by the new lock holder.
        drop(first);
        let third = manager_on(&dir, storage.clone());
        assert!(!storage.exists(&in_flight).unwrap());
        drop(third);
    }
}

/// Recovery and validation read a locked directory, and the lock file is
/// never taken for a checkpoint.
#[test]
fn recovery_reads_a_directory_a_writer_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, wal) = (tmp.path().join("ckpt"), tmp.path().join("wal"));
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    m.create_checkpoint_with_state(0, offsets(1), None, &kv(&[("a", "1")]).to_bytes().unwrap())
        .unwrap();
    let recovered = RecoveryManager::recover_simple(&ckpt, &wal).unwrap();
    assert_eq!(recovered.checkpoint_id, Some(1));
    assert_eq!(recovered.state_snapshot.unwrap(), kv(&[("a", "1")]));
    highwater::validate_checkpoint(checkpoint_dir(&ckpt, 1)).unwrap();
    let names: Vec<String> = std::fs::read_dir(&ckpt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "one checkpoint and the lock file: {names:?}"
    );
    assert_eq!(m.list_checkpoints().unwrap().len(), 1);
}

// ---------------------------------------------------------------- case 6

/// A directory named with the largest id: the next id does not exist. The
/// manager says so with a typed error naming the directory, instead of
/// wrapping to 0 (or panicking).
#[test]
fn a_checkpoint_id_of_u64_max_on_disk_is_a_typed_error_not_a_wrap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("checkpoint-18446744073709551615")).unwrap();
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path())).unwrap();
    let err = m
        .create_checkpoint_with_state(1, offsets(1), None, b"s")
        .unwrap_err();
    assert!(
        matches!(err, Error::CheckpointIdExhausted { id: u64::MAX, .. }),
        "{err}"
    );
    assert_eq!(
        err.path(),
        Some(dir.path().join("checkpoint-18446744073709551615").as_path())
    );
    assert!(!checkpoint_dir(dir.path(), 0).exists());
}

/// A restored epoch of `u64::MAX` has no successor: a typed error, no wrap.
#[test]
fn an_epoch_of_u64_max_on_disk_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let m =
        IncrementalCheckpointManager::new(CheckpointConfig::new(tmp.path().join("ckpt"))).unwrap();
    m.set_epoch(u64::MAX);
    m.create_checkpoint_with_state(1, offsets(1), None, b"s")
        .unwrap();
    drop(m);
    let m =
        IncrementalCheckpointManager::new(CheckpointConfig::new(tmp.path().join("ckpt"))).unwrap();
    let mut sink = FileSink::open(tmp.path().join("out"), "out").unwrap();
    let err = SinkCoordinator::recover(m, &mut [&mut sink]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::EpochExhausted {
                epoch: u64::MAX,
                ..
            }
        ),
        "{err}"
    );
}

/// Rewrites the metadata body of checkpoint `id` with `edit`, recomputing its
/// checksum so that it verifies.
fn rewrite_metadata(dir: &Path, id: u64, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = checkpoint_dir(dir, id).join(METADATA_FILE);
    let mut envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut body = envelope["body"].clone();
    edit(&mut body);
    let body_text = serde_json::to_string(&body).unwrap();
    let raw = serde_json::value::RawValue::from_string(body_text.clone()).unwrap();
    let out = serde_json::json!({
        "format": envelope["format"].take(),
        "version": envelope["version"].take(),
        "body_crc32c": crc32c::crc32c(body_text.as_bytes()),
        "body": raw,
    });
    std::fs::write(&path, serde_json::to_vec(&out).unwrap()).unwrap();
}

/// A chain length of `u32::MAX` read from disk makes that checkpoint (and the
/// deltas over it) unrestorable, without an overflow.
#[test]
fn a_chain_length_of_u32_max_on_disk_is_rejected_without_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let m =
        IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()).with_max_retained(10))
            .unwrap();
    two_checkpoints(&m);
    m.create_delta_checkpoint_with_state(3, offsets(3), None, &put("c", "3").to_bytes().unwrap())
        .unwrap();
    drop(m);
    rewrite_metadata(dir.path(), 2, |body| {
        body["chain_length"] = serde_json::json!(u32::MAX);
    });
    let store = CheckpointStore::new(dir.path());
    let latest = store.find_latest().unwrap();
    assert_eq!(latest.metadata.unwrap().id, 1);
    assert_eq!(
        latest.rejected.iter().map(|r| r.id).collect::<Vec<_>>(),
        [3, 2]
    );
}

// ---------------------------------------------------------------- case 12

/// An epoch in which nothing changed checkpoints its offsets only (as the
/// `FileSink` example does): the state of the previous checkpoint is carried
/// over, and recovery returns it with the new offsets.
#[test]
fn an_epoch_without_changes_keeps_the_previous_state() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, wal) = (tmp.path().join("ckpt"), tmp.path().join("wal"));
    let mut sink = FileSink::open(tmp.path().join("out"), "out").unwrap();
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    let state = kv(&[("a", "1")]);
    coordinator
        .checkpoint(
            CheckpointRequest::new(0)
                .with_offsets(offsets(1))
                .with_part("state", PartInput::Snapshot(&state)),
            &mut [&mut sink],
        )
        .unwrap();
    coordinator
        .checkpoint(
            CheckpointRequest::new(0).with_offsets(offsets(2)),
            &mut [&mut sink],
        )
        .unwrap();
    drop(coordinator);
    let recovered = RecoveryManager::recover_simple(&ckpt, &wal).unwrap();
    assert_eq!(recovered.checkpoint_id, Some(2));
    assert_eq!(recovered.source_offsets, offsets(2));
    assert_eq!(recovered.state_snapshot, Some(state));
}

/// A request that does not mention a part carries it over, whatever else it
/// holds; a part is dropped only on request.
#[test]
fn a_part_not_mentioned_is_carried_over_and_dropped_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let m =
        IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()).with_max_retained(10))
            .unwrap();
    let (users, orders) = (kv(&[("u", "1")]), kv(&[("o", "1")]));
    m.create_checkpoint(
        CheckpointRequest::new(1)
            .with_part("users", PartInput::Snapshot(&users))
            .with_part("orders", PartInput::Snapshot(&orders)),
    )
    .unwrap();
    // A full part for "users" only: "orders" is carried over.
    let users2 = kv(&[("u", "2")]);
    let second = m
        .create_checkpoint(
            CheckpointRequest::new(2).with_part("users", PartInput::Snapshot(&users2)),
        )
        .unwrap();
    assert_eq!(
        second.kind,
        CheckpointKind::Delta,
        "orders carried by reference"
    );
    assert_eq!(m.store().load_snapshot(second.id, "users").unwrap(), users2);
    assert_eq!(
        m.store().load_snapshot(second.id, "orders").unwrap(),
        orders
    );
    // The single-part seed call carries the other parts over too.
    let third = m
        .create_checkpoint_with_state(3, offsets(3), None, b"opaque")
        .unwrap();
    let mut names = m.store().part_names(third.id).unwrap();
    names.sort();
    assert_eq!(names, ["orders", "state", "users"]);
    // Dropping is explicit.
    let fourth = m
        .create_checkpoint(CheckpointRequest::new(4).drop_part("orders"))
        .unwrap();
    assert_eq!(fourth.kind, CheckpointKind::Full);
    let mut names = m.store().part_names(fourth.id).unwrap();
    names.sort();
    assert_eq!(names, ["state", "users"]);
    assert_eq!(m.store().load_snapshot(fourth.id, "users").unwrap(), users2);
}

/// Set in the child process of
/// `a_second_manager_in_another_process_is_locked_out`.
const PROBE_ENV: &str = "HIGHWATER_LOCK_PROBE_DIR";

/// Run as a child process by the test below: opens a manager on the
/// directory named by `PROBE_ENV` and must be refused with `Locked`. Without
/// the variable (a normal test run) there is nothing to probe.
#[test]
fn lock_probe_child() {
    let Ok(dir) = std::env::var(PROBE_ENV) else {
        return;
    };
    let opened = IncrementalCheckpointManager::new(CheckpointConfig::new(dir));
    assert!(matches!(opened, Err(Error::Locked { .. })), "{opened:?}");
}

/// Another process cannot open a manager on a directory this one writes.
#[test]
fn a_second_manager_in_another_process_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let _writer = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path())).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "checkpoint_guards::lock_probe_child",
            "--test-threads",
            "1",
        ])
        .env(PROBE_ENV, dir.path())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "the child opened the directory or failed otherwise: {}",
        String::from_utf8_lossy(&status.stdout)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("1 passed"));
}

mod checkpoints_given_the_log {
    use super::*;
    use highwater::{SyncPolicy, WalEntry, WalOptions, WriteAheadLog};

    fn wal_put(key: &str) -> WalEntry {
        WalEntry::Put {
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
        }
    }

    fn commit() -> WalEntry {
        WalEntry::Commit {
            offsets: offsets(1),
            watermark: None,
        }
    }

    fn manual_log(dir: &Path) -> WriteAheadLog {
        WriteAheadLog::open(
            dir,
            WalOptions::default().with_sync_policy(SyncPolicy::Manual),
        )
        .unwrap()
    }

    #[test]
    fn a_checkpoint_beyond_the_log_or_inside_a_transaction_is_refused_when_made() {
        let dir = tempfile::tempdir().unwrap();
        let wal = manual_log(&dir.path().join("wal"));
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path().join("ckpt")))
            .unwrap();
        wal.append(&wal_put("a")).unwrap();
        let inside = wal.position();
        wal.append(&wal_put("b")).unwrap();
        wal.append(&commit()).unwrap();
        let end = wal.position();

        let beyond = m.create_checkpoint(CheckpointRequest::new(1_000_000).with_wal(&wal));
        assert!(
            matches!(beyond, Err(Error::PositionBeyondEnd { position: 1_000_000, end: e, .. }) if e == end),
            "{beyond:?}"
        );
        let mid = m.create_checkpoint(CheckpointRequest::new(inside).with_wal(&wal));
        assert!(
            matches!(mid, Err(Error::NotACommitBoundary { position, last_commit_end: Some(e), .. }) if position == inside && e == end),
            "{mid:?}"
        );
        assert!(
            m.list_checkpoints().unwrap().is_empty(),
            "nothing was written"
        );

        // At the commit's end: accepted, and the log is durable through it.
        assert!(wal.durable_position() < end);
        m.create_checkpoint(CheckpointRequest::new(end).with_wal(&wal))
            .unwrap();
        assert!(wal.durable_position() >= end, "the manager synced the log");
    }

    #[test]
    fn after_a_reopen_the_log_knows_whether_its_end_closes_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        let wal = manual_log(&wal_dir);
        wal.append(&wal_put("a")).unwrap();
        wal.append(&commit()).unwrap();
        wal.close().unwrap(); // appends a sync marker after the Commit
        let wal = manual_log(&wal_dir);
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path().join("ckpt")))
            .unwrap();
        m.create_checkpoint(CheckpointRequest::new(wal.position()).with_wal(&wal))
            .unwrap();
        // An uncommitted Put at the end: not a boundary until its Commit.
        wal.append(&wal_put("b")).unwrap();
        let open = m.create_checkpoint(CheckpointRequest::new(wal.position()).with_wal(&wal));
        assert!(
            matches!(open, Err(Error::NotACommitBoundary { .. })),
            "{open:?}"
        );
        wal.append(&commit()).unwrap();
        m.create_checkpoint(CheckpointRequest::new(wal.position()).with_wal(&wal))
            .unwrap();
    }

    #[test]
    fn the_position_recovery_returns_is_a_boundary_after_the_log_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let (wal_dir, ckpt) = (dir.path().join("wal"), dir.path().join("ckpt"));
        let wal = WriteAheadLog::open(
            &wal_dir,
            WalOptions::default()
                .with_sync_policy(SyncPolicy::Manual)
                .with_segment_size(4096),
        )
        .unwrap();
        for i in 0..6u8 {
            wal.append(&WalEntry::Put {
                key: vec![i],
                value: vec![0; 900],
            })
            .unwrap();
            wal.append(&commit()).unwrap();
        }
        wal.close().unwrap(); // a sync marker after the last Commit
        let recovered = highwater::RecoveryManager::recover_simple(&ckpt, &wal_dir).unwrap();
        let wal = manual_log(&wal_dir);
        assert!(
            wal.position() > recovered.wal_position,
            "the marker follows"
        );
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
        m.create_checkpoint(CheckpointRequest::new(recovered.wal_position).with_wal(&wal))
            .unwrap();
        m.create_checkpoint(CheckpointRequest::new(wal.position()).with_wal(&wal))
            .unwrap();
    }

    #[test]
    fn a_newest_segment_of_markers_only_takes_its_state_from_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let (wal_dir, ckpt) = (dir.path().join("wal"), dir.path().join("ckpt"));
        let options = || {
            WalOptions::default()
                .with_sync_policy(SyncPolicy::Manual)
                .with_segment_size(4096)
        };
        let wal = WriteAheadLog::open(&wal_dir, options()).unwrap();
        // Fill the segment with committed transactions, then markers until
        // one rotates into a fresh segment.
        while wal.stats().segments_created < 2 {
            if wal.position() < 3000 {
                wal.append(&wal_put("k")).unwrap();
                wal.append(&commit()).unwrap();
            } else {
                wal.append(&WalEntry::Checkpoint { id: 1 }).unwrap();
            }
        }
        wal.sync().unwrap();
        drop(wal);
        let wal = WriteAheadLog::open(&wal_dir, options()).unwrap();
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
        m.create_checkpoint(CheckpointRequest::new(wal.position()).with_wal(&wal))
            .unwrap();
    }
}

#[test]
fn after_a_seed_style_recovery_restored_from_names_the_parent_of_the_next_delta() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, wal) = (dir.path().join("ckpt"), dir.path().join("wal"));
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    two_checkpoints(&m);
    drop(m);

    let recovered = highwater::RecoveryManager::recover_simple(&ckpt, &wal).unwrap();
    assert_eq!(recovered.checkpoint_id, Some(2));
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let delta = put("c", "3").to_bytes().unwrap();
    let unknown = m.create_delta_checkpoint_with_state(3, offsets(3), None, &delta);
    assert!(
        matches!(unknown, Err(Error::DeltaParentUnknown { .. })),
        "{unknown:?}"
    );
    m.restored_from(recovered.checkpoint_id);
    let third = m
        .create_delta_checkpoint_with_state(3, offsets(3), None, &delta)
        .unwrap();
    assert_eq!(third.parent_id, Some(2));
    let state = state_of(&m, third.id);
    assert_eq!(state.get(b"a"), Some(&b"1"[..]));
    assert_eq!(state.get(b"c"), Some(&b"3"[..]));
}
