//! Recovery as the seed system does it (issue 17, cases 7, 9, 10 and 11): the
//! log below a checkpoint (absent, ending below it cleanly or torn, damaged
//! there) never blocks recovery; `CheckpointNotCovered` is only for a log
//! that lost positions the checkpoint needs; bounded replay is a bound.

use crate::common;

use common::*;
use highwater::inspect::FLOOR_FILE_NAME;
use highwater::{
    Error, RecoveredState, RecoveryConfig, RecoveryManager, SyncPolicy, WalEntry, WalOptions,
    WalRecoveryMode, WriteAheadLog,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn config(d: &Dirs) -> RecoveryConfig {
    RecoveryConfig::new(&d.ckpt, &d.wal).with_collect_state_changes(true)
}

fn recover(config: RecoveryConfig) -> RecoveredState {
    RecoveryManager::new(config).recover().unwrap()
}

fn state_of(r: &RecoveredState) -> Vec<(Vec<u8>, Vec<u8>)> {
    r.current_state()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    p.iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// The checkpoint's own facts, as `checkpoint_at` wrote them (offset 7).
fn assert_is_the_checkpoint(r: &RecoveredState, position: u64) {
    assert!(r.checkpoint_id.is_some());
    assert_eq!(r.epoch, 107);
    assert_eq!(r.source_offsets, HashMap::from([("src-0".to_string(), 7)]));
    assert_eq!(r.watermark, Some(7));
    assert_eq!(r.wal_position, position);
    assert_eq!(r.wal_entries_replayed, 0);
    assert_eq!(state_of(r), pairs(&[("a", "1"), ("b", "2")]));
}

fn ckpt(d: &Dirs, position: u64) -> u64 {
    checkpoint_at(&d.ckpt, position, "src-0", 7, &[("a", "1"), ("b", "2")])
}

/// Three transactions of 80 bytes each: the log ends at 240.
fn three_transactions(wal: &WriteAheadLog) {
    for t in 0..3u64 {
        wal.append(&put(&format!("k{t}"), "v")).unwrap();
        wal.append(&commit(t)).unwrap();
    }
    assert_eq!(wal.position(), 240);
}

#[test]
fn recovery_with_a_checkpoint_and_no_log_directory_returns_the_checkpoint() {
    let d = dirs();
    ckpt(&d, 240);
    // Read-only recoveries write nothing, not even the directory.
    for cfg in [
        config(&d).with_dry_run(true),
        config(&d).with_repair_wal(false),
    ] {
        let r = recover(cfg);
        assert_is_the_checkpoint(&r, 240);
        assert!(r.report.wal_absent);
        assert!(!r.report.wal_release.as_ref().unwrap().applied);
        assert!(!d.wal.exists(), "a read-only recovery created the log");
    }
    let r = recover(config(&d));
    assert_is_the_checkpoint(&r, 240);
    assert!(r.report.wal_absent);
    assert!(r.report.wal_release.as_ref().unwrap().applied);
    assert!(!r.has_more);

    // The log continues at the checkpoint's position: positions never reused.
    let wal = manual(&d.wal);
    assert_eq!(wal.position(), 240);
    assert_eq!(wal.first_position(), 240);
    assert_eq!(wal.append(&put("c", "3")).unwrap(), 240);
    wal.append(&commit(8)).unwrap();
    wal.close().unwrap();
    let again = recover(config(&d));
    assert!(!again.report.wal_absent);
    assert!(again.report.wal_short.is_none());
    assert!(again.report.wal_release.is_none());
    assert_eq!(
        state_of(&again),
        pairs(&[("a", "1"), ("b", "2"), ("c", "3")])
    );
    assert_eq!(again.source_offsets["src-0"], 8);
}

/// A job that checkpointed at `wal.position()` and was killed before the log
/// was synced: the log ends below the checkpoint.
fn job_killed_before_sync(d: &Dirs) -> (u64, u64) {
    let wal = manual(&d.wal);
    wal.append(&put("a", "1")).unwrap();
    wal.append(&commit(1)).unwrap();
    wal.sync().unwrap();
    let synced = wal.position();
    wal.append(&put("b", "2")).unwrap();
    wal.append(&commit(7)).unwrap();
    let at = wal.position();
    ckpt(d, at);
    wal.close().unwrap();
    // The unsynced records are lost: the log ends at `synced`.
    let seg = segments(&d.wal).pop().unwrap();
    set_file_len(&seg, 40 + synced);
    (synced, at)
}

#[test]
fn a_log_ending_cleanly_below_the_checkpoint_recovers_the_checkpoint_and_continues_at_its_position()
{
    let d = dirs();
    let (synced, at) = job_killed_before_sync(&d);
    let r = recover(config(&d).with_repair_wal(false));
    assert_is_the_checkpoint(&r, at);
    let short = r.report.wal_short.clone().expect("reported short");
    assert_eq!((short.end, short.checkpoint_position), (synced, at));
    assert!(short.torn.is_none());

    let r = recover(config(&d));
    assert_is_the_checkpoint(&r, at);
    assert_eq!(r.report.wal_short.as_ref().map(|s| s.end), Some(synced));
    let release = r.report.wal_release.clone().unwrap();
    assert_eq!(release.floor, at);
    assert!(release.segment_created.is_some());
    assert!(d.wal.join(FLOOR_FILE_NAME).exists());

    let wal = manual(&d.wal);
    assert_eq!(wal.append(&put("c", "3")).unwrap(), at);
    wal.append(&commit(9)).unwrap();
    wal.close().unwrap();
    let again = recover(config(&d));
    assert!(again.report.wal_short.is_none() && again.report.wal_release.is_none());
    assert_eq!(again.report.committed_transactions, 1);
    assert_eq!(
        state_of(&again),
        pairs(&[("a", "1"), ("b", "2"), ("c", "3")])
    );
}

#[test]
fn a_log_ending_in_a_torn_tail_below_the_checkpoint_is_short_not_corrupted() {
    for mode in [
        WalRecoveryMode::TolerateTornTail,
        WalRecoveryMode::AbsoluteConsistency,
        WalRecoveryMode::PointInTime,
    ] {
        let d = dirs();
        let (synced, at) = job_killed_before_sync(&d);
        // Half of the next record made it to disk.
        let seg = segments(&d.wal).pop().unwrap();
        set_file_len(&seg, 40 + synced + 20);
        patch(&seg, 40 + synced, &[0xAB; 20]);
        let r = recover(
            config(&d)
                .with_wal_recovery_mode(mode)
                .with_repair_wal(false),
        );
        assert_is_the_checkpoint(&r, at);
        let short = r.report.wal_short.clone().expect("reported short");
        assert_eq!(short.end, synced, "{mode:?}");
        assert!(short.torn.is_some(), "{mode:?}");
        let r = recover(config(&d).with_wal_recovery_mode(mode));
        assert_is_the_checkpoint(&r, at);
        let wal = WriteAheadLog::open(
            &d.wal,
            WalOptions::new()
                .with_sync_policy(SyncPolicy::Manual)
                .with_recovery_mode(mode),
        )
        .unwrap();
        assert_eq!(wal.position(), at, "{mode:?}");
    }
}

#[test]
fn require_wal_turns_an_absent_or_short_log_into_an_error() {
    let d = dirs();
    let id = ckpt(&d, 240);
    match RecoveryManager::new(config(&d).with_require_wal(true)).recover() {
        Err(Error::WalBehindCheckpoint {
            checkpoint_id,
            position: 240,
            end: None,
            ..
        }) => assert_eq!(checkpoint_id, id),
        other => panic!("expected WalBehindCheckpoint, got {other:?}"),
    }
    assert!(!d.wal.exists());
    let d = dirs();
    let (synced, _) = job_killed_before_sync(&d);
    let err = RecoveryManager::new(config(&d).with_require_wal(true))
        .recover()
        .unwrap_err();
    assert!(
        matches!(err, Error::WalBehindCheckpoint { end: Some(e), .. } if e == synced),
        "{err}"
    );
    assert!(!d.wal.join(FLOOR_FILE_NAME).exists());
}

#[test]
fn a_log_whose_oldest_segment_starts_after_the_checkpoint_is_not_covered() {
    let d = dirs();
    let opts = WalOptions::new()
        .with_sync_policy(SyncPolicy::Manual)
        .with_segment_size(4096);
    let wal = WriteAheadLog::open(&d.wal, opts).unwrap();
    for i in 0..200 {
        wal.append(&put(&format!("k{i}"), "v")).unwrap();
        wal.append(&commit(i)).unwrap();
    }
    let at = 240;
    ckpt(&d, at);
    wal.drop_segments_before(wal.position()).unwrap();
    assert!(wal.first_position() > at);
    wal.close().unwrap();
    for cfg in [config(&d), config(&d).with_dry_run(true)] {
        match RecoveryManager::new(cfg).recover() {
            Err(Error::CheckpointNotCovered { position, .. }) => assert_eq!(position, at),
            other => panic!("expected CheckpointNotCovered, got {other:?}"),
        }
    }
    assert!(!d.wal.join(FLOOR_FILE_NAME).exists(), "refused, yet wrote");
}

/// A log of three transactions (ends at 240), a checkpoint at 240, two
/// transactions after it, and one flipped bit in the record at position 0.
fn damaged_below_checkpoint(d: &Dirs) -> PathBuf {
    let wal = manual(&d.wal);
    three_transactions(&wal);
    wal.sync().unwrap();
    ckpt(d, 240);
    wal.append(&put("c", "3")).unwrap();
    wal.append(&commit(8)).unwrap();
    wal.append(&WalEntry::Delete { key: b"a".to_vec() })
        .unwrap();
    wal.append(&commit(9)).unwrap();
    wal.close().unwrap();
    let seg = segments(&d.wal).pop().unwrap();
    let mut byte = [0u8];
    byte[0] = std::fs::read(&seg).unwrap()[40 + 5] ^ 0x04;
    patch(&seg, 40 + 5, &byte);
    seg
}

fn assert_recovered_after_damage(r: &RecoveredState) {
    assert_eq!(r.report.committed_transactions, 2);
    assert_eq!(state_of(r), pairs(&[("b", "2"), ("c", "3")]));
    assert_eq!(r.source_offsets["src-0"], 9);
    let d = r.report.released_damage.as_ref().expect("damage reported");
    assert_eq!((d.position, d.offset), (0, 40));
}

#[test]
fn a_flipped_bit_at_position_0_below_the_checkpoint_at_240_recovers_in_every_mode() {
    for mode in [
        WalRecoveryMode::TolerateTornTail,
        WalRecoveryMode::AbsoluteConsistency,
        WalRecoveryMode::PointInTime,
    ] {
        let d = dirs();
        let seg = damaged_below_checkpoint(&d);
        let before = std::fs::read(&seg).unwrap();
        // Read-only first: the same state, nothing written.
        for cfg in [
            config(&d).with_dry_run(true),
            config(&d).with_repair_wal(false),
        ] {
            let r = recover(cfg.with_wal_recovery_mode(mode));
            assert_recovered_after_damage(&r);
            assert_eq!(
                r.report.wal_release.as_ref().map(|w| w.applied),
                Some(false)
            );
            assert!(!d.wal.join(FLOOR_FILE_NAME).exists(), "{mode:?}");
            assert_eq!(std::fs::read(&seg).unwrap(), before, "{mode:?}");
        }
        let r = recover(config(&d).with_wal_recovery_mode(mode));
        assert_recovered_after_damage(&r);
        assert_eq!(r.report.wal_release.as_ref().map(|w| w.floor), Some(240));

        // The log opens (in this mode too), respects the floor, and a second
        // recovery no longer sees the released damage.
        let wal = WriteAheadLog::open(
            &d.wal,
            WalOptions::new()
                .with_sync_policy(SyncPolicy::Manual)
                .with_recovery_mode(mode),
        )
        .unwrap();
        assert_eq!(wal.first_position(), 240);
        assert!(matches!(
            wal.read_from(0),
            Err(Error::PositionNotCovered {
                first_available: 240,
                ..
            })
        ));
        wal.close().unwrap();
        let again = recover(config(&d).with_wal_recovery_mode(mode));
        assert!(again.report.released_damage.is_none());
        assert_eq!(state_of(&again), pairs(&[("b", "2"), ("c", "3")]));
        // The CLI's wal repair, dump and verify of such a log: cli/tests/operations.rs
        // (runbook_damage_below_the_checkpoint).
    }
}

#[test]
fn bounded_replay_of_100_uncommitted_puts_with_n_10_reads_10_and_returns_nothing() {
    let d = dirs();
    let wal = manual(&d.wal);
    for i in 0..100 {
        wal.append(&put(&format!("k{i}"), "v")).unwrap();
    }
    wal.close().unwrap();
    let manager = RecoveryManager::new(config(&d).with_max_wal_entries(10));
    let mut piece = manager.recover().unwrap();
    assert_eq!(piece.wal_entries_replayed, 10);
    assert!(piece.state_changes.is_empty());
    assert!(piece.has_more);
    assert_eq!(piece.wal_position, 0);
    assert!(piece.resume_position > 0);
    let mut read = piece.wal_entries_replayed;
    let mut calls = 1;
    while piece.has_more {
        piece = manager.resume(&piece).unwrap();
        assert!(piece.wal_entries_replayed <= 10);
        assert!(piece.state_changes.is_empty());
        read += piece.wal_entries_replayed;
        calls += 1;
        assert!(calls <= 11, "no progress");
    }
    assert_eq!(read, 100);
    assert_eq!(piece.report.uncommitted_entries, 100);
    assert_eq!(piece.wal_position, 0);
}

#[test]
fn a_transaction_spanning_bounded_calls_is_returned_whole_by_the_call_reading_its_commit() {
    let d = dirs();
    let wal = manual(&d.wal);
    for i in 0..25 {
        wal.append(&put(&format!("k{i}"), "v")).unwrap();
    }
    wal.append(&commit(1)).unwrap();
    wal.close().unwrap();
    let manager = RecoveryManager::new(config(&d).with_max_wal_entries(10));
    let first = manager.recover().unwrap();
    let second = manager.resume(&first).unwrap();
    let third = manager.resume(&second).unwrap();
    assert_eq!(
        [
            first.wal_entries_replayed,
            second.wal_entries_replayed,
            third.wal_entries_replayed
        ],
        [10, 10, 6]
    );
    assert!(first.state_changes.is_empty() && second.state_changes.is_empty());
    assert_eq!(second.report.open_transaction_entries, 20);
    assert_eq!(third.state_changes.len(), 25);
    assert_eq!(third.report.entries_reread, 25);
    assert_eq!(third.source_offsets["src-0"], 1);
    assert!(!third.has_more);
}

mod joined_pieces {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8),
        Delete(u8),
        Commit(u8),
        Watermarks(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..8u8, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            1 => (0..8u8).prop_map(Op::Delete),
            2 => any::<u8>().prop_map(Op::Commit),
            1 => any::<u8>().prop_map(Op::Watermarks),
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
        }
    }

    fn run(dir: &Path, ops: &[Op], checkpoint_after: usize, n: u64, buffer: usize) {
        let d = Dirs {
            _tmp: tempfile::tempdir_in(dir).unwrap(),
            ckpt: dir.join("ckpt"),
            wal: dir.join("wal"),
        };
        let wal = manual(&d.wal);
        for (i, op) in ops.iter().enumerate() {
            if i == checkpoint_after && matches!(ops[i.saturating_sub(1)], Op::Commit(_)) {
                wal.sync().unwrap();
                ckpt(&d, wal.position());
            }
            wal.append(&entry(op)).unwrap();
        }
        wal.close().unwrap();
        let base = config(&d)
            .with_repair_wal(false)
            .with_transaction_buffer_bytes(buffer);
        let whole = recover(base.clone());
        let manager = RecoveryManager::new(base.with_max_wal_entries(n));
        let mut piece = manager.recover().unwrap();
        let mut changes = piece.state_changes.clone();
        let mut read = piece.wal_entries_replayed;
        let mut calls = 1;
        while piece.has_more {
            let next = manager.resume(&piece).unwrap();
            assert!(next.wal_entries_replayed <= n);
            assert!(
                (next.wal_position, next.resume_position)
                    > (piece.wal_position, piece.resume_position)
                    || !next.has_more,
                "no progress"
            );
            changes.extend(next.state_changes.iter().cloned());
            read += next.wal_entries_replayed;
            piece = next;
            calls += 1;
            assert!(calls <= ops.len() + 2, "no progress");
        }
        assert!(piece.wal_entries_replayed <= n);
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
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_pieces_of_a_bounded_replay_joined_equal_one_unbounded_replay(
            ops in proptest::collection::vec(op(), 0..60),
            checkpoint_after in 0..60usize,
            n in 1..12u64,
            small_buffer in any::<bool>(),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            run(tmp.path(), &ops, checkpoint_after, n, if small_buffer { 40 } else { 1 << 20 });
        }
    }
}
