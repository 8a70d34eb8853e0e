//! The write path of a large checkpoint (issue 20): write-behind hints while
//! the state file is written, then its fsync, the metadata's and the
//! temporary directory's together, the rename and the parent's fsync. A
//! crash at any operation leaves the new checkpoint whole or absent (never
//! half there), a checkpoint that was acknowledged survives every crash
//! image, and the hints make nothing durable.

use highwater::storage::{CrashImage, CrashSimStorage, SimFault, SimOp};
use highwater::{CheckpointConfig, CheckpointStore, IncrementalCheckpointManager, StateSnapshot};
use std::collections::HashMap;
use std::sync::Arc;

const DIR: &str = "/ckpt";

/// A state file over 8 MiB (the write-behind chunk), so the writer hints.
fn big_state() -> Vec<u8> {
    StateSnapshot::new(
        (0..76_000u32)
            .map(|i| {
                (
                    format!("key-{i:08}").into_bytes(),
                    vec![(i % 253) as u8; 104],
                )
            })
            .collect(),
    )
    .to_bytes()
    .unwrap()
    .to_vec()
}

fn small_state() -> Vec<u8> {
    StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())])
        .to_bytes()
        .unwrap()
        .to_vec()
}

/// Writes checkpoint 1 (small) and then checkpoint 2 (big); whether the
/// second was acknowledged.
fn workload(sim: &CrashSimStorage, small: &[u8], big: &[u8]) -> bool {
    let config = CheckpointConfig::new(DIR).with_storage(Arc::new(sim.clone()));
    let Ok(m) = IncrementalCheckpointManager::new(config) else {
        return false;
    };
    if m.create_checkpoint_with_state(0, HashMap::new(), None, small)
        .is_err()
    {
        return false;
    }
    m.create_checkpoint_with_state(1, HashMap::new(), None, big)
        .is_ok()
}

#[test]
fn a_crash_anywhere_in_a_large_checkpoint_leaves_it_whole_or_absent() {
    let (small, big) = (small_state(), big_state());
    assert!(big.len() > 8 << 20);
    let clean = CrashSimStorage::new();
    assert!(workload(&clean, &small, &big));
    let total = clean.operations();
    assert!(
        clean.operations_of(SimOp::WriteBack) >= 1,
        "the large state file is written with write-behind hints"
    );
    let mut acknowledged_points = 0;
    // Points 0..total crash inside the workload; at `total` it completes
    // (and is acknowledged) before the crash.
    for point in 0..=total {
        let sim = CrashSimStorage::new();
        sim.crash_at(point);
        let acked = workload(&sim, &small, &big);
        sim.crash();
        acknowledged_points += u64::from(acked);
        for image in [
            CrashImage::LoseUnsynced,
            CrashImage::KeepUnsynced,
            CrashImage::Torn { seed: point },
        ] {
            let disk = Arc::new(sim.image(image));
            let store = CheckpointStore::with_storage(disk.clone(), DIR);
            let latest = store.find_latest().unwrap();
            let ids = store.checkpoint_ids().unwrap();
            let what = format!("crash at {point} ({:?}), {image:?}", sim.crashed());
            assert!(
                latest.rejected.is_empty(),
                "{what}: no checkpoint is ever visible half written: {:?}",
                latest.rejected
            );
            match latest.metadata.map(|m| m.id) {
                Some(2) => {
                    let back = store.load_checkpoint_state(2).unwrap();
                    assert!(back == big, "{what}: checkpoint 2 reads back whole");
                }
                Some(1) | None => assert!(!acked, "{what}: acknowledged checkpoint 2 is lost"),
                Some(other) => panic!("{what}: unexpected checkpoint {other}"),
            }
            assert!(ids.iter().all(|id| *id <= 2), "{what}: {ids:?}");
            // The next manager removes any leftover and writes on.
            let config = CheckpointConfig::new(DIR).with_storage(disk.clone());
            let m = IncrementalCheckpointManager::new(config)
                .unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
            m.create_checkpoint_with_state(5, HashMap::new(), None, &small)
                .unwrap_or_else(|e| panic!("{what}: a new checkpoint failed: {e}"));
        }
    }
    assert_eq!(
        acknowledged_points, 1,
        "only the run that completes is acknowledged (the parent's fsync is the last operation)"
    );
}

#[test]
fn a_failed_write_behind_hint_publishes_nothing() {
    let (small, big) = (small_state(), big_state());
    let sim = CrashSimStorage::new();
    let config = CheckpointConfig::new(DIR).with_storage(Arc::new(sim.clone()));
    let m = IncrementalCheckpointManager::new(config).unwrap();
    let first = m
        .create_checkpoint_with_state(0, HashMap::new(), None, &small)
        .unwrap();
    sim.inject(SimFault::new(SimOp::WriteBack));
    let err = m
        .create_checkpoint_with_state(1, HashMap::new(), None, &big)
        .unwrap_err();
    assert!(err.to_string().contains("WriteBack"), "{err}");
    let store = CheckpointStore::with_storage(Arc::new(sim.clone()), DIR);
    assert_eq!(store.checkpoint_ids().unwrap(), [first.id]);
    // The device recovered: the next attempt is written.
    sim.clear_faults();
    let meta = m
        .create_checkpoint_with_state(1, HashMap::new(), None, &big)
        .unwrap();
    assert!(store.load_checkpoint_state(meta.id).unwrap() == big);
}

/// A checkpoint of more part files than one sync batch (16): the first
/// batches are fsynced and closed while later parts are written. A crash at
/// any operation still leaves it whole or absent, and the acknowledged one
/// reads back part for part.
#[test]
fn a_crash_anywhere_in_a_checkpoint_of_many_parts_leaves_it_whole_or_absent() {
    use highwater::checkpoint::{CheckpointRequest, PartInput};
    const PARTS: usize = 40;
    let blobs: Vec<Vec<u8>> = (0..PARTS).map(|i| vec![i as u8; 300 + i]).collect();
    let write = |sim: &CrashSimStorage| -> bool {
        let config = CheckpointConfig::new(DIR).with_storage(Arc::new(sim.clone()));
        let Ok(m) = IncrementalCheckpointManager::new(config) else {
            return false;
        };
        let request = blobs
            .iter()
            .enumerate()
            .fold(CheckpointRequest::new(0), |r, (i, b)| {
                r.with_part(format!("group-{i:03}"), PartInput::Blob(b))
            });
        m.create_checkpoint(request).is_ok()
    };
    let clean = CrashSimStorage::new();
    assert!(write(&clean));
    let total = clean.operations();
    assert!(
        clean.operations_of(SimOp::SyncFile) > PARTS as u64,
        "every part file and the metadata are fsynced"
    );
    for point in 0..=total {
        let sim = CrashSimStorage::new();
        sim.crash_at(point);
        let acked = write(&sim);
        sim.crash();
        for image in [
            CrashImage::LoseUnsynced,
            CrashImage::KeepUnsynced,
            CrashImage::Torn { seed: point },
        ] {
            let store = CheckpointStore::with_storage(Arc::new(sim.image(image)), DIR);
            let latest = store.find_latest().unwrap();
            let what = format!("crash at {point} ({:?}), {image:?}", sim.crashed());
            assert!(latest.rejected.is_empty(), "{what}: {:?}", latest.rejected);
            match latest.metadata {
                Some(meta) => {
                    for (i, blob) in blobs.iter().enumerate() {
                        let back = store.load_blob(meta.id, &format!("group-{i:03}")).unwrap();
                        assert!(back == *blob, "{what}: part {i} reads back whole");
                    }
                }
                None => assert!(!acked, "{what}: the acknowledged checkpoint is lost"),
            }
        }
    }
}
