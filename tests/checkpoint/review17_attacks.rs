//! Attacks from review 17 on the checkpoint guards and the WAL floor.

use highwater::storage::{CrashSimStorage, FsStorage, OpenMode, Storage};
use highwater::{CheckpointConfig, Error, IncrementalCheckpointManager, StateSnapshot};
use std::path::Path;
use std::sync::Arc;

use common::guards::{checkpoint_dir, kv, manager_on, offsets, put};

/// One transient read error of a delta's metadata must not let
/// `delete_checkpoint` remove the checkpoint that delta builds on: the
/// dependent is not known to be absent, so the deletion is refused.
#[test]
fn a_transient_read_error_of_a_dependent_never_lets_its_parent_be_deleted() {
    let sim = CrashSimStorage::new();
    let dir = Path::new("/ckpt");
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let m = manager_on(dir, storage);
    m.create_checkpoint_with_state(1, offsets(1), None, &kv(&[("a", "1")]).to_bytes().unwrap())
        .unwrap();
    let second = m
        .create_delta_checkpoint_with_state(2, offsets(2), None, &put("b", "2").to_bytes().unwrap())
        .unwrap();
    assert_eq!(second.parent_id, Some(1));

    common::fail_reads_under(&sim, &checkpoint_dir(dir, 2), 1);
    let deleted = m.delete_checkpoint(1);
    assert!(
        deleted.is_err(),
        "checkpoint 1 was deleted while delta 2 builds on it"
    );
    assert!(
        matches!(
            deleted,
            Err(Error::Io { .. }) | Err(Error::CheckpointHasDependents { .. })
        ),
        "{deleted:?}"
    );
    // Checkpoint 2 is still restorable.
    let state = StateSnapshot::from_bytes(&m.store().load_checkpoint_state(2).unwrap()).unwrap();
    assert_eq!(state.get(b"a"), Some(&b"1"[..]));
    assert_eq!(state.get(b"b"), Some(&b"2"[..]));
}

use crate::common;

use highwater::{RecoveryConfig, RecoveryManager, SyncPolicy, WalOptions, WriteAheadLog};

/// A job checkpoints at `wal.position()` (the case issue 17 case 9 names),
/// then the log's fsync fails: the poisoned writer leaves its mark at the
/// durable position, below the checkpoint's. Recovery returns the checkpoint;
/// the reopened log cuts back to the mark. It must not then reuse positions
/// the checkpoint already covers: commits acknowledged after the restart must
/// be replayed by the next recovery.
#[test]
fn a_poison_mark_below_a_checkpoint_never_makes_the_log_reuse_its_positions() {
    let (ckpt, wal_dir) = (Path::new("/job/ckpt"), Path::new("/job/wal"));
    let sim = CrashSimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let options = || {
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(storage.clone())
    };
    let wal = WriteAheadLog::open(wal_dir, options()).unwrap();
    wal.append(&common::put("a", "1")).unwrap();
    wal.append(&common::commit(1)).unwrap();
    wal.sync().unwrap();
    let durable = wal.durable_position();
    wal.append(&common::put("b", "2")).unwrap();
    wal.append(&common::commit(2)).unwrap();
    let position = wal.position();
    assert!(position > durable);
    // The checkpoint holds the state after both transactions.
    common::checkpoint_on(
        storage.clone(),
        ckpt,
        position,
        "src-0",
        2,
        &[("a", "1"), ("b", "2")],
    );
    common::fail_every_sync(&sim);
    assert!(wal.sync().is_err());
    drop(wal);
    sim.clear_faults();

    // Restart: recover, reopen, append and acknowledge two transactions.
    let config = || {
        RecoveryConfig::new(ckpt, wal_dir)
            .with_collect_state_changes(true)
            .with_storage(storage.clone())
    };
    let first = RecoveryManager::new(config()).recover().unwrap();
    assert_eq!(first.wal_position, position);
    let wal = WriteAheadLog::open(wal_dir, options()).unwrap();
    assert!(
        wal.position() >= position,
        "the log continues at {} after a checkpoint at {position}: positions are reused",
        wal.position()
    );
    wal.append(&common::put("c", "3")).unwrap();
    wal.append(&common::commit(3)).unwrap();
    wal.append(&common::put("d", "4")).unwrap();
    wal.append(&common::commit(4)).unwrap();
    wal.sync().unwrap();
    drop(wal);

    let second = RecoveryManager::new(config()).recover().unwrap();
    let state = second.current_state().unwrap();
    assert_eq!(
        state.get(b"c"),
        Some(&b"3"[..]),
        "acknowledged commit 3 lost"
    );
    assert_eq!(
        state.get(b"d"),
        Some(&b"4"[..]),
        "acknowledged commit 4 lost"
    );
}

/// The poisoned writer's mark is below a floor that recovery raised (damage
/// below the checkpoint released). The next open must still open the log (the
/// records below the floor are released anyway), not refuse it for good.
#[test]
fn a_poison_mark_below_the_floor_never_makes_the_log_unopenable() {
    let (ckpt, wal_dir) = (Path::new("/job/ckpt"), Path::new("/job/wal"));
    let sim = CrashSimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let options = || {
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(storage.clone())
    };
    let wal = WriteAheadLog::open(wal_dir, options()).unwrap();
    wal.append(&common::put("a", "1")).unwrap();
    wal.append(&common::commit(1)).unwrap();
    wal.sync().unwrap();
    wal.append(&common::put("b", "2")).unwrap();
    wal.append(&common::commit(2)).unwrap();
    let position = wal.position();
    common::checkpoint_on(
        storage.clone(),
        ckpt,
        position,
        "src-0",
        2,
        &[("a", "1"), ("b", "2")],
    );
    common::fail_every_sync(&sim);
    assert!(wal.sync().is_err());
    drop(wal);
    sim.clear_faults();
    // One flipped bit in the first record, which the checkpoint covers.
    let segment = wal_dir.join(highwater::inspect::segment_file_name(0));
    let file = sim.open_file(&segment, OpenMode::ReadWrite).unwrap();
    let at = highwater::inspect::SEGMENT_HEADER_LEN + 12;
    let mut byte = [0];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 1], at).unwrap();

    let recovered =
        RecoveryManager::new(RecoveryConfig::new(ckpt, wal_dir).with_storage(storage.clone()))
            .recover()
            .unwrap();
    assert_eq!(recovered.wal_position, position);
    let wal = WriteAheadLog::open(wal_dir, options());
    assert!(wal.is_ok(), "{:?}", wal.err());
    let wal = wal.unwrap();
    assert!(wal.position() >= position, "{}", wal.position());
}

mod mark_rewrite {
    use super::common::read_all;
    use highwater::storage::{CrashImage, CrashSimStorage, SimFault, SimOp, Storage};
    use highwater::{SyncPolicy, WalEntry, WalOptions, WalReadResult, WriteAheadLog};
    use std::path::Path;
    use std::sync::Arc;

    const WAL: &str = "/job/wal";

    fn big(key: &str) -> WalEntry {
        WalEntry::Put {
            key: key.as_bytes().to_vec(),
            value: vec![7; 1000],
        }
    }

    fn open(sim: &CrashSimStorage) -> highwater::Result<WriteAheadLog> {
        WriteAheadLog::open(
            WAL,
            WalOptions::default()
                .with_sync_policy(SyncPolicy::EveryWrite)
                .with_segment_size(4096)
                .with_storage(Arc::new(sim.clone())),
        )
    }

    fn segment_path(sim: &CrashSimStorage) -> std::path::PathBuf {
        let entries = sim.list_dir(Path::new(WAL)).unwrap();
        let name = entries
            .iter()
            .map(|e| e.name.clone())
            .find(|n| n.ends_with(".wal"))
            .unwrap();
        Path::new(WAL).join(name)
    }

    /// A poisoned writer left its mark at the durable position. The next open
    /// fails while cutting back to it (one failed truncate). That failure must
    /// not replace the mark with the reopened log's own end (which includes
    /// the records the device dropped): the open after it must still cut them.
    #[test]
    fn a_failed_cut_back_never_rewrites_the_poison_mark_past_the_lost_records() {
        let sim = CrashSimStorage::new();
        let wal = open(&sim).unwrap();
        wal.append(&big("synced")).unwrap();
        wal.set_sync_on_write(false);
        wal.append(&big("lost")).unwrap();
        let _ = wal.read_from(0).unwrap();
        sim.fail_writeback(&segment_path(&sim)).unwrap();
        assert!(wal.sync().is_err());
        drop(wal);

        sim.inject(SimFault::new(SimOp::Truncate).on_path(".wal"));
        assert!(open(&sim).is_err(), "the cut back failed");

        let wal = open(&sim).unwrap();
        let (entries, _) = read_all(&mut wal.read_from(0).unwrap());
        let keys: Vec<String> = entries
            .iter()
            .map(|e| match e {
                WalEntry::Put { key, .. } => String::from_utf8_lossy(key).into_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(
            !entries.contains(&big("lost")),
            "the reopened log vouches for a record the device dropped: {keys:?}"
        );
        wal.append(&big("after")).unwrap();
        drop(wal);
        sim.crash();
        let image = sim.image(CrashImage::LoseUnsynced);
        let wal = WriteAheadLog::open(
            WAL,
            WalOptions::default()
                .with_sync_policy(SyncPolicy::Manual)
                .with_storage(Arc::new(image)),
        )
        .expect("the log of a power loss opens");
        wal.repair().unwrap();
        let (kept, end) = read_all(&mut wal.read_from(0).unwrap());
        assert_eq!(end, WalReadResult::Eof);
        assert!(
            kept.contains(&big("after")),
            "acknowledged 'after' lost ({} entries kept)",
            kept.len()
        );
    }
}

/// The poisoned writer's mark is at the checkpoint's position; one more
/// transaction was written after it, never acknowledged (its fsync failed).
/// A read-only recovery (repair off) must not return that transaction: the
/// next open of the log cuts it, so a state built on it would hold changes the
/// log no longer has (and the device may never have had).
#[test]
fn a_read_only_recovery_never_returns_records_after_a_poison_mark() {
    let (ckpt, wal_dir) = (Path::new("/job/ckpt"), Path::new("/job/wal"));
    let sim = CrashSimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let options = || {
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(storage.clone())
    };
    let wal = WriteAheadLog::open(wal_dir, options()).unwrap();
    wal.append(&common::put("a", "1")).unwrap();
    wal.append(&common::commit(1)).unwrap();
    wal.sync().unwrap();
    let durable = wal.durable_position();
    common::checkpoint_on(storage.clone(), ckpt, durable, "src-0", 1, &[("a", "1")]);
    wal.append(&common::put("b", "2")).unwrap();
    wal.append(&common::commit(2)).unwrap();
    common::fail_every_sync(&sim);
    assert!(wal.sync().is_err(), "transaction 2 is never acknowledged");
    drop(wal);
    sim.clear_faults();

    let config = || {
        RecoveryConfig::new(ckpt, wal_dir)
            .with_collect_state_changes(true)
            .with_storage(storage.clone())
    };
    let read_only = RecoveryManager::new(config().with_repair_wal(false))
        .recover()
        .unwrap();
    let writing = RecoveryManager::new(config()).recover().unwrap();
    assert_eq!(writing.current_state().unwrap().get(b"b"), None);
    assert_eq!(
        read_only.current_state().unwrap().get(b"b"),
        None,
        "a read-only recovery returned a transaction the poisoned writer never acknowledged \
         and the next open cut (positions {} vs {})",
        read_only.wal_position,
        writing.wal_position
    );
}

/// Bounded replay over logs holding Checkpoint markers (between and inside
/// transactions), Watermarks entries and uncommitted tails, with repair on:
/// the pieces joined equal one unbounded replay.
mod joined_pieces_with_markers {
    use super::common::{checkpoint_at, manual};
    use highwater::{RecoveryConfig, RecoveryManager, WalEntry};
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::path::Path;

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8),
        Delete(u8),
        Commit(u8),
        Watermarks(u8),
        Marker(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..8u8, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            1 => (0..8u8).prop_map(Op::Delete),
            2 => any::<u8>().prop_map(Op::Commit),
            1 => any::<u8>().prop_map(Op::Watermarks),
            2 => any::<u8>().prop_map(Op::Marker),
        ]
    }

    fn entry(op: &Op) -> WalEntry {
        match op {
            Op::Put(k, v) => WalEntry::Put {
                key: vec![*k],
                value: vec![*v],
            },
            Op::Delete(k) => WalEntry::Delete { key: vec![*k] },
            Op::Commit(o) => WalEntry::Commit {
                offsets: HashMap::from([(format!("s{}", o % 3), u64::from(*o))]),
                watermark: (o % 2 == 0).then_some(i64::from(*o)),
            },
            Op::Watermarks(w) => WalEntry::Watermarks {
                watermarks: HashMap::from([(format!("p{}", w % 2), i64::from(*w))]),
            },
            Op::Marker(id) => WalEntry::Checkpoint { id: u64::from(*id) },
        }
    }

    fn write(dir: &Path, ops: &[Op], checkpoint_after: usize) {
        let wal = manual(&dir.join("wal"));
        for (i, op) in ops.iter().enumerate() {
            if i == checkpoint_after && matches!(ops[i.saturating_sub(1)], Op::Commit(_)) {
                wal.sync().unwrap();
                checkpoint_at(&dir.join("ckpt"), wal.position(), "s0", 1, &[("x", "y")]);
            }
            wal.append(&entry(op)).unwrap();
        }
        wal.close().unwrap();
    }

    fn run(ops: &[Op], checkpoint_after: usize, n: u64, buffer: usize) {
        let whole_dir = tempfile::tempdir().unwrap();
        let piece_dir = tempfile::tempdir().unwrap();
        write(whole_dir.path(), ops, checkpoint_after);
        write(piece_dir.path(), ops, checkpoint_after);
        let config = |d: &Path| {
            RecoveryConfig::new(d.join("ckpt"), d.join("wal"))
                .with_collect_state_changes(true)
                .with_transaction_buffer_bytes(buffer)
        };
        let whole = RecoveryManager::new(config(whole_dir.path()))
            .recover()
            .unwrap();
        let manager = RecoveryManager::new(config(piece_dir.path()).with_max_wal_entries(n));
        let mut piece = manager.recover().unwrap();
        assert!(piece.wal_entries_replayed <= n);
        let mut changes = piece.state_changes.clone();
        let mut read = piece.wal_entries_replayed;
        let mut calls = 1;
        while piece.has_more {
            let next = manager.resume(&piece).unwrap();
            assert!(next.wal_entries_replayed <= n);
            assert!(next.wal_entries_replayed > 0, "no progress");
            changes.extend(next.state_changes.iter().cloned());
            read += next.wal_entries_replayed;
            piece = next;
            calls += 1;
            assert!(calls <= ops.len() + 2, "no progress");
        }
        assert_eq!(changes, whole.state_changes);
        assert_eq!(read, whole.wal_entries_replayed);
        assert_eq!(piece.source_offsets, whole.source_offsets);
        assert_eq!(piece.watermark, whole.watermark);
        assert_eq!(piece.source_watermarks, whole.source_watermarks);
        assert_eq!(piece.wal_position, whole.wal_position);
        assert_eq!(
            piece.report.uncommitted_entries,
            whole.report.uncommitted_entries
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn bounded_pieces_with_markers_joined_equal_one_unbounded_replay(
            ops in proptest::collection::vec(op(), 0..50),
            checkpoint_after in 0..50usize,
            n in 1..8u64,
            small_buffer in any::<bool>(),
        ) {
            run(&ops, checkpoint_after, n, if small_buffer { 40 } else { 1 << 20 });
        }
    }
}

/// A manager opened while the newest checkpoint's metadata cannot be read
/// (one transient read error) must not take an older checkpoint's epoch: the
/// next checkpoint would record an epoch below one already published.
#[test]
fn a_transient_read_error_at_open_never_makes_the_epoch_go_back() {
    let sim = CrashSimStorage::new();
    let dir = Path::new("/ckpt");
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    {
        let m = manager_on(dir, storage.clone());
        m.set_epoch(5);
        m.create_checkpoint_with_state(1, offsets(1), None, &kv(&[("a", "1")]).to_bytes().unwrap())
            .unwrap();
        m.set_epoch(6);
        m.create_delta_checkpoint_with_state(
            2,
            offsets(2),
            None,
            &put("b", "2").to_bytes().unwrap(),
        )
        .unwrap();
    }
    common::fail_reads_under(&sim, &checkpoint_dir(dir, 2), 1);
    match IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir)
            .with_storage(storage.clone())
            .with_max_retained(10),
    ) {
        Err(e) => assert!(matches!(e, Error::Io { .. }), "{e:?}"),
        Ok(m) => assert_eq!(
            m.epoch(),
            6,
            "the manager took the epoch of checkpoint 1 after a failed read of checkpoint 2"
        ),
    }
}

/// A write of a segment fails half way (a full device, the mark's own small
/// write still succeeding): the log is poisoned with a torn record after its
/// durable position, and the writer leaves its mark there. In
/// `AbsoluteConsistency` mode the next open must act on the mark (the torn
/// bytes are after it, never acknowledged) rather than refuse the log for the
/// torn record the mark already accounts for. (When the mark itself cannot be
/// written, the strict mode refuses the torn record: docs/RECOVERY.md.)
#[test]
fn a_torn_record_after_a_poison_mark_is_cut_in_absolute_consistency_mode() {
    use highwater::storage::{CrashSimStorage, SimFault, SimOp};
    use highwater::WalRecoveryMode;
    let sim = CrashSimStorage::new();
    let options = || {
        WalOptions::default()
            .with_sync_policy(SyncPolicy::EveryWrite)
            .with_recovery_mode(WalRecoveryMode::AbsoluteConsistency)
            .with_storage(Arc::new(sim.clone()))
    };
    let wal = WriteAheadLog::open("/wal", options()).unwrap();
    wal.append(&common::put("a", "1")).unwrap();
    wal.append(&common::commit(1)).unwrap();
    let durable = wal.durable_position();
    sim.inject(SimFault::new(SimOp::Write).on_path(".wal"));
    assert!(wal.append(&common::put("b", &"x".repeat(5000))).is_err());
    drop(wal);
    let mark = Path::new("/wal").join(highwater::inspect::POISON_MARK_FILE_NAME);
    assert!(
        sim.exists(&mark).unwrap(),
        "the poisoned writer left its mark"
    );
    let reopened = WriteAheadLog::open("/wal", options());
    let wal =
        reopened.unwrap_or_else(|e| panic!("the log with a mark at {durable} is refused: {e}"));
    assert_eq!(wal.position(), durable);
}

/// A checkpoint whose `wal_position` is above every log position (2^62): the
/// manager refuses to write it, and one found on disk (its metadata checksum
/// valid) is rejected as damaged; never a panic or a wrapped offset.
#[test]
fn a_checkpoint_position_above_the_log_range_is_a_typed_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, wal_dir) = (tmp.path().join("ckpt"), tmp.path().join("wal"));
    let wal = common::manual(&wal_dir);
    wal.append(&common::put("a", "1")).unwrap();
    wal.append(&common::commit(1)).unwrap();
    wal.close().unwrap();
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let state = kv(&[("a", "1")]).to_bytes().unwrap();
    let made = m.create_checkpoint_with_state(u64::MAX, offsets(1), None, &state);
    assert!(matches!(made, Err(Error::InvalidArgument(_))), "{made:?}");
    let id = m
        .create_checkpoint_with_state(80, offsets(1), None, &state)
        .unwrap()
        .id;
    drop(m);
    // The same position read from disk.
    let path = checkpoint_dir(&ckpt, id).join("metadata.json");
    let mut envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut body = envelope["body"].clone();
    body["wal_position"] = serde_json::json!(u64::MAX);
    let body_text = serde_json::to_string(&body).unwrap();
    let out = serde_json::json!({
        "format": envelope["format"].take(),
        "version": envelope["version"].take(),
        "body_crc32c": crc32c::crc32c(body_text.as_bytes()),
        "body": serde_json::value::RawValue::from_string(body_text).unwrap(),
    });
    std::fs::write(&path, serde_json::to_vec(&out).unwrap()).unwrap();
    let outcome = std::panic::catch_unwind(|| {
        RecoveryManager::new(RecoveryConfig::new(&ckpt, &wal_dir)).recover()
    });
    match outcome {
        Err(_) => panic!("recovery panicked on a checkpoint at position u64::MAX"),
        Ok(Ok(r)) => assert_eq!(
            r.checkpoint_id, None,
            "recovery used a checkpoint at u64::MAX (position {})",
            r.wal_position
        ),
        Ok(Err(e)) => eprintln!("typed: {e}"),
    }
}

/// A job that only checkpoints (no log) has checkpoints at 80 and 240. One
/// transient read error of the newest makes recovery fall back to the older
/// one; the log it starts must still not reuse positions the newest covers:
/// once the newest reads again, recovery must not replay records written
/// after the restart as if they followed it.
#[test]
fn a_fallback_after_a_transient_read_error_never_starts_the_log_below_a_newer_checkpoint() {
    let (ckpt, wal_dir) = (Path::new("/job/ckpt"), Path::new("/job/wal"));
    let sim = CrashSimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let older = common::checkpoint_on(storage.clone(), ckpt, 80, "src-0", 1, &[("a", "1")]);
    let newest = common::checkpoint_on(
        storage.clone(),
        ckpt,
        240,
        "src-0",
        3,
        &[("a", "1"), ("b", "2")],
    );
    let config = || {
        RecoveryConfig::new(ckpt, wal_dir)
            .with_collect_state_changes(true)
            .with_storage(storage.clone())
    };
    common::fail_reads_under(&sim, &checkpoint_dir(ckpt, newest), 2);
    let first = RecoveryManager::new(config()).recover();
    let Ok(first) = first else {
        return; // refused on the failed read: sound
    };
    if first.checkpoint_id == Some(newest) {
        return;
    }
    assert_eq!(first.checkpoint_id, Some(older));
    // The job goes on from the older checkpoint and logs four transactions.
    let wal = WriteAheadLog::open(
        wal_dir,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(storage.clone()),
    )
    .unwrap();
    assert!(
        wal.position() >= 240,
        "after a fallback to checkpoint {older}, the log continues at {}, below checkpoint {newest}'s 240",
        wal.position()
    );
    for t in 0..4u64 {
        wal.append(&common::put(&format!("k{t}"), "v")).unwrap();
        wal.append(&common::commit(10 + t)).unwrap();
    }
    wal.close().unwrap();
    let second = RecoveryManager::new(config()).recover().unwrap();
    assert_eq!(second.checkpoint_id, Some(newest));
    assert_eq!(second.source_offsets["src-0"], 13);
}

/// The caller's state came from checkpoint 2 (parts x, y and z; z added by
/// 2). Part z's file of checkpoint 2 is damaged since. A request giving x and
/// y in full (z unchanged, so not mentioned: carried over) cannot carry z. It
/// must be refused, not written as a full checkpoint of x and y that drops z
/// because the latest restorable checkpoint (1) never had it.
#[test]
fn a_damaged_parent_never_lets_a_request_drop_a_part_it_did_not_mention() {
    use highwater::{CheckpointRequest, PartInput};
    let dir = tempfile::tempdir().unwrap();
    let m = manager_on(dir.path(), Arc::new(FsStorage));
    let (x, y, z) = (kv(&[("x", "1")]), kv(&[("y", "1")]), kv(&[("z", "1")]));
    m.create_checkpoint(
        CheckpointRequest::new(1)
            .with_offsets(offsets(1))
            .with_part("x", PartInput::Snapshot(&x))
            .with_part("y", PartInput::Snapshot(&y)),
    )
    .unwrap();
    let second = m
        .create_checkpoint(
            CheckpointRequest::new(2)
                .with_offsets(offsets(2))
                .with_part("z", PartInput::Snapshot(&z)),
        )
        .unwrap();
    assert_eq!(second.id, 2);
    assert!(m.store().part_names(2).unwrap().contains(&"z".to_string()));
    let part = checkpoint_dir(dir.path(), 2).join("part-z.hwstate");
    let len = std::fs::metadata(&part).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .unwrap()
        .set_len(len - 1)
        .unwrap();

    let (x2, y2) = (kv(&[("x", "2")]), kv(&[("y", "2")]));
    let made = m.create_checkpoint(
        CheckpointRequest::new(3)
            .with_offsets(offsets(3))
            .with_part("x", PartInput::Snapshot(&x2))
            .with_part("y", PartInput::Snapshot(&y2)),
    );
    match made {
        Err(_) => {}
        Ok(meta) => {
            let names = m.store().part_names(meta.id).unwrap();
            panic!(
                "checkpoint {} ({:?}) was written with parts {names:?}: part z of the caller's state is gone",
                meta.id, meta.kind
            );
        }
    }
}
