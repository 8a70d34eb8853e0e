//! AES-256-GCM on 64 KiB blocks: RustCrypto `aes-gcm` against `ring`, seal
//! and open, in one run (the ratio is what counts on a noisy machine).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ring::aead::{Aad, LessSafeKey, Nonce as RingNonce, UnboundKey, AES_256_GCM};
use std::hint::black_box;

const BLOCK: usize = 64 * 1024;
const KEY: [u8; 32] = [7; 32];
const AD: [u8; 48] = [1; 48];

fn nonce(i: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&i.to_le_bytes());
    n
}

fn bench(c: &mut Criterion) {
    let data = vec![0x5au8; BLOCK];
    let rc = aes_gcm::Aes256Gcm::new_from_slice(&KEY).unwrap();
    let rk = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).unwrap());
    let mut g = c.benchmark_group("aes256gcm_64k");
    g.throughput(Throughput::Bytes(BLOCK as u64));
    let mut i = 0u64;
    g.bench_function("seal/aes-gcm", |b| {
        b.iter(|| {
            i += 1;
            black_box(
                rc.encrypt(aes_gcm::Nonce::from_slice(&nonce(i)), Payload { msg: &data, aad: &AD })
                    .unwrap(),
            )
        })
    });
    g.bench_function("seal/ring", |b| {
        b.iter(|| {
            i += 1;
            let mut buf = data.clone();
            rk.seal_in_place_append_tag(RingNonce::assume_unique_for_key(nonce(i)), Aad::from(&AD), &mut buf)
                .unwrap();
            black_box(buf)
        })
    });
    let sealed_rc = rc
        .encrypt(aes_gcm::Nonce::from_slice(&nonce(0)), Payload { msg: &data, aad: &AD })
        .unwrap();
    let mut sealed_ring = data.clone();
    rk.seal_in_place_append_tag(RingNonce::assume_unique_for_key(nonce(0)), Aad::from(&AD), &mut sealed_ring)
        .unwrap();
    assert_eq!(sealed_rc, sealed_ring, "both implement the same AES-256-GCM");
    g.bench_function("open/aes-gcm", |b| {
        b.iter(|| {
            black_box(
                rc.decrypt(aes_gcm::Nonce::from_slice(&nonce(0)), Payload { msg: &sealed_rc, aad: &AD })
                    .unwrap(),
            )
        })
    });
    g.bench_function("open/ring", |b| {
        b.iter(|| {
            let mut buf = sealed_ring.clone();
            let n = rk
                .open_in_place(RingNonce::assume_unique_for_key(nonce(0)), Aad::from(&AD), &mut buf)
                .unwrap()
                .len();
            black_box(n)
        })
    });
    // The copy the ring variants make, on its own (to read their figures).
    g.bench_function("copy", |b| b.iter(|| black_box(data.clone())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
