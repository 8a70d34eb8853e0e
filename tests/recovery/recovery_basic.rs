//! Recovery: checkpoint only, log only, both; commit boundaries and the
//! uncommitted tail; fallback to an older checkpoint; coverage errors; damage;
//! repair off; point-in-time; streaming; crashes during recovery itself.

use crate::common;

use common::*;
use highwater::recovery::{CommitInfo, SinkError};
use highwater::storage::{CrashImage, Storage};
use highwater::{
    validate_checkpoint, Error, RecoveredState, RecoveryConfig, RecoveryManager, ReplaySink,
    SyncPolicy, TransactionMode, WalEntry, WalOptions, WalRecoveryMode, WriteAheadLog,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

fn del(key: &str) -> WalEntry {
    WalEntry::Delete {
        key: key.as_bytes().to_vec(),
    }
}

fn commit_src(source: &str, offset: u64, watermark: Option<i64>) -> WalEntry {
    WalEntry::Commit {
        offsets: HashMap::from([(source.to_string(), offset)]),
        watermark,
    }
}

fn change(key: &str, value: Option<&str>) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        key.as_bytes().to_vec(),
        value.map(|v| v.as_bytes().to_vec()),
    )
}

fn append_all(wal: &WriteAheadLog, entries: &[WalEntry]) -> Vec<u64> {
    entries.iter().map(|e| wal.append(e).unwrap()).collect()
}

fn collect(d: &Dirs) -> RecoveryConfig {
    RecoveryConfig::new(&d.ckpt, &d.wal).with_collect_state_changes(true)
}

fn recover(config: RecoveryConfig) -> RecoveredState {
    RecoveryManager::new(config).recover().unwrap()
}

fn checkpoint(d: &Dirs, position: u64, offset: u64, pairs: &[(&str, &str)]) -> u64 {
    checkpoint_at(&d.ckpt, position, "src", offset, pairs)
}

fn state_of(r: &RecoveredState) -> Vec<(String, String)> {
    r.current_state()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn nothing_on_disk_recovers_empty() {
    let d = dirs();
    let r = RecoveryManager::recover_simple(&d.ckpt, &d.wal).unwrap();
    assert!(!r.has_state());
    assert_eq!(r.checkpoint_id, None);
    assert_eq!(r.wal_position, 0);
    assert_eq!(r.wal_entries_replayed, 0);
    assert!(r.source_offsets.is_empty());
    assert!(
        !d.wal.exists(),
        "recovery must not create the log directory"
    );
    assert!(!RecoveredState::empty().has_state());
}

#[test]
fn checkpoint_only() {
    let d = dirs();
    let id = checkpoint(&d, 0, 7, &[("a", "1"), ("b", "2")]);
    let r = RecoveryManager::recover_with_changes(&d.ckpt, &d.wal).unwrap();
    assert!(r.has_state());
    assert_eq!(r.checkpoint_id, Some(id));
    assert_eq!(r.epoch, 107);
    assert_eq!(r.source_offsets, HashMap::from([("src".to_string(), 7)]));
    assert_eq!(r.watermark, Some(7));
    assert_eq!(r.state_snapshot.as_ref().unwrap().len(), 2);
    assert!(r.state_changes.is_empty());
    assert_eq!(state_of(&r), pairs(&[("a", "1"), ("b", "2")]));
}

#[test]
fn wal_only_returns_committed_changes_in_log_order() {
    let d = dirs();
    let wal = manual(&d.wal);
    append_all(
        &wal,
        &[
            put("a", "1"),
            put("b", "2"),
            commit_src("src", 10, Some(100)),
            del("a"),
            put("b", "3"),
            commit_src("other", 4, None),
        ],
    );
    let end = wal.position();
    wal.close().unwrap();

    let r = RecoveryManager::recover_with_changes(&d.ckpt, &d.wal).unwrap();
    assert!(r.has_state());
    assert_eq!(r.checkpoint_id, None);
    assert!(r.state_snapshot.is_none());
    assert_eq!(
        r.state_changes,
        vec![
            change("a", Some("1")),
            change("b", Some("2")),
            change("a", None),
            change("b", Some("3")),
        ]
    );
    assert_eq!(r.wal_entries_replayed, 6);
    assert_eq!(r.wal_position, end);
    assert_eq!(
        r.source_offsets,
        HashMap::from([("src".to_string(), 10), ("other".to_string(), 4)])
    );
    assert_eq!(
        r.watermark,
        Some(100),
        "a Commit without watermark keeps it"
    );
    assert_eq!(r.report.committed_transactions, 2);
    assert_eq!(r.report.uncommitted_entries, 0);
    assert_eq!(state_of(&r), pairs(&[("b", "3")]));

    // recover_simple is the whole result: its current_state is the state.
    let simple = RecoveryManager::recover_simple(&d.ckpt, &d.wal).unwrap();
    assert_eq!(simple.report.changes_applied, 4);
    assert_eq!(simple.state_changes.len(), 4);
    assert_eq!(state_of(&simple), pairs(&[("b", "3")]));

    // Without collection (asked for explicitly), the changes are counted and
    // current_state refuses.
    let counted = RecoveryManager::new(RecoveryConfig::new(&d.ckpt, &d.wal))
        .recover()
        .unwrap();
    assert!(counted.state_changes.is_empty());
    assert_eq!(counted.report.changes_applied, 4);
    assert!(matches!(
        counted.current_state(),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn checkpoint_plus_wal_replays_only_after_the_checkpoint() {
    let d = dirs();
    let wal = manual(&d.wal);
    append_all(&wal, &[put("a", "old"), commit_src("src", 5, Some(5))]);
    let at = wal.position();
    wal.sync().unwrap();
    let id = checkpoint(&d, at, 5, &[("a", "old")]);
    append_all(
        &wal,
        &[
            put("b", "new"),
            del("a"),
            commit_src("src", 9, Some(90)),
            WalEntry::Checkpoint { id: 99 },
        ],
    );
    wal.close().unwrap();

    let r = recover(collect(&d));
    assert_eq!(r.checkpoint_id, Some(id));
    assert_eq!(
        r.state_changes,
        vec![change("b", Some("new")), change("a", None)]
    );
    assert_eq!(r.source_offsets["src"], 9);
    assert_eq!(r.watermark, Some(90));
    assert_eq!(r.wal_entries_replayed, 4, "the trailing marker is counted");
    assert_eq!(
        r.report.uncommitted_entries, 0,
        "a marker between transactions is not an uncommitted tail"
    );
    assert_eq!(state_of(&r), pairs(&[("b", "new")]));
}

#[test]
fn uncommitted_tail_is_dropped_cut_and_never_adopted_by_a_later_commit() {
    let d = dirs();
    let wal = manual(&d.wal);
    append_all(&wal, &[put("a", "1"), commit_src("src", 1, None)]);
    let committed_end = wal.position();
    append_all(&wal, &[put("ghost", "x"), del("a")]);
    wal.close().unwrap();

    let r = recover(collect(&d));
    assert_eq!(r.state_changes, vec![change("a", Some("1"))]);
    assert_eq!(r.wal_entries_replayed, 4);
    assert_eq!(r.wal_position, committed_end);
    assert_eq!(r.report.uncommitted_entries, 2);
    assert_eq!(r.report.uncommitted_position, Some(committed_end));
    assert!(r.report.uncommitted_bytes_cut > 0);

    // The writer resumes; a later Commit closes only what follows the cut.
    let wal = manual(&d.wal);
    assert!(wal.position() >= committed_end);
    append_all(&wal, &[put("c", "3"), commit_src("src", 2, None)]);
    wal.close().unwrap();
    let r = recover(collect(&d));
    assert_eq!(
        r.state_changes,
        vec![change("a", Some("1")), change("c", Some("3"))]
    );
    assert_eq!(r.report.uncommitted_entries, 0);
}

#[test]
fn repair_off_never_writes_and_reports_the_torn_tail() {
    let d = dirs();
    let wal = manual(&d.wal);
    append_all(&wal, &[put("a", "1"), commit_src("src", 1, None)]);
    append_all(&wal, &[put("b", "2")]);
    wal.close().unwrap();
    strip_close_marker(&d.wal);
    let seg = segments(&d.wal).pop().unwrap();
    set_file_len(&seg, file_len(&seg) - 3); // tear the last record
    let before = std::fs::read(&seg).unwrap();

    let r = recover(collect(&d).with_repair_wal(false));
    assert_eq!(r.state_changes, vec![change("a", Some("1"))]);
    assert!(r.report.torn_tail.is_some(), "{:?}", r.report);
    assert_eq!(
        r.report.uncommitted_entries, 0,
        "the torn record is not read"
    );
    assert_eq!(r.report.bytes_cut(), 0);
    assert_eq!(std::fs::read(&seg).unwrap(), before, "repair off wrote");

    // Under AbsoluteConsistency the same log is an error naming the segment.
    let err = RecoveryManager::new(
        collect(&d)
            .with_repair_wal(false)
            .with_wal_recovery_mode(WalRecoveryMode::AbsoluteConsistency),
    )
    .recover()
    .unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(
        err.to_string().contains(&seg.display().to_string()),
        "{err}"
    );

    // With repair the torn tail is cut durably and reported.
    let r = recover(collect(&d));
    let repair = r.report.wal_repair.as_ref().expect("a repair");
    assert!(repair.torn_tail && repair.bytes_cut > 0);
    assert_eq!(r.state_changes, vec![change("a", Some("1"))]);
}

#[test]
fn no_transactions_mode_applies_every_change_and_must_be_chosen() {
    let d = dirs();
    let wal = manual(&d.wal);
    append_all(&wal, &[put("a", "1"), put("b", "2"), del("a")]);
    let end = wal.position();
    wal.close().unwrap();

    // Read-only default: nothing is returned, everything is reported.
    let r = recover(collect(&d).with_repair_wal(false));
    assert!(r.state_changes.is_empty());
    assert!(!r.has_state());
    assert_eq!(r.report.uncommitted_entries, 3);

    let r = recover(
        collect(&d)
            .with_repair_wal(false)
            .with_transaction_mode(TransactionMode::NoTransactions),
    );
    assert_eq!(
        r.state_changes,
        vec![
            change("a", Some("1")),
            change("b", Some("2")),
            change("a", None)
        ]
    );
    assert_eq!(r.wal_position, end);
    assert_eq!(r.report.uncommitted_entries, 0);
    assert!(r.has_state());
}

#[test]
fn newest_damaged_checkpoint_falls_back_and_never_lends_its_offsets() {
    let d = dirs();
    let wal = manual(&d.wal);
    append_all(&wal, &[put("a", "1"), commit_src("src", 1, Some(1))]);
    let p1 = wal.position();
    wal.sync().unwrap();
    let old = checkpoint(&d, p1, 1, &[("a", "1")]);
    append_all(&wal, &[put("b", "2"), commit_src("src", 2, Some(2))]);
    let p2 = wal.position();
    wal.sync().unwrap();
    // Distinct offsets and watermark: they must not leak into the result.
    let new = checkpoint(&d, p2, 999, &[("a", "1"), ("b", "2")]);
    wal.close().unwrap();
    let part = d
        .ckpt
        .join(format!("checkpoint-{new:020}"))
        .join("part-state.hwstate");
    let len = file_len(&part);
    patch(&part, len - 20, b"\xff\xff");

    let r = recover(collect(&d));
    assert_eq!(r.checkpoint_id, Some(old));
    assert_eq!(r.report.rejected_checkpoints.len(), 1);
    assert_eq!(r.report.rejected_checkpoints[0].id, new);
    assert!(!r.report.rejected_checkpoints[0].reason.is_empty());
    // Offsets and watermark come from the old checkpoint plus the replayed
    // Commit, never from the damaged one.
    assert_eq!(r.state_changes, vec![change("b", Some("2"))]);
    assert_eq!(r.source_offsets["src"], 2);
    assert_eq!(r.watermark, Some(2));
    assert_eq!(r.epoch, 101);
    assert_eq!(state_of(&r), pairs(&[("a", "1"), ("b", "2")]));
    assert!(matches!(
        validate_checkpoint(d.ckpt.join(format!("checkpoint-{new:020}"))),
        Err(e) if e.is_corruption()
    ));
    let meta = validate_checkpoint(d.ckpt.join(format!("checkpoint-{old:020}"))).unwrap();
    assert_eq!(meta.id, old);
    assert!(matches!(
        validate_checkpoint(d.ckpt.join("not-a-checkpoint")),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_checkpoint_the_log_no_longer_covers_is_an_error() {
    let d = dirs();
    let opts = WalOptions::new()
        .with_sync_policy(SyncPolicy::Manual)
        .with_segment_size(4096);
    let wal = WriteAheadLog::open(&d.wal, opts.clone()).unwrap();
    for i in 0..300 {
        append_all(&wal, &[put(&format!("k{i}"), "v"), commit(i)]);
    }
    let at = wal.position();
    wal.sync().unwrap();
    let id = checkpoint(&d, at, 1, &[]);
    for i in 0..300 {
        append_all(&wal, &[put(&format!("k{i}"), "w"), commit(i)]);
    }
    wal.drop_segments_before(wal.position()).unwrap();
    wal.close().unwrap();
    let err = RecoveryManager::recover_simple(&d.ckpt, &d.wal).unwrap_err();
    match &err {
        Error::CheckpointNotCovered {
            checkpoint_id,
            position,
            ..
        } => {
            assert_eq!(*checkpoint_id, Some(id));
            assert_eq!(*position, at);
        }
        other => panic!("expected CheckpointNotCovered, got {other}"),
    }
    assert!(err.to_string().contains("wal"), "{err}");

    // Without any checkpoint, a log that no longer starts at 0 is an error too.
    std::fs::remove_dir_all(&d.ckpt).unwrap();
    assert!(matches!(
        RecoveryManager::recover_simple(&d.ckpt, &d.wal),
        Err(Error::CheckpointNotCovered {
            checkpoint_id: None,
            position: 0,
            ..
        })
    ));
}

#[test]
fn a_checkpoint_beyond_the_end_of_the_log_is_recovered_alone() {
    // The log lost its tail below the checkpoint (docs/RECOVERY.md, "The log
    // below a checkpoint"): the checkpoint is returned, not an error; the
    // cases are in tests/recovery/recovery_seed_cases.rs.
    let d = dirs();
    let wal = manual(&d.wal);
    append_all(&wal, &[put("a", "1"), commit(1)]);
    let end = wal.position();
    wal.close().unwrap();
    checkpoint(&d, end + 4096, 1, &[]);
    let r = RecoveryManager::recover_simple(&d.ckpt, &d.wal).unwrap();
    assert_eq!(r.wal_position, end + 4096);
    assert_eq!(r.wal_entries_replayed, 0);
    // The close marker follows the last entry.
    let short = r.report.wal_short.as_ref().expect("reported short");
    assert!(short.end >= end && short.end < end + 4096, "{short:?}");
}

#[test]
fn corruption_before_valid_records_fails_naming_file_and_offset() {
    let d = dirs();
    let wal = manual(&d.wal);
    let positions = append_all(
        &wal,
        &[
            put("a", "1"),
            commit(1),
            put("b", "2"),
            commit(2),
            put("c", "3"),
            commit(3),
        ],
    );
    wal.close().unwrap();
    let seg = segments(&d.wal).pop().unwrap();
    // Positions map to file offsets after the 40-byte segment header.
    let offset = 40 + positions[2] + 20;
    patch(&seg, offset, b"\xde\xad");
    let err = RecoveryManager::recover_simple(&d.ckpt, &d.wal).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    let text = err.to_string();
    assert!(text.contains(&seg.display().to_string()), "{text}");
    assert!(
        text.contains(&format!("offset {}", 40 + positions[2])),
        "{text}"
    );

    // PointInTime keeps the consistent prefix instead.
    let r = recover(collect(&d).with_wal_recovery_mode(WalRecoveryMode::PointInTime));
    assert_eq!(r.state_changes, vec![change("a", Some("1"))]);
    assert_eq!(r.source_offsets["src-0"], 1);
}

#[test]
fn point_in_time_restore_uses_the_checkpoint_before_the_target() {
    let d = dirs();
    let wal = manual(&d.wal);
    append_all(&wal, &[put("a", "1"), commit_src("src", 1, None)]);
    let p1 = wal.position();
    wal.sync().unwrap();
    let first = checkpoint(&d, p1, 1, &[("a", "1")]);
    append_all(&wal, &[put("b", "2"), commit_src("src", 2, None)]);
    let target = wal.position();
    append_all(&wal, &[put("c", "3"), commit_src("src", 3, None)]);
    let p3 = wal.position();
    wal.sync().unwrap();
    let last = checkpoint(&d, p3, 3, &[("a", "1"), ("b", "2"), ("c", "3")]);
    wal.close().unwrap();
    let before = wal_bytes(&d.wal);

    let r = recover(collect(&d).with_target_position(target));
    assert_eq!(r.checkpoint_id, Some(first));
    assert_eq!(r.report.skipped_after_target, vec![last]);
    assert_eq!(r.state_changes, vec![change("b", Some("2"))]);
    assert_eq!(r.source_offsets["src"], 2);
    assert_eq!(r.wal_position, target);
    assert!(r.report.stopped_at_target);
    assert!(!r.has_more, "has_more is for entry limits only");
    assert_eq!(
        wal_bytes(&d.wal),
        before,
        "entries after the target were cut"
    );
}

fn wal_bytes(dir: &Path) -> Vec<Vec<u8>> {
    segments(dir)
        .iter()
        .map(|s| std::fs::read(s).unwrap())
        .collect()
}

/// A sink that records what it receives and can fail on a chosen key.
#[derive(Default)]
struct Recording {
    changes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    commits: Vec<u64>,
    fail_on: Option<Vec<u8>>,
}

impl ReplaySink for Recording {
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), SinkError> {
        if self.fail_on.as_deref() == Some(key) {
            return Err("store is full".into());
        }
        self.changes.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        Ok(())
    }

    fn commit(&mut self, commit: &CommitInfo<'_>) -> Result<(), SinkError> {
        self.commits.push(commit.offsets["src-0"]);
        Ok(())
    }
}

#[test]
fn streaming_replay_rereads_large_transactions_and_matches_collection() {
    let d = dirs();
    let wal = manual(&d.wal);
    let mut expected = Vec::new();
    for t in 0..5u64 {
        // Transaction 2 is far larger than the 1 KiB buffer.
        let n = if t == 2 { 400 } else { 3 };
        for i in 0..n {
            let key = format!("t{t}-k{i}");
            wal.append(&put(&key, "0123456789abcdef")).unwrap();
            expected.push(change(&key, Some("0123456789abcdef")));
        }
        wal.append(&commit(t)).unwrap();
    }
    append_all(&wal, &[put("tail", "x")]);
    wal.close().unwrap();

    let config = RecoveryConfig::new(&d.ckpt, &d.wal)
        .with_repair_wal(false)
        .with_transaction_buffer_bytes(1024);
    let mut sink = Recording::default();
    let r = RecoveryManager::new(config.clone())
        .recover_into(&mut sink)
        .unwrap();
    assert_eq!(sink.changes, expected);
    assert_eq!(sink.commits, vec![0, 1, 2, 3, 4]);
    assert_eq!(r.report.transactions_reread, 1);
    assert_eq!(r.report.uncommitted_entries, 1);
    assert!(r.state_changes.is_empty());

    let collected = recover(config.clone().with_collect_state_changes(true));
    assert_eq!(collected.state_changes, expected);
    assert_eq!(collected.source_offsets, r.source_offsets);

    let mut failing = Recording {
        fail_on: Some(b"t3-k1".to_vec()),
        ..Recording::default()
    };
    let err = RecoveryManager::new(config)
        .recover_into(&mut failing)
        .unwrap_err();
    assert!(matches!(err, Error::ReplaySink { .. }), "{err}");
    assert!(err.to_string().contains("store is full"), "{err}");
}

#[test]
fn bounded_replay_in_pieces_equals_one_replay() {
    let d = dirs();
    let wal = manual(&d.wal);
    for t in 0..20u64 {
        for i in 0..(t % 4 + 1) {
            wal.append(&put(&format!("k{}", (t * 7 + i) % 11), &format!("v{t}")))
                .unwrap();
        }
        if t % 3 == 0 {
            wal.append(&del(&format!("k{}", t % 11))).unwrap();
        }
        wal.append(&commit(t)).unwrap();
    }
    append_all(&wal, &[put("pending", "x")]);
    wal.close().unwrap();

    let whole = recover(collect(&d).with_repair_wal(false));
    for n in [1, 2, 3, 5, 8, 13, 1000] {
        let manager =
            RecoveryManager::new(collect(&d).with_repair_wal(false).with_max_wal_entries(n));
        let mut piece = manager.recover().unwrap();
        let mut changes = piece.state_changes.clone();
        let mut calls = 1;
        while piece.has_more {
            let next = manager.resume(&piece).unwrap();
            assert!(next.wal_entries_replayed <= n, "n = {n}");
            assert!(
                (next.wal_position, next.resume_position)
                    > (piece.wal_position, piece.resume_position)
                    || !next.has_more
            );
            changes.extend(next.state_changes.iter().cloned());
            piece = next;
            calls += 1;
            assert!(calls < 200, "no progress with n = {n}");
        }
        assert_eq!(changes, whole.state_changes, "n = {n}");
        assert_eq!(piece.source_offsets, whole.source_offsets, "n = {n}");
        assert_eq!(piece.watermark, whole.watermark, "n = {n}");
        assert_eq!(piece.wal_position, whole.wal_position, "n = {n}");
        assert_eq!(piece.report.uncommitted_entries, 1, "n = {n}");
    }
}

#[test]
fn a_crash_at_any_point_of_recovery_then_recovery_again_gives_the_same_result() {
    // A log that needs every kind of write recovery makes: a torn tail to cut,
    // an uncommitted tail to cut, a sync marker to append.
    let build = |d: &Dirs| {
        let wal = manual(&d.wal);
        append_all(&wal, &[put("a", "1"), commit(1)]);
        wal.sync().unwrap();
        checkpoint(d, wal.position(), 1, &[("a", "1")]);
        append_all(&wal, &[put("b", "2"), del("a"), commit(2), put("c", "3")]);
        append_all(&wal, &[put("d", "4")]);
        wal.close().unwrap();
        strip_close_marker(&d.wal);
        let seg = segments(&d.wal).pop().unwrap();
        set_file_len(&seg, file_len(&seg) - 5);
    };
    let reference = {
        let d = dirs();
        build(&d);
        recover(collect(&d))
    };
    assert_eq!(
        reference.state_changes,
        vec![change("b", Some("2")), change("a", None)]
    );
    let mut crashed = 0;
    for k in 0.. {
        let d = dirs();
        build(&d);
        // The process dies at its k-th mutating operation of recovery; the
        // page cache survives (a process crash) or not (a power loss).
        let sim = sim_copy_of(d._tmp.path());
        sim.crash_at(sim.operations() + k);
        let first = RecoveryManager::new(collect(&d).with_storage(Arc::new(sim.clone()))).recover();
        let finished = first.is_ok();
        crashed += u64::from(!finished);
        sim.crash();
        for image in [CrashImage::KeepUnsynced, CrashImage::LoseUnsynced] {
            let rebooted: Arc<dyn Storage> = Arc::new(sim.image(image));
            let again = recover(collect(&d).with_storage(rebooted.clone()));
            let at = format!("crash at {k}, {image:?}");
            assert_eq!(again.state_changes, reference.state_changes, "{at}");
            assert_eq!(again.source_offsets, reference.source_offsets, "{at}");
            assert_eq!(again.wal_position, reference.wal_position, "{at}");
            assert_eq!(again.checkpoint_id, reference.checkpoint_id, "{at}");
            assert_eq!(state_of(&again), state_of(&reference), "{at}");
            // Appending after the second recovery never revives the cut tail.
            let wal = WriteAheadLog::open(
                &d.wal,
                WalOptions::default()
                    .with_sync_policy(SyncPolicy::Manual)
                    .with_storage(rebooted.clone()),
            )
            .unwrap();
            append_all(&wal, &[commit(3)]);
            wal.close().unwrap();
            let after = recover(collect(&d).with_storage(rebooted));
            assert_eq!(after.state_changes, reference.state_changes, "{at}");
        }
        if finished {
            break;
        }
    }
    assert!(crashed >= 4, "recovery made only {crashed} mutations");
}

/// A checkpoint is restored only when every part file of it and of its chain
/// verifies, not only the part recovery loads: damage in another part (one
/// byte of its payload, size unchanged) rejects it, and in an ancestor of a
/// delta rejects the delta too, naming the ancestor.
#[test]
fn damage_in_a_part_recovery_does_not_load_rejects_the_checkpoint() {
    use highwater::checkpoint::{CheckpointRequest, PartInput};
    use highwater::{CheckpointConfig, IncrementalCheckpointManager, StateDelta, StateSnapshot};
    let d = dirs();
    let state = StateSnapshot::new(vec![(b"a".to_vec(), b"1".to_vec())]);
    let other = StateSnapshot::new(vec![(b"x".to_vec(), vec![7u8; 300])]);
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&d.ckpt)).unwrap();
    let write = |m: &IncrementalCheckpointManager| {
        m.create_checkpoint(
            CheckpointRequest::new(0)
                .with_part("state", PartInput::Snapshot(&state))
                .with_part("other", PartInput::Snapshot(&other)),
        )
        .unwrap()
        .id
    };
    let first = write(&m);
    let second = write(&m);
    // A delta of `state` alone over `second`: `other` is carried over from it.
    let delta = StateDelta::from_changes(vec![(b"a".to_vec(), Some(b"2".to_vec()))]);
    let third = m
        .create_checkpoint(CheckpointRequest::new(0).with_part("state", PartInput::Delta(&delta)))
        .unwrap();
    assert_eq!(third.parent_id, Some(second));
    drop(m);
    let damaged = d
        .ckpt
        .join(format!("checkpoint-{second:020}"))
        .join("part-other.hwstate");
    let len = file_len(&damaged);
    patch(&damaged, len - 20, b"\xff\xff");

    let r = recover(collect(&d));
    assert_eq!(
        r.checkpoint_id,
        Some(first),
        "{:?}",
        r.report.rejected_checkpoints
    );
    let rejected: Vec<u64> = r.report.rejected_checkpoints.iter().map(|c| c.id).collect();
    assert_eq!(rejected, vec![third.id, second]);
    assert!(
        r.report.rejected_checkpoints[0]
            .reason
            .contains(&format!("depends on checkpoint {second}")),
        "{}",
        r.report.rejected_checkpoints[0].reason
    );
    assert_eq!(
        r.state_snapshot.unwrap(),
        StateSnapshot::new(vec![(b"a".to_vec(), b"1".to_vec())])
    );

    // validate_checkpoint agrees: the delta names its damaged parent.
    let dir_of = |id: u64| d.ckpt.join(format!("checkpoint-{id:020}"));
    match validate_checkpoint(dir_of(third.id)) {
        Err(Error::CheckpointParentUnrestorable { id, parent, .. }) => {
            assert_eq!((id, parent), (third.id, second));
        }
        other => panic!("expected CheckpointParentUnrestorable, got {other:?}"),
    }
    assert!(validate_checkpoint(dir_of(second))
        .unwrap_err()
        .is_corruption());
    assert_eq!(validate_checkpoint(dir_of(first)).unwrap().id, first);
}

/// A read of a delta's base that fails while recovery loads it is not damage:
/// recovery returns the error (retry), never restores an older checkpoint or
/// the empty state in the delta's place.
#[test]
fn a_failed_read_of_a_deltas_base_while_loading_is_an_error_not_a_fallback() {
    use highwater::checkpoint::{CheckpointRequest, PartInput};
    use highwater::storage::{CrashSimStorage, SimFault, SimOp};
    use highwater::{CheckpointConfig, IncrementalCheckpointManager, StateDelta};
    let (ckpt, wal) = (Path::new("/job/ckpt"), Path::new("/job/wal"));
    let sim = CrashSimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let base = checkpoint_on(storage.clone(), ckpt, 0, "src", 1, &[("a", "1")]);
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(ckpt).with_storage(storage.clone()),
    )
    .unwrap();
    m.restored_from(Some(base));
    let delta = StateDelta::from_changes(vec![(b"a".to_vec(), Some(b"2".to_vec()))]);
    let top = m
        .create_checkpoint(CheckpointRequest::new(0).with_part("state", PartInput::Delta(&delta)))
        .unwrap();
    assert_eq!(top.parent_id, Some(base));
    drop(m);
    let config = || RecoveryConfig::new(ckpt, wal).with_storage(storage.clone());

    // Only the base's state file fails, and only positional reads of it (its
    // metadata and size read fine): the failure comes while it is loaded.
    sim.inject(
        SimFault::new(SimOp::ReadAt)
            .on_path(format!("checkpoint-{base:020}/part-state"))
            .times(u64::MAX),
    );
    let failed = RecoveryManager::new(config()).recover();
    // Refused at the delta itself (not after rejecting it and trying its
    // base), naming the base, and not as damage.
    match &failed {
        Err(e @ Error::CheckpointParentUnrestorable { id, parent, .. }) => {
            assert_eq!((*id, *parent), (top.id, base));
            assert!(!e.is_corruption() && e.is_retryable(), "{e}");
        }
        Err(e) => panic!("expected the delta refused naming its base, got {e}"),
        Ok(r) => panic!(
            "restored {:?} while its base cannot be read",
            r.checkpoint_id
        ),
    }
    sim.clear_faults();
    let r = RecoveryManager::new(config()).recover().unwrap();
    assert_eq!(r.checkpoint_id, Some(top.id));
    assert!(r.report.rejected_checkpoints.is_empty());
}
