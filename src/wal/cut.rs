//! Cutting the log: removing every record at or after a position, durably —
//! the repair of damage `open` found, `cut_from`, and the cut back to a
//! poisoned writer's durable position.
//!
//! Invariants:
//! - A cut removes the later segments first (newest first, the directory
//!   fsynced after each), then truncates the segment at the cut (or rewrites
//!   it empty when its header is damaged) and fsyncs it: a crash leaves a
//!   contiguous log that ends at or after the cut.
//! - A cut that fails half way poisons the log.
//! - The writer's view (segments, active file, end, durable position, tail,
//!   commit boundaries) matches the files after every successful cut.

use super::boundary::Tail;
use super::format::SEGMENT_HEADER_LEN;
use super::log::{lock, Active, Shared, Writer};
use super::repair::{PendingCut, RepairReport};
use super::scan::{SegmentScanner, Step};
use super::segment::{create_segment, read_header, SegmentMeta};
use crate::error::{Error, IoContext, Result};
use crate::storage::{OpenMode, Storage};
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

/// Where [`Shared::cut_locked`] cuts the log.
pub(super) struct CutPoint<'a> {
    /// The segment cut (it stays, as the active segment).
    pub path: &'a Path,
    /// File offset of the cut in that segment.
    pub offset: u64,
    /// Log position of the cut: the new end of the log.
    position: u64,
    /// Start position of the segment.
    segment_start: u64,
    /// Its identity; `None` when its header is damaged (it is rewritten empty).
    segment_id: Option<u64>,
    /// Every segment after it, all removed.
    later_segments: &'a [PathBuf],
}

impl<'a> CutPoint<'a> {
    /// The cut that repairs `pending`.
    pub(super) fn repairing(pending: &'a PendingCut) -> Self {
        CutPoint {
            path: &pending.damage.path,
            offset: pending.damage.offset,
            position: pending.damage.position,
            segment_start: pending.segment_start,
            segment_id: pending.segment_id,
            later_segments: &pending.later_segments,
        }
    }

    /// Whether the segment is truncated at the cut (its header stays); if not,
    /// it is rewritten empty.
    fn keeps_header(&self) -> bool {
        self.segment_id.is_some() && self.offset >= SEGMENT_HEADER_LEN
    }

    /// The bytes making the cut removes: the later segments, and the segment's
    /// bytes from the cut on (all of them when it is rewritten).
    pub(super) fn bytes_removed(&self, storage: &dyn Storage) -> Result<u64> {
        let len = storage.file_size(self.path).ctx("stat", self.path)?;
        let mut bytes = if self.keeps_header() {
            len.saturating_sub(self.offset)
        } else {
            len
        };
        for later in self.later_segments {
            bytes += storage.file_size(later).ctx("stat", later)?;
        }
        Ok(bytes)
    }
}

impl Shared {
    /// [`WriteAheadLog::cut_from`] with the writer lock held; with
    /// `refuse_waiters`, refused while appends wait to become durable.
    pub(super) fn truncate_locked(
        &self,
        w: &mut MutexGuard<'_, Writer>,
        position: u64,
        refuse_waiters: bool,
    ) -> Result<u64> {
        let shared = self;
        if w.pending.is_some() {
            shared.repair_locked(w)?;
        }
        shared.flush_locked(w)?;
        if position == w.next_position {
            return Ok(0);
        }
        w.check_held(&shared.dir, position)?;
        if refuse_waiters {
            let d = lock(&shared.durability);
            if d.has_waiters() {
                return Err(Error::invalid_argument(
                    "cut_from",
                    "cut_from while appends are waiting to become durable",
                ));
            }
        }
        let index = w.segments.partition_point(|s| s.start <= position) - 1;
        let from = w.segments[index].start.max(w.floor);
        let (offset, segment_id, tail) =
            shared.find_boundary(&w.segments, index, from, position)?;
        let later: Vec<PathBuf> = w.segments[index + 1..]
            .iter()
            .map(|s| s.path.clone())
            .collect();
        let path = w.segments[index].path.clone();
        let segment_start = w.segments[index].start;
        let bytes_cut = shared.cut_locked(
            w,
            &CutPoint {
                path: &path,
                offset,
                position,
                segment_start,
                segment_id: Some(segment_id),
                later_segments: &later,
            },
        )?;
        w.tail = tail;
        w.commit_ends.cut(tail, position);
        tracing::info!(dir = %shared.dir.display(), position, bytes_cut, segments_removed = later.len(), "truncated write-ahead log");
        Ok(bytes_cut)
    }

    /// Cuts the log back to `position`, the durable position a poisoned
    /// writer left in its poison mark (`poison_mark.rs`), and removes the
    /// mark durably.
    ///
    /// # Errors
    /// As [`WriteAheadLog::cut_from`]; I/O errors removing the mark.
    pub(super) fn cut_back_after_poisoning(&self, position: u64) -> Result<()> {
        let mut w = lock(&self.writer);
        if w.pending.is_some() {
            self.repair_locked(&mut w)?;
        }
        // Records below the log's first position were released (a checkpoint
        // covers them): cut back only to there.
        let position = position.max(w.segments[0].start.max(w.floor));
        if position < w.next_position {
            let bytes_cut = self.truncate_locked(&mut w, position, true)?;
            tracing::warn!(dir = %self.dir.display(), position, bytes_cut, "cut the log back to where a poisoned writer left it durable");
        }
        drop(w);
        super::poison_mark::clear(self.storage.as_ref(), &self.dir)
    }

    /// Makes the pending cut, if any.
    pub(super) fn repair_locked(&self, w: &mut Writer) -> Result<RepairReport> {
        let Some(cut) = w.pending.clone() else {
            return Ok(RepairReport::nothing(self.mode, w.next_position));
        };
        let damage = &cut.damage;
        let bytes_cut = self.cut_locked(w, &CutPoint::repairing(&cut))?;
        w.pending = None;
        let report = RepairReport::of_cut(self.mode, &cut, bytes_cut);
        tracing::warn!(segment = %damage.path.display(), offset = damage.offset, position = damage.position, bytes_cut, segments_removed = report.segments_removed.len(), reason = %report.reason, "repaired write-ahead log");
        Ok(report)
    }

    /// Walks segment `index` of `segments` from `from` (its start, or the
    /// floor) up to `position`: its file offset, the
    /// segment's identity, and what the records before it in that segment say
    /// about the end there.
    pub(super) fn find_boundary(
        &self,
        segments: &[SegmentMeta],
        index: usize,
        from: u64,
        position: u64,
    ) -> Result<(u64, u64, Tail)> {
        let segment = &segments[index];
        let next_start = segments.get(index + 1).map(|s| s.start);
        let mut scanner = SegmentScanner::open_from(
            self.storage.as_ref(),
            segment,
            from,
            next_start,
            self.max_record_size,
        )?
        .map_err(|d| d.to_error())?;
        let mut tail = Tail::default();
        let mut before = scanner.position();
        while scanner.position() < position {
            before = scanner.position();
            match scanner.next_record()? {
                Step::Record { kind, .. } => tail.push(kind),
                Step::End => break,
                Step::Damaged(d) => return Err(d.to_error()),
            }
        }
        if scanner.position() != position {
            return Err(Error::NotARecordBoundary {
                position,
                path: segment.path.clone(),
                before,
                after: Some(scanner.position()),
            });
        }
        Ok((scanner.offset(), scanner.header().segment_id, tail))
    }

    /// Cuts the log at `cut`, durably: removes the later segments (newest first,
    /// fsyncing the directory after each, so an interrupted cut leaves a
    /// contiguous log that still ends at or after the cut), truncates the segment at
    /// the cut offset (or rewrites it empty when its header is damaged) and fsyncs
    /// it. The segment becomes the active one and the log ends at `cut.position`.
    /// Returns the bytes removed.
    pub(super) fn cut_locked(&self, w: &mut Writer, cut: &CutPoint<'_>) -> Result<u64> {
        // A cut that fails half way leaves files and the writer's view of them
        // apart: poison, so nothing is appended until the log is reopened.
        self.cut_files_locked(w, cut).map_err(|e| match e {
            Error::Poisoned { .. } => e,
            Error::Io {
                operation,
                path,
                source,
            } => self.poison(operation, &path, source),
            other => {
                self.poison("cut", &self.dir, std::io::Error::other(other.to_string()));
                other
            }
        })
    }

    pub(super) fn cut_files_locked(&self, w: &mut Writer, cut: &CutPoint<'_>) -> Result<u64> {
        let storage = self.storage.as_ref();
        let bytes_cut = cut.bytes_removed(storage)?;
        for path in cut.later_segments.iter().rev() {
            storage.remove_file(path).ctx("remove", path)?;
            self.sync_dir()?;
        }
        let path = cut.path;
        let (file, segment_id, file_end, records_offset, sealer) = match cut.segment_id {
            Some(segment_id) if cut.keeps_header() => {
                let file = storage
                    .open_file(path, OpenMode::ReadWrite)
                    .ctx("open", path)?;
                let meta = SegmentMeta {
                    start: cut.segment_start,
                    path: path.to_path_buf(),
                };
                let records_offset = match read_header(file.as_ref(), &meta)? {
                    Ok((header, _)) => header.records_offset(),
                    Err(problem) => {
                        return Err(Error::invalid_argument(
                            "cut",
                            format!("{}: {problem}", path.display()),
                        ))
                    }
                };
                if let Err(e) = file.truncate(cut.offset) {
                    return Err(self.poison("truncate", path, e));
                }
                self.fsync(file.as_ref(), path, true)?;
                // No sealer: a cut segment is never appended to again (the
                // next append starts a new one), so no offset is sealed twice.
                (file, segment_id, cut.offset, records_offset, None)
            }
            _ => {
                // The header itself is damaged: start the segment afresh.
                let new = create_segment(storage, &self.dir, cut.segment_start, &self.keys)
                    .map_err(|e| self.poison_with(e))?;
                let records_offset = new.header.records_offset();
                let id = new.header.segment_id;
                (new.file, id, records_offset, records_offset, new.sealer)
            }
        };
        let keep = w
            .segments
            .iter()
            .position(|s| s.path == path)
            .map_or(w.segments.len(), |i| i + 1);
        w.segments.truncate(keep);
        w.active = Some(Active {
            file,
            path: path.to_path_buf(),
            segment_id,
            allocated: file_end,
            records_offset,
            sealer,
        });
        w.buf.clear();
        w.file_end = file_end;
        w.next_position = cut.position;
        self.reset_durable(cut.position);
        Ok(bytes_cut)
    }
}
