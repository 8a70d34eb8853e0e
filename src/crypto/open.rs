//! Opening a whole sealed file at once ([`open_sealed_file`]): a snapshot
//! loaded, a delta merged, an Arrow part read, a checkpoint verified.
//!
//! Invariant: the buffer returned holds the plaintext only when every
//! block authenticated; the error is the first failing block in file order,
//! whichever thread found it.

use super::file::{SealedFileReader, SEALED_BLOCK};
use super::key::KeyProvider;
use super::seal::{FileKind, TAG_LEN};
use crate::error::{Error, Result};
use crate::storage::LoadedFile;
use std::path::Path;
use std::sync::Mutex;

/// Opens the whole of sealed file `path` (its bytes `bytes`) into a new
/// buffer (zeroed by the system as its pages are first written, so the two
/// threads share that cost too). A large file is opened on two threads, one half
/// each (the blocks are independent); the first failing block in file
/// order is the error.
///
/// # Errors
/// [`SealedFileReader::open`]'s; `AuthenticationFailed` naming the file and
/// the first block that does not open.
pub(crate) fn open_sealed_file(
    keys: &dyn KeyProvider,
    path: &Path,
    bytes: &[u8],
    kind: FileKind,
    expected_file_id: Option<[u8; 16]>,
) -> Result<LoadedFile> {
    let r = SealedFileReader::open(
        keys,
        path,
        bytes,
        bytes.len() as u64,
        kind,
        expected_file_id,
    )?;
    let shape = r.shape();
    let len = usize::try_from(shape.plain_len).map_err(|_| Error::StateCorrupted {
        path: path.to_path_buf(),
        offset: 0,
        reason: "sealed file too large to open in memory".into(),
    })?;
    LoadedFile::filled(path, len, |out| open_into(&r, bytes, out))
}

/// Opens every block of `r`'s file (its bytes `bytes`) into `out`.
fn open_into(r: &SealedFileReader, bytes: &[u8], out: &mut [u8]) -> Result<()> {
    let shape = r.shape();
    let len = out.len();
    let half = if shape.blocks >= PARALLEL_BLOCKS {
        shape.blocks / 2
    } else {
        shape.blocks
    };
    let split = (shape.plain_range(half).start as usize).min(len);
    let (front, back) = out.split_at_mut(split);
    let open = |blocks: std::ops::Range<u64>, dst: &mut [u8]| -> Result<()> {
        let base = shape.plain_range(blocks.start).start;
        let mut scratch = Vec::with_capacity(SEALED_BLOCK + TAG_LEN);
        let last = blocks.end;
        for i in blocks {
            let (s, p) = (shape.sealed_range(i), shape.plain_range(i));
            let sealed = &bytes[s.start as usize..s.end as usize];
            let at = (p.start - base) as usize;
            let plain_len = (p.end - p.start) as usize;
            if i + 1 < last && at + sealed.len() <= dst.len() {
                // Opened where its plaintext goes; the tag spills into the
                // next block's place, which is written next.
                let place = &mut dst[at..at + sealed.len()];
                place.copy_from_slice(sealed);
                let n = r.open_block_in_place(i, place)?;
                r.check_len(i, n, plain_len)?;
            } else {
                scratch.clear();
                scratch.extend_from_slice(sealed);
                let n = r.open_block_in_place(i, &mut scratch)?;
                r.check_len(i, n, plain_len)?;
                dst[at..at + n].copy_from_slice(&scratch[..n]);
            }
        }
        Ok(())
    };
    if half == shape.blocks {
        return open(0..half, front);
    }
    // The back half goes to whoever takes it: the second thread, or this
    // one when no thread can be started.
    let back = Mutex::new(Some(back));
    let open_back = || match back.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(dst) => open(half..shape.blocks, dst),
        None => Ok(()),
    };
    std::thread::scope(|scope| {
        let second = std::thread::Builder::new()
            .name("highwater-open".into())
            .spawn_scoped(scope, open_back);
        let first = open(0..half, front);
        let second = match second {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => open_back(),
        };
        first.and(second)
    })
}

/// Files of at least this many blocks are opened on two threads.
const PARALLEL_BLOCKS: u64 = 32;
