//! Tampering with sealed records, as a forger who knows the format but not
//! the key would: every change recomputes the record's checksums, so only
//! authentication refuses it, and nothing refused is ever cut.

use super::*;

/// Tampering is refused by the reader, the recovery, and never cut: the
/// log's open and repair see only checksums that verify.
fn assert_refused_and_kept(
    root: &Path,
    wal_dir: &Path,
    k: &Arc<dyn KeyProvider>,
    seg: &Path,
    at: usize,
) {
    let before = std::fs::read(seg).unwrap();
    auth_failed_at(
        read_until_error(&mut reader(wal_dir, Some(k))).1,
        seg,
        at,
        1,
    );
    match recover(root, wal_dir, Some(k)) {
        Err(Error::AuthenticationFailed { offset, .. }) => assert_eq!(offset, at as u64),
        other => panic!("recovery: expected AuthenticationFailed, got {other:?}"),
    }
    let wal = open(wal_dir, k);
    assert_eq!(wal.pending_repair(), None);
    assert!(!wal.repair().unwrap().cut_anything());
    drop(wal);
    let after = std::fs::read(seg).unwrap();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "tampered segment changed"
    );
}

#[test]
fn a_flipped_payload_byte_with_its_checksums_recomputed_fails_authentication() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let k = keys(1, 7);
    let seg = sealed_log(&wal_dir, &k);
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = record_offsets(&bytes)[4];
    bytes[at + 16 + 2] ^= 0x01;
    fix_crcs(&mut bytes, at);
    std::fs::write(&seg, &bytes).unwrap();
    // The records before it read; it is tampering, not damage.
    let mut r = reader(&wal_dir, Some(&k));
    let (entries, end) = read_until_error(&mut r);
    assert_eq!(entries.len(), 4);
    auth_failed_at(end, &seg, at, 1);
    // The reader stays at the record: it is never skipped.
    auth_failed_at(r.read_next(), &seg, at, 1);
    assert_eq!(r.position(), (at - FIRST) as u64);
    assert_refused_and_kept(root.path(), &wal_dir, &k, &seg, at);
}

#[test]
fn a_kind_changed_in_the_clear_fails_authentication() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let k = keys(1, 7);
    let seg = sealed_log(&wal_dir, &k);
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = record_offsets(&bytes)[2];
    assert_eq!(bytes[at + 4], 1, "a Put");
    bytes[at + 4] = 2; // a Delete
    fix_crcs(&mut bytes, at);
    std::fs::write(&seg, &bytes).unwrap();
    assert_refused_and_kept(root.path(), &wal_dir, &k, &seg, at);
}

#[test]
fn a_record_copied_to_another_offset_fails_authentication() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let k = keys(1, 7);
    let seg = sealed_log(&wal_dir, &k);
    let mut bytes = std::fs::read(&seg).unwrap();
    let offsets = record_offsets(&bytes);
    // Put 0 over Put 3 (same size), its header checksum made right for there.
    let (from, to) = (offsets[0], offsets[6]);
    let size = offsets[1] - offsets[0];
    assert_eq!(offsets[7] - offsets[6], size);
    let record = bytes[from..from + size].to_vec();
    bytes[to..to + size].copy_from_slice(&record);
    fix_crcs(&mut bytes, to);
    std::fs::write(&seg, &bytes).unwrap();
    assert_refused_and_kept(root.path(), &wal_dir, &k, &seg, to);
}

#[test]
fn a_record_copied_from_another_segment_fails_authentication() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let k = keys(1, 7);
    let first = sealed_log(&wal_dir, &k);
    let wal = open(&wal_dir, &k);
    write_pairs(&wal, 10);
    wal.close().unwrap();
    let second = segments(&wal_dir).pop().unwrap();
    assert_ne!(first, second, "a reopened log writes a new segment");
    // The same record (Put 0) at the same file offset of the other segment.
    let source = std::fs::read(&first).unwrap();
    let mut bytes = std::fs::read(&second).unwrap();
    let at = record_offsets(&bytes)[0];
    let size = record_offsets(&bytes)[1] - at;
    bytes[at..at + size].copy_from_slice(&source[at..at + size]);
    fix_crcs(&mut bytes, at);
    std::fs::write(&second, &bytes).unwrap();
    let (entries, end) = read_until_error(&mut reader(&wal_dir, Some(&k)));
    assert_eq!(entries.len(), 20, "the first segment reads");
    auth_failed_at(end, &second, at, 1);
    assert_refused_and_kept(root.path(), &wal_dir, &k, &second, at);
}
