//! Edge cases of recovery found in review: PointInTime damage below the
//! checkpoint, a failed cut, the sync marker after a repair, a target right
//! after a sync marker, an undecodable record under PointInTime, bounded replay
//! with a target.

use crate::common;

use common::*;
use highwater::storage::{CrashSimStorage, SimFault, SimOp, Storage};
use highwater::{
    Error, RecoveryConfig, RecoveryManager, SyncPolicy, WalEntry, WalOptions, WalRecoveryMode,
    WriteAheadLog,
};
use std::path::Path;
use std::sync::Arc;

fn ckpt(ckpt_dir: &Path, position: u64, offset: u64, pairs: &[(&str, &str)]) -> u64 {
    checkpoint_at(ckpt_dir, position, "src-0", offset, pairs)
}

#[test]
fn bounded_replay_with_a_target_terminates() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, w) = (tmp.path().join("c"), tmp.path().join("w"));
    let wal = manual(&w);
    wal.append(&put("a", "1")).unwrap();
    wal.append(&commit(1)).unwrap();
    let target = wal.position();
    wal.append(&put("b", "2")).unwrap();
    wal.append(&commit(2)).unwrap();
    wal.close().unwrap();
    let m = RecoveryManager::new(
        RecoveryConfig::new(&c, &w)
            .with_target_position(target)
            .with_collect_state_changes(true),
    );
    let mut piece = m.recover().unwrap();
    let mut calls = 1;
    while piece.has_more && calls < 50 {
        let next = m.resume(&piece).unwrap();
        assert_eq!(next.wal_position, piece.wal_position);
        piece = next;
        calls += 1;
    }
    assert_eq!(
        calls, 1,
        "a target is not an entry limit: nothing to resume"
    );
    assert!(piece.report.stopped_at_target);
    assert_eq!(piece.state_changes.len(), 1);
}
#[test]
fn point_in_time_never_cuts_log_the_checkpoint_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, w) = (tmp.path().join("c"), tmp.path().join("w"));
    let wal = WriteAheadLog::open(
        &w,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_segment_size(4096),
    )
    .unwrap();
    for i in 0..60 {
        wal.append(&put(&format!("k{i}"), "vvvvvvvvvvvvvvvvvvvv"))
            .unwrap();
        wal.append(&commit(i)).unwrap();
    }
    wal.sync().unwrap();
    let p = wal.position();
    ckpt(&c, p, 59, &[("k9", "x")]);
    for i in 60..120 {
        wal.append(&put(&format!("k{i}"), "vvvvvvvvvvvvvvvvvvvv"))
            .unwrap();
        wal.append(&commit(i)).unwrap();
    }
    wal.close().unwrap();
    let segs = segments(&w);
    assert!(segs.len() >= 2, "the damage must lie in an older segment");
    // Bit rot in the oldest segment, long before the checkpoint position.
    patch(&segs[0], 64 + 20, b"\xff\xff");
    let cfg = RecoveryConfig::new(&c, &w)
        .with_collect_state_changes(true)
        .with_wal_recovery_mode(WalRecoveryMode::PointInTime);
    let before = segments(&w).len();
    let off = RecoveryManager::new(cfg.clone().with_repair_wal(false))
        .recover()
        .unwrap();
    assert_eq!(
        off.state_changes.len(),
        60,
        "read-only replay after the checkpoint"
    );
    assert!(before >= 2);
    // With repair, the damage lies in records the checkpoint covers: it is
    // released (docs/RECOVERY.md, "The log below a checkpoint"), never cut
    // at: everything from the checkpoint's position on stays.
    let on = RecoveryManager::new(cfg.clone()).recover().unwrap();
    assert_eq!(on.state_changes, off.state_changes);
    let damage = on.report.released_damage.as_ref().expect("reported");
    assert_eq!(damage.path, segs[0]);
    assert!(on.report.wal_repair.is_none(), "nothing was cut");
    let mut reader = highwater::WalReader::open(&w, p).unwrap();
    let (entries, end) = read_all(&mut reader);
    assert_eq!(entries.len(), 120);
    assert_eq!(end, highwater::WalReadResult::Eof);
    let again = RecoveryManager::new(cfg.with_repair_wal(false))
        .recover()
        .unwrap();
    assert_eq!(again.state_changes, off.state_changes);
    assert!(again.report.released_damage.is_none(), "released for good");
}

#[test]
fn a_failed_truncate_poisons_the_log() {
    let sim = CrashSimStorage::new();
    let open = || {
        WriteAheadLog::open(
            "/w",
            WalOptions::default()
                .with_sync_policy(SyncPolicy::Manual)
                .with_segment_size(4096)
                .with_storage(Arc::new(sim.clone())),
        )
        .unwrap()
    };
    let wal = open();
    wal.append(&put("a", "1")).unwrap();
    wal.append(&commit(1)).unwrap();
    let cut = wal.position();
    for i in 0..300 {
        wal.append(&put(&format!("u{i}"), "vvvvvvvvvvvvvvvvvvvv"))
            .unwrap();
    }
    wal.sync().unwrap();
    let segs: Vec<String> = sim
        .list_dir(Path::new("/w"))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n.ends_with(".wal"))
        .collect();
    assert!(segs.len() >= 3, "{}", segs.len());
    // The cut removes the later segments; removing the second newest fails.
    sim.inject(SimFault::new(SimOp::Remove).on_path(&segs[segs.len() - 2]));
    assert!(wal.cut_from(cut).is_err());
    // Half cut: the log is poisoned, nothing more is acknowledged.
    assert!(matches!(
        wal.append(&put("new", "1")),
        Err(Error::Poisoned { .. })
    ));
    drop(wal);
    // Reopened, the log is consistent and holds everything before the cut.
    let wal = open();
    let (entries, _) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(&entries[..2], &[put("a", "1"), commit(1)]);
}

#[test]
fn a_repair_cut_is_followed_by_a_sync_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, w) = (tmp.path().join("c"), tmp.path().join("w"));
    let wal = manual(&w);
    wal.append(&put("a", "1")).unwrap();
    wal.append(&commit(1)).unwrap();
    wal.append(&put("b", "2222222222")).unwrap();
    wal.close().unwrap();
    strip_close_marker(&w);
    let seg = segments(&w).pop().unwrap();
    set_file_len(&seg, file_len(&seg) - 5); // torn Put b
    let r = RecoveryManager::recover_with_changes(&c, &w).unwrap();
    assert_eq!(r.state_changes.len(), 1);
    assert!(r.report.wal_repair.is_some());
    let len = file_len(&seg);
    let bytes = std::fs::read(&seg).unwrap();
    let tail = &bytes[(len - 16) as usize..];
    assert_eq!((&tail[0..4], tail[4]), (&[0u8; 4][..], 5), "no sync marker");
    // Bit rot in the committed Commit before the marker is corruption, not a
    // torn tail to cut.
    patch(&seg, len - 16 - 8, b"\xAA");
    let again = RecoveryManager::recover_with_changes(&c, &w);
    assert!(
        matches!(&again, Err(e) if e.is_corruption()),
        "a committed transaction was cut as a torn tail"
    );
}
#[test]
fn the_entry_at_the_target_is_excluded_after_a_sync_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, w) = (tmp.path().join("c"), tmp.path().join("w"));
    let wal = manual(&w);
    wal.append(&put("a", "1")).unwrap();
    wal.append(&commit(1)).unwrap();
    wal.append(&put("b", "2")).unwrap();
    wal.close().unwrap(); // sync marker after Put b
    let wal = manual(&w);
    let target = wal.position();
    let p2 = wal.append(&commit(2)).unwrap();
    assert_eq!(p2, target);
    wal.close().unwrap();
    let r = RecoveryManager::new(
        RecoveryConfig::new(&c, &w)
            .with_collect_state_changes(true)
            .with_repair_wal(false)
            .with_target_position(target),
    )
    .recover()
    .unwrap();
    assert!(
        r.wal_position <= target,
        "an entry at the target was replayed"
    );
    assert_eq!(r.state_changes, vec![(b"a".to_vec(), Some(b"1".to_vec()))]);
    assert_eq!(r.source_offsets["src-0"], 1);
    assert!(r.report.stopped_at_target);
}
#[test]
fn point_in_time_cuts_an_undecodable_record_so_later_commits_survive() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, w) = (tmp.path().join("c"), tmp.path().join("w"));
    let wal = manual(&w);
    wal.append(&put("a", "1")).unwrap();
    wal.append(&commit(1)).unwrap();
    let mpos = wal.append(&WalEntry::Checkpoint { id: 7 }).unwrap();
    wal.append(&put("b", "2")).unwrap();
    wal.append(&commit(2)).unwrap();
    wal.close().unwrap();
    let seg = segments(&w).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let seg_id = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    let off = (40 + mpos) as usize;
    bytes[off + 4] = 9; // unknown kind, checksums recomputed: CRC-valid, undecodable
    let mut buf = Vec::new();
    buf.extend_from_slice(&seg_id.to_le_bytes());
    buf.extend_from_slice(&mpos.to_le_bytes());
    buf.extend_from_slice(&bytes[off..off + 12]);
    let crc = crc32c::crc32c(&buf);
    bytes[off + 12..off + 16].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&seg, &bytes).unwrap();
    let cfg = RecoveryConfig::new(&c, &w)
        .with_collect_state_changes(true)
        .with_wal_recovery_mode(WalRecoveryMode::PointInTime);
    let r1 = RecoveryManager::new(cfg.clone()).recover().unwrap();
    assert_eq!(r1.state_changes, vec![(b"a".to_vec(), Some(b"1".to_vec()))]);
    assert!(r1.report.stopped_at_damage.is_some());
    assert!(
        r1.report.bytes_cut() > 0,
        "the undecodable record was not cut"
    );
    // The application resumes writing, as recovery told it the log is fine.
    let wal = WriteAheadLog::open(
        &w,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_recovery_mode(WalRecoveryMode::PointInTime),
    )
    .unwrap();
    wal.append(&put("c", "3")).unwrap();
    wal.append(&commit(3)).unwrap();
    wal.sync().unwrap();
    wal.close().unwrap();
    let r2 = RecoveryManager::new(cfg).recover().unwrap();
    assert!(
        r2.state_changes.iter().any(|(k, _)| k == b"c"),
        "commit 3 (acknowledged after recovery) is never recovered"
    );
}
