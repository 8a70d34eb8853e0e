//! Sealing and opening a whole file held in memory: [`seal_all`] and
//! [`open_all`], for a caller's own bytes (a format of its own, staged
//! output) in the block format of docs/FORMAT.md §8.
//!
//! Invariant: `open_all` returns bytes only when every block, the last one
//! with its last-block flag, authenticated.

use super::key::KeyProvider;
use super::seal::{FileKind, SealedReader, SealedWriter, SEAL_HEADER_LEN, TAG_LEN};
use crate::error::{Error, Result};
use std::path::Path;

/// `data` as one sealed file of `kind`: the header, then `block`-byte
/// blocks (the last one shorter, or empty for empty data), each sealed.
/// Returns the bytes and the file id.
///
/// # Errors
/// `InvalidArgument` for a `block` of 0; [`SealedWriter`]'s errors.
pub fn seal_all(
    provider: &dyn KeyProvider,
    kind: FileKind,
    data: &[u8],
    block: usize,
) -> Result<(Vec<u8>, [u8; 16])> {
    if block == 0 {
        return Err(Error::invalid_argument("seal a file", "a block of 0 bytes"));
    }
    let mut w = SealedWriter::new(provider, kind)?;
    let blocks = data.len().div_ceil(block).max(1);
    let mut out = Vec::with_capacity(SEAL_HEADER_LEN + data.len() + blocks * TAG_LEN);
    out.extend_from_slice(w.header());
    for i in 0..blocks {
        let piece = &data[(i * block).min(data.len())..((i + 1) * block).min(data.len())];
        out.extend_from_slice(&w.seal_next(piece, i + 1 == blocks)?);
    }
    Ok((out, w.file_id()))
}

/// Opens a file written by [`seal_all`] with the same `block`.
///
/// # Errors
/// `InvalidArgument` for a `block` of 0 or one whose sealed size does not
/// fit a `usize`; [`SealedReader::open`]'s and
/// [`SealedReader::open_block`]'s errors; `AuthenticationFailed` for a
/// file cut inside a block or at a block boundary, or with bytes after its
/// last block.
pub fn open_all(
    provider: &dyn KeyProvider,
    path: &Path,
    bytes: &[u8],
    kind: FileKind,
    block: usize,
    expected_file_id: Option<[u8; 16]>,
) -> Result<Vec<u8>> {
    let step = match block.checked_add(TAG_LEN) {
        Some(step) if block > 0 => step,
        _ => {
            return Err(Error::invalid_argument(
                "open a sealed file",
                format!("a block of {block} bytes"),
            ))
        }
    };
    let reader = SealedReader::open(provider, path, bytes, kind, expected_file_id)?;
    let body = &bytes[SEAL_HEADER_LEN..];
    let blocks = body.len().div_ceil(step).max(1);
    let mut out = Vec::with_capacity(body.len());
    for i in 0..blocks {
        let piece = &body[(i * step).min(body.len())..((i + 1) * step).min(body.len())];
        let offset = (SEAL_HEADER_LEN + i * step) as u64;
        out.extend_from_slice(&reader.open_block(i as u64, i + 1 == blocks, piece, offset)?);
    }
    Ok(out)
}
