use super::*;
use crate::error::Error;
use std::path::Path;

const BLOCK: usize = 64;

fn keys(id: u32) -> StaticKeys {
    StaticKeys::new(KeyId::new(id).unwrap(), DataKey::generate().unwrap())
}

fn path() -> &'static Path {
    Path::new("test.sealed")
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

fn open(k: &StaticKeys, bytes: &[u8]) -> crate::Result<Vec<u8>> {
    open_all(k, path(), bytes, FileKind::StateFile, BLOCK, None)
}

#[test]
fn round_trips_every_length_around_the_block() {
    let k = keys(1);
    for n in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 3 * BLOCK + 5] {
        let (sealed, id) = seal_all(&k, FileKind::StateFile, &data(n), BLOCK).unwrap();
        assert_eq!(
            sealed.len(),
            SEAL_HEADER_LEN + n + n.div_ceil(BLOCK).max(1) * TAG_LEN
        );
        assert_eq!(
            open_all(&k, path(), &sealed, FileKind::StateFile, BLOCK, Some(id)).unwrap(),
            data(n)
        );
    }
}

#[test]
fn every_flipped_byte_is_a_typed_error() {
    let k = keys(1);
    let (sealed, _) = seal_all(&k, FileKind::StateFile, &data(2 * BLOCK + 9), BLOCK).unwrap();
    for at in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[at] ^= 0x40;
        match open(&k, &bad) {
            Err(Error::AuthenticationFailed { .. }) if at >= SEAL_HEADER_LEN => {}
            Err(
                Error::StateCorrupted { .. }
                | Error::StateChecksumMismatch { .. }
                | Error::UnsupportedVersion { .. }
                | Error::KeyUnavailable { .. },
            ) if at < SEAL_HEADER_LEN => {}
            other => panic!("byte {at} flipped: {other:?}"),
        }
    }
}

#[test]
fn a_header_changed_with_its_crc_fixed_fails_every_block() {
    let k = keys(1);
    let (mut sealed, _) = seal_all(&k, FileKind::StateFile, &data(BLOCK), BLOCK).unwrap();
    sealed[20] ^= 1; // the file id: another file's key
    let crc = crc32c::crc32c(&sealed[..44]);
    sealed[44..48].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        open(&k, &sealed),
        Err(Error::AuthenticationFailed { offset: 48, .. })
    ));
}

#[test]
fn every_truncation_and_any_append_fail() {
    let k = keys(1);
    let (sealed, _) = seal_all(&k, FileKind::StateFile, &data(3 * BLOCK), BLOCK).unwrap();
    for len in 0..sealed.len() {
        assert!(
            open(&k, &sealed[..len]).is_err(),
            "cut to {len} bytes opened"
        );
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(
        open(&k, &longer),
        Err(Error::AuthenticationFailed { .. })
    ));
    let mut doubled = sealed.clone();
    doubled.extend_from_slice(&sealed[SEAL_HEADER_LEN..SEAL_HEADER_LEN + BLOCK + TAG_LEN]);
    assert!(
        open(&k, &doubled).is_err(),
        "a block repeated at the end opened"
    );
}

#[test]
fn blocks_moved_between_positions_or_files_fail() {
    let k = keys(1);
    let step = BLOCK + TAG_LEN;
    let (a, _) = seal_all(&k, FileKind::StateFile, &data(3 * BLOCK), BLOCK).unwrap();
    let (b, _) = seal_all(&k, FileKind::StateFile, &data(3 * BLOCK), BLOCK).unwrap();
    // Swap blocks 0 and 1 of a.
    let mut swapped = a.clone();
    let (h, body) = swapped.split_at_mut(SEAL_HEADER_LEN);
    let _ = h;
    let (first, rest) = body.split_at_mut(step);
    first.swap_with_slice(&mut rest[..step]);
    assert!(matches!(
        open(&k, &swapped),
        Err(Error::AuthenticationFailed { offset: 48, .. })
    ));
    // Block 1 of b in a's place (same plaintext, same key id, same index).
    let mut mixed = a.clone();
    mixed[SEAL_HEADER_LEN + step..SEAL_HEADER_LEN + 2 * step]
        .copy_from_slice(&b[SEAL_HEADER_LEN + step..SEAL_HEADER_LEN + 2 * step]);
    match open(&k, &mixed) {
        Err(Error::AuthenticationFailed { offset, .. }) => {
            assert_eq!(offset, (SEAL_HEADER_LEN + step) as u64)
        }
        other => panic!("{other:?}"),
    }
    // A block of another kind of file never opens as this kind.
    let (arrow, _) = seal_all(&k, FileKind::ArrowPart, &data(BLOCK), BLOCK).unwrap();
    assert!(matches!(
        open(&k, &arrow),
        Err(Error::StateCorrupted { offset: 10, .. })
    ));
}

#[test]
fn an_older_file_put_back_is_refused_by_its_id() {
    let k = keys(1);
    let (old, _) = seal_all(&k, FileKind::StateFile, b"old state", BLOCK).unwrap();
    let (_new, new_id) = seal_all(&k, FileKind::StateFile, b"new state", BLOCK).unwrap();
    assert_eq!(
        open(&k, &old).unwrap(),
        b"old state",
        "alone, an old file is a valid file"
    );
    let put_back = open_all(&k, path(), &old, FileKind::StateFile, BLOCK, Some(new_id));
    assert!(
        matches!(put_back, Err(Error::StateCorrupted { offset: 16, .. })),
        "{put_back:?}"
    );
}

#[test]
fn a_wrong_or_missing_key_is_a_typed_error_naming_the_key() {
    let k = keys(7);
    let (sealed, _) = seal_all(&k, FileKind::StateFile, &data(10), BLOCK).unwrap();
    // Same id, other bytes: the wrong key, told apart from tampering by the
    // header's key check value before any block is opened.
    match open(&keys(7), &sealed) {
        Err(Error::KeyMismatch { key_id: 7, path }) => assert_eq!(path, self::path()),
        other => panic!("{other:?}"),
    }
    match open(&keys(8), &sealed) {
        Err(Error::KeyUnavailable { key_id: 7, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn rotation_writes_with_the_new_key_and_reads_the_old() {
    let old_key = DataKey::generate().unwrap();
    let v1 = StaticKeys::new(KeyId::new(1).unwrap(), old_key.clone());
    let (old_file, _) = seal_all(&v1, FileKind::Record, b"sealed under 1", BLOCK).unwrap();
    let v2 = StaticKeys::new(KeyId::new(2).unwrap(), DataKey::generate().unwrap())
        .with_retired(KeyId::new(1).unwrap(), old_key)
        .unwrap();
    let (new_file, _) = seal_all(&v2, FileKind::Record, b"sealed under 2", BLOCK).unwrap();
    assert_eq!(
        SealHeader::decode(path(), &new_file).unwrap().key_id.get(),
        2
    );
    for (file, text) in [
        (&old_file, &b"sealed under 1"[..]),
        (&new_file, b"sealed under 2"),
    ] {
        assert_eq!(
            open_all(&v2, path(), file, FileKind::Record, BLOCK, None).unwrap(),
            text
        );
    }
    // Once the old key is dropped, its files are refused by name.
    let v3 = StaticKeys::new(KeyId::new(2).unwrap(), v2.current_key().unwrap().1);
    assert!(matches!(
        open_all(&v3, path(), &old_file, FileKind::Record, BLOCK, None),
        Err(Error::KeyUnavailable { key_id: 1, .. })
    ));
}

#[test]
fn a_writer_never_seals_past_its_last_block() {
    let k = keys(1);
    let mut w = SealedWriter::new(&k, FileKind::LogSegment).unwrap();
    w.seal_next(b"a", false).unwrap();
    w.seal_next(b"b", true).unwrap();
    assert!(matches!(
        w.seal_next(b"c", false),
        Err(Error::InvalidArgument(_))
    ));
    // Two files never share a file id (and so a file key).
    let other = SealedWriter::new(&k, FileKind::LogSegment).unwrap();
    assert_ne!(w.file_id(), other.file_id());
}

#[test]
fn keys_parse_from_raw_bytes_or_hex_and_never_print() {
    let key = DataKey::generate().unwrap();
    let hex = key.to_hex();
    assert_eq!(
        DataKey::parse(format!("  {hex}\n").as_bytes())
            .unwrap()
            .bytes(),
        key.bytes()
    );
    assert_eq!(DataKey::parse(key.bytes()).unwrap().bytes(), key.bytes());
    assert!(DataKey::parse(b"short").is_err());
    assert!(DataKey::parse(&[b'z'; 64]).is_err());
    assert_eq!(format!("{key:?}"), "DataKey(..)");
    assert!(KeyId::new(0).is_err());
}

#[test]
fn open_all_refuses_a_block_size_no_file_is_sealed_with() {
    let k = keys(1);
    let (sealed, _) = seal_all(&k, FileKind::StateFile, &data(10), BLOCK).unwrap();
    // 0 (refused by seal_all), and sizes whose block + tag does not fit a
    // usize: a typed error, never an overflow or a division by zero.
    for block in [0, usize::MAX - TAG_LEN + 1, usize::MAX - 1, usize::MAX] {
        let opened = open_all(&k, path(), &sealed, FileKind::StateFile, block, None);
        assert!(
            matches!(opened, Err(Error::InvalidArgument(_))),
            "block {block}: {opened:?}"
        );
    }
}

#[test]
fn a_key_id_given_twice_is_refused_not_silently_dropped() {
    // Rotating without a new id: the old key would be dropped without a
    // word and every old file would fail authentication, as if damaged
    // (recovery falls back past such checkpoints).
    let old_key = DataKey::generate().unwrap();
    let v1 = StaticKeys::new(KeyId::new(1).unwrap(), old_key.clone());
    let (old_file, _) = seal_all(&v1, FileKind::Record, b"sealed under 1", BLOCK).unwrap();
    let same_id = StaticKeys::new(KeyId::new(1).unwrap(), DataKey::generate().unwrap())
        .with_retired(KeyId::new(1).unwrap(), old_key.clone());
    assert!(
        matches!(same_id, Err(Error::InvalidConfig { .. })),
        "{same_id:?}"
    );
    let twice = StaticKeys::new(KeyId::new(3).unwrap(), DataKey::generate().unwrap())
        .with_retired(KeyId::new(1).unwrap(), old_key.clone())
        .and_then(|k| k.with_retired(KeyId::new(1).unwrap(), DataKey::generate().unwrap()));
    assert!(
        matches!(twice, Err(Error::InvalidConfig { .. })),
        "{twice:?}"
    );
    let good = StaticKeys::new(KeyId::new(2).unwrap(), DataKey::generate().unwrap())
        .with_retired(KeyId::new(1).unwrap(), old_key)
        .unwrap();
    assert_eq!(
        open_all(&good, path(), &old_file, FileKind::Record, BLOCK, None).unwrap(),
        b"sealed under 1"
    );
}

#[test]
fn a_key_file_of_32_text_bytes_is_refused_not_taken_as_a_raw_key() {
    // Half a hex key (a cut copy, or a 128-bit key in hex), and a password:
    // 32 bytes that are text, never 32 random bytes.
    let hex = DataKey::generate().unwrap().to_hex();
    for text in [&hex.as_bytes()[..32], b"my job's secret password, 32 B!!"] {
        let parsed = DataKey::parse(text);
        assert!(
            matches!(parsed, Err(Error::InvalidConfig { .. })),
            "{parsed:?}"
        );
    }
    // Raw random bytes still parse, even when some are printable.
    let mut raw = [b'a'; KEY_LEN];
    raw[7] = 0x9c;
    assert_eq!(DataKey::parse(&raw).unwrap().bytes(), &raw);
}

#[test]
fn the_key_check_value_is_the_keys_and_tells_a_wrong_key_from_tampering() {
    let k = keys(3);
    let (sealed, _) = seal_all(&k, FileKind::StateFile, &data(2 * BLOCK), BLOCK).unwrap();
    let header = SealHeader::decode(path(), &sealed).unwrap();
    let (id, key) = k.current_key().unwrap();
    assert_eq!(header.key_check, key_check(&key, id));
    assert_ne!(
        header.key_check,
        key_check(&DataKey::generate().unwrap(), id)
    );
    assert_ne!(header.key_check, key_check(&key, KeyId::new(4).unwrap()));
    // The right key and a damaged block: authentication, not the key.
    let mut bad = sealed.clone();
    bad[SEAL_HEADER_LEN + 3] ^= 1;
    assert!(matches!(
        open(&k, &bad),
        Err(Error::AuthenticationFailed { key_id: 3, .. })
    ));
}

#[test]
fn a_key_file_is_read_only_up_to_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::generate().unwrap();
    let good = dir.path().join("key");
    std::fs::write(&good, format!("{}\n", key.to_hex())).unwrap();
    assert_eq!(DataKey::from_file(&good).unwrap().bytes(), key.bytes());
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'a'; 5000]).unwrap();
    assert!(matches!(
        DataKey::from_file(&big),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        DataKey::from_file(dir.path().join("none")),
        Err(Error::Io { .. })
    ));
}
