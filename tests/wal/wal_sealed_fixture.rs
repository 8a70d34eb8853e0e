//! The sealed segment format (docs/FORMAT.md §1 "Sealed segments", §8)
//! against a committed fixture: an encoder written from the document (ring's
//! HKDF, HMAC and AES-GCM, nothing of highwater's) must reproduce
//! `tests/fixtures/wal/sealed-v2/` byte for byte, and the library must read
//! it with the key. A change to the sealed bytes fails here.
//!
//! Regenerate (only for a deliberate format change, with a version bump):
//! `HIGHWATER_REGENERATE_FIXTURES=1 cargo test --features encryption --test wal wal_sealed_fixture`.
#![cfg(feature = "encryption")]

use super::wal_format_fixtures::{fixture_entries, payload, record};
use crate::common::read_all;
use highwater::crypto::{DataKey, KeyId, KeyProvider, StaticKeys};
use highwater::{WalReadResult, WalReader};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::hkdf::{Salt, HKDF_SHA256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SEGMENT_ID: u64 = 0x0123_4567_89AB_CDEF;
const KEY: [u8; 32] = [0x42; 32];
const KEY_ID: u32 = 7;
const FILE_ID: [u8; 16] = *b"sealed-fixture-1";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal/sealed-v2")
}

/// The segment header of §1 for a sealed segment: version 2, header_len 88.
fn segment_header() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"HWWALSEG");
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&88u32.to_le_bytes());
    b.extend_from_slice(&SEGMENT_ID.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// The seal header of §8 for a log segment.
fn seal_header() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"HWSEAL\0\x01");
    b.extend_from_slice(&1u16.to_le_bytes());
    b.push(1); // log segment
    b.push(0);
    b.extend_from_slice(&KEY_ID.to_le_bytes());
    b.extend_from_slice(&FILE_ID);
    let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &KEY);
    let mut msg = b"highwater-key-check-v1".to_vec();
    msg.extend_from_slice(&KEY_ID.to_le_bytes());
    b.extend_from_slice(&ring::hmac::sign(&mac, &msg).as_ref()[..8]);
    b.extend_from_slice(&[0; 4]);
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn file_key() -> LessSafeKey {
    let id = KEY_ID.to_le_bytes();
    let info: [&[u8]; 3] = [b"highwater-seal-v1", &[1], &id];
    let prk = Salt::new(HKDF_SHA256, &FILE_ID).extract(&KEY);
    let okm = prk.expand(&info, &AES_256_GCM).unwrap();
    LessSafeKey::new(UnboundKey::from(okm))
}

fn encode_segment() -> Vec<u8> {
    let seal = seal_header();
    let key = file_key();
    let mut file = segment_header();
    file.extend_from_slice(&seal);
    assert_eq!(file.len(), 88);
    let mut position = 0u64;
    for e in fixture_entries() {
        let (kind, mut p) = payload(&e);
        let offset = file.len() as u64;
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&offset.to_le_bytes());
        let mut ad = seal.clone();
        ad.push(kind);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&ad[..]),
            &mut p,
        )
        .unwrap();
        let r = record(SEGMENT_ID, position, kind, &p, p.len() as u32);
        position += r.len() as u64;
        file.extend_from_slice(&r);
    }
    file
}

#[test]
fn the_documented_sealed_encoding_reproduces_the_fixture() {
    let path = fixture_dir().join("00000000000000000000.wal");
    crate::common::assert_fixture(&path, &encode_segment(), "the sealed fixture");
}

#[test]
fn the_library_reads_the_sealed_fixture_with_its_key() {
    let keys: Arc<dyn KeyProvider> = Arc::new(StaticKeys::new(
        KeyId::new(KEY_ID).unwrap(),
        DataKey::from_bytes(KEY),
    ));
    let mut r = WalReader::open(fixture_dir(), 0)
        .unwrap()
        .with_encryption(keys);
    let (entries, end) = read_all(&mut r);
    assert_eq!(entries, fixture_entries());
    assert_eq!(end, WalReadResult::Eof);
}
