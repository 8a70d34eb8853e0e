//! State files and checkpoint directories against docs/FORMAT.md §2–3: the
//! committed fixtures must decode to the expected content, today's encoder must
//! reproduce the state files byte for byte, and the header fields must sit where
//! the document says. A format change that breaks old files fails here.
//!
//! Regenerate (only for a deliberate format change, with a version bump):
//! `HIGHWATER_REGENERATE_FIXTURES=1 cargo test --test state state_format_fixtures`.

use highwater::checkpoint::{CheckpointRequest, PartInput};
use highwater::{
    CheckpointConfig, CheckpointStore, IncrementalCheckpointManager, StateDelta, StateSnapshot,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn regenerate() -> bool {
    std::env::var_os("HIGHWATER_REGENERATE_FIXTURES").is_some()
}

fn snapshot() -> StateSnapshot {
    StateSnapshot::new(vec![
        (b"user:42".to_vec(), b"{\"clicks\":7}".to_vec()),
        (b"user:7".to_vec(), b"{\"clicks\":1}".to_vec()),
        (b"\x00binary".to_vec(), vec![0xff, 0x00, 0x10]),
        (b"empty".to_vec(), vec![]),
    ])
}

fn delta() -> StateDelta {
    StateDelta::from_changes(vec![
        (b"user:42".to_vec(), Some(b"{\"clicks\":8}".to_vec())),
        (b"user:7".to_vec(), None),
        (b"user:99".to_vec(), Some(b"{}".to_vec())),
    ])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Checks the header fields at the offsets FORMAT.md gives, independently of the
/// library's decoder.
fn check_header(file: &[u8], kind: u8, entries: u64, deleted: u64) {
    assert_eq!(&file[0..8], b"HWSTATE\0");
    assert_eq!(u32_at(file, 8), 1, "version");
    assert_eq!(file[12], kind);
    assert_eq!(file[13], 0x02, "little-endian, 32-bit, aligned");
    assert_eq!(file[14], 16, "64 KiB blocks");
    let payload_len = u64_at(file, 16);
    assert_eq!(u64_at(file, 24), entries);
    assert_eq!(u64_at(file, 32), deleted);
    assert_eq!(u32_at(file, 60), crc32c::crc32c(&file[..60]), "header CRC");
    let blocks = payload_len.div_ceil(65536) as usize;
    assert_eq!(file.len(), 64 + payload_len as usize + 4 * blocks);
    let payload = &file[64..64 + payload_len as usize];
    assert_eq!(u32_at(file, 40), crc32c::crc32c(payload), "payload CRC");
    let table = &file[64 + payload_len as usize..];
    assert_eq!(u32_at(file, 44), crc32c::crc32c(table), "table CRC");
    for (i, chunk) in payload.chunks(65536).enumerate() {
        assert_eq!(u32_at(table, 4 * i), crc32c::crc32c(chunk), "block {i}");
    }
}

#[test]
fn state_files_match_the_committed_fixtures() {
    let dir = fixtures().join("state/v1");
    let cases: [(&str, Vec<u8>, u8, u64, u64); 2] = [
        (
            "snapshot.hwstate",
            snapshot().to_bytes().unwrap().to_vec(),
            1,
            4,
            0,
        ),
        (
            "delta.hwstate",
            delta().to_bytes().unwrap().to_vec(),
            2,
            2,
            1,
        ),
    ];
    for (name, encoded, kind, entries, deleted) in cases {
        let path = dir.join(name);
        if regenerate() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &encoded).unwrap();
        }
        let fixture = std::fs::read(&path).unwrap();
        check_header(&fixture, kind, entries, deleted);
        assert_eq!(
            encoded, fixture,
            "{name}: today's encoder differs from the fixture"
        );
    }
    let snap =
        StateSnapshot::from_bytes(&std::fs::read(dir.join("snapshot.hwstate")).unwrap()).unwrap();
    assert_eq!(snap, snapshot());
    let d = StateDelta::from_bytes(&std::fs::read(dir.join("delta.hwstate")).unwrap()).unwrap();
    assert_eq!(d, delta());
}

#[test]
fn checkpoint_directory_fixture_still_loads() {
    let dir = fixtures().join("checkpoint/v1");
    if regenerate() {
        let _ = std::fs::remove_dir_all(&dir);
        let m = IncrementalCheckpointManager::new(
            CheckpointConfig::new(&dir).with_max_delta_ratio(100.0),
        )
        .unwrap();
        m.set_epoch(3);
        m.create_checkpoint(
            CheckpointRequest::new(4096)
                .with_offsets(HashMap::from([("clicks-0".into(), 77)]))
                .with_watermark(Some(-3))
                .with_part("state", PartInput::Snapshot(&snapshot()))
                .with_part("window", PartInput::Blob(b"opaque")),
        )
        .unwrap();
        m.set_epoch(4);
        m.create_checkpoint(
            CheckpointRequest::new(8192)
                .with_offsets(HashMap::from([("clicks-0".into(), 99)]))
                .with_part("state", PartInput::Delta(&delta())),
        )
        .unwrap();
    }
    let store = CheckpointStore::new(&dir);
    let latest = store.find_latest().unwrap();
    assert!(latest.rejected.is_empty(), "{:?}", latest.rejected);
    let meta = latest.metadata.unwrap();
    assert_eq!(
        (meta.id, meta.epoch, meta.parent_id, meta.wal_position),
        (2, 4, Some(1), 8192)
    );
    assert_eq!(
        meta.source_offsets,
        HashMap::from([("clicks-0".to_string(), 99)])
    );
    assert_eq!(
        store.load_snapshot(2, "state").unwrap(),
        snapshot().apply(&delta())
    );
    assert_eq!(store.load_blob(2, "window").unwrap(), b"opaque");
    let first = store.read_metadata(1).unwrap();
    assert_eq!(first.watermark, Some(-3));
}
