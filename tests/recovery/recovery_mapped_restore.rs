//! Restoring a full checkpoint stands a `StateSnapshot` over the mapped state
//! file, verified once (two threads for a large file): a flipped byte anywhere
//! in that file still rejects the checkpoint, and recovery falls back.

use crate::common;

use common::*;
use highwater::{
    CheckpointConfig, IncrementalCheckpointManager, RecoveryConfig, RecoveryManager, StateSnapshot,
};
use std::collections::HashMap;

/// 300 values of 64 KiB: a payload of about 19 MiB, large enough for the
/// two-thread verification (16 MiB and up).
fn big_state() -> StateSnapshot {
    StateSnapshot::new(
        (0..300u32)
            .map(|i| {
                let key = format!("key-{i:05}").into_bytes();
                let value = (0..65536u32).map(|j| (i * 31 + j) as u8).collect();
                (key, value)
            })
            .collect(),
    )
}

#[test]
fn a_flipped_byte_anywhere_in_a_large_mapped_checkpoint_falls_back() {
    let d = dirs();
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&d.ckpt)).unwrap();
    let small = StateSnapshot::new(vec![(b"old".to_vec(), b"1".to_vec())]);
    let old = m
        .create_checkpoint_with_state(0, HashMap::new(), None, &small.to_bytes().unwrap())
        .unwrap()
        .id;
    let big = big_state();
    let new = m
        .create_checkpoint_with_state(0, HashMap::new(), None, &big.to_bytes().unwrap())
        .unwrap()
        .id;
    drop(m);
    let cfg = || RecoveryConfig::new(&d.ckpt, &d.wal);

    let r = RecoveryManager::new(cfg()).recover().unwrap();
    assert_eq!(r.checkpoint_id, Some(new));
    let restored = r.state_snapshot.expect("state");
    assert_eq!(restored, big);
    assert_eq!(restored.get(b"key-00150"), big.get(b"key-00150"));
    assert_eq!(restored.to_bytes().unwrap(), big.to_bytes().unwrap());
    drop(restored);

    let part = common::guards::checkpoint_dir(&d.ckpt, new).join("part-state.hwstate");
    let file = std::fs::read(&part).unwrap();
    // FORMAT.md §2: the payload length is the header's u64 at offset 16.
    let payload_len = u64::from_le_bytes(file[16..24].try_into().unwrap());
    let payload_end = 64 + payload_len;
    let mid_block = 64 + 65536 * (payload_len.div_ceil(65536) / 2);
    // Header, first block, the last block of the first half, the first of
    // the second half, the last payload byte (the archive's root), the table.
    for at in [
        3,
        64,
        mid_block - 1,
        mid_block,
        mid_block + 40_000,
        payload_end - 1,
        payload_end + 2,
    ] {
        let byte = [file[at as usize]];
        patch(&part, at, &[byte[0] ^ 0x10]);
        let r = RecoveryManager::new(cfg()).recover().unwrap();
        assert_eq!(
            r.checkpoint_id,
            Some(old),
            "flip at byte {at} went unnoticed"
        );
        assert_eq!(r.report.rejected_checkpoints.len(), 1, "byte {at}");
        assert_eq!(r.report.rejected_checkpoints[0].id, new);
        assert_eq!(r.state_snapshot.expect("old state"), small);
        patch(&part, at, &byte);
    }
    let r = RecoveryManager::new(cfg()).recover().unwrap();
    assert_eq!(r.checkpoint_id, Some(new));
}
