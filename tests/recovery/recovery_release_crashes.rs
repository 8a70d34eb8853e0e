//! Releasing the log below a checkpoint (docs/RECOVERY.md, "The log below a
//! checkpoint") under crashes: recovery is interrupted at every mutating
//! storage operation of the release, the machine reboots into an image that
//! loses, keeps or tears the unsynced writes, and recovery again returns the
//! same state, with the log continuing where the uninterrupted run left it.
//! Also: damage in an older segment below the checkpoint is released in
//! every mode.

use crate::common;

use common::{commit, put};
use highwater::storage::{CrashImage, CrashSimStorage, OpenMode, Storage};
use highwater::{
    CheckpointConfig, IncrementalCheckpointManager, RecoveredState, RecoveryConfig,
    RecoveryManager, StateSnapshot, SyncPolicy, WalOptions, WalRecoveryMode, WriteAheadLog,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

const WAL: &str = "/job/wal";
const CKPT: &str = "/job/ckpt";

fn options(sim: &CrashSimStorage) -> WalOptions {
    WalOptions::new()
        .with_sync_policy(SyncPolicy::Manual)
        .with_storage(Arc::new(sim.clone()))
}

fn checkpoint(sim: &CrashSimStorage, position: u64) {
    let config = CheckpointConfig::new(CKPT).with_storage(Arc::new(sim.clone()));
    let m = IncrementalCheckpointManager::new(config).unwrap();
    m.set_epoch(5);
    let snap = StateSnapshot::new(vec![(b"a".to_vec(), b"1".to_vec())]);
    m.create_checkpoint_with_state(
        position,
        HashMap::from([("src-0".to_string(), 7)]),
        Some(7),
        &snap.to_bytes().unwrap(),
    )
    .unwrap();
}

fn recovery(sim: &CrashSimStorage, mode: WalRecoveryMode) -> RecoveryConfig {
    RecoveryConfig::new(CKPT, WAL)
        .with_collect_state_changes(true)
        .with_wal_recovery_mode(mode)
        .with_storage(Arc::new(sim.clone()))
}

/// What a recovery returned that must not depend on crashes: state, offsets,
/// watermark and epoch.
type Facts = (
    Vec<(Vec<u8>, Vec<u8>)>,
    HashMap<String, u64>,
    Option<i64>,
    u64,
);

fn facts(r: &RecoveredState) -> Facts {
    let state = r
        .current_state()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    (state, r.source_offsets.clone(), r.watermark, r.epoch)
}

/// A log whose unsynced tail (below the checkpoint) was lost.
fn short_log() -> CrashSimStorage {
    let sim = CrashSimStorage::new();
    let wal = WriteAheadLog::open(WAL, options(&sim)).unwrap();
    wal.append(&put("b", "2")).unwrap();
    wal.append(&commit(1)).unwrap();
    wal.sync().unwrap();
    wal.append(&put("c", "3")).unwrap();
    wal.append(&commit(7)).unwrap();
    checkpoint(&sim, wal.position());
    sim.crash();
    drop(wal);
    sim.image(CrashImage::LoseUnsynced)
}

/// A checkpoint and no log at all.
fn absent_log() -> CrashSimStorage {
    let sim = CrashSimStorage::new();
    checkpoint(&sim, 4096);
    sim
}

/// A log of small segments; the checkpoint is in the third one and the
/// oldest segment's header is damaged.
fn damaged_older_segment() -> CrashSimStorage {
    let sim = CrashSimStorage::new();
    let wal = WriteAheadLog::open(WAL, options(&sim).with_segment_size(4096)).unwrap();
    for i in 0..150 {
        wal.append(&put(&format!("k{i}"), "v")).unwrap();
        wal.append(&commit(i)).unwrap();
    }
    wal.sync().unwrap();
    checkpoint(&sim, wal.position());
    for i in 150..160 {
        wal.append(&put(&format!("k{i}"), "w")).unwrap();
        wal.append(&commit(i)).unwrap();
    }
    wal.close().unwrap();
    let mut segments: Vec<_> = sim
        .list_dir(Path::new(WAL))
        .unwrap()
        .into_iter()
        .filter(|e| e.name.ends_with(".wal"))
        .map(|e| e.name)
        .collect();
    segments.sort();
    assert!(segments.len() >= 4, "{segments:?}");
    let first = Path::new(WAL).join(&segments[0]);
    let file = sim.open_file(&first, OpenMode::ReadWrite).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, 20).unwrap();
    file.write_all_at(&[byte[0] ^ 0x10], 20).unwrap();
    file.sync_data().unwrap();
    sim.image(CrashImage::KeepUnsynced)
}

fn crash_everywhere(start: &CrashSimStorage, mode: WalRecoveryMode) -> u64 {
    let reference = start.image(CrashImage::KeepUnsynced);
    let expected = facts(
        &RecoveryManager::new(recovery(&reference, mode))
            .recover()
            .unwrap(),
    );
    let end = WriteAheadLog::open(WAL, options(&reference).with_recovery_mode(mode))
        .unwrap()
        .position();
    let mut crashes = 0;
    for k in 0.. {
        let sim = start.image(CrashImage::KeepUnsynced);
        sim.crash_at(k);
        let first = RecoveryManager::new(recovery(&sim, mode)).recover();
        if sim.crashed().is_none() {
            assert_eq!(facts(&first.unwrap()), expected);
            break;
        }
        crashes += 1;
        for image in [
            CrashImage::LoseUnsynced,
            CrashImage::KeepUnsynced,
            CrashImage::Torn { seed: k },
        ] {
            let rebooted = sim.image(image);
            let again = RecoveryManager::new(recovery(&rebooted, mode))
                .recover()
                .unwrap_or_else(|e| panic!("crash at {k}, {image:?}: {e}"));
            assert_eq!(facts(&again), expected, "crash at {k}, {image:?}");
            let wal = WriteAheadLog::open(WAL, options(&rebooted).with_recovery_mode(mode))
                .unwrap_or_else(|e| panic!("crash at {k}, {image:?}: {e}"));
            assert_eq!(wal.position(), end, "crash at {k}, {image:?}");
            let third = RecoveryManager::new(recovery(&rebooted, mode)).recover();
            drop(wal);
            assert!(matches!(third, Err(highwater::Error::Locked { .. })));
        }
    }
    crashes
}

#[test]
fn a_crash_anywhere_in_releasing_a_short_log_recovers_the_same_state() {
    let crashes = crash_everywhere(&short_log(), WalRecoveryMode::TolerateTornTail);
    assert!(crashes > 3, "{crashes}");
}

#[test]
fn a_crash_anywhere_in_releasing_an_absent_log_recovers_the_same_state() {
    let crashes = crash_everywhere(&absent_log(), WalRecoveryMode::TolerateTornTail);
    assert!(crashes > 3, "{crashes}");
}

#[test]
fn damage_in_an_older_segment_below_the_checkpoint_is_released_in_every_mode() {
    for mode in [
        WalRecoveryMode::TolerateTornTail,
        WalRecoveryMode::AbsoluteConsistency,
        WalRecoveryMode::PointInTime,
    ] {
        let start = damaged_older_segment();
        let r = RecoveryManager::new(recovery(&start.image(CrashImage::KeepUnsynced), mode))
            .recover()
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(r.report.committed_transactions, 10, "{mode:?}");
        let damage = r.report.released_damage.as_ref().expect("reported");
        assert_eq!(damage.offset, 0, "{mode:?}: {damage:?}");
        let crashes = crash_everywhere(&start, mode);
        assert!(crashes > 0, "{mode:?}");
    }
}

/// A release that wrote the floor and crashed before it started the fresh
/// segment, over a torn tail that reaches past the floor: the next recovery
/// finishes the release, even in `AbsoluteConsistency` (the garbage lies in
/// records the checkpoint covers or after the log's end, never in a record).
#[test]
fn a_release_interrupted_after_its_floor_is_finished_by_the_next_recovery() {
    for mode in [
        WalRecoveryMode::TolerateTornTail,
        WalRecoveryMode::AbsoluteConsistency,
        WalRecoveryMode::PointInTime,
    ] {
        let sim = short_log();
        let reference = facts(
            &RecoveryManager::new(recovery(&sim.image(CrashImage::KeepUnsynced), mode))
                .recover()
                .unwrap(),
        );
        let checkpoint_position = RecoveryManager::new(recovery(&sim, mode).with_dry_run(true))
            .recover()
            .unwrap()
            .wal_position;
        let segment = Path::new(WAL).join("00000000000000000000.wal");
        let file = sim.open_file(&segment, OpenMode::ReadWrite).unwrap();
        let len = file.len().unwrap();
        let past = 40 + checkpoint_position + 64;
        file.write_all_at(&vec![0x5A; (past - len) as usize], len)
            .unwrap();
        file.sync_data().unwrap();
        let floor = sim
            .open_file(&Path::new(WAL).join("FLOOR"), OpenMode::Create)
            .unwrap();
        floor
            .write_all_at(&highwater::inspect::encode_floor(checkpoint_position), 0)
            .unwrap();
        floor.sync_all().unwrap();
        sim.sync_dir(Path::new(WAL)).unwrap();

        let r = RecoveryManager::new(recovery(&sim, mode))
            .recover()
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(facts(&r), reference, "{mode:?}");
        let release = r.report.wal_release.clone().expect("finished");
        assert!(release.segment_created.is_some(), "{mode:?}");
        let wal = WriteAheadLog::open(WAL, options(&sim).with_recovery_mode(mode)).unwrap();
        assert_eq!(wal.position(), checkpoint_position, "{mode:?}");
        assert_eq!(wal.append(&put("d", "4")).unwrap(), checkpoint_position);
    }
}
