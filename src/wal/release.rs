//! Releasing the log below a position (a checkpoint's): what the log holds
//! relative to it ([`probe`], reading only) and the release itself
//! ([`release`]: the floor raised, segments wholly below it deleted, a fresh
//! segment started at it when the log ends below it).
//!
//! Invariants:
//! - The probe never scans below the log's floor, and never trusts a record
//!   it did not verify: the position is a record boundary only when a record
//!   verifies there, or a walk over verified records lands on it.
//! - The release writes the floor (durably) before it deletes or creates
//!   anything, so a crash at any point leaves a log every open reads the same
//!   way, and a second release finishes the work.
//! - Positions are never reused: a log that ends below the position continues
//!   at the position.

use super::floor::{live_segments, write_floor, LogFiles};
use super::format::RECORD_ALIGN;
use super::scan::{Damage, DamageClass, SegmentScanner, Step};
use super::segment::{create_segment, LOCK_FILE_NAME};
use crate::error::{Error, IoContext, Result};
use crate::storage::Storage;
use std::path::{Path, PathBuf};

/// What the log holds relative to a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Coverage {
    /// No segment at all (no directory, or none in it).
    Absent,
    /// The log ends at `end`, below the position: cleanly, or in the torn
    /// tail `torn`.
    Short { end: u64, torn: Option<Damage> },
    /// The position is a record boundary of the log (a record verifies
    /// there, or the log ends exactly there).
    Holds,
}

/// What [`probe`] found.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    /// The log as it is (its floor and live segments).
    pub files: LogFiles,
    /// Where it ends relative to the position.
    pub coverage: Coverage,
    /// The first damage found below the position (in the older segments as
    /// far as `probe` checks them, then in the segment holding it). Releasing
    /// the log below the position makes it harmless.
    pub damage_below: Option<Damage>,
    /// The floor is the position, inside the newest segment, and no record
    /// verifies there or after it: a release that wrote the floor and crashed before it
    /// started the fresh segment. The release is finished (fresh segment at
    /// the position, older ones removed).
    pub restart: bool,
}

/// What releasing the log below a position does (or, read-only, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalRelease {
    /// The log's floor before.
    pub previous_floor: u64,
    /// The new floor: records below it are released.
    pub floor: u64,
    /// Segment files wholly below the new floor, deleted.
    pub segments_removed: Vec<PathBuf>,
    /// The empty segment started at the floor, for a log that was absent or
    /// ended below it.
    pub segment_created: Option<PathBuf>,
    /// False when nothing was written (a dry run, or repair off): the
    /// release is what recovery would do.
    pub applied: bool,
}

/// How the log in `dir` stands relative to `position`. Only reads.
///
/// # Errors
/// [`Error::PositionNotCovered`] when the log no longer holds `position` (its
/// oldest segment starts after it, or its floor is above it);
/// [`Error::NotARecordBoundary`] when no record starts there; the damage's
/// corruption error when damage below `position` hides whether the log
/// reaches it; I/O errors.
///
/// The segments wholly below `position` are checked as opening the log would
/// check them (`full_scan`: every record, as `PointInTime` does; otherwise
/// their headers), so that damage there is found and released too.
pub(crate) fn probe(
    storage: &dyn Storage,
    dir: &Path,
    position: u64,
    max_record_size: u32,
    full_scan: bool,
) -> Result<Probe> {
    let files = live_segments(storage, dir)?;
    let first_available = files.first_position();
    if position < first_available {
        return Err(Error::PositionNotCovered {
            position,
            path: dir.to_path_buf(),
            first_available,
        });
    }
    let mut found = Probe {
        coverage: Coverage::Absent,
        damage_below: None,
        restart: false,
        files,
    };
    let segments = &found.files.segments;
    if segments.is_empty() {
        return Ok(found);
    }
    // A poisoned writer's mark says the log is durable only up to its
    // position; what follows may be pages the device dropped, and the next
    // open cuts them. Below `position`, the log ends there.
    if let Some(mark) = super::poison_mark::read(storage, dir)? {
        if mark < position {
            found.coverage = Coverage::Short {
                end: mark.max(first_available),
                torn: None,
            };
            return Ok(found);
        }
    }
    // first_available <= position, so segment 0 starts at or before it.
    let index = segments.partition_point(|s| s.start <= position) - 1;
    found.damage_below = older_damage(storage, &found.files, index, max_record_size, full_scan)?;
    let segments = &found.files.segments;
    let newest = index + 1 == segments.len();
    let segment = &segments[index];
    let next_start = segments.get(index + 1).map(|s| s.start);
    let from = found.files.read_start(index);
    let mut scanner =
        match SegmentScanner::open_from(storage, segment, from, next_start, max_record_size)? {
            Ok(scanner) => scanner,
            Err(d) if newest && d.class == DamageClass::Torn && segment.start < position => {
                // A torn header: the segment never held a record.
                found.coverage = Coverage::Short {
                    end: segment.start,
                    torn: Some(d),
                };
                return Ok(found);
            }
            Err(d) if d.position == position => {
                found.coverage = Coverage::Holds;
                return Ok(found);
            }
            Err(d) => return Err(d.to_error()),
        };
    // File offset of `position` in this segment (both at most 2^62).
    let until = scanner.offset_of(position);
    let mut before = from;
    loop {
        let at = scanner.position();
        if at == position {
            found.coverage = Coverage::Holds;
            found.restart = newest
                && at == from
                && from > segment.start
                && scanner
                    .verified_record_after(until.saturating_sub(RECORD_ALIGN), u64::MAX)?
                    .is_none();
            return Ok(found);
        }
        if at > position {
            return Err(Error::NotARecordBoundary {
                position,
                path: segment.path.clone(),
                before,
                after: Some(at),
            });
        }
        before = at;
        match scanner.next_record()? {
            Step::Record { .. } => {}
            Step::End if newest => {
                found.coverage = Coverage::Short {
                    end: at,
                    torn: None,
                };
                return Ok(found);
            }
            Step::End => {
                return Err(Error::NotARecordBoundary {
                    position,
                    path: segment.path.clone(),
                    before,
                    after: next_start,
                })
            }
            Step::Damaged(d) => {
                let offset = d.offset;
                let torn = d.class == DamageClass::Torn;
                found.damage_below.get_or_insert_with(|| d.clone());
                match scanner.verified_record_after(offset, until)? {
                    // Verified records go on after the damage: walk them.
                    Some(next) => scanner.seek_offset(next),
                    None if torn => {
                        found.coverage = Coverage::Short {
                            end: d.position,
                            torn: Some(d.clone()),
                        };
                        if found.damage_below.as_ref() == Some(&d) {
                            found.damage_below = None;
                        }
                        return Ok(found);
                    }
                    // Valid records follow the damage, none of them at or
                    // before `position`: whether the log reaches it cannot be
                    // told.
                    None => return Err(d.to_error()),
                }
            }
        }
    }
}

/// The first damage in the segments before `segments[index]`: a header that
/// does not verify, or (`full_scan`) a record.
fn older_damage(
    storage: &dyn Storage,
    files: &LogFiles,
    index: usize,
    max_record_size: u32,
    full_scan: bool,
) -> Result<Option<Damage>> {
    let segments = &files.segments;
    for (i, segment) in segments[..index].iter().enumerate() {
        let next_start = segments.get(i + 1).map(|s| s.start);
        let from = files.read_start(i);
        let mut scanner =
            match SegmentScanner::open_from(storage, segment, from, next_start, max_record_size)? {
                Ok(scanner) => scanner,
                Err(damage) => return Ok(Some(damage)),
            };
        if !full_scan {
            continue;
        }
        loop {
            match scanner.next_record()? {
                Step::Record { .. } => {}
                Step::End => break,
                Step::Damaged(damage) => return Ok(Some(damage)),
            }
        }
    }
    Ok(None)
}

/// The release of the log in `dir` below `position` that `probe` calls for,
/// if any (nothing is written): the floor raised to `position` when the log
/// is absent, ends below it, or holds damage below it, with the segments
/// wholly below it and a fresh segment at it when the log ends below it. A
/// healthy log is not released (an older checkpoint may still need it), but
/// segments an interrupted release left below the floor are removed.
pub(crate) fn plan(probe: &Probe, dir: &Path, position: u64) -> Option<WalRelease> {
    let files = &probe.files;
    let fresh = probe.coverage != Coverage::Holds || probe.restart;
    let raise = fresh || probe.damage_below.is_some();
    if !raise && files.released.is_empty() {
        return None;
    }
    let floor = if raise {
        files.floor.max(position)
    } else {
        files.floor
    };
    let mut release = WalRelease {
        previous_floor: files.floor,
        floor,
        segments_removed: files.clone().with_floor(floor).released,
        segment_created: None,
        applied: false,
    };
    if fresh {
        // Every segment lies wholly below the position: all go, and the log
        // continues in a fresh segment at the position.
        release.segments_removed = files
            .released
            .iter()
            .cloned()
            .chain(files.segments.iter().map(|s| s.path.clone()))
            .collect();
        release.segment_created = Some(dir.join(super::segment::segment_file_name(floor)));
    }
    Some(release)
}

/// Makes `release` (from [`plan`]) in the log directory `dir`, holding the
/// log's lock: creates the directory if needed, writes the floor, starts the
/// fresh segment, then deletes the segments below the floor and fsyncs the
/// directory.
///
/// # Errors
/// [`Error::Locked`] when a writer holds the log; I/O errors naming the file.
pub(crate) fn release(storage: &dyn Storage, dir: &Path, release: &mut WalRelease) -> Result<()> {
    crate::storage::create_dir_all_durable(storage, dir)?;
    let lock_path = dir.join(LOCK_FILE_NAME);
    let _lock = crate::storage::lock_exclusive(storage, &lock_path)?;
    if release.floor > release.previous_floor {
        write_floor(storage, dir, release.floor)?;
    }
    if release.segment_created.is_some() {
        // Empty: a writer with keys rewrites it sealed before its first record.
        let keys = super::seal::Keys::default();
        let path = create_segment(storage, dir, release.floor, &keys)?.path;
        release.segment_created = Some(path);
    }
    for path in &release.segments_removed {
        match storage.remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", path, e)),
        }
    }
    if !release.segments_removed.is_empty() {
        storage.sync_dir(dir).ctx("sync directory", dir)?;
    }
    release.applied = true;
    tracing::warn!(dir = %dir.display(), floor = release.floor, previous_floor = release.previous_floor, segments_removed = release.segments_removed.len(), segment_created = release.segment_created.is_some(), "released the write-ahead log below the checkpoint's position");
    Ok(())
}
