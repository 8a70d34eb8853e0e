//! Combining per-block CRC32Cs into the CRC32C of the whole payload cheaply.
//!
//! `crc(A ‖ B) = shift(crc(A), |B|) ⊕ crc(B)`, where `shift` feeds `|B|` zero
//! bytes through the CRC register: a linear map over GF(2), i.e. a 32×32 bit
//! matrix. `crc32c::crc32c_combine` rebuilds that matrix by repeated squaring on
//! every call (tens of microseconds); all payload blocks but the last have the same
//! length, so the matrix for one block is built once and applied with 32
//! conditional xors.

use std::sync::OnceLock;

/// CRC32C's polynomial, bit-reflected.
const POLY: u32 = 0x82F6_3B78;

type Matrix = [u32; 32];

fn times(mat: &Matrix, mut vec: u32) -> u32 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn square(mat: &Matrix) -> Matrix {
    let mut out = [0u32; 32];
    for (n, row) in out.iter_mut().enumerate() {
        *row = times(mat, mat[n]);
    }
    out
}

/// The operator that appends `len` zero bytes to a CRC register.
fn zeros_operator(mut len: usize) -> Matrix {
    // Operator for one zero bit, then 2, 4, 8 bits (one byte).
    let mut op: Matrix = [0; 32];
    op[0] = POLY;
    for (n, row) in op.iter_mut().enumerate().skip(1) {
        *row = 1 << (n - 1);
    }
    for _ in 0..3 {
        op = square(&op);
    }
    // Result = product of op^(2^k) for every set bit k of len.
    let mut result: Matrix = std::array::from_fn(|n| 1u32 << n);
    while len != 0 {
        if len & 1 != 0 {
            result = std::array::from_fn(|n| times(&op, result[n]));
        }
        len >>= 1;
        if len != 0 {
            op = square(&op);
        }
    }
    result
}

/// Combines CRCs of consecutive pieces, fast for pieces of `block` bytes.
#[derive(Debug)]
pub(crate) struct CrcShift {
    block: usize,
    op: Matrix,
}

impl CrcShift {
    /// The combiner for `block`-byte pieces (built once per block size).
    pub(crate) fn for_block(block: usize) -> &'static CrcShift {
        static SHIFTS: OnceLock<std::sync::Mutex<Vec<&'static CrcShift>>> = OnceLock::new();
        let shifts = SHIFTS.get_or_init(Default::default);
        let mut shifts = shifts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = shifts.iter().find(|s| s.block == block) {
            return s;
        }
        let s: &'static CrcShift = Box::leak(Box::new(CrcShift {
            block,
            op: zeros_operator(block),
        }));
        shifts.push(s);
        s
    }

    /// The CRC of `a ‖ b` from `crc(a)`, `crc(b)` and `b`'s length.
    pub(crate) fn combine(&self, crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
        if len_b == self.block {
            times(&self.op, crc_a) ^ crc_b
        } else {
            crc32c::crc32c_combine(crc_a, crc_b, len_b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_crc32c_crate() {
        for block in [1usize, 7, 4096, 65536] {
            let shift = CrcShift::for_block(block);
            let a: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
            let b: Vec<u8> = (0..block as u32).map(|i| (i * 13 + 5) as u8).collect();
            let whole = [a.as_slice(), b.as_slice()].concat();
            let combined = shift.combine(crc32c::crc32c(&a), crc32c::crc32c(&b), b.len());
            assert_eq!(combined, crc32c::crc32c(&whole), "block {block}");
        }
    }
}
