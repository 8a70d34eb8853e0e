//! Verifying a whole log: every record of every segment, read only.
//!
//! Unlike a [`WalReader`](super::WalReader), which stops at the first damage,
//! [`verify_log`] checks each segment on its own (against where the next one
//! starts) and goes on to the next segment after damage, so one pass lists every
//! damaged segment. A record counts as valid only when its header checksum, its
//! payload checksum and the decoding of its payload all pass. Damage is
//! classified as in reading ([`DamageClass`]): a torn tail only at the end of the
//! newest segment, corruption anywhere else.

use super::entry::check_payload;
use super::floor::live_segments;
use super::scan::{Damage, DamageClass, Problem, SegmentScanner, Step};
use crate::error::{Error, IoContext, Result};
use crate::storage::Storage;
use std::path::{Path, PathBuf};

/// Records verified between two progress reports.
const PROGRESS_EVERY: u64 = 4096;

/// What verifying one segment found.
#[derive(Debug)]
#[non_exhaustive]
pub struct SegmentVerification {
    /// The segment file.
    pub path: PathBuf,
    /// Log position of its first record verified: its start (from its name),
    /// or the log's floor for the segment holding it (records below it are
    /// released and not read).
    pub start: u64,
    /// Its size in bytes.
    pub file_len: u64,
    /// Records that verified (sync markers included).
    pub records: u64,
    /// Of those, sync markers (written at a clean close; not entries: a
    /// reader skips them, so `records - sync_markers` is what a dump shows).
    pub sync_markers: u64,
    /// Log position just after the last record that verified.
    pub end: u64,
    /// The damage that stopped the scan of this segment, if any.
    pub damage: Option<Damage>,
    /// An error that kept the segment from being read (an I/O error, an
    /// unsupported format version), if any.
    pub error: Option<Error>,
}

impl SegmentVerification {
    /// True when every byte of the segment verified.
    pub fn is_clean(&self) -> bool {
        self.damage.is_none() && self.error.is_none()
    }
}

/// What [`verify_log`] found, segment by segment, oldest first.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct LogVerification {
    /// One entry per segment file.
    pub segments: Vec<SegmentVerification>,
}

impl LogVerification {
    /// True when every segment verified completely.
    pub fn is_clean(&self) -> bool {
        self.segments.iter().all(SegmentVerification::is_clean)
    }

    /// Records that verified, in all segments.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    /// Sync markers among them (records that are not entries).
    pub fn sync_markers(&self) -> u64 {
        self.segments.iter().map(|s| s.sync_markers).sum()
    }

    /// Bytes of all segment files.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.file_len).sum()
    }

    /// True when the only damage is a torn tail of the newest segment (what a
    /// crash leaves and recovery cuts).
    pub fn only_torn_tail(&self) -> bool {
        let mut problems = self.segments.iter().filter(|s| !s.is_clean());
        match (problems.next(), problems.next()) {
            (Some(s), None) => s
                .damage
                .as_ref()
                .is_some_and(|d| d.class == DamageClass::Torn),
            _ => false,
        }
    }
}

/// Verifies every segment of the log in `dir` through `storage`, reading only,
/// from the log's floor on (released records below it are not read).
/// `on_progress` is called now and then with the bytes of segment files read
/// so far (compare with [`wal_size_with`](super::wal_size_with)). A missing
/// directory is an empty, clean log.
///
/// # Errors
/// I/O errors listing the directory. Damage and errors reading one segment are
/// reported in its [`SegmentVerification`], not returned.
pub fn verify_log(
    storage: &dyn Storage,
    dir: &Path,
    max_record_size: u32,
    on_progress: &mut dyn FnMut(u64),
) -> Result<LogVerification> {
    let files = live_segments(storage, dir)?;
    let segments = &files.segments;
    let mut out = LogVerification::default();
    let mut done = 0;
    for (i, segment) in segments.iter().enumerate() {
        let next_start = segments.get(i + 1).map(|s| s.start);
        let from = files.read_start(i);
        let mut check = SegmentVerification {
            path: segment.path.clone(),
            start: from,
            file_len: 0,
            records: 0,
            sync_markers: 0,
            end: from,
            damage: None,
            error: None,
        };
        let scanned = storage
            .file_size(&segment.path)
            .ctx("stat", &segment.path)
            .and_then(|len| {
                check.file_len = len;
                scan_segment(
                    storage,
                    segment,
                    from,
                    next_start,
                    max_record_size,
                    &mut check,
                    &mut |at| on_progress(done + at),
                )
            });
        if let Err(e) = scanned {
            tracing::warn!(segment = %segment.path.display(), error = %e, "segment could not be verified");
            check.error = Some(e);
        }
        if let Some(d) = &check.damage {
            tracing::warn!(segment = %d.path.display(), offset = d.offset, position = d.position, class = ?d.class, problem = %d.problem, "segment does not verify");
        }
        done += check.file_len;
        on_progress(done);
        out.segments.push(check);
    }
    Ok(out)
}

/// Scans one segment into `check`.
fn scan_segment(
    storage: &dyn Storage,
    segment: &super::segment::SegmentMeta,
    from: u64,
    next_start: Option<u64>,
    max_record_size: u32,
    check: &mut SegmentVerification,
    on_progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let opened = SegmentScanner::open_from(storage, segment, from, next_start, max_record_size)?;
    let mut scanner = match opened {
        Ok(scanner) => scanner,
        Err(damage) => {
            check.damage = Some(damage);
            return Ok(());
        }
    };
    // A sealed payload decodes only once opened with its key, which verify
    // does not have: a sealed segment's checksums are what is checked.
    let sealed = scanner.seal_header().is_some();
    loop {
        let offset = scanner.offset();
        match scanner.next_record()? {
            Step::Record {
                position,
                kind,
                payload,
            } => {
                let checked = if sealed {
                    Ok(())
                } else {
                    check_payload(kind, payload)
                };
                if let Err(e) = checked {
                    check.damage = Some(Damage {
                        class: DamageClass::Corrupt,
                        path: segment.path.clone(),
                        offset,
                        position,
                        problem: Problem::Undecodable(e),
                    });
                    return Ok(());
                }
                check.records += 1;
                check.sync_markers += u64::from(kind == super::entry::KIND_SYNC_MARKER);
                check.end = scanner.position();
                if check.records.is_multiple_of(PROGRESS_EVERY) {
                    on_progress(scanner.offset());
                }
            }
            Step::End => return Ok(()),
            Step::Damaged(damage) => {
                check.damage = Some(damage);
                return Ok(());
            }
        }
    }
}
