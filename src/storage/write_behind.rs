//! Write-behind for a new file written (mostly) front to back: every
//! [`WRITE_BEHIND_CHUNK`] bytes written, their write-back to the device is
//! started ([`StorageFile::start_writeback`]), so that the final sync of a
//! large file finds little left to write.
//!
//! Invariant: the hints change nothing a caller relies on. The file holds
//! exactly what was written through it, and nothing is durable before the
//! caller's sync returned `Ok` (a hint makes nothing durable; a failed hint
//! is returned as the error of the write that triggered it, so the caller
//! abandons the file as after a failed write).

use super::StorageFile;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes written between two write-back hints (RocksDB's `bytes_per_sync`
/// is 1 MiB; larger ranges cost fewer calls and still keep the device busy).
pub(crate) const WRITE_BEHIND_CHUNK: u64 = 8 << 20;

/// A [`StorageFile`] that starts the write-back of what was written every
/// [`WRITE_BEHIND_CHUNK`] bytes. Writes below the last hinted offset (a
/// header written last at offset 0) are left to the final sync.
#[derive(Debug)]
pub(crate) struct WriteBehind<'f> {
    file: &'f dyn StorageFile,
    /// The first byte whose write-back was not started yet.
    hinted_to: AtomicU64,
}

impl<'f> WriteBehind<'f> {
    /// Write-behind over `file`, a new file written from offset 0.
    pub(crate) fn new(file: &'f dyn StorageFile) -> Self {
        WriteBehind {
            file,
            hinted_to: AtomicU64::new(0),
        }
    }

    /// Writes all of `bytes` from offset 0 ([`write_all_at`](StorageFile::write_all_at)).
    ///
    /// # Errors
    /// The storage's write or hint error.
    pub(crate) fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.write_all_at(bytes, 0)
    }

    /// Writes `buf` at `offset`, then starts the write-back of what was
    /// written since the last hint once that reaches a chunk.
    fn write_hinted(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)?;
        let end = offset.saturating_add(buf.len() as u64);
        let from = self.hinted_to.load(Ordering::Relaxed);
        if end >= from.saturating_add(WRITE_BEHIND_CHUNK) {
            self.file.start_writeback(from, end - from)?;
            self.hinted_to.store(end, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl StorageFile for WriteBehind<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    /// A large `buf` is written one chunk at a time, with a hint after each
    /// (so a multi-GiB write is written behind as it goes, not after).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut at = offset;
        for chunk in buf.chunks(WRITE_BEHIND_CHUNK as usize) {
            self.write_hinted(chunk, at)?;
            at += chunk.len() as u64;
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.file.start_writeback(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{CrashImage, CrashSimStorage, OpenMode, SimFault, SimOp, Storage};
    use std::path::Path;

    #[test]
    fn hints_every_chunk_and_keeps_the_bytes() {
        let sim = CrashSimStorage::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let file = sim
            .open_file(Path::new("/d/f"), OpenMode::CreateNew)
            .unwrap();
        sim.sync_dir(Path::new("/")).unwrap();
        sim.sync_dir(Path::new("/d")).unwrap();
        let bytes: Vec<u8> = (0..(2 * WRITE_BEHIND_CHUNK + 5))
            .map(|i| (i % 251) as u8)
            .collect();
        WriteBehind::new(file.as_ref()).write_all(&bytes).unwrap();
        assert_eq!(
            sim.operations_of(SimOp::WriteBack),
            2,
            "one hint per full chunk"
        );
        let mut back = vec![0u8; bytes.len()];
        file.read_exact_at(&mut back, 0).unwrap();
        assert!(back == bytes, "the file holds what was written");
        // A hint makes nothing durable: a crash before the sync loses it all.
        sim.crash();
        let after = sim.image(CrashImage::LoseUnsynced);
        let len = after.file_size(Path::new("/d/f")).unwrap();
        assert_eq!(len, 0, "hinted but unsynced bytes are not durable");
    }

    #[test]
    fn a_failed_hint_fails_the_write() {
        let sim = CrashSimStorage::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let file = sim
            .open_file(Path::new("/d/f"), OpenMode::CreateNew)
            .unwrap();
        sim.inject(SimFault::new(SimOp::WriteBack));
        let err = WriteBehind::new(file.as_ref())
            .write_all(&vec![7u8; WRITE_BEHIND_CHUNK as usize])
            .unwrap_err();
        assert!(err.to_string().contains("WriteBack"), "{err}");
    }
}
