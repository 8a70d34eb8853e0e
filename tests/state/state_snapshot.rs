//! State snapshots, deltas, the mapped view and the tracked map: round trips and
//! damage detection.

use highwater::{Error, Lookup, StateDelta, StateFileView, StateKind, StateSnapshot, TrackedState};
use std::collections::BTreeMap;

fn sample(n: usize) -> StateSnapshot {
    StateSnapshot::new(
        (0..n)
            .map(|i| {
                (
                    format!("key-{i:06}").into_bytes(),
                    format!("value-{}", i * 7).into_bytes(),
                )
            })
            .collect(),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn snapshot_round_trip_keeps_order_and_values() {
    let snap = StateSnapshot::new(vec![
        (b"b".to_vec(), b"2".to_vec()),
        (b"a".to_vec(), b"1".to_vec()),
        (b"c".to_vec(), vec![]),
        (b"a".to_vec(), b"1-again".to_vec()),
    ]);
    assert_eq!(snap.len(), 3);
    assert_eq!(snap.get(b"a"), Some(&b"1-again"[..]), "last duplicate wins");
    let back = StateSnapshot::from_bytes(&snap.to_bytes().unwrap()).unwrap();
    assert_eq!(back, snap);
    let keys: Vec<&[u8]> = back.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [&b"a"[..], b"b", b"c"]);
    assert_eq!(back.get(b"c"), Some(&b""[..]));
    assert_eq!(back.get(b"d"), None);
    let empty = StateSnapshot::new(vec![]);
    let back = StateSnapshot::from_bytes(&empty.to_bytes().unwrap()).unwrap();
    assert!(back.is_empty());
}

#[test]
fn range_and_prefix_iteration() {
    let snap = sample(100);
    let r: Vec<_> = snap
        .range(&b"key-000010"[..]..&b"key-000013"[..])
        .map(|(k, _)| String::from_utf8(k.to_vec()).unwrap())
        .collect();
    assert_eq!(r, ["key-000010", "key-000011", "key-000012"]);
    let r: Vec<_> = snap
        .range(&b"key-000098"[..]..=&b"zzz"[..])
        .map(|(k, _)| k.to_vec())
        .collect();
    assert_eq!(r.len(), 2);
    assert_eq!(snap.prefix(b"key-00005").count(), 10);
    assert_eq!(snap.range(&b"z"[..]..&b"a"[..]).count(), 0);
}

#[test]
fn from_bytes_accepts_an_unaligned_buffer() {
    let snap = sample(50);
    let bytes = snap.to_bytes().unwrap();
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    assert_eq!(StateSnapshot::from_bytes(&shifted[1..]).unwrap(), snap);
}

#[test]
fn delta_apply_and_diff_agree_with_a_model() {
    let base = sample(200);
    let changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..200)
        .step_by(3)
        .map(|i| {
            let key = format!("key-{i:06}").into_bytes();
            if i % 2 == 0 {
                (key, None)
            } else {
                (key, Some(b"changed".to_vec()))
            }
        })
        .chain([
            (b"new-key".to_vec(), Some(b"n".to_vec())),
            (b"absent".to_vec(), None),
        ])
        .collect();
    let delta = StateDelta::from_changes(changes.clone());
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = base.to_pairs().into_iter().collect();
    for (k, v) in &changes {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
    let next = base.apply(&delta);
    assert_eq!(
        next.to_pairs(),
        model.clone().into_iter().collect::<Vec<_>>()
    );
    let back = StateDelta::from_bytes(&delta.to_bytes().unwrap()).unwrap();
    assert_eq!(back, delta);
    assert_eq!(back.get(b"absent"), Some(None));
    assert_eq!(back.get(b"new-key"), Some(Some(&b"n"[..])));
    assert_eq!(back.get(b"key-000001"), None);
    let diff = StateDelta::diff(&base, &next);
    assert_eq!(base.apply(&diff), next);
}

#[test]
fn kinds_are_not_confused() {
    let snap_bytes = sample(3).to_bytes().unwrap();
    let delta_bytes = StateDelta::from_changes(vec![(b"k".to_vec(), None)])
        .to_bytes()
        .unwrap();
    assert!(matches!(
        StateSnapshot::from_bytes(&delta_bytes),
        Err(Error::WrongStateKind { found: "delta", .. })
    ));
    assert!(matches!(
        StateDelta::from_bytes(&snap_bytes),
        Err(Error::WrongStateKind {
            found: "snapshot",
            ..
        })
    ));
}

#[test]
fn mapped_view_answers_without_loading() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample(5000);
    let path = write(&dir, "s.hwstate", &snap.to_bytes().unwrap());
    let view = StateFileView::open(&path).unwrap();
    assert_eq!(view.kind(), StateKind::Snapshot);
    assert_eq!(view.len(), 5000);
    assert_eq!(view.get(b"key-004321").unwrap(), Some(&b"value-30247"[..]));
    assert_eq!(view.get(b"key-9").unwrap(), None);
    assert_eq!(view.get(b"").unwrap(), None);
    let all: Vec<_> = view
        .iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all, snap.to_pairs());
    assert_eq!(view.prefix(b"key-0001").unwrap().count(), 100);
    view.verify_all().unwrap();

    let delta = StateDelta::from_changes(vec![
        (b"a".to_vec(), Some(b"1".to_vec())),
        (b"b".to_vec(), None),
    ]);
    let path = write(&dir, "d.hwstate", &delta.to_bytes().unwrap());
    let view = StateFileView::open(&path).unwrap();
    assert_eq!(view.kind(), StateKind::Delta);
    assert_eq!(view.lookup(b"a").unwrap(), Lookup::Put(b"1"));
    assert_eq!(view.lookup(b"b").unwrap(), Lookup::Deleted);
    assert_eq!(view.lookup(b"c").unwrap(), Lookup::Absent);
    assert_eq!(view.deleted_len(), 1);
}

/// Every single flipped byte of a snapshot file is detected by a full load, and
/// by the view as soon as a read touches the damaged region.
#[test]
fn a_flipped_byte_anywhere_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample(40);
    let bytes = snap.to_bytes().unwrap().to_vec();
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x20;
        let err = StateSnapshot::from_bytes(&damaged)
            .expect_err(&format!("flip at byte {at} went unnoticed"));
        assert!(
            err.is_corruption() || matches!(err, Error::UnsupportedVersion { .. }),
            "byte {at}: {err}"
        );
        let path = write(&dir, "flip.hwstate", &damaged);
        let via_view = StateFileView::open(&path).and_then(|v| {
            for item in v.iter() {
                item?;
            }
            v.verify_all()
        });
        assert!(via_view.is_err(), "view missed a flip at byte {at}");
    }
}

#[test]
fn truncated_or_extended_files_are_rejected_with_offsets() {
    let bytes = sample(30).to_bytes().unwrap().to_vec();
    for len in 0..bytes.len() {
        match StateSnapshot::from_bytes(&bytes[..len]) {
            Err(Error::StateCorrupted { offset, .. }) => assert!(offset <= len as u64),
            other => panic!("truncation to {len} bytes gave {other:?}"),
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        StateSnapshot::from_bytes(&longer),
        Err(Error::StateCorrupted { .. })
    ));
}

#[test]
fn unknown_version_is_a_typed_error() {
    let mut bytes = sample(3).to_bytes().unwrap().to_vec();
    bytes[8] = 9;
    let crc = crc32c::crc32c(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        StateSnapshot::from_bytes(&bytes),
        Err(Error::UnsupportedVersion {
            found: 9,
            supported: 1,
            ..
        })
    ));
}

#[test]
fn a_block_damaged_behind_a_valid_table_is_named_by_offset() {
    let dir = tempfile::tempdir().unwrap();
    // Enough data for several 64 KiB blocks.
    let snap = StateSnapshot::new(
        (0..3000u32)
            .map(|i| (i.to_be_bytes().to_vec(), vec![i as u8; 100]))
            .collect(),
    );
    let mut bytes = snap.to_bytes().unwrap().to_vec();
    let target = 64 + 65536 + 100; // inside the second block
    bytes[target] ^= 1;
    let path = write(&dir, "b.hwstate", &bytes);
    let view = StateFileView::open(&path).unwrap();
    // A key whose value lives far from the damaged block still reads.
    assert!(view.get(&0u32.to_be_bytes()).unwrap().is_some());
    match view.verify_all() {
        Err(Error::StateChecksumMismatch { offset, region, .. }) => {
            assert_eq!(region, "payload block");
            assert_eq!(offset, 64 + 65536);
        }
        other => panic!("expected a block mismatch, got {other:?}"),
    }
    assert!(view.iter().any(|r| r.is_err()));
}

#[test]
fn tracked_state_yields_its_delta() {
    let mut state = TrackedState::from_snapshot(&sample(10));
    assert_eq!(state.changed_len(), 0);
    state.put(b"key-000001".to_vec(), b"x".to_vec());
    state.delete(b"key-000002");
    state.delete(b"never-there");
    state.put(b"new".to_vec(), b"n".to_vec());
    state.delete(b"new");
    let delta = state.delta();
    let base = sample(10);
    assert_eq!(base.apply(&delta), state.snapshot());
    assert_eq!(delta.puts().count(), 1);
    assert_eq!(delta.deletes().count(), 2, "key-000002 and new");
    state.mark_checkpointed();
    assert!(state.delta().is_empty());
}

/// A large file is verified on two threads (one half each): damage in either
/// half is found, and the first damaged block in file order is the one named.
#[test]
fn a_large_file_names_its_first_damaged_block_in_either_half() {
    let snap = StateSnapshot::new(
        (0..300u32)
            .map(|i| (i.to_be_bytes().to_vec(), vec![i as u8; 65536]))
            .collect(),
    );
    let bytes = snap.to_bytes().unwrap().to_vec();
    let payload_len = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
    let blocks = payload_len.div_ceil(65536);
    assert!(
        blocks >= 256,
        "{blocks} blocks: too few for the two-thread path"
    );
    let block_at = |b: usize| 64 + 65536 * b;
    let checksum_offset = |damaged: &[u8]| match StateSnapshot::from_bytes(damaged) {
        Err(Error::StateChecksumMismatch { offset, region, .. }) => {
            assert_eq!(region, "payload block");
            offset as usize
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    };
    for block in [0, blocks / 2 - 1, blocks / 2, blocks - 1] {
        let mut damaged = bytes.clone();
        damaged[block_at(block) + 7] ^= 1;
        assert_eq!(checksum_offset(&damaged), block_at(block), "block {block}");
    }
    let mut both = bytes.clone();
    both[block_at(blocks - 2)] ^= 1;
    both[block_at(3) + 100] ^= 1;
    assert_eq!(checksum_offset(&both), block_at(3));
    assert_eq!(StateSnapshot::from_bytes(&bytes).unwrap(), snap);
}
