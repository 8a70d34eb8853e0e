//! Checkpoints: round trips, delta chains, retention, fallback to an older
//! checkpoint, damaged and hostile directories, interrupted publishes.

use highwater::checkpoint::{CheckpointRequest, PartInput};
use highwater::inspect::METADATA_FILE;
use highwater::storage::{CrashSimStorage, SimFault, SimOp, Storage};
use highwater::{
    CheckpointConfig, CheckpointKind, Error, IncrementalCheckpointManager, StateDelta,
    StateSnapshot, TrackedState, WalEntry, WalOptions, WriteAheadLog,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn offsets(n: u64) -> HashMap<String, u64> {
    HashMap::from([("src-0".to_string(), n), ("src-1".to_string(), n + 1)])
}

fn snapshot(range: std::ops::Range<u32>, tag: &str) -> StateSnapshot {
    StateSnapshot::new(
        range
            .map(|i| {
                (
                    format!("k{i:05}").into_bytes(),
                    format!("{tag}{i}").into_bytes(),
                )
            })
            .collect(),
    )
}

fn manager(dir: &Path) -> IncrementalCheckpointManager {
    IncrementalCheckpointManager::new(CheckpointConfig::new(dir)).unwrap()
}

/// A full checkpoint of `state` at `position`, with `offsets(position)`.
fn full(
    m: &IncrementalCheckpointManager,
    position: u64,
    state: &StateSnapshot,
) -> highwater::IncrementalCheckpointMetadata {
    m.create_checkpoint_with_state(
        position,
        offsets(position),
        None,
        &state.to_bytes().unwrap(),
    )
    .unwrap()
}

fn part_file(dir: &Path, id: u64, part: &str) -> PathBuf {
    dir.join(format!("checkpoint-{id:020}"))
        .join(format!("part-{part}.hwstate"))
}

fn meta_file(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("checkpoint-{id:020}")).join(METADATA_FILE)
}

#[test]
fn full_checkpoint_round_trip_with_offsets_and_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    m.set_epoch(7);
    assert_eq!(m.epoch(), 7);
    let state = snapshot(0..100, "v");
    let meta = m
        .create_checkpoint_with_state(4096, offsets(10), Some(-5), &state.to_bytes().unwrap())
        .unwrap();
    assert_eq!(meta.id, 1);
    assert_eq!(meta.epoch, 7);
    assert_eq!(meta.kind, CheckpointKind::Full);
    assert_eq!(meta.parent_id, None);
    assert!(meta
        .checkpoint_path(dir.path())
        .join(METADATA_FILE)
        .exists());

    // A fresh manager sees the same checkpoint and the same epoch.
    drop(m); // one writer per directory
    let m = manager(dir.path());
    assert_eq!(m.epoch(), 7);
    let latest = m.find_latest_checkpoint().unwrap().unwrap();
    assert_eq!(latest, meta);
    assert_eq!(latest.wal_position, 4096);
    assert_eq!(latest.source_offsets, offsets(10));
    assert_eq!(latest.watermark, Some(-5));
    let bytes = m.load_checkpoint_state(1).unwrap();
    assert_eq!(StateSnapshot::from_bytes(&bytes).unwrap(), state);
    assert_eq!(m.list_checkpoints().unwrap(), vec![meta]);
}

#[test]
fn opaque_state_is_returned_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let meta = m
        .create_checkpoint_with_state(0, HashMap::new(), None, b"operator bytes")
        .unwrap();
    assert_eq!(m.load_checkpoint_state(meta.id).unwrap(), b"operator bytes");
    let meta = m
        .create_checkpoint_with_state(0, HashMap::new(), None, b"")
        .unwrap();
    assert_eq!(m.load_checkpoint_state(meta.id).unwrap(), b"");
}

#[test]
fn delta_chain_resolves_and_the_view_agrees_with_loading() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let mut state = TrackedState::from_snapshot(&snapshot(0..1000, "a"));
    m.create_checkpoint(
        CheckpointRequest::new(100).with_part("state", PartInput::Snapshot(&state.snapshot())),
    )
    .unwrap();
    state.mark_checkpointed();
    for round in 0..4u32 {
        for i in (round * 10)..(round * 10 + 5) {
            state.put(
                format!("k{i:05}").into_bytes(),
                format!("r{round}").into_bytes(),
            );
        }
        state.delete(format!("k{:05}", 500 + round).as_bytes());
        state.put(format!("new{round}").into_bytes(), b"n".to_vec());
        let delta = state.delta();
        let meta = m
            .create_delta_checkpoint_with_state(
                200 + round as u64,
                offsets(round as u64),
                None,
                &delta.to_bytes().unwrap(),
            )
            .unwrap();
        state.mark_checkpointed();
        assert_eq!(meta.kind, CheckpointKind::Delta, "round {round}");
        assert_eq!(meta.parent_id, Some(meta.id - 1));
        assert_eq!(meta.chain_length, round + 1);
        assert_eq!(meta.base_id, 1);
        let loaded = StateSnapshot::from_bytes(&m.load_checkpoint_state(meta.id).unwrap()).unwrap();
        assert_eq!(loaded, state.snapshot(), "round {round}");
        let view = m.open_state_view(meta.id, "state").unwrap();
        assert_eq!(view.layers().len(), round as usize + 2);
        let via_view: Vec<(Vec<u8>, Vec<u8>)> = view
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<highwater::Result<_>>()
            .unwrap();
        assert_eq!(via_view, loaded.to_pairs());
        assert_eq!(view.len().unwrap(), loaded.len());
        assert_eq!(view.get(b"k00000").unwrap(), loaded.get(b"k00000"));
        assert_eq!(view.get(b"k00500").unwrap(), None);
    }
}

#[test]
fn chain_limits_force_a_full_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path())
            .with_max_delta_chain(2)
            .with_max_delta_ratio(0.01)
            .with_max_retained(10),
    )
    .unwrap();
    let base = snapshot(0..500, "v");
    m.create_checkpoint_with_state(1, HashMap::new(), None, &base.to_bytes().unwrap())
        .unwrap();
    let mut expected = base.clone();
    let mut kinds = Vec::new();
    for i in 0..5u32 {
        let delta =
            StateDelta::from_changes(vec![(format!("k{i:05}").into_bytes(), Some(b"x".to_vec()))]);
        expected = expected.apply(&delta);
        let meta = m
            .create_delta_checkpoint_with_state(
                2 + i as u64,
                HashMap::new(),
                None,
                &delta.to_bytes().unwrap(),
            )
            .unwrap();
        kinds.push(meta.kind);
        let loaded = m.load_snapshot(meta.id, "state").unwrap();
        assert_eq!(loaded, expected);
    }
    use CheckpointKind::{Delta, Full};
    assert_eq!(kinds, [Delta, Delta, Full, Delta, Delta]);

    // A delta larger than the ratio allows (1% of the 1 MiB floor) is also
    // written in full.
    let big = StateDelta::from_changes(
        (0..500u32).map(|i| (format!("k{i:05}").into_bytes(), Some(vec![b'y'; 50]))),
    );
    let meta = m
        .create_delta_checkpoint_with_state(9, HashMap::new(), None, &big.to_bytes().unwrap())
        .unwrap();
    assert_eq!(meta.kind, Full);
    assert_eq!(
        m.load_snapshot(meta.id, "state").unwrap(),
        expected.apply(&big)
    );
}

#[test]
fn multiple_parts_carry_over_in_deltas_and_in_promoted_full_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path()).with_max_delta_chain(1),
    )
    .unwrap();
    let users = snapshot(0..50, "u");
    let orders = snapshot(0..80, "o");
    m.create_checkpoint(
        CheckpointRequest::new(10)
            .with_part("users", PartInput::Snapshot(&users))
            .with_part("orders", PartInput::Snapshot(&orders))
            .with_part("window.buffer", PartInput::Blob(b"raw window")),
    )
    .unwrap();
    let d = StateDelta::from_changes(vec![(b"k00001".to_vec(), None)]);
    let second = m
        .create_checkpoint(CheckpointRequest::new(20).with_part("orders", PartInput::Delta(&d)))
        .unwrap();
    assert_eq!(second.kind, CheckpointKind::Delta);
    assert_eq!(second.parts.len(), 1);
    assert_eq!(m.load_snapshot(2, "users").unwrap(), users, "carried over");
    assert_eq!(m.load_snapshot(2, "orders").unwrap(), orders.apply(&d));
    assert_eq!(
        m.store().load_blob(2, "window.buffer").unwrap(),
        b"raw window"
    );
    // The chain limit (1) turns the next delta into a full checkpoint holding
    // every part.
    let third = m
        .create_checkpoint(CheckpointRequest::new(30).with_part("users", PartInput::Delta(&d)))
        .unwrap();
    assert_eq!(third.kind, CheckpointKind::Full);
    assert_eq!(third.parts.len(), 3);
    assert_eq!(m.load_snapshot(3, "users").unwrap(), users.apply(&d));
    assert_eq!(m.load_snapshot(3, "orders").unwrap(), orders.apply(&d));
    assert_eq!(
        m.store().load_blob(3, "window.buffer").unwrap(),
        b"raw window"
    );
}

#[test]
fn damaged_newest_checkpoint_falls_back_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let a = snapshot(0..10, "a");
    let b = snapshot(0..10, "b");
    m.create_checkpoint_with_state(1, offsets(1), Some(1), &a.to_bytes().unwrap())
        .unwrap();
    m.create_checkpoint_with_state(2, offsets(2), Some(2), &b.to_bytes().unwrap())
        .unwrap();
    // Flip one byte in the newest checkpoint's state file.
    let path = part_file(dir.path(), 2, "state");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    drop(m); // one writer per directory
    let m = manager(dir.path());
    let report = m.store().find_latest().unwrap();
    let latest = report.metadata.unwrap();
    assert_eq!(latest.id, 1);
    assert_eq!(
        latest.source_offsets,
        offsets(1),
        "offsets come from the checkpoint used"
    );
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].id, 2);
    assert!(
        report.rejected[0].reason.contains("part-state.hwstate"),
        "{}",
        report.rejected[0].reason
    );
    assert_eq!(
        StateSnapshot::from_bytes(&m.load_checkpoint_state(1).unwrap()).unwrap(),
        a
    );
    // Loading the damaged one explicitly fails with the damage, never half a state.
    let err = m.load_checkpoint_state(2).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(m
        .open_state_view(2, "state")
        .and_then(|v| v.verify_all())
        .is_err());
}

#[test]
fn a_delta_over_a_damaged_parent_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    full(&m, 1, &snapshot(0..10, "a"));
    full(&m, 2, &snapshot(0..10, "b"));
    let d = StateDelta::from_changes(vec![(b"x".to_vec(), Some(b"y".to_vec()))]);
    let third = m
        .create_delta_checkpoint_with_state(3, offsets(3), None, &d.to_bytes().unwrap())
        .unwrap();
    assert_eq!(third.parent_id, Some(2));
    std::fs::remove_file(part_file(dir.path(), 2, "state")).unwrap();
    drop(m); // one writer per directory
    let m = manager(dir.path());
    let report = m.store().find_latest().unwrap();
    assert_eq!(report.metadata.unwrap().id, 1);
    assert_eq!(
        report.rejected.iter().map(|r| r.id).collect::<Vec<_>>(),
        [3, 2]
    );
    assert!(report.rejected[0]
        .reason
        .contains("depends on checkpoint 2"));
}

#[test]
fn retention_keeps_parents_of_kept_deltas_and_truncates_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = tempfile::tempdir().unwrap();
    let wal = WriteAheadLog::open(
        wal_dir.path(),
        WalOptions::default().with_segment_size(4096),
    )
    .unwrap();
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path())
            .with_max_retained(2)
            .with_max_delta_chain(3)
            .with_max_delta_ratio(10.0),
    )
    .unwrap();
    let mut state = TrackedState::new();
    for i in 0..9u32 {
        for j in 0..20u32 {
            let key = format!("k{i}-{j}").into_bytes();
            let value = vec![b'v'; 100];
            wal.append(&WalEntry::Put {
                key: key.clone(),
                value: value.clone(),
            })
            .unwrap();
            state.put(key, value);
        }
        let position = wal
            .append(&WalEntry::Commit {
                offsets: offsets(i as u64),
                watermark: None,
            })
            .unwrap();
        wal.sync().unwrap();
        let meta = if i == 0 {
            m.create_checkpoint(
                CheckpointRequest::new(position)
                    .with_part("state", PartInput::Snapshot(&state.snapshot())),
            )
        } else {
            m.create_checkpoint(
                CheckpointRequest::new(position)
                    .with_part("state", PartInput::Delta(&state.delta())),
            )
        }
        .unwrap();
        state.mark_checkpointed();
        let ids: Vec<u64> = m.list_checkpoints().unwrap().iter().map(|c| c.id).collect();
        // Every kept checkpoint restores, and so does every parent it needs.
        for id in &ids {
            let meta = m.store().read_metadata(*id).unwrap();
            if let Some(parent) = meta.parent_id {
                assert!(
                    ids.contains(&parent),
                    "parent {parent} of kept {id} deleted: {ids:?}"
                );
            }
        }
        assert!(ids.contains(&meta.id));
        m.release_wal(&wal).unwrap();
        // The WAL still covers the oldest of the two newest checkpoints.
        let newest_two: Vec<_> = m
            .list_checkpoints()
            .unwrap()
            .into_iter()
            .rev()
            .take(2)
            .collect();
        let needed = newest_two.iter().map(|c| c.wal_position).min().unwrap();
        assert!(wal.first_position() <= needed);
    }
    // Chains: 1 full, 2-4 deltas, 5 full, 6-8 deltas, 9 full. Keeping the newest
    // two (8 and 9) keeps 8's chain back to 5.
    let ids: Vec<u64> = m.list_checkpoints().unwrap().iter().map(|c| c.id).collect();
    assert_eq!(ids, [5, 6, 7, 8, 9]);
    assert!(wal.first_position() > 0, "old WAL segments were dropped");
    assert_eq!(m.load_snapshot(9, "state").unwrap(), state.snapshot());
}

#[test]
fn delete_refuses_a_checkpoint_a_delta_depends_on() {
    let dir = tempfile::tempdir().unwrap();
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path()).with_max_delta_ratio(100.0),
    )
    .unwrap();
    m.create_checkpoint_with_state(
        1,
        HashMap::new(),
        None,
        &snapshot(0..3, "a").to_bytes().unwrap(),
    )
    .unwrap();
    let d = StateDelta::from_changes(vec![(b"z".to_vec(), None)]);
    m.create_delta_checkpoint_with_state(2, HashMap::new(), None, &d.to_bytes().unwrap())
        .unwrap();
    assert!(matches!(
        m.delete_checkpoint(1),
        Err(Error::CheckpointHasDependents { id: 1, ref dependents }) if dependents == &[2]
    ));
    m.delete_checkpoint(2).unwrap();
    m.delete_checkpoint(1).unwrap();
    assert!(m.find_latest_checkpoint().unwrap().is_none());
    assert!(matches!(
        m.delete_checkpoint(1),
        Err(Error::CheckpointNotFound { .. })
    ));
}

fn one_checkpoint(dir: &Path) -> IncrementalCheckpointManager {
    let m = manager(dir);
    full(&m, 1, &snapshot(0..5, "a"));
    m
}

fn rewrite_body(dir: &Path, edit: impl Fn(&mut serde_json::Value)) {
    // Edits the body and recomputes its checksum, as a hostile writer would.
    let path = meta_file(dir, 1);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut envelope: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut envelope["body"]);
    let body = serde_json::to_string(&envelope["body"]).unwrap();
    let crc = crc32c::crc32c(body.as_bytes());
    let text = format!(
        "{{\"format\":\"highwater-checkpoint\",\"version\":{},\"body_crc32c\":{crc},\"body\":{body}}}",
        envelope["version"]
    );
    std::fs::write(&path, text).unwrap();
}

#[test]
fn garbage_metadata_is_a_typed_error_with_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let m = one_checkpoint(dir.path());
    std::fs::write(
        meta_file(dir.path(), 1),
        b"{\"format\": \"highwater-checkpoint\", \"version\": 1, oops",
    )
    .unwrap();
    match m.store().read_metadata(1) {
        Err(Error::CheckpointCorrupted { path, offset, .. }) => {
            assert!(path.ends_with("metadata.json"));
            assert_eq!(offset, Some(49), "the byte where `oops` starts");
        }
        other => panic!("{other:?}"),
    }
    assert!(m.find_latest_checkpoint().unwrap().is_none());
}

#[test]
fn a_changed_metadata_byte_fails_the_body_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let m = one_checkpoint(dir.path());
    let path = meta_file(dir.path(), 1);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("\"wal_position\": 1", "\"wal_position\": 7"),
    )
    .unwrap();
    assert!(matches!(
        m.store().read_metadata(1),
        Err(Error::CheckpointCorrupted { ref reason, .. }) if reason.contains("checksum")
    ));
}

#[test]
fn unknown_metadata_version_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = one_checkpoint(dir.path());
    let path = meta_file(dir.path(), 1);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"version\": 1", "\"version\": 2", 1)).unwrap();
    assert!(matches!(
        m.store().read_metadata(1),
        Err(Error::UnsupportedVersion {
            found: 2,
            supported: 1,
            ..
        })
    ));
}

#[test]
fn missing_part_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = one_checkpoint(dir.path());
    std::fs::remove_file(part_file(dir.path(), 1, "state")).unwrap();
    match m.store().verify_checkpoint(1) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("part-state.hwstate")),
        other => panic!("{other:?}"),
    }
    assert!(m.find_latest_checkpoint().unwrap().is_none());
}

#[test]
fn truncated_part_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = one_checkpoint(dir.path());
    let path = part_file(dir.path(), 1, "state");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    assert!(matches!(
        m.store().verify_checkpoint(1),
        Err(Error::CheckpointFileMismatch { expected_size, actual_size, .. }) if expected_size == len && actual_size == len - 3
    ));
}

#[test]
fn path_escaping_names_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let m = one_checkpoint(dir.path());
    for evil in [
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        ".hidden",
        "a/b",
        "a\\b",
        "",
    ] {
        rewrite_body(dir.path(), |body| {
            body["parts"][0]["name"] = serde_json::Value::from(evil);
            body["parts"][0]["file"] = serde_json::Value::from(format!("part-{evil}.hwstate"));
        });
        assert!(
            matches!(m.store().read_metadata(1), Err(Error::UnsafeName { ref name, .. }) if name == evil),
            "{evil:?} accepted"
        );
    }
    // A safe name with a file field pointing elsewhere.
    rewrite_body(dir.path(), |body| {
        body["parts"][0]["name"] = serde_json::Value::from("state");
        body["parts"][0]["file"] = serde_json::Value::from("../../outside");
    });
    assert!(matches!(
        m.store().read_metadata(1),
        Err(Error::UnsafeName { .. })
    ));
    // Names given by a caller are checked the same way.
    let s = snapshot(0..1, "x");
    assert!(matches!(
        m.create_checkpoint(CheckpointRequest::new(0).with_part("../x", PartInput::Snapshot(&s))),
        Err(Error::UnsafeName { .. })
    ));
}

#[test]
fn interrupted_publish_is_invisible_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let m = one_checkpoint(dir.path());
    drop(m);
    // A complete-looking temporary directory (crash before the rename) and a
    // checkpoint directory whose metadata never made it.
    let tmp = dir.path().join(".tmp-checkpoint-00000000000000000002");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::copy(meta_file(dir.path(), 1), tmp.join(METADATA_FILE)).unwrap();
    std::fs::copy(
        part_file(dir.path(), 1, "state"),
        tmp.join("part-state.hwstate"),
    )
    .unwrap();
    let store = highwater::CheckpointStore::new(dir.path());
    assert_eq!(store.checkpoint_ids().unwrap(), [1]);
    assert_eq!(store.find_latest().unwrap().metadata.unwrap().id, 1);
    let m = manager(dir.path());
    assert!(!tmp.exists(), "leftover removed on open");
    let next = full(&m, 2, &snapshot(0..2, "b"));
    assert_eq!(next.id, 2);
}

#[test]
fn a_failed_fsync_publishes_nothing() {
    let sim = CrashSimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let dir = Path::new("/ckpt");
    let on_sim = |dir: &Path| {
        IncrementalCheckpointManager::new(CheckpointConfig::new(dir).with_storage(storage.clone()))
            .unwrap()
    };
    let m = on_sim(dir);
    full(&m, 1, &snapshot(0..5, "a"));
    let state = snapshot(0..5, "b").to_bytes().unwrap();
    for device in ["every fsync fails", "the device is full"] {
        match device {
            "every fsync fails" => crate::common::fail_every_sync(&sim),
            // Every write writes the first half of its sectors, then fails.
            _ => sim.inject(
                SimFault::new(SimOp::Write)
                    .times(u64::MAX)
                    .with_kind(std::io::ErrorKind::StorageFull),
            ),
        }
        let made = m.create_checkpoint_with_state(2, offsets(2), None, &state);
        assert!(made.is_err(), "{device}: {made:?}");
        sim.clear_faults();
    }
    let store = highwater::CheckpointStore::with_storage(storage.clone(), dir);
    assert_eq!(store.checkpoint_ids().unwrap(), [1]);
    assert_eq!(
        store
            .find_latest()
            .unwrap()
            .metadata
            .unwrap()
            .source_offsets,
        offsets(1)
    );
    drop(m); // one writer per directory
    let m = on_sim(dir);
    let meta = full(&m, 3, &snapshot(0..5, "c"));
    assert_eq!(meta.id, 2);
}

#[test]
fn a_corrupt_state_file_argument_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let mut bytes = snapshot(0..5, "a").to_bytes().unwrap().to_vec();
    let last = bytes.len() - 10;
    bytes[last] ^= 1;
    assert!(m
        .create_checkpoint_with_state(1, HashMap::new(), None, &bytes)
        .unwrap_err()
        .is_corruption());
    assert!(m.find_latest_checkpoint().unwrap().is_none());
}

/// Parts are streamed to their files; the bytes must be exactly what the
/// in-memory encoder produces (several blocks, large columns written directly).
#[test]
fn streamed_part_files_equal_the_in_memory_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let big = StateSnapshot::new(
        (0..20_000u32)
            .map(|i| {
                (
                    format!("key-{i:08}").into_bytes(),
                    vec![(i % 251) as u8; 40 + (i % 7) as usize],
                )
            })
            .collect(),
    );
    let delta = StateDelta::from_changes((0..3000u32).map(|i| {
        let k = format!("key-{:08}", i * 3).into_bytes();
        (k, if i % 2 == 0 { None } else { Some(vec![1; 300]) })
    }));
    let blob = vec![7u8; 300_000];
    m.create_checkpoint(
        CheckpointRequest::new(1)
            .with_part("big", PartInput::Snapshot(&big))
            .with_part("blob", PartInput::Blob(&blob)),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(part_file(dir.path(), 1, "big")).unwrap(),
        big.to_bytes().unwrap().to_vec()
    );
    drop(m); // one writer per directory
    let m2 = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path()).with_max_delta_ratio(100.0),
    )
    .unwrap();
    // A new manager knows nothing of the caller's state: the delta names its
    // parent.
    let meta = m2
        .create_checkpoint(
            CheckpointRequest::new(2)
                .with_parent(1)
                .with_part("big", PartInput::Delta(&delta)),
        )
        .unwrap();
    assert_eq!(meta.kind, CheckpointKind::Delta);
    assert_eq!(
        std::fs::read(part_file(dir.path(), 2, "big")).unwrap(),
        delta.to_bytes().unwrap().to_vec()
    );
    assert_eq!(m2.store().load_blob(2, "blob").unwrap(), blob);
    assert_eq!(m2.load_snapshot(2, "big").unwrap(), big.apply(&delta));
    m2.store().verify_checkpoint(1).unwrap();
    m2.store().verify_checkpoint(2).unwrap();
}

/// A delta for a part the parent does not hold as a snapshot (a new part, or a
/// blob) is stored so that it still resolves.
#[test]
fn deltas_without_a_snapshot_base_still_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let a = snapshot(0..5, "a");
    m.create_checkpoint(CheckpointRequest::new(1).with_part("a", PartInput::Snapshot(&a)))
        .unwrap();
    let d = StateDelta::from_changes(vec![(b"x".to_vec(), Some(b"1".to_vec()))]);
    let second = m
        .create_checkpoint(CheckpointRequest::new(2).with_part("b", PartInput::Delta(&d)))
        .unwrap();
    assert_eq!(second.kind, CheckpointKind::Delta);
    assert_eq!(
        m.load_snapshot(2, "b").unwrap(),
        StateSnapshot::default().apply(&d)
    );
    assert_eq!(m.load_snapshot(2, "a").unwrap(), a);
    assert_eq!(m.find_latest_checkpoint().unwrap().unwrap().id, 2);

    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    m.create_checkpoint_with_state(1, HashMap::new(), None, b"opaque")
        .unwrap();
    let meta = m
        .create_delta_checkpoint_with_state(2, HashMap::new(), None, &d.to_bytes().unwrap())
        .unwrap();
    let state = StateSnapshot::from_bytes(&m.load_checkpoint_state(meta.id).unwrap()).unwrap();
    assert_eq!(state, StateSnapshot::default().apply(&d));
}

#[test]
fn deleting_the_newest_checkpoint_keeps_the_wal_the_older_one_needs() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = tempfile::tempdir().unwrap();
    let wal = WriteAheadLog::open(
        wal_dir.path(),
        WalOptions::default().with_segment_size(4096),
    )
    .unwrap();
    let m =
        IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()).with_max_retained(1))
            .unwrap();
    let commit = |round: u64| {
        for i in 0..100u32 {
            wal.append(&WalEntry::Put {
                key: i.to_be_bytes().to_vec(),
                value: vec![0; 64],
            })
            .unwrap();
        }
        let p = wal
            .append(&WalEntry::Commit {
                offsets: offsets(round),
                watermark: None,
            })
            .unwrap();
        wal.sync().unwrap();
        p
    };
    let first = commit(1);
    m.create_checkpoint_with_state(
        first,
        offsets(1),
        None,
        &snapshot(0..3, "s").to_bytes().unwrap(),
    )
    .unwrap();
    let second = commit(2);
    let d = StateDelta::from_changes(vec![(b"k".to_vec(), None)]);
    let delta = m
        .create_delta_checkpoint_with_state(second, offsets(2), None, &d.to_bytes().unwrap())
        .unwrap();
    assert_eq!(delta.parent_id, Some(1));
    m.delete_checkpoint(delta.id).unwrap();
    m.release_wal(&wal).unwrap();
    assert!(
        wal.first_position() <= first,
        "WAL truncated to {} but checkpoint 1 needs {first}",
        wal.first_position()
    );
}

/// Retention decides on fully verified checkpoints: a bit-rotted checkpoint does
/// not count as one of the kept restorable ones.
#[test]
fn retention_does_not_count_a_damaged_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let m =
        IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()).with_max_retained(2))
            .unwrap();
    for i in 1..=2u64 {
        full(&m, i, &snapshot(0..50, "v"));
    }
    let path = part_file(dir.path(), 2, "state");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 4;
    std::fs::write(&path, bytes).unwrap();
    drop(m); // one writer per directory
    let m =
        IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()).with_max_retained(2))
            .unwrap();
    full(&m, 3, &snapshot(0..50, "w"));
    let ids: Vec<u64> = m.store().checkpoint_ids().unwrap();
    assert!(
        ids.contains(&1),
        "checkpoint 1 is one of the two restorable ones: {ids:?}"
    );
}
