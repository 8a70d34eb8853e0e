//! The read-only inspection API the `highwater` tool is built on:
//! `WriteAheadLog::plan_repair`, `inspect::verify_log`,
//! `CheckpointStore::verify_all`, `RecoveryConfig::with_dry_run` and the
//! view's `iter_from`/`prefix`. Each must agree with the operation it
//! predicts, and none may change a byte on disk.

use crate::common;

use common::{file_len, manual, patch, put, segments, write_pairs};
use highwater::inspect::{verify_log, SEGMENT_HEADER_LEN};
use highwater::storage::default_storage;
use highwater::wal::DamageClass;
use highwater::wal::DEFAULT_MAX_RECORD_SIZE;
use highwater::{
    CheckpointConfig, CheckpointRequest, CheckpointStore, IncrementalCheckpointManager, PartInput,
    RecoveryConfig, RecoveryManager, StateDelta, StateSnapshot, SyncPolicy, WalOptions,
    WalRecoveryMode, WriteAheadLog,
};
use std::path::{Path, PathBuf};

/// Every file under `dir` with its bytes, and every directory.
fn image(dir: &Path) -> (Vec<(PathBuf, Vec<u8>)>, Vec<PathBuf>) {
    let mut dirs = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
                dirs.push(p);
            }
        }
    }
    dirs.sort();
    (common::read_tree(dir), dirs)
}

/// Bytes of the segment files in an image.
fn wal_bytes(image: &(Vec<(PathBuf, Vec<u8>)>, Vec<PathBuf>)) -> u64 {
    image
        .0
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "wal"))
        .map(|(_, b)| b.len() as u64)
        .sum()
}

/// A log of 4 KiB segments, synced by hand, so that a few hundred entries span
/// several segments.
fn small_segment_wal(dir: &Path) -> WriteAheadLog {
    WriteAheadLog::open(
        dir,
        WalOptions::new()
            .with_sync_policy(SyncPolicy::Manual)
            .with_segment_size(4096),
    )
    .unwrap()
}

/// A log of 4 KiB segments holding `pairs` Put+Commit pairs.
fn small_segment_log(dir: &Path, pairs: u64) {
    let wal = small_segment_wal(dir);
    write_pairs(&wal, pairs);
    wal.sync().unwrap();
    drop(wal);
}

fn verify(dir: &Path) -> highwater::inspect::LogVerification {
    verify_log(
        default_storage().as_ref(),
        dir,
        DEFAULT_MAX_RECORD_SIZE,
        &mut |_| {},
    )
    .unwrap()
}

#[test]
fn plan_repair_predicts_repair_exactly_and_writes_nothing() {
    let modes = [
        WalRecoveryMode::TolerateTornTail,
        WalRecoveryMode::PointInTime,
    ];
    for mode in modes {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("wal");
        small_segment_log(&dir, 300);
        let segs = segments(&dir);
        assert!(segs.len() >= 3, "{segs:?}");
        let newest = segs.last().unwrap();
        // A torn tail in the newest segment; in PointInTime mode also a
        // damaged record in the oldest, which cuts everything after it.
        patch(newest, file_len(newest), &[0xEE; 9]);
        if mode == WalRecoveryMode::PointInTime {
            patch(&segs[0], SEGMENT_HEADER_LEN + 100, &[0xEE]);
        }
        let options = WalOptions::new()
            .with_sync_policy(SyncPolicy::Manual)
            .with_recovery_mode(mode);
        let before = image(&dir);
        let planned = WriteAheadLog::plan_repair(&dir, &options).unwrap();
        assert_eq!(
            image(&dir),
            before,
            "plan_repair changed the log ({mode:?})"
        );
        assert!(planned.cut_anything());

        let wal = WriteAheadLog::open(&dir, options).unwrap();
        let done = wal.repair().unwrap();
        assert_eq!(planned, done, "{mode:?}");
        let removed = wal_bytes(&before) - wal_bytes(&image(&dir));
        assert_eq!(done.bytes_cut, removed, "{mode:?}");
        drop(wal);
        let again = WriteAheadLog::plan_repair(&dir, &WalOptions::new()).unwrap();
        assert!(!again.cut_anything());
        // Closing may have written a sync marker after the cut.
        assert!(again.position >= done.position);
    }
}

#[test]
fn plan_repair_predicts_a_rewritten_header_and_refuses_in_absolute_consistency() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    small_segment_log(&dir, 300);
    let newest = segments(&dir).pop().unwrap();
    // Keep only part of the newest segment's header: a torn creation.
    common::set_file_len(&newest, SEGMENT_HEADER_LEN - 5);
    let strict = WalOptions::new().with_recovery_mode(WalRecoveryMode::AbsoluteConsistency);
    let refused = WriteAheadLog::plan_repair(&dir, &strict).unwrap_err();
    assert!(refused.is_corruption(), "{refused}");
    let options = WalOptions::new().with_sync_policy(SyncPolicy::Manual);
    let before = image(&dir);
    let planned = WriteAheadLog::plan_repair(&dir, &options).unwrap();
    assert_eq!(image(&dir), before);
    assert_eq!(
        (planned.offset, planned.bytes_cut),
        (0, SEGMENT_HEADER_LEN - 5)
    );
    let wal = WriteAheadLog::open(&dir, options).unwrap();
    assert_eq!(wal.repair().unwrap(), planned);
}

#[test]
fn plan_repair_refuses_what_open_refuses_and_handles_a_missing_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    assert!(!WriteAheadLog::plan_repair(&dir, &WalOptions::new())
        .unwrap()
        .cut_anything());
    assert!(!dir.exists(), "plan_repair created the directory");
    // A damaged record with valid records after it: corruption, which the
    // default mode does not cut.
    let wal = manual(&dir);
    write_pairs(&wal, 20);
    wal.sync().unwrap();
    drop(wal);
    let newest = segments(&dir)[0].clone();
    patch(&newest, SEGMENT_HEADER_LEN + 3, &[0xEE]);
    let err = WriteAheadLog::plan_repair(&dir, &WalOptions::new()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert_eq!(err.path(), Some(newest.as_path()));
    assert!(err.offset().is_some());
    let open_err = WriteAheadLog::open(&dir, WalOptions::new()).unwrap_err();
    assert_eq!(err.to_string(), open_err.to_string());
}

#[test]
fn verify_log_lists_damage_in_every_segment_and_goes_on_past_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    small_segment_log(&dir, 300);
    let clean = verify(&dir);
    assert!(clean.is_clean());
    // 300 pairs and the sync marker closing wrote.
    assert_eq!(clean.records(), 601);
    let segs = segments(&dir);
    let bytes: u64 = segs.iter().map(|s| file_len(s)).sum();
    assert_eq!(clean.bytes(), bytes);

    // Corrupt the second segment's header and a record of the oldest, and
    // tear the newest.
    patch(&segs[0], SEGMENT_HEADER_LEN + 100, &[0xEE]);
    patch(&segs[1], 8, &[0xEE]);
    let newest = segs.last().unwrap();
    let end = file_len(newest);
    patch(newest, end, &[0xEE; 5]);
    let checked = verify(&dir);
    assert!(!checked.is_clean() && !checked.only_torn_tail());
    let s = &checked.segments;
    assert_eq!(s.len(), segs.len());
    let d0 = s[0].damage.as_ref().unwrap();
    assert_eq!(d0.class, DamageClass::Corrupt);
    assert_eq!(d0.path, segs[0]);
    assert!(d0.offset <= SEGMENT_HEADER_LEN + 100);
    let d1 = s[1].damage.as_ref().unwrap();
    assert_eq!((d1.class, d1.offset), (DamageClass::Corrupt, 0));
    let last = s.last().unwrap().damage.as_ref().unwrap();
    assert_eq!((last.class, last.offset), (DamageClass::Torn, end));
    for middle in &s[2..s.len() - 1] {
        assert!(middle.is_clean(), "{middle:?}");
        assert!(middle.records > 0);
    }
}

/// Two checkpoints, the second a delta with two parts.
fn checkpoints(dir: &Path) -> (StateSnapshot, StateDelta) {
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir)).unwrap();
    let base = StateSnapshot::new(
        (0..200u32)
            .map(|i| (format!("k{i:03}").into_bytes(), vec![i as u8; 8]))
            .collect(),
    );
    let other = StateSnapshot::new(vec![(b"x".to_vec(), b"y".to_vec())]);
    manager
        .create_checkpoint(
            CheckpointRequest::new(0)
                .with_part("state", PartInput::Snapshot(&base))
                .with_part("other", PartInput::Snapshot(&other)),
        )
        .unwrap();
    let delta = StateDelta::from_changes(
        (0..200u32)
            .filter(|i| i % 3 == 0)
            .map(|i| {
                let key = format!("k{i:03}").into_bytes();
                if i % 2 == 0 {
                    (key, None)
                } else {
                    (key, Some(b"new".to_vec()))
                }
            })
            .chain([(b"k100a".to_vec(), Some(b"added".to_vec()))]),
    );
    manager
        .create_checkpoint(CheckpointRequest::new(0).with_part("state", PartInput::Delta(&delta)))
        .unwrap();
    (base, delta)
}

#[test]
fn verify_all_lists_every_damaged_part_and_agrees_with_find_latest() {
    let tmp = tempfile::tempdir().unwrap();
    checkpoints(tmp.path());
    let store = CheckpointStore::new(tmp.path());
    let mut progress = Vec::new();
    let all = store.verify_all(&mut |b| progress.push(b)).unwrap();
    assert_eq!(all.len(), 2);
    assert!(all
        .iter()
        .all(|c| c.is_restorable() && c.problems.is_empty()));
    assert!(progress.windows(2).all(|w| w[0] <= w[1]));
    let total: u64 = all
        .iter()
        .map(|c| c.metadata.as_ref().unwrap().parts_bytes())
        .sum();
    assert_eq!(progress.last(), Some(&total));

    // Damage both parts of the full checkpoint.
    let first = &all[0];
    let paths: Vec<PathBuf> = first
        .metadata
        .as_ref()
        .unwrap()
        .parts
        .iter()
        .map(|p| first.path.join(&p.file))
        .collect();
    for p in &paths {
        patch(p, file_len(p) - 2, &[0xEE]);
    }
    let before = image(tmp.path());
    let all = store.verify_all(&mut |_| {}).unwrap();
    assert_eq!(image(tmp.path()), before);
    assert_eq!(all[0].problems.len(), 2, "{:?}", all[0].problems);
    let named: Vec<_> = all[0].problems.iter().map(|e| e.path().unwrap()).collect();
    assert_eq!(
        named,
        paths.iter().map(PathBuf::as_path).collect::<Vec<_>>()
    );
    assert!(all[1].problems.is_empty());
    assert!(!all[1].is_restorable());
    assert!(all[1]
        .unrestorable
        .as_ref()
        .unwrap()
        .contains("depends on checkpoint 1"));
    // Same verdict as find_latest.
    assert!(store.find_latest().unwrap().metadata.is_none());
}

#[test]
fn view_iter_from_and_prefix_match_the_merged_state() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, delta) = checkpoints(tmp.path());
    let merged = base.apply(&delta);
    let store = CheckpointStore::new(tmp.path());
    let view = store.open_state_view(2, "state").unwrap();
    let all: Vec<(Vec<u8>, Vec<u8>)> = view
        .iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    assert_eq!(all, merged.to_pairs());
    // Every start key — present, deleted, absent, before and after all.
    let mut starts: Vec<Vec<u8>> = all.iter().map(|(k, _)| k.clone()).collect();
    starts.extend([
        b"".to_vec(),
        b"k0".to_vec(),
        b"k003".to_vec(),
        b"k1000".to_vec(),
        b"z".to_vec(),
    ]);
    for start in &starts {
        let got: Vec<Vec<u8>> = view
            .iter_from(start)
            .unwrap()
            .map(|r| r.unwrap().0.to_vec())
            .collect();
        let want: Vec<Vec<u8>> = all
            .iter()
            .filter(|(k, _)| k >= start)
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(got, want, "from {:?}", String::from_utf8_lossy(start));
    }
    for prefix in [&b"k10"[..], b"k100", b"k1", b"", b"q"] {
        let got: Vec<Vec<u8>> = view
            .prefix(prefix)
            .unwrap()
            .map(|r| r.unwrap().0.to_vec())
            .collect();
        let want: Vec<Vec<u8>> = merged.prefix(prefix).map(|(k, _)| k.to_vec()).collect();
        assert_eq!(got, want, "prefix {:?}", String::from_utf8_lossy(prefix));
    }
}

/// The damage a dry-run scenario inflicts on the log after the job ran.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// 11 garbage bytes after the newest segment's last record.
    TornTail,
    /// A flipped byte in a record of a sealed segment after the checkpoint.
    SealedCorruption,
}

/// Runs a job (checkpoint after 20 commits, 200 more, an uncommitted tail) on
/// 4 KiB segments, damages it, and checks that a dry run returns what
/// recovery then returns, and that the dry run wrote nothing.
fn dry_run_matches_recovery(damage: Damage, mode: WalRecoveryMode) {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    let wal_dir = tmp.path().join("wal");
    let wal = small_segment_wal(&wal_dir);
    write_pairs(&wal, 20);
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let snapshot = StateSnapshot::new(vec![(b"a".to_vec(), b"b".to_vec())]);
    let checkpoint_position = wal.position();
    manager
        .create_checkpoint(
            CheckpointRequest::new(checkpoint_position)
                .with_part("state", PartInput::Snapshot(&snapshot)),
        )
        .unwrap();
    write_pairs(&wal, 200);
    wal.append(&put("tail", "never committed")).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let segs = segments(&wal_dir);
    match damage {
        Damage::TornTail => {
            let newest = segs.last().unwrap();
            patch(newest, file_len(newest), &[0xEE; 11]);
        }
        Damage::SealedCorruption => {
            // The sealed segment after the one holding the checkpoint.
            let name =
                |p: &PathBuf| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
            let seg = segs.iter().find(|p| name(p) > checkpoint_position).unwrap();
            assert_ne!(seg, segs.last().unwrap(), "needs a sealed segment");
            patch(seg, SEGMENT_HEADER_LEN + 200, &[0xEE]);
        }
    }

    let config = |dry: bool| {
        RecoveryConfig::new(&ckpt, &wal_dir)
            .with_dry_run(dry)
            .with_wal_recovery_mode(mode)
            .with_collect_state_changes(true)
    };
    let before = image(tmp.path());
    let planned = RecoveryManager::new(config(true)).recover().unwrap();
    assert_eq!(image(tmp.path()), before, "a dry run changed files");
    assert!(
        planned.report.wal_repair.is_some(),
        "{damage:?}: no cut planned"
    );
    assert_eq!(planned.report.uncommitted_bytes_cut, 0);

    let done = RecoveryManager::new(config(false)).recover().unwrap();
    let r = (&planned.report, &done.report);
    assert_eq!(planned.checkpoint_id, done.checkpoint_id);
    assert_eq!(planned.wal_position, done.wal_position, "{damage:?}");
    assert_eq!(planned.wal_entries_replayed, done.wal_entries_replayed);
    assert_eq!(planned.source_offsets, done.source_offsets);
    assert_eq!(planned.watermark, done.watermark);
    assert_eq!(planned.state_changes, done.state_changes);
    assert_eq!(r.0.wal_repair, r.1.wal_repair);
    assert_eq!(
        r.0.uncommitted_entries, r.1.uncommitted_entries,
        "{damage:?}"
    );
    assert_eq!(
        r.0.uncommitted_position, r.1.uncommitted_position,
        "{damage:?}"
    );
    assert_eq!(r.0.stopped_at_damage, r.1.stopped_at_damage, "{damage:?}");
    assert_eq!(r.0.torn_tail, r.1.torn_tail, "{damage:?}");
}

#[test]
fn dry_run_recovery_returns_what_recovery_returns_and_writes_nothing() {
    dry_run_matches_recovery(Damage::TornTail, WalRecoveryMode::TolerateTornTail);
    dry_run_matches_recovery(Damage::TornTail, WalRecoveryMode::PointInTime);
    dry_run_matches_recovery(Damage::SealedCorruption, WalRecoveryMode::PointInTime);
}

#[test]
fn dry_run_and_recovery_agree_on_damage_below_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    let wal_dir = tmp.path().join("wal");
    let wal = manual(&wal_dir);
    write_pairs(&wal, 20);
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let snapshot = StateSnapshot::new(vec![(b"a".to_vec(), b"b".to_vec())]);
    manager
        .create_checkpoint(
            CheckpointRequest::new(wal.position())
                .with_part("state", PartInput::Snapshot(&snapshot)),
        )
        .unwrap();
    drop(wal);
    patch(&segments(&wal_dir)[0], SEGMENT_HEADER_LEN + 3, &[0xEE]);
    let config = |dry: bool| {
        RecoveryConfig::new(&ckpt, &wal_dir)
            .with_dry_run(dry)
            .with_wal_recovery_mode(WalRecoveryMode::PointInTime)
    };
    // The damage lies in records the checkpoint covers: released, not
    // fatal (docs/RECOVERY.md, "The log below a checkpoint").
    let before = image(tmp.path());
    let planned = RecoveryManager::new(config(true)).recover().unwrap();
    assert_eq!(image(tmp.path()), before);
    let done = RecoveryManager::new(config(false)).recover().unwrap();
    assert_eq!(planned.report.released_damage, done.report.released_damage);
    assert!(done.report.released_damage.is_some());
    let (would, did) = (
        planned.report.wal_release.unwrap(),
        done.report.wal_release.unwrap(),
    );
    assert_eq!((would.floor, would.applied), (did.floor, false));
    assert!(did.applied);
    assert_eq!(planned.wal_position, done.wal_position);
}
