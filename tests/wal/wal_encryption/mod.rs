//! Sealed segments (the `encryption` feature, docs/FORMAT.md §1 "Sealed
//! segments"): round trips through the log and recovery, nothing in the
//! clear, tampering found as `AuthenticationFailed` (never a torn tail, never
//! cut), wrong and missing keys, rotation, mixed logs, a crash mid-write,
//! and the rule that no offset of a sealed segment is written twice.
#![cfg(feature = "encryption")]

mod segments;
mod tamper;

use crate::common;

use common::*;
use highwater::crypto::{DataKey, KeyId, KeyProvider, StaticKeys};
use highwater::inspect::verify_log;
use highwater::storage::{default_storage, CrashImage, CrashSimStorage};
use highwater::{
    Error, RecoveryConfig, RecoveryManager, SyncPolicy, WalEntry, WalOptions, WalReadResult,
    WalReader, WalRecoveryMode, WriteAheadLog,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a sealed segment's first record starts.
const FIRST: usize = 88;

fn key(byte: u8) -> DataKey {
    DataKey::from_bytes([byte; 32])
}

fn keys(id: u32, byte: u8) -> Arc<dyn KeyProvider> {
    Arc::new(StaticKeys::new(KeyId::new(id).unwrap(), key(byte)))
}

fn options(keys: &Arc<dyn KeyProvider>) -> WalOptions {
    WalOptions::default()
        .with_sync_policy(SyncPolicy::Manual)
        .with_encryption(keys.clone())
}

fn open(dir: &Path, keys: &Arc<dyn KeyProvider>) -> WriteAheadLog {
    WriteAheadLog::open(dir, options(keys)).unwrap()
}

fn reader(dir: &Path, keys: Option<&Arc<dyn KeyProvider>>) -> WalReader {
    let r = WalReader::open(dir, 0).unwrap();
    match keys {
        Some(k) => r.with_encryption(k.clone()),
        None => r,
    }
}

/// Reads entries until the first error or terminal result.
fn read_until_error(r: &mut WalReader) -> (Vec<WalEntry>, Result<WalReadResult, Error>) {
    let mut entries = Vec::new();
    loop {
        match r.read_next() {
            Ok(WalReadResult::Entry(e)) => entries.push(e),
            other => return (entries, other),
        }
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The file offsets of every record of a segment's bytes.
fn record_offsets(seg: &[u8]) -> Vec<usize> {
    let mut at = FIRST;
    let mut out = Vec::new();
    while at + 16 <= seg.len() && seg[at..at + 16].iter().any(|&b| b != 0) {
        out.push(at);
        at += 16 + (le_u32(seg, at) as usize).div_ceil(8) * 8;
    }
    out
}

/// Recomputes the checksums of the record at `at` of segment bytes `seg`,
/// as a forger who knows the format (but not the key) would.
fn fix_crcs(seg: &mut [u8], at: usize) {
    let len = le_u32(seg, at) as usize;
    let payload_crc = crc32c::crc32c(&seg[at + 16..at + 16 + len]);
    seg[at + 8..at + 12].copy_from_slice(&payload_crc.to_le_bytes());
    let position = le_u64(seg, 24) + (at - FIRST) as u64;
    let mut seed = Vec::new();
    seed.extend_from_slice(&seg[16..24]);
    seed.extend_from_slice(&position.to_le_bytes());
    seed.extend_from_slice(&seg[at..at + 12]);
    let header_crc = crc32c::crc32c(&seed);
    seg[at + 12..at + 16].copy_from_slice(&header_crc.to_le_bytes());
}

/// The key id a sealed segment's seal header names.
fn key_id_of(seg: &Path) -> u32 {
    le_u32(&std::fs::read(seg).unwrap(), 40 + 12)
}

fn version_of(seg: &Path) -> u32 {
    le_u32(&std::fs::read(seg).unwrap(), 8)
}

fn auth_failed_at(result: Result<WalReadResult, Error>, seg: &Path, offset: usize, id: u32) {
    match result {
        Err(Error::AuthenticationFailed {
            path,
            offset: o,
            key_id,
        }) => {
            assert_eq!(path, seg);
            assert_eq!(o, offset as u64);
            assert_eq!(key_id, id);
        }
        other => panic!("expected AuthenticationFailed at {offset}, got {other:?}"),
    }
}

/// Recovery of the log in `wal` (no checkpoints) with `keys`.
fn recover(
    root: &Path,
    wal: &Path,
    keys: Option<&Arc<dyn KeyProvider>>,
) -> highwater::Result<highwater::RecoveredState> {
    let mut cfg = RecoveryConfig::new(root.join("ckpt"), wal).with_collect_state_changes(true);
    if let Some(k) = keys {
        cfg = cfg.with_encryption(k.clone());
    }
    RecoveryManager::new(cfg).recover()
}

fn changes(entries: &[WalEntry]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    entries
        .iter()
        .filter_map(|e| match e {
            WalEntry::Put { key, value } => Some((key.clone(), Some(value.clone()))),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sealed_log_round_trips_through_reopen_reading_and_recovery() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let k = keys(1, 7);
    let wal = open(&wal_dir, &k);
    let written = write_pairs(&wal, 20);
    wal.sync().unwrap();
    wal.close().unwrap();
    let segs = segments(&wal_dir);
    assert_eq!(segs.len(), 1);
    assert_eq!(version_of(&segs[0]), 2, "a sealed segment");
    assert_eq!(key_id_of(&segs[0]), 1);

    let wal = open(&wal_dir, &k);
    assert_eq!(read_all(&mut wal.read_from(0).unwrap()).0, written);
    drop(wal);
    let (entries, end) = read_until_error(&mut reader(&wal_dir, Some(&k)));
    assert_eq!(entries, written);
    assert_eq!(end.unwrap(), WalReadResult::Eof);
    assert!(
        verify_log(default_storage().as_ref(), &wal_dir, 16 << 20, &mut |_| {})
            .unwrap()
            .is_clean()
    );

    let recovered = recover(root.path(), &wal_dir, Some(&k)).unwrap();
    assert_eq!(recovered.state_changes, changes(&written));
    assert_eq!(recovered.source_offsets.get("src-0"), Some(&19));
}

#[test]
fn no_key_or_value_byte_appears_in_the_clear() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let k = keys(1, 7);
    let wal = open(&wal_dir, &k);
    let secrets: Vec<String> = (0..50).map(|i| format!("SECRET-{i:03}")).collect();
    for s in &secrets {
        wal.append(&put(&format!("key-{s}"), &format!("value-{s}")))
            .unwrap();
        wal.append(&WalEntry::Delete {
            key: format!("gone-{s}").into_bytes(),
        })
        .unwrap();
    }
    wal.append(&commit(3)).unwrap();
    // Reopened: the close marker and a second segment are sealed too.
    wal.close().unwrap();
    let wal = open(&wal_dir, &k);
    wal.append(&put("key-SECRET-again", "value-SECRET-again"))
        .unwrap();
    wal.append(&commit(4)).unwrap();
    wal.close().unwrap();
    assert_eq!(segments(&wal_dir).len(), 2);
    let needles: Vec<&[u8]> = vec![b"SECRET", b"key-", b"value-", b"gone-", b"src-0"];
    for seg in segments(&wal_dir) {
        let bytes = std::fs::read(&seg).unwrap();
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == *needle),
                "{} holds {:?} in the clear",
                seg.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    let (entries, end) = read_until_error(&mut reader(&wal_dir, Some(&k)));
    assert_eq!(entries.len(), 50 * 2 + 3);
    assert_eq!(end.unwrap(), WalReadResult::Eof);
}

/// A closed sealed log of 10 equal-sized Put + Commit pairs; its segment.
fn sealed_log(wal_dir: &Path, k: &Arc<dyn KeyProvider>) -> PathBuf {
    let wal = open(wal_dir, k);
    write_pairs(&wal, 10);
    wal.close().unwrap();
    segments(wal_dir).pop().unwrap()
}

#[test]
fn a_wrong_key_is_key_mismatch_and_a_missing_one_key_unavailable() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let k = keys(1, 7);
    let seg = sealed_log(&wal_dir, &k);
    let wrong = keys(1, 8);
    match read_until_error(&mut reader(&wal_dir, Some(&wrong))) {
        (e, Err(Error::KeyMismatch { path, key_id })) if e.is_empty() => {
            assert_eq!((path, key_id), (seg.clone(), 1))
        }
        other => panic!("expected KeyMismatch, got {other:?}"),
    }
    let other_id = keys(2, 7);
    for keys in [None, Some(&other_id)] {
        let mut r = reader(&wal_dir, keys);
        for _ in 0..2 {
            // The reader stays at the record: asking again fails again.
            match r.read_next() {
                Err(Error::KeyUnavailable { path, key_id }) => {
                    assert_eq!((&path, key_id), (&seg, 1))
                }
                other => panic!("expected KeyUnavailable, got {other:?}"),
            }
        }
        assert_eq!(r.position(), 0);
    }
    assert!(matches!(
        recover(root.path(), &wal_dir, None),
        Err(Error::KeyUnavailable { key_id: 1, .. })
    ));
    assert!(matches!(
        recover(root.path(), &wal_dir, Some(&wrong)),
        Err(Error::KeyMismatch { key_id: 1, .. })
    ));
    // Neither is damage: the log opens with the right key, untouched.
    let wal = open(&wal_dir, &k);
    assert!(wal.pending_repair().is_none());
}

#[test]
fn rotated_keys_seal_new_segments_and_old_ones_read_while_retired_keys_are_given() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let old = keys(1, 7);
    let wal = open(&wal_dir, &old);
    let mut written = write_pairs(&wal, 5);
    wal.close().unwrap();
    let rotated: Arc<dyn KeyProvider> = Arc::new(
        StaticKeys::new(KeyId::new(2).unwrap(), key(9))
            .with_retired(KeyId::new(1).unwrap(), key(7))
            .unwrap(),
    );
    let wal = open(&wal_dir, &rotated);
    written.extend(write_pairs(&wal, 5));
    wal.close().unwrap();
    let segs = segments(&wal_dir);
    assert_eq!(
        segs.iter().map(|s| key_id_of(s)).collect::<Vec<_>>(),
        [1, 2]
    );
    let (entries, end) = read_until_error(&mut reader(&wal_dir, Some(&rotated)));
    assert_eq!(entries, written);
    assert_eq!(end.unwrap(), WalReadResult::Eof);
    // The new key alone reads only what it sealed.
    let new_only = keys(2, 9);
    match read_until_error(&mut reader(&wal_dir, Some(&new_only))).1 {
        Err(Error::KeyUnavailable { path, key_id: 1 }) => assert_eq!(path, segs[0]),
        other => panic!("expected KeyUnavailable for key 1, got {other:?}"),
    }
    let recovered = recover(root.path(), &wal_dir, Some(&rotated)).unwrap();
    assert_eq!(recovered.state_changes, changes(&written));
}

#[test]
fn plaintext_segments_stay_readable_in_a_log_that_turns_encryption_on() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let wal = manual(&wal_dir);
    let mut written = write_pairs(&wal, 5);
    wal.close().unwrap();
    let plain = segments(&wal_dir)[0].clone();
    let plain_bytes = std::fs::read(&plain).unwrap();
    let k = keys(1, 7);
    let wal = open(&wal_dir, &k);
    let sealed_part = write_pairs(&wal, 5);
    written.extend(sealed_part.clone());
    wal.close().unwrap();
    let segs = segments(&wal_dir);
    assert_eq!(segs.len(), 2);
    assert_eq!((version_of(&segs[0]), version_of(&segs[1])), (1, 2));
    assert_eq!(
        std::fs::read(&plain).unwrap(),
        plain_bytes,
        "version 1 unchanged"
    );
    let (entries, end) = read_until_error(&mut reader(&wal_dir, Some(&k)));
    assert_eq!(entries, written);
    assert_eq!(end.unwrap(), WalReadResult::Eof);
    // Without keys: the plaintext part, then the sealed segment's key id.
    let (entries, end) = read_until_error(&mut reader(&wal_dir, None));
    assert_eq!(entries, written[..10]);
    assert!(
        matches!(end, Err(Error::KeyUnavailable { key_id: 1, .. })),
        "{end:?}"
    );
    // And back: a log opened without keys starts a plaintext segment.
    let wal = manual(&wal_dir);
    write_pairs(&wal, 1);
    wal.close().unwrap();
    let segs = segments(&wal_dir);
    assert_eq!(version_of(&segs[2]), 1);
    assert_eq!(
        read_until_error(&mut reader(&wal_dir, Some(&k))).0.len(),
        22
    );
}

#[test]
fn an_encrypted_log_refuses_segments_over_4_gib_and_records_too_small_for_a_tag() {
    let k = keys(1, 7);
    let setting = |o: WalOptions| match o.validate() {
        Err(Error::InvalidConfig { setting, .. }) => setting,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let big = highwater::wal::MAX_SEALED_SEGMENT_SIZE;
    assert_eq!(
        setting(options(&k).with_segment_size(big + 1)),
        "segment_size"
    );
    assert_eq!(
        setting(options(&k).with_max_record_size(15)),
        "max_record_size"
    );
    options(&k)
        .with_segment_size(big)
        .with_max_record_size(16)
        .validate()
        .unwrap();
    // Without keys, neither limit applies.
    WalOptions::new()
        .with_segment_size(big + 1)
        .with_max_record_size(1)
        .validate()
        .unwrap();
}
