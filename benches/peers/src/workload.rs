//! The seed's workload: 1 M Puts of 16-byte keys and 100-byte values, a Commit
//! every 100 Puts. Everything here is built before any clock starts.

/// Bytes per value.
pub const VALUE_LEN: usize = 100;
/// Puts between two Commits.
pub const COMMIT_EVERY: usize = 100;

/// The 16-byte key number `i`.
pub fn key(i: usize) -> Vec<u8> {
    format!("key-{i:012}").into_bytes()
}

/// The 100-byte value of key `i` in round `round`.
pub fn value(i: usize, round: usize) -> Vec<u8> {
    (0..VALUE_LEN)
        .map(|j| b'a' + ((i + j + round) % 26) as u8)
        .collect()
}

/// The state's pairs in key order.
pub fn pairs(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n).map(|i| (key(i), value(i, 0))).collect()
}

/// One operation of the log workload.
pub enum Op {
    /// Put of key/value.
    Put(Vec<u8>, Vec<u8>),
    /// Commit with the source offset reached and a watermark.
    Commit(u64),
}

/// `n` Puts with a Commit after every 100.
pub fn log_ops(n: usize) -> Vec<Op> {
    let mut ops = Vec::with_capacity(n + n / COMMIT_EVERY);
    for i in 0..n {
        ops.push(Op::Put(key(i), value(i, 0)));
        if (i + 1) % COMMIT_EVERY == 0 {
            ops.push(Op::Commit(i as u64 + 1));
        }
    }
    ops
}

/// The changes of 1% of the keys (a different 1% each round).
pub fn one_percent(n: usize, round: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let step = 100;
    (0..n / step)
        .map(|j| {
            let i = j * step + round % step;
            (key(i), value(i, round + 1))
        })
        .collect()
}
