use super::*;
use crate::checkpoint::metadata::{
    self, part_file_name, IncrementalCheckpointMetadata, PartKind, PartMetadata,
};
use crate::checkpoint::remote::layout::{part_key, parts_prefix};
use crate::checkpoint::remote::record::{decode, encode_checkpoint, encode_claim};
use crate::checkpoint::CheckpointKind;
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::UNIX_EPOCH;

/// The listing's "now": a day past the epoch.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(86_400)
}

/// An hour before [`now`]: older than the grace the tests use (a minute).
fn old() -> SystemTime {
    now() - Duration::from_secs(3600)
}

const GRACE: Duration = Duration::from_secs(60);

/// The metadata of checkpoint `id` (full when `parent` is `None`) with one
/// part file of `10 + id` bytes.
fn meta(id: u64, parent: Option<u64>, wal: u64) -> IncrementalCheckpointMetadata {
    let (kind, part_kind) = match parent {
        None => (CheckpointKind::Full, PartKind::Snapshot),
        Some(_) => (CheckpointKind::Delta, PartKind::Delta),
    };
    IncrementalCheckpointMetadata {
        id,
        epoch: id,
        kind,
        parent_id: parent,
        base_id: parent.unwrap_or(id),
        chain_length: u32::from(parent.is_some()),
        chain_delta_bytes: 0,
        base_bytes: 0,
        wal_position: wal,
        source_offsets: HashMap::new(),
        watermark: None,
        source_watermarks: HashMap::new(),
        created_unix_ms: 0,
        parts: vec![PartMetadata {
            name: "s".into(),
            kind: part_kind,
            file: part_file_name("s", part_kind),
            size: 10 + id,
            crc32c: id as u32,
            entries: 1,
            deleted: 0,
            sealed: None,
        }],
        sink_transactions: Vec::new(),
    }
}

/// The key of checkpoint `id`'s one part, as committed in `slot`.
pub(crate) fn key_of(slot: u64, id: u64) -> BlobKey {
    let prefix = parts_prefix(1, id, slot);
    part_key(&prefix, &part_file_name("s", PartKind::Snapshot)).unwrap()
}

/// The bytes of the record committing checkpoint `id` in `slot` for
/// generation 1, its one part at [`key_of`]`(slot, id)` (`10 + id` bytes).
pub(crate) fn encoded(slot: u64, id: u64, parent: Option<u64>, wal: u64) -> Vec<u8> {
    let m = meta(id, parent, wal);
    let bytes = metadata::encode(&m).unwrap();
    let keys = std::iter::once((m.parts[0].file.clone(), key_of(slot, id))).collect();
    encode_checkpoint(slot, 1, &m, &bytes, &keys).unwrap()
}

/// Checkpoint `id` committed in `slot` by generation 1, built through the
/// real encoder and decoder.
fn ckpt(slot: u64, id: u64, parent: Option<u64>, wal: u64) -> ListedRecord {
    ListedRecord {
        slot,
        record: Some(decode(slot, &encoded(slot, id, parent, wal)).unwrap()),
    }
}

fn claim(slot: u64) -> ListedRecord {
    let record = encode_claim(slot, "host:1", slot).unwrap();
    ListedRecord {
        slot,
        record: Some(decode(slot, &record).unwrap()),
    }
}

fn damaged(slot: u64) -> ListedRecord {
    ListedRecord { slot, record: None }
}

fn blob(key: BlobKey, size: u64, at: SystemTime) -> BlobMeta {
    BlobMeta {
        key,
        size,
        etag: None,
        last_modified: Some(at),
    }
}

/// Every part object the checkpoint records name, whole, written long ago.
fn parts_of(records: &[ListedRecord]) -> Vec<BlobMeta> {
    records
        .iter()
        .filter_map(checkpoint)
        .flat_map(|c| c.files.iter())
        .map(|(f, k)| blob(k.clone(), f.size, old()))
        .collect()
}

fn plan(records: &[ListedRecord], markers: &[u64], parts: &[BlobMeta], keep: usize) -> GcPlan {
    plan_gc(&GcInput {
        records,
        floor_markers: markers,
        parts,
        now: now(),
        grace: GRACE,
        max_retained: keep,
    })
}

/// claim 1, full checkpoints 1..=5 in slots 2..=6.
fn five_full() -> Vec<ListedRecord> {
    let mut records = vec![claim(1)];
    records.extend((1..=5).map(|id| ckpt(id + 1, id, None, 100 * id)));
    records
}

#[test]
fn the_newest_are_kept_and_the_floor_rises_to_the_oldest_kept() {
    let records = five_full();
    let parts = parts_of(&records);
    let p = plan(&records, &[], &parts, 2);
    assert_eq!(p.retained, vec![4, 5]);
    assert_eq!(p.new_floor, Some(5), "the slot of checkpoint 4");
    assert_eq!(p.floor(), Some(5));
    assert_eq!(p.delete_records, vec![1, 2, 3, 4]);
    assert_eq!(
        p.delete_parts,
        vec![key_of(2, 1), key_of(3, 2), key_of(4, 3)]
    );
    assert_eq!(p.wal_needed_from, Some(400));
    assert_eq!(p.abort_uploads_before, Some(now() - GRACE));
    assert!(p.delete_floor_markers.is_empty());
}

#[test]
fn claims_and_damaged_records_below_the_new_floor_go_too() {
    let records = vec![
        claim(1),
        damaged(2),
        ckpt(3, 1, None, 1),
        claim(4),
        damaged(5),
        ckpt(6, 2, None, 2),
        damaged(7),
        claim(8),
    ];
    let p = plan(&records, &[], &parts_of(&records), 1);
    assert_eq!(p.new_floor, Some(6));
    assert_eq!(p.delete_records, vec![1, 2, 3, 4, 5]);
}

#[test]
fn with_no_checkpoint_record_nothing_is_deleted() {
    let records = vec![claim(1), damaged(2), claim(3)];
    let parts = vec![blob(key_of(2, 1), 11, old())];
    let p = plan(&records, &[1, 2], &parts, 1);
    assert_eq!(
        p,
        GcPlan {
            current_floor: Some(2),
            ..GcPlan::default()
        }
    );
    // Checkpoints only below the floor count as none.
    let below = five_full();
    let p = plan(&below, &[7], &parts_of(&below), 1);
    assert!(p.delete_records.is_empty() && p.delete_parts.is_empty());
    assert!(p.retained.is_empty() && p.new_floor.is_none());
}

#[test]
fn a_delta_chain_longer_than_max_retained_keeps_its_base() {
    // claim 1, full 1 in slot 2, deltas 2..=5 in slots 3..=6, each on the last.
    let mut records = vec![claim(1), ckpt(2, 1, None, 10)];
    records.extend((2..=5).map(|id| ckpt(id + 1, id, Some(id - 1), 10 * id)));
    let parts = parts_of(&records);
    let p = plan(&records, &[], &parts, 1);
    assert_eq!(p.retained, vec![1, 2, 3, 4, 5]);
    assert_eq!(p.new_floor, Some(2));
    assert_eq!(p.delete_records, vec![1], "only the claim below the base");
    assert!(p.delete_parts.is_empty());
    assert_eq!(p.wal_needed_from, Some(10));
}

#[test]
fn a_chain_skips_checkpoints_it_does_not_build_on() {
    // full 1 (slot 2), full 2 (slot 3), delta 3 on 1 (slot 4): 2 is not in
    // 3's chain, but it sits above the floor 3's chain sets, so it stays.
    let records = vec![
        claim(1),
        ckpt(2, 1, None, 1),
        ckpt(3, 2, None, 2),
        ckpt(4, 3, Some(1), 3),
    ];
    let parts = parts_of(&records);
    let p = plan(&records, &[], &parts, 1);
    assert_eq!(p.retained, vec![1, 3]);
    assert_eq!(p.new_floor, Some(2));
    assert!(p.delete_parts.is_empty(), "checkpoint 2's record is live");
}

#[test]
fn records_below_the_floor_are_ignored_for_retention() {
    let mut records = five_full(); // checkpoints 1..=5 in slots 2..=6
    records.push(claim(7));
    records.push(ckpt(8, 6, Some(5), 600)); // its parent is below the floor
    let parts = parts_of(&records);
    let p = plan(&records, &[7], &parts, 3);
    assert_eq!(p.retained, vec![6], "nothing below the floor is retained");
    assert_eq!(p.new_floor, Some(8));
    assert_eq!(p.delete_records, (1..=7).collect::<Vec<_>>());
    assert_eq!(p.delete_floor_markers, vec![7]);
    assert_eq!(p.delete_parts.len(), 5, "the dead checkpoints' parts");
    assert!(!p.delete_parts.contains(&key_of(8, 6)));
}

#[test]
fn a_broken_chain_is_kept_as_far_as_it_goes_and_does_not_count() {
    // full 1, delta 2 (on 1), a damaged record (it was 3), delta 4 on 3,
    // delta 5 on 4: 4 and 5 cannot be restored, so 2 (and 1) are kept too.
    let records = vec![
        claim(1),
        ckpt(2, 1, None, 1),
        ckpt(3, 2, Some(1), 2),
        damaged(4),
        ckpt(5, 4, Some(3), 4),
        ckpt(6, 5, Some(4), 5),
    ];
    let parts = parts_of(&records);
    let p = plan(&records, &[], &parts, 1);
    assert_eq!(p.retained, vec![1, 2, 4, 5]);
    assert_eq!(p.new_floor, Some(2));
    assert_eq!(p.delete_records, vec![1]);
    assert!(p.delete_parts.is_empty());
}

#[test]
fn a_checkpoint_with_a_missing_part_does_not_count() {
    let records = five_full();
    let mut parts = parts_of(&records);
    parts.retain(|m| m.key != key_of(6, 5)); // checkpoint 5's part is gone
    let p = plan(&records, &[], &parts, 1);
    assert_eq!(p.retained, vec![4, 5], "4 is the newest restorable");
    assert_eq!(p.new_floor, Some(5));
    // A part of the wrong size is as good as missing.
    let mut parts = parts_of(&records);
    parts.iter_mut().for_each(|m| m.size += 1);
    let p = plan(&records, &[], &parts, 1);
    assert_eq!(p.retained, vec![1, 2, 3, 4, 5], "none restorable: all kept");
    assert_eq!(p.delete_records, vec![1]);
}

#[test]
fn max_retained_zero_keeps_the_newest() {
    let records = five_full();
    let p = plan(&records, &[], &parts_of(&records), 0);
    assert_eq!(p.retained, vec![5]);
}

#[test]
fn the_grace_protects_young_unreferenced_parts() {
    let records = five_full();
    let mut parts = parts_of(&records);
    let orphan = |n: u64| key_of(100 + n, 100 + n);
    parts.push(blob(orphan(1), 1, now() - Duration::from_secs(10)));
    parts.push(blob(orphan(2), 1, now() - GRACE)); // exactly the grace: kept
    parts.push(blob(orphan(3), 1, now() - GRACE - Duration::from_secs(1)));
    parts.push(BlobMeta {
        last_modified: None,
        ..blob(orphan(4), 1, old())
    });
    // Young parts of a record that is being deleted are protected too.
    parts.iter_mut().for_each(|m| {
        if m.key == key_of(2, 1) {
            m.last_modified = Some(now());
        }
    });
    let p = plan(&records, &[], &parts, 2);
    assert_eq!(p.delete_parts, vec![key_of(3, 2), key_of(4, 3), orphan(3)]);
}

#[test]
fn retained_parts_survive_a_grace_of_zero() {
    let records = five_full();
    let mut parts = parts_of(&records);
    parts
        .iter_mut()
        .for_each(|m| m.last_modified = Some(UNIX_EPOCH));
    let p = plan_gc(&GcInput {
        records: &records,
        floor_markers: &[],
        parts: &parts,
        now: now(),
        grace: Duration::ZERO,
        max_retained: 2,
    });
    assert_eq!(p.retained, vec![4, 5]);
    assert!(!p.delete_parts.contains(&key_of(5, 4)));
    assert!(!p.delete_parts.contains(&key_of(6, 5)));
    assert_eq!(p.delete_parts.len(), 3);
    assert_eq!(p.abort_uploads_before, Some(now()));
}

#[test]
fn parts_of_a_damaged_live_record_are_garbage_after_the_grace() {
    let mut records = five_full();
    records.push(damaged(7));
    let mut parts = parts_of(&records);
    let unknown = key_of(7, 6);
    parts.push(blob(unknown.clone(), 5, old()));
    let p = plan(&records, &[], &parts, 5);
    assert_eq!(p.retained, vec![1, 2, 3, 4, 5]);
    assert_eq!(p.delete_parts, vec![unknown]);
    assert!(
        !p.delete_records.contains(&7),
        "a live record is never deleted"
    );
}

#[test]
fn only_objects_under_parts_are_collected() {
    let records = five_full();
    let mut parts = parts_of(&records);
    parts.push(blob(BlobKey::new("other/thing").unwrap(), 1, old()));
    parts.push(blob(BlobKey::new("partsx/thing").unwrap(), 1, old()));
    let p = plan(&records, &[], &parts, 5);
    assert!(p.delete_parts.is_empty());
}

#[test]
fn the_floor_never_goes_down_nor_past_the_newest_checkpoint() {
    // A live delta in slot 10 on a checkpoint below the floor.
    let records = vec![claim(1), ckpt(2, 1, None, 1), ckpt(10, 2, Some(1), 2)];
    let parts = parts_of(&records);
    let p = plan(&records, &[3, 10], &parts, 4);
    assert_eq!(p.current_floor, Some(10));
    assert_eq!(p.new_floor, None, "the floor stays");
    assert_eq!(p.floor(), Some(10));
    assert_eq!(p.retained, vec![2]);
    assert_eq!(p.delete_records, vec![1, 2]);
    assert_eq!(p.delete_floor_markers, vec![3]);
    // Claims after the newest checkpoint: the floor stops at the checkpoint.
    let mut records = five_full();
    records.extend([claim(7), damaged(8), claim(9)]);
    let p = plan(&records, &[1], &parts_of(&records), 1);
    assert_eq!(p.new_floor, Some(6));
    assert_eq!(p.delete_records, vec![1, 2, 3, 4, 5]);
    assert_eq!(p.delete_floor_markers, vec![1]);
}

#[test]
fn two_records_of_one_id_are_both_kept() {
    // Two full checkpoints named 1, and a delta on 1: both could be its parent.
    let records = vec![
        claim(1),
        ckpt(2, 1, None, 5),
        ckpt(3, 1, None, 6),
        ckpt(4, 2, Some(1), 7),
    ];
    let p = plan(&records, &[], &parts_of(&records), 1);
    assert_eq!(p.retained, vec![1, 2]);
    assert_eq!(p.new_floor, Some(2));
    assert_eq!(p.wal_needed_from, Some(5));
}

#[test]
fn the_plan_does_not_depend_on_the_input_order() {
    let mut records = five_full();
    records.extend([claim(7), ckpt(8, 6, Some(5), 1)]);
    let mut parts = parts_of(&records);
    parts.push(blob(key_of(50, 50), 1, old()));
    let markers = [1, 3, 2];
    let a = plan(&records, &markers, &parts, 2);
    records.reverse();
    parts.reverse();
    let b = plan(&records, &[3, 2, 1, 3], &parts, 2);
    assert_eq!(a, b);
    assert!(a.delete_parts.windows(2).all(|w| w[0] < w[1]));
    assert!(a.delete_records.windows(2).all(|w| w[0] < w[1]));
}

/// What a slot of a generated location holds.
#[derive(Debug, Clone)]
enum Gen {
    Claim,
    Full,
    /// A delta on the checkpoint `back` checkpoints before it (0: the last).
    Delta(usize),
    Damaged,
}

fn gen_slot() -> impl Strategy<Value = Gen> {
    prop_oneof![
        1 => Just(Gen::Claim),
        2 => Just(Gen::Full),
        4 => (0usize..3).prop_map(Gen::Delta),
        1 => Just(Gen::Damaged),
    ]
}

/// The chain of `c` among `live`, `c` included (every record of a parent id
/// in a lower slot, as restore could read it).
fn chain<'a>(
    c: &'a CommittedCheckpoint,
    live: &[&'a CommittedCheckpoint],
) -> Vec<&'a CommittedCheckpoint> {
    let mut out = vec![c];
    let mut i = 0;
    while i < out.len() {
        let x = out[i];
        if let Some(p) = x.metadata.parent_id {
            for y in live {
                if y.metadata.id == p && y.slot < x.slot && !out.iter().any(|o| o.slot == y.slot) {
                    out.push(y);
                }
            }
        }
        i += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn retained_chains_lose_nothing_and_the_newest_is_kept(
        slots in proptest::collection::vec(gen_slot(), 1..24),
        markers in proptest::collection::vec(0u64..26, 0..3),
        missing in proptest::collection::vec(any::<bool>(), 24),
        young in proptest::collection::vec(any::<bool>(), 24),
        keep in 0usize..4,
        grace_zero in any::<bool>(),
    ) {
        // Slot 1 is a claim; ids increase with slots.
        let mut records = vec![claim(1)];
        let mut ids: Vec<u64> = Vec::new();
        for (i, g) in slots.iter().enumerate() {
            let slot = i as u64 + 2;
            let id = ids.last().map_or(1, |l| l + 1);
            match g {
                Gen::Claim => records.push(claim(slot)),
                Gen::Damaged => {
                    ids.push(id);
                    records.push(damaged(slot));
                }
                Gen::Full => {
                    ids.push(id);
                    records.push(ckpt(slot, id, None, id * 7));
                }
                Gen::Delta(back) => {
                    let parent = ids.len().checked_sub(back + 1).map(|j| ids[j]);
                    ids.push(id);
                    records.push(ckpt(slot, id, parent, id * 7));
                }
            }
        }
        let mut parts: Vec<BlobMeta> = parts_of(&records)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !missing[i % missing.len()] || i % 3 != 0)
            .map(|(i, mut m)| {
                if young[i % young.len()] {
                    m.last_modified = Some(now());
                }
                m
            })
            .collect();
        parts.push(blob(key_of(99, 99), 1, old()));
        let grace = if grace_zero { Duration::ZERO } else { GRACE };
        let p = plan_gc(&GcInput {
            records: &records,
            floor_markers: &markers,
            parts: &parts,
            now: now(),
            grace,
            max_retained: keep,
        });
        let current = markers.iter().copied().max().unwrap_or(0);
        let live: Vec<&CommittedCheckpoint> = records
            .iter()
            .filter(|r| r.slot >= current)
            .filter_map(checkpoint)
            .collect();
        let floor = p.floor().unwrap_or(0);
        prop_assert!(floor >= current, "the floor never goes down");
        prop_assert!(p.delete_records.iter().all(|&s| s < floor));
        prop_assert!(p.delete_floor_markers.iter().all(|&s| s < floor));
        let Some(newest) = live.iter().max_by_key(|c| c.slot) else {
            prop_assert!(p.delete_records.is_empty() && p.delete_parts.is_empty());
            return Ok(());
        };
        prop_assert!(p.retained.contains(&newest.metadata.id), "the newest is retained");
        prop_assert!(floor <= newest.slot, "the floor never passes the newest");
        let retained: Vec<&CommittedCheckpoint> = live
            .iter()
            .copied()
            .filter(|c| p.retained.contains(&c.metadata.id))
            .collect();
        for c in &retained {
            for member in chain(c, &live) {
                prop_assert!(member.slot >= floor, "a chain member is live: {}", member.slot);
                prop_assert!(p.retained.contains(&member.metadata.id));
                for (_, key) in &member.files {
                    prop_assert!(!p.delete_parts.contains(key), "deleted {key}");
                }
            }
        }
        // Whatever is deleted is old and named by no live record.
        let cutoff = now() - grace;
        for key in &p.delete_parts {
            let m = parts.iter().find(|m| &m.key == key).unwrap();
            prop_assert!(m.last_modified.unwrap() < cutoff);
            prop_assert!(records
                .iter()
                .filter(|r| r.slot >= floor)
                .filter_map(checkpoint)
                .all(|c| c.files.iter().all(|(_, k)| k != key)));
        }
    }
}
