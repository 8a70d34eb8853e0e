//! Recovery of an encrypted job (sealed checkpoint parts and log segments):
//! exact state with the keys; a forged checkpoint block is fallen back past
//! and reported; a missing key stops recovery instead of falling back.

use super::common::{commit, put};
use super::support::{files_containing, forge_part_crc, keys};
use highwater::crypto::KeyProvider;
use highwater::{
    CheckpointConfig, CheckpointRequest, Error, IncrementalCheckpointManager, PartInput,
    RecoveryConfig, RecoveryManager, StateSnapshot, WalOptions, WriteAheadLog,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Two sealed checkpoints (`user:1` = `alice-v1`, then `alice-v2`) and a
/// sealed log with one committed change after the second.
fn job(root: &Path, k: &Arc<dyn KeyProvider>) -> (u64, u64) {
    let wal = WriteAheadLog::open(
        root.join("wal"),
        WalOptions::new().with_encryption(k.clone()),
    )
    .unwrap();
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(root.join("ckpt"))
            .with_max_retained(10)
            .with_encryption(k.clone()),
    )
    .unwrap();
    let mut ids = Vec::new();
    for (i, v) in ["alice-v1", "alice-v2"].iter().enumerate() {
        wal.append(&put("user:1", v)).unwrap();
        wal.append(&commit(i as u64 + 1)).unwrap();
        wal.sync().unwrap();
        let s = StateSnapshot::new(vec![(b"user:1".to_vec(), v.as_bytes().to_vec())]);
        let id = m
            .create_checkpoint(
                CheckpointRequest::new(wal.position())
                    .with_offsets(HashMap::from([("src-0".to_string(), i as u64 + 1)]))
                    .with_part("state", PartInput::Snapshot(&s)),
            )
            .unwrap()
            .id;
        ids.push(id);
    }
    wal.append(&put("user:2", "bob-in-the-log")).unwrap();
    wal.append(&commit(3)).unwrap();
    wal.sync().unwrap();
    (ids[0], ids[1])
}

fn config(root: &Path) -> RecoveryConfig {
    RecoveryConfig::new(root.join("ckpt"), root.join("wal")).with_collect_state_changes(true)
}

#[test]
fn recovery_returns_the_sealed_state_and_log_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let k = keys(1);
    let (_, newest) = job(tmp.path(), &k);
    for word in [&b"alice-v"[..], b"bob-in-the-log", b"user:"] {
        assert!(
            files_containing(tmp.path(), word).is_empty(),
            "{:?}",
            String::from_utf8_lossy(word)
        );
    }
    let r = RecoveryManager::new(config(tmp.path()).with_encryption(k.clone()))
        .recover()
        .unwrap();
    assert_eq!(r.checkpoint_id, Some(newest));
    let state = r.state_snapshot.as_ref().unwrap();
    assert_eq!(state.get(b"user:1"), Some(&b"alice-v2"[..]));
    assert_eq!(
        r.state_changes,
        vec![(b"user:2".to_vec(), Some(b"bob-in-the-log".to_vec()))]
    );
    assert_eq!(r.source_offsets.get("src-0"), Some(&3));
}

#[test]
fn a_missing_or_wrong_key_stops_recovery_instead_of_falling_back() {
    let tmp = tempfile::tempdir().unwrap();
    job(tmp.path(), &keys(1));
    let err = RecoveryManager::new(config(tmp.path()))
        .recover()
        .unwrap_err();
    assert!(err.is_key_problem(), "{err:?}");
    let err = RecoveryManager::new(config(tmp.path()).with_encryption(keys(1)))
        .recover()
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyMismatch { key_id: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn a_forged_block_in_the_newest_checkpoint_is_fallen_back_past_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let k = keys(1);
    let (older, newest) = job(tmp.path(), &k);
    let dir = tmp
        .path()
        .join("ckpt")
        .join(format!("checkpoint-{newest:020}"));
    let part = dir.join("part-state.hwstate");
    let mut bytes = std::fs::read(&part).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 4;
    std::fs::write(&part, &bytes).unwrap();
    // The metadata's CRC of the part forged to match.
    forge_part_crc(&dir, crc32c::crc32c(&bytes));

    let r = RecoveryManager::new(config(tmp.path()).with_encryption(k))
        .recover()
        .unwrap();
    assert_eq!(r.checkpoint_id, Some(older));
    assert_eq!(r.report.rejected_checkpoints.len(), 1);
    assert!(
        matches!(
            &*r.report.rejected_checkpoints[0].error,
            Error::AuthenticationFailed { .. }
        ),
        "{:?}",
        r.report.rejected_checkpoints[0].error
    );
    // The log after the older checkpoint replays what the newer one held.
    let state = r.state_snapshot.as_ref().unwrap();
    assert_eq!(state.get(b"user:1"), Some(&b"alice-v1"[..]));
    let changes: Vec<_> = r.state_changes.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(changes, vec![b"user:1".to_vec(), b"user:2".to_vec()]);
}
