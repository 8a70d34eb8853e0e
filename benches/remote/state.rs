//! The bench's key/value state: `n` pairs of 1 KiB (a 16-byte key and a
//! 1008-byte value), made deterministically from the pair's number, so a
//! look-up's answer can be checked without keeping the pairs.
//!
//! Key `i` is `i` big-endian then a hash of `i` (so keys sort by `i` and
//! share no long prefixes beyond the counter); value `i` is xorshift64
//! output seeded by `i` (incompressible).

use highwater::StateSnapshot;

/// Bytes of a key.
pub const KEY_LEN: usize = 16;
/// Bytes of a value.
pub const VALUE_LEN: usize = 1024 - KEY_LEN;

/// splitmix64: a well-mixed 64-bit hash of `x`.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Key `i`.
pub fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&mix(i).to_be_bytes());
    k
}

/// Value `i`, written into `out` (`VALUE_LEN` bytes).
pub fn value_into(i: u64, out: &mut Vec<u8>) {
    out.clear();
    let mut x = mix(i ^ 0x5555_5555_5555_5555) | 1;
    while out.len() < VALUE_LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (VALUE_LEN - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
}

/// Value `i`.
pub fn value(i: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_LEN);
    value_into(i, &mut v);
    v
}

/// The pairs for about `bytes` of keys and values: `bytes / 1 KiB` of them
/// (at least one).
pub fn pairs_for(bytes: usize) -> u64 {
    (bytes / (KEY_LEN + VALUE_LEN)).max(1) as u64
}

/// The snapshot of pairs `0..n`.
pub fn snapshot(n: u64) -> StateSnapshot {
    let mut buf = Vec::with_capacity(VALUE_LEN);
    let pairs = (0..n).map(move |i| {
        value_into(i, &mut buf);
        (key(i), buf.clone())
    });
    StateSnapshot::from_sorted(pairs).expect("keys in increasing order")
}

/// A small deterministic generator of pair numbers for random look-ups.
pub struct Picker(u64);

impl Picker {
    pub fn new(seed: u64) -> Self {
        Picker(mix(seed))
    }

    /// A pair number in `0..n`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = mix(self.0);
        self.0 % n
    }
}
