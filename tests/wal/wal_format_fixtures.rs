//! The on-disk format against docs/FORMAT.md: an independent encoder written from
//! the document must reproduce the committed fixture byte for byte, and the library
//! must read the fixture. A format change that breaks old files fails here.
//!
//! Regenerate the fixture (only for a deliberate format change, with a version
//! bump): `HIGHWATER_REGENERATE_FIXTURES=1 cargo test --test wal wal_format_fixtures`.

use crate::common;

use common::read_all;
use highwater::inspect::{verify_log, SEGMENT_HEADER_LEN};
use highwater::storage::default_storage;
use highwater::wal::DEFAULT_MAX_RECORD_SIZE;
use highwater::wal::{DamageClass, Problem};
use highwater::{WalEntry, WalReadResult, WalReader};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const SEGMENT_ID: u64 = 0x0123_4567_89AB_CDEF;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal/v1")
}

pub(crate) fn fixture_entries() -> Vec<WalEntry> {
    vec![
        WalEntry::Put {
            key: b"user:42".to_vec(),
            value: b"{\"clicks\":7}".to_vec(),
        },
        WalEntry::Delete {
            key: b"user:7".to_vec(),
        },
        WalEntry::Commit {
            offsets: HashMap::from([("clicks-1".into(), 1001), ("clicks-0".into(), 77)]),
            watermark: Some(-3),
        },
        WalEntry::Checkpoint { id: 9 },
        WalEntry::Commit {
            offsets: HashMap::new(),
            watermark: None,
        },
    ]
}

/// Segment header per FORMAT.md §1.
fn segment_header(segment_id: u64, first_position: u64, version: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"HWWALSEG");
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&segment_id.to_le_bytes());
    b.extend_from_slice(&first_position.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Payload per FORMAT.md's table.
pub(crate) fn payload(e: &WalEntry) -> (u8, Vec<u8>) {
    let mut p = Vec::new();
    let bytes = |p: &mut Vec<u8>, b: &[u8]| {
        p.extend_from_slice(&(b.len() as u32).to_le_bytes());
        p.extend_from_slice(b);
    };
    let kind = match e {
        WalEntry::Put { key, value } => {
            bytes(&mut p, key);
            bytes(&mut p, value);
            1
        }
        WalEntry::Delete { key } => {
            bytes(&mut p, key);
            2
        }
        WalEntry::Commit { offsets, watermark } => {
            p.push(watermark.is_some() as u8);
            p.extend_from_slice(&watermark.unwrap_or(0).to_le_bytes());
            p.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
            let mut names: Vec<_> = offsets.iter().collect();
            names.sort();
            for (name, off) in names {
                bytes(&mut p, name.as_bytes());
                p.extend_from_slice(&off.to_le_bytes());
            }
            3
        }
        WalEntry::Checkpoint { id } => {
            p.extend_from_slice(&id.to_le_bytes());
            4
        }
        WalEntry::Watermarks { watermarks } => {
            p.extend_from_slice(&(watermarks.len() as u32).to_le_bytes());
            let mut names: Vec<_> = watermarks.iter().collect();
            names.sort();
            for (name, wm) in names {
                bytes(&mut p, name.as_bytes());
                p.extend_from_slice(&wm.to_le_bytes());
            }
            6
        }
        other => panic!("no fixture encoding for {other:?}"),
    };
    (kind, p)
}

/// A record per FORMAT.md §1 (header, payload, zero padding to 8).
pub(crate) fn record(
    segment_id: u64,
    position: u64,
    kind: u8,
    payload: &[u8],
    len_field: u32,
) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&len_field.to_le_bytes());
    h.push(kind);
    h.extend_from_slice(&[0, 0, 0]); // sync_distance 0
    h.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let mut seeded = Vec::new();
    seeded.extend_from_slice(&segment_id.to_le_bytes());
    seeded.extend_from_slice(&position.to_le_bytes());
    seeded.extend_from_slice(&h);
    let crc = crc32c::crc32c(&seeded);
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(payload);
    while h.len() % 8 != 0 {
        h.push(0);
    }
    h
}

fn encode_segment(entries: &[WalEntry]) -> Vec<u8> {
    let mut file = segment_header(SEGMENT_ID, 0, 1);
    let mut position = 0u64;
    for e in entries {
        let (kind, p) = payload(e);
        let r = record(SEGMENT_ID, position, kind, &p, p.len() as u32);
        position += r.len() as u64;
        file.extend_from_slice(&r);
    }
    file
}

#[test]
fn the_documented_encoding_reproduces_the_fixture() {
    let path = fixture_dir().join("00000000000000000000.wal");
    crate::common::assert_fixture(&path, &encode_segment(&fixture_entries()), "the fixture");
}

/// Kind 6 came after the v1 fixture was committed: its documented encoding
/// must match the library's, and a segment holding it must read back.
#[test]
fn the_documented_watermarks_encoding_matches_the_library() {
    let entry = WalEntry::Watermarks {
        watermarks: HashMap::from([("p1".into(), -7), ("p0".into(), i64::MAX)]),
    };
    let (kind, documented) = payload(&entry);
    let mut encoded = Vec::new();
    entry.encode_into(&mut encoded);
    assert_eq!((entry.kind(), encoded), (kind, documented.clone()));
    assert_eq!(WalEntry::decode(kind, &documented), Ok(entry.clone()));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(format!("{:020}.wal", 0)),
        encode_segment(std::slice::from_ref(&entry)),
    )
    .unwrap();
    let mut reader = WalReader::open(dir.path(), 0).unwrap();
    assert_eq!(reader.read_next().unwrap(), WalReadResult::Entry(entry));
    assert_eq!(reader.read_next().unwrap(), WalReadResult::Eof);
}

#[test]
fn the_library_reads_the_fixture() {
    let mut r = WalReader::open(fixture_dir(), 0).unwrap();
    let (entries, end) = read_all(&mut r);
    assert_eq!(entries, fixture_entries());
    assert_eq!(end, WalReadResult::Eof);
}

#[test]
fn a_checksummed_record_with_a_huge_length_is_corrupted_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = segment_header(SEGMENT_ID, 0, 1);
    // Header checksums verify, but the length says 4 GiB - 1 and 8 bytes follow.
    file.extend_from_slice(&record(SEGMENT_ID, 0, 1, &[0; 8], u32::MAX)[..24]);
    std::fs::write(dir.path().join("00000000000000000000.wal"), &file).unwrap();
    let (entries, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert!(entries.is_empty());
    match end {
        WalReadResult::Corrupted {
            position: 0,
            reason,
        } => {
            assert!(
                reason.contains("exceeds the maximum record size"),
                "{reason}"
            )
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
}

#[test]
fn a_checksummed_but_undecodable_payload_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = segment_header(SEGMENT_ID, 0, 1);
    // A Put whose key length runs past the payload; and an unknown kind.
    let bad = [0xff, 0, 0, 0, 1, 2, 3];
    file.extend_from_slice(&record(SEGMENT_ID, 0, 1, &bad, bad.len() as u32));
    std::fs::write(dir.path().join("00000000000000000000.wal"), &file).unwrap();
    let (_, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert!(
        matches!(&end, WalReadResult::Corrupted { position: 0, reason } if reason.contains("does not decode")),
        "{end:?}"
    );
    // Verification finds it too, as corruption at the record's offset.
    let checked = verify_log(
        default_storage().as_ref(),
        dir.path(),
        DEFAULT_MAX_RECORD_SIZE,
        &mut |_| {},
    )
    .unwrap();
    let damage = checked.segments[0].damage.as_ref().expect("damage found");
    assert_eq!(damage.class, DamageClass::Corrupt);
    assert_eq!(damage.offset, SEGMENT_HEADER_LEN);
    assert!(
        matches!(damage.problem, Problem::Undecodable(_)),
        "{damage:?}"
    );
    assert_eq!(checked.records(), 0);

    let dir = tempfile::tempdir().unwrap();
    let mut file = segment_header(SEGMENT_ID, 0, 1);
    file.extend_from_slice(&record(SEGMENT_ID, 0, 77, &[], 0));
    std::fs::write(dir.path().join("00000000000000000000.wal"), &file).unwrap();
    let (_, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert!(
        matches!(&end, WalReadResult::Corrupted { reason, .. } if reason.contains("unknown record kind 77")),
        "{end:?}"
    );
}

/// The floor file per FORMAT.md §1 ("The floor file").
fn floor_file(position: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"HWWALFLR");
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&position.to_le_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// A log directory with the v1 fixture segment and a floor at its third
/// entry: the documented floor encoding reproduces the committed file, and
/// the library reads from the floor on, never below it.
#[test]
fn the_documented_floor_encoding_reproduces_the_fixture_and_is_respected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal/floor-v1");
    let entries = fixture_entries();
    let floor: u64 = entries[..2]
        .iter()
        .map(|e| {
            let (kind, p) = payload(e);
            record(SEGMENT_ID, 0, kind, &p, p.len() as u32).len() as u64
        })
        .sum();
    let encoded = floor_file(floor);
    let segment = encode_segment(&entries);
    if std::env::var_os("HIGHWATER_REGENERATE_FIXTURES").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("00000000000000000000.wal"), &segment).unwrap();
    }
    crate::common::assert_fixture(&dir.join("FLOOR"), &encoded, "the fixture");
    assert_eq!(highwater::inspect::encode_floor(floor).to_vec(), encoded);
    assert_eq!(
        highwater::inspect::read_floor(default_storage().as_ref(), &dir).unwrap(),
        floor
    );

    // Reads start at the floor; below it is released. A copy whose released
    // records are garbage reads the same.
    let copy = tempfile::tempdir().unwrap();
    let mut damaged = segment.clone();
    damaged[SEGMENT_HEADER_LEN as usize + 3] ^= 0xFF;
    std::fs::write(copy.path().join("FLOOR"), &encoded).unwrap();
    std::fs::write(copy.path().join("00000000000000000000.wal"), &damaged).unwrap();
    for d in [dir.as_path(), copy.path()] {
        let (read, end) = read_all(&mut WalReader::open(d, floor).unwrap());
        assert_eq!(read, entries[2..].to_vec());
        assert_eq!(end, WalReadResult::Eof);
        assert!(matches!(
            WalReader::open(d, 0),
            Err(highwater::Error::PositionNotCovered { first_available, .. }) if first_available == floor
        ));
        let v = verify_log(
            default_storage().as_ref(),
            d,
            DEFAULT_MAX_RECORD_SIZE,
            &mut |_| {},
        )
        .unwrap();
        assert!(v.is_clean(), "{v:?}");
    }
}

/// In every build (with or without the `encryption` feature): the sealed
/// fixture's headers and checksums verify, and its records are
/// `KeyUnavailable` without a key, never damage.
#[test]
fn the_sealed_fixture_verifies_and_reads_as_key_unavailable_without_keys() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal/sealed-v2");
    let check = verify_log(
        default_storage().as_ref(),
        &dir,
        DEFAULT_MAX_RECORD_SIZE,
        &mut |_| {},
    )
    .unwrap();
    assert!(check.is_clean(), "{check:?}");
    assert_eq!(check.records(), fixture_entries().len() as u64);
    let mut r = WalReader::open(&dir, 0).unwrap();
    match r.read_next() {
        Err(highwater::Error::KeyUnavailable { path, key_id: 7 }) => {
            assert_eq!(path, dir.join("00000000000000000000.wal"))
        }
        other => panic!("expected KeyUnavailable for key 7, got {other:?}"),
    }
}
