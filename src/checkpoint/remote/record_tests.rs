use super::*;
use crate::checkpoint::metadata::{CheckpointKind, PartKind, PartMetadata};
use std::collections::HashMap;

fn meta(id: u64) -> IncrementalCheckpointMetadata {
    IncrementalCheckpointMetadata {
        id,
        epoch: 3,
        kind: CheckpointKind::Full,
        parent_id: None,
        base_id: id,
        chain_length: 0,
        chain_delta_bytes: 0,
        base_bytes: 10,
        wal_position: 7,
        source_offsets: HashMap::from([("p".to_string(), 9)]),
        watermark: Some(5),
        source_watermarks: HashMap::new(),
        created_unix_ms: 1,
        parts: vec![PartMetadata {
            name: "state".into(),
            kind: PartKind::Snapshot,
            file: "part-state.hwstate".into(),
            size: 10,
            crc32c: 0xabcd,
            entries: 1,
            deleted: 0,
            sealed: None,
        }],
        sink_transactions: vec![],
    }
}

fn keys() -> BTreeMap<String, BlobKey> {
    BTreeMap::from([(
        "part-state.hwstate".to_string(),
        BlobKey::new("parts/00000000000000000001/x/part-state.hwstate").unwrap(),
    )])
}

fn checkpoint_bytes(slot: u64, generation: u64) -> Vec<u8> {
    let m = meta(4);
    let text = metadata::encode(&m).unwrap();
    encode_checkpoint(slot, generation, &m, &text, &keys()).unwrap()
}

#[test]
fn a_checkpoint_record_round_trips_with_its_metadata_bytes() {
    let m = meta(4);
    let text = metadata::encode(&m).unwrap();
    let bytes = encode_checkpoint(5, 2, &m, &text, &keys()).unwrap();
    match decode(5, &bytes).unwrap() {
        SlotRecord::Checkpoint(c) => {
            assert_eq!((c.slot, c.generation), (5, 2));
            assert_eq!(c.metadata, m);
            assert_eq!(c.metadata_bytes, text);
            assert_eq!(c.files[0].1, keys()["part-state.hwstate"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_claims_of_one_slot_never_have_the_same_bytes() {
    let a = encode_claim(3, "host:1", 1).unwrap();
    let b = encode_claim(3, "host:1", 2).unwrap();
    assert_ne!(a, b);
    assert_eq!(
        decode(3, &a).unwrap(),
        SlotRecord::Claim {
            generation: 3,
            writer: "host:1".into()
        }
    );
}

fn corrupted_reason(result: Result<SlotRecord>) -> String {
    match result {
        Err(Error::CheckpointCorrupted { path, reason, .. }) => {
            assert!(path.starts_with("commits"), "{path:?}");
            reason
        }
        other => panic!("expected CheckpointCorrupted, got {other:?}"),
    }
}

#[test]
fn a_record_read_from_another_slot_is_refused() {
    let reason = corrupted_reason(decode(6, &checkpoint_bytes(5, 2)));
    assert!(reason.contains("slot 5"), "{reason}");
}

#[test]
fn a_checkpoint_of_a_generation_not_below_its_slot_is_refused() {
    let reason = corrupted_reason(decode(5, &checkpoint_bytes(5, 5)));
    assert!(reason.contains("generation 5"), "{reason}");
}

#[test]
fn a_flipped_byte_anywhere_is_an_error_never_a_record() {
    let bytes = checkpoint_bytes(5, 2);
    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x01;
        if let Ok(r) = decode(5, &damaged) {
            // Only whitespace outside the body may change without notice,
            // and then the record is the same.
            assert_eq!(r, decode(5, &bytes).unwrap(), "byte {i}");
        }
    }
}

#[test]
fn files_that_are_not_the_metadata_parts_are_refused() {
    let m = meta(4);
    let text = metadata::encode(&m).unwrap();
    let bytes = encode_checkpoint(5, 2, &m, &text, &keys()).unwrap();
    let s = String::from_utf8(bytes).unwrap();
    // Re-encode with a different size: the envelope checksum is recomputed,
    // so only the cross-check can catch it.
    let mut record: CommitRecord = {
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        serde_json::from_value(v["body"].clone()).unwrap()
    };
    if let RecordBody::Checkpoint { files, .. } = &mut record.body {
        files[0].size = 11;
    }
    let tampered = envelope::encode("test", RECORD_FORMAT, RECORD_VERSION, &record).unwrap();
    let reason = corrupted_reason(decode(5, &tampered));
    assert!(reason.contains("is not part file"), "{reason}");

    if let RecordBody::Checkpoint { files, .. } = &mut record.body {
        files[0].size = 10;
        files[0].key = "elsewhere/x".into();
    }
    let tampered = envelope::encode("test", RECORD_FORMAT, RECORD_VERSION, &record).unwrap();
    let reason = corrupted_reason(decode(5, &tampered));
    assert!(reason.contains("outside parts/"), "{reason}");

    if let RecordBody::Checkpoint { files, .. } = &mut record.body {
        files[0].key = "parts/../../etc".into();
    }
    let tampered = envelope::encode("test", RECORD_FORMAT, RECORD_VERSION, &record).unwrap();
    corrupted_reason(decode(5, &tampered));
}

#[test]
fn an_oversized_record_is_refused_before_parsing() {
    let big = vec![b' '; MAX_RECORD_LEN as usize + 1];
    let reason = corrupted_reason(decode(1, &big));
    assert!(reason.contains("at most"), "{reason}");
}

#[test]
fn a_newer_record_version_is_unsupported() {
    let m = meta(4);
    let text = metadata::encode(&m).unwrap();
    let record = CommitRecord {
        slot: 5,
        generation: 2,
        created_unix_ms: 0,
        body: RecordBody::Checkpoint {
            checkpoint_id: 4,
            files: vec![],
            metadata: String::from_utf8(text).unwrap(),
        },
    };
    let bytes = envelope::encode("test", RECORD_FORMAT, 2, &record).unwrap();
    assert!(matches!(
        decode(5, &bytes),
        Err(Error::UnsupportedVersion {
            found: 2,
            supported: 1,
            ..
        })
    ));
}
