//! The writer's record path on [`Shared`]: encoding records into the
//! active segment's buffer, flushing it, rotating to a new segment, and the
//! poison that every failure sets.
//!
//! Invariants (with those of `log`):
//! - Records are written at `file_end + buf.len()` of the active segment,
//!   contiguous and in order; a full segment is sealed (fsynced) before the
//!   next one is created.
//! - Any failed write or sync poisons the log before its error is returned;
//!   a poisoned log writes nothing more.
//! - After `file_end` the active segment's file holds only zeros (up to
//!   `Active::allocated`): a durable writer's preallocation, cut before the
//!   segment is sealed and at a clean close.

use super::entry::WalEntry;
use super::format::{record_size, sync_distance, RecordHeader, RECORD_HEADER_LEN};
use super::log::{lock, Active, Shared, Writer};
use super::segment::{create_segment, SegmentMeta};
use crate::error::{Error, Result};
use crate::storage::StorageFile;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Bytes of zeros a durable writer keeps written ahead of its records (in
/// whole pages), so that most of its fdatasyncs persist no size change.
pub(super) const PREALLOCATION: u64 = 256 << 10;

/// Where preallocation for a write ending at file offset `end` stops: a page
/// boundary [`PREALLOCATION`] bytes or so later, not past the segment size
/// (and never before `end`).
fn preallocation_end(end: u64, segment_size: u64) -> u64 {
    const PAGE: u64 = 4096;
    let target = (end + PREALLOCATION).div_ceil(PAGE) * PAGE;
    target.min(segment_size).max(end)
}

impl Shared {
    /// Fails with [`Error::Poisoned`] once the log is poisoned.
    pub(super) fn check_poison(&self) -> Result<()> {
        if !self.poisoned.load(Ordering::SeqCst) {
            return Ok(());
        }
        let (operation, cause) = lock(&self.poison)
            .clone()
            .unwrap_or(("unknown", String::new()));
        Err(Error::Poisoned {
            path: self.dir.clone(),
            operation,
            cause,
        })
    }

    /// Poisons the log and returns the original error, typed.
    pub(super) fn poison(&self, operation: &'static str, path: &Path, e: std::io::Error) -> Error {
        let first = {
            let mut p = lock(&self.poison);
            let first = p.is_none();
            if first {
                *p = Some((operation, format!("{}: {e}", path.display())));
            }
            first
        };
        self.poisoned.store(true, Ordering::SeqCst);
        if first {
            let durable = self.durable_hint.load(Ordering::Acquire);
            super::poison_mark::leave(self.storage.as_ref(), &self.dir, durable);
        }
        self.wake_all();
        tracing::error!(dir = %self.dir.display(), path = %path.display(), operation, error = %e, "write-ahead log poisoned");
        Error::io(operation, path, e)
    }

    pub(super) fn sync_dir(&self) -> Result<()> {
        self.storage
            .sync_dir(&self.dir)
            .map_err(|e| self.poison("sync directory", &self.dir, e))
    }

    /// Encodes `entry` into the buffer, rotating first if the segment is full.
    pub(super) fn append_locked(&self, w: &mut Writer, entry: &WalEntry) -> Result<()> {
        self.write_record_locked(w, entry.kind(), entry.encoded_len() as u32, |buf| {
            entry.encode_into(buf)
        })
    }

    /// Encodes one record (header, the payload `encode` appends, padding) into the
    /// buffer, rotating first if the segment is full.
    pub(super) fn write_record_locked(
        &self,
        w: &mut Writer,
        kind: u8,
        payload_len: u32,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        // What the record stores: the payload, sealed when encrypting.
        let stored_len = payload_len + self.keys.overhead();
        let size = record_size(stored_len);
        let Some(active) = &w.active else {
            unreachable!("a pending cut is repaired before appending")
        };
        let used = w.file_end + w.buf.len() as u64;
        let full = used > active.records_offset && used + size > self.segment_size;
        if full || !active.appendable(&self.keys) {
            self.rotate_locked(w)?;
        }
        let Some(active) = &mut w.active else {
            unreachable!("a pending cut is repaired before appending")
        };
        let segment_id = active.segment_id;
        let start = w.buf.len();
        w.buf.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
        encode(&mut w.buf);
        debug_assert_eq!(
            w.buf.len() - start - RECORD_HEADER_LEN,
            payload_len as usize
        );
        if let Some(sealer) = &mut active.sealer {
            // The record's file offset is its nonce index (FORMAT.md §1).
            let offset = w.file_end + start as u64;
            match sealer.seal(offset, kind, &w.buf[start + RECORD_HEADER_LEN..]) {
                Ok(sealed) => {
                    w.buf.truncate(start + RECORD_HEADER_LEN);
                    w.buf.extend_from_slice(&sealed);
                }
                Err(e) => {
                    w.buf.truncate(start);
                    return Err(e);
                }
            }
        }
        let payload = &w.buf[start + RECORD_HEADER_LEN..];
        debug_assert_eq!(payload.len(), stored_len as usize);
        let durable = self.durable_hint.load(Ordering::Acquire);
        let header = RecordHeader {
            payload_len: stored_len,
            kind,
            sync_distance: sync_distance(w.next_position, durable),
            payload_crc: crc32c::crc32c(payload),
        };
        let encoded = header.encode(segment_id, w.next_position);
        w.buf[start..start + RECORD_HEADER_LEN].copy_from_slice(&encoded);
        w.buf.resize(start + size as usize, 0);
        w.next_position += size;
        w.tail.push(kind);
        let (tail, end) = (w.tail, w.next_position);
        w.commit_ends.after(tail, end);
        if w.buf.len() >= self.write_buffer_size {
            self.flush_locked(w)?;
        }
        Ok(())
    }

    /// Writes the buffer to the active segment; a writer whose appends wait
    /// for durability preallocates ahead of them.
    pub(super) fn flush_locked(&self, w: &mut Writer) -> Result<()> {
        let preallocate = self.sync_on_write.load(Ordering::SeqCst);
        self.write_buffer_locked(w, preallocate)
    }

    /// Writes the buffer at `file_end`. With `preallocate`, a write that runs
    /// past what the file holds also writes zeros up to [`PREALLOCATION`]
    /// bytes beyond it (in the same call, capped at the segment size): the
    /// next fdatasyncs then rewrite blocks the file already has, persisting
    /// no size or extent change. A zero tail is a clean end of the newest
    /// segment (docs/FORMAT.md), so the zeros change no reader's result.
    pub(super) fn write_buffer_locked(&self, w: &mut Writer, preallocate: bool) -> Result<()> {
        if w.buf.is_empty() {
            return Ok(());
        }
        let Some(active) = &w.active else {
            unreachable!("records are only buffered into an active segment")
        };
        let (file, allocated) = (active.file.clone(), active.allocated);
        let data = w.buf.len();
        let end = w.file_end + data as u64;
        let extend_to = if preallocate && end > allocated {
            preallocation_end(end, self.segment_size)
        } else {
            end
        };
        // Cannot truncate: `extend_to - end` is at most PREALLOCATION + a page.
        w.buf.resize(data + (extend_to - end) as usize, 0);
        let written = file.write_all_at(&w.buf, w.file_end);
        w.buf.clear();
        if let Err(e) = written {
            let path = active.path.clone();
            return Err(self.poison("write", &path, e));
        }
        w.file_end = end;
        if let Some(active) = &mut w.active {
            active.allocated = allocated.max(extend_to);
        }
        Ok(())
    }

    /// Cuts the zeros preallocated after the active segment's records (the
    /// buffer is written out): returns the file when it was cut, so the
    /// caller fsyncs it (data and metadata) before relying on the length.
    pub(super) fn trim_locked(
        &self,
        w: &mut Writer,
    ) -> Result<Option<(Arc<dyn StorageFile>, PathBuf)>> {
        debug_assert!(w.buf.is_empty(), "the buffer is written out before a trim");
        let file_end = w.file_end;
        let Some(active) = &mut w.active else {
            return Ok(None);
        };
        if active.allocated <= file_end {
            return Ok(None);
        }
        if let Err(e) = active.file.truncate(file_end) {
            let path = active.path.clone();
            return Err(self.poison("truncate", &path, e));
        }
        active.allocated = file_end;
        Ok(Some((active.file.clone(), active.path.clone())))
    }

    /// Seals the active segment (write, fsync) and starts a new one at the current
    /// position (header and directory entry fsynced). A segment holding no
    /// record (its file would have the new one's name) is rewritten instead.
    /// A sealed segment ends with its last record: preallocated zeros are
    /// cut first (and the fsync then persists the length too).
    fn rotate_locked(&self, w: &mut Writer) -> Result<()> {
        self.write_buffer_locked(w, false)?;
        let trimmed = self.trim_locked(w)?.is_some();
        let Some(active) = &w.active else {
            unreachable!("rotation needs an active segment")
        };
        self.fsync(active.file.as_ref(), &active.path, trimmed)?;
        let sealed_end = w.next_position;
        let new = create_segment(self.storage.as_ref(), &self.dir, sealed_end, &self.keys)
            .map_err(|e| self.poison_with(e))?;
        self.segments_created.fetch_add(1, Ordering::Relaxed);
        if w.segments.last().is_some_and(|s| s.start == sealed_end) {
            // The active segment held no record: its file was rewritten.
            w.segments.pop();
        }
        w.segments.push(SegmentMeta {
            start: sealed_end,
            path: new.path.clone(),
        });
        let records_offset = new.header.records_offset();
        w.active = Some(Active {
            file: new.file,
            path: new.path,
            segment_id: new.header.segment_id,
            allocated: records_offset,
            records_offset,
            sealer: new.sealer,
        });
        w.file_end = records_offset;
        self.mark_durable(sealed_end);
        Ok(())
    }

    /// Poisons the log with an already typed error.
    pub(super) fn poison_with(&self, e: Error) -> Error {
        match e {
            Error::Io {
                operation,
                path,
                source,
            } => self.poison(operation, &path, source),
            other => other,
        }
    }
}
