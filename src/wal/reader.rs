//! [`WalReader`]: sequential reading of a log from a record boundary.
//!
//! A reader never modifies the log. It is fused: after `Eof` or damage it keeps
//! returning that same result. It reads the segments listed when it was opened, each
//! up to the length the file had when the reader reached it; records appended after
//! that are not seen (open a new reader from [`WalReader::position`]). A reader of a
//! log that another thread is appending to may find the last record half written
//! and report it as a torn write (a record it finds completed when it looks again,
//! as in the zeros a durable writer preallocates, ends what it reads instead); [`WriteAheadLog::read_from`](super::WriteAheadLog::read_from)
//! writes out the log's buffer first, so it sees everything appended before it.

use super::entry::{change_ranges, WalEntry, WalEntryRef, KIND_SYNC_MARKER};
use super::floor::{live_segments, LogFiles};
pub use super::read_result::WalReadResult;
use super::scan::{Damage, DamageClass, Problem, SegmentScanner, Step};
use super::seal::{Keys, Opener};
use super::segment::SegmentMeta;
use super::DEFAULT_MAX_RECORD_SIZE;
use crate::error::{Error, Result};
use crate::storage::{default_storage, Storage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads entries from a log directory, starting at a record boundary.
#[derive(Debug)]
pub struct WalReader {
    /// Records below this position are not read (the log's floor, or the
    /// boundary the reader was opened at).
    floor: u64,
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    segments: Vec<SegmentMeta>,
    /// Index in `segments` of the segment being read.
    index: usize,
    scanner: Option<SegmentScanner>,
    position: u64,
    max_record_size: u32,
    terminal: Option<WalReadResult>,
    damage: Option<Damage>,
    /// Whether the iterator has already yielded the damage as an error.
    damage_yielded: bool,
    /// The keys sealed segments are opened with.
    keys: Keys,
    /// What opens the current segment's records, once one was opened
    /// (sealed segments only).
    opener: Option<Opener>,
    /// The plaintext of the last sealed record read.
    plain: Vec<u8>,
}

impl WalReader {
    /// Opens the log in `dir` on the real file system and positions the reader at
    /// `position`.
    ///
    /// # Errors
    /// See [`WalReader::open_with`].
    pub fn open(dir: impl AsRef<Path>, position: u64) -> Result<Self> {
        Self::open_with(
            default_storage(),
            dir.as_ref(),
            position,
            DEFAULT_MAX_RECORD_SIZE,
        )
    }

    /// Opens the log in `dir` through `storage`, positioned at `position`.
    ///
    /// # Errors
    /// [`Error::PositionNotCovered`] when `position` is older than the oldest
    /// segment or below the log's floor (released), [`Error::PositionBeyondEnd`] when it is past the last valid record,
    /// [`Error::NotARecordBoundary`] when no record starts there, a corruption error
    /// when damage before `position` in its segment makes that impossible to tell,
    /// [`Error::UnsupportedVersion`], and I/O errors.
    pub fn open_with(
        storage: Arc<dyn Storage>,
        dir: &Path,
        position: u64,
        max_record_size: u32,
    ) -> Result<Self> {
        let files = live_segments(storage.as_ref(), dir)?;
        Self::open_in(storage, dir, files, position, max_record_size)
    }

    /// A reader at `position`, a record boundary the caller has verified
    /// (recovery's checkpoint position): nothing before it is scanned, as if
    /// it were the log's floor.
    ///
    /// # Errors
    /// As [`open_with`](Self::open_with).
    pub(crate) fn open_at_boundary(
        storage: Arc<dyn Storage>,
        dir: &Path,
        boundary: u64,
        position: u64,
        max_record_size: u32,
    ) -> Result<Self> {
        let files = live_segments(storage.as_ref(), dir)?;
        if position < files.first_position() {
            return Self::open_in(storage, dir, files, position, max_record_size);
        }
        let files = files.with_floor(boundary.min(position));
        Self::open_in(storage, dir, files, position, max_record_size)
    }

    fn open_in(
        storage: Arc<dyn Storage>,
        dir: &Path,
        files: LogFiles,
        position: u64,
        max_record_size: u32,
    ) -> Result<Self> {
        let first_available = files.first_position();
        let floor = files.floor;
        let segments = files.segments;
        let mut reader = WalReader {
            floor,
            storage,
            dir: dir.to_path_buf(),
            index: 0,
            scanner: None,
            position,
            max_record_size,
            terminal: None,
            damage: None,
            damage_yielded: false,
            segments,
            keys: Keys::default(),
            opener: None,
            plain: Vec::new(),
        };
        if reader.segments.is_empty() {
            if position == first_available {
                reader.terminal = Some(WalReadResult::Eof);
                return Ok(reader);
            }
            return Err(Error::PositionBeyondEnd {
                position,
                path: dir.to_path_buf(),
                end: first_available,
            });
        }
        if position < first_available {
            return Err(Error::PositionNotCovered {
                position,
                path: dir.to_path_buf(),
                first_available,
            });
        }
        reader.index = reader.segments.partition_point(|s| s.start <= position) - 1;
        if !reader.open_segment()? {
            // The segment's header is damaged: fine only if reading starts there.
            return match &reader.damage {
                Some(d) if d.position == position => Ok(reader),
                Some(d) => Err(d.to_error()),
                None => unreachable!("open_segment returned false without damage"),
            };
        }
        reader.seek(position)?;
        Ok(reader)
    }

    /// Reads sealed segments with `keys` (docs/FORMAT.md §1, "Sealed
    /// segments"); without it, reading a sealed segment's records fails
    /// with [`Error::KeyUnavailable`]. Plaintext segments read the same
    /// either way.
    #[cfg(feature = "encryption")]
    pub fn with_encryption(self, keys: Arc<dyn crate::crypto::KeyProvider>) -> Self {
        self.with_keys(Keys::new(Some(keys)))
    }

    /// Reads sealed segments with `keys`.
    pub(crate) fn with_keys(mut self, keys: Keys) -> Self {
        self.keys = keys;
        self.opener = None;
        self
    }

    /// The log position of the next record to read (after damage: the end of the
    /// valid prefix).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// For a reader that stopped at damage: what it found, typed (segment
    /// file, offset, position, torn or corrupt, and the [`Problem`]) — the
    /// value behind the `reason` of [`WalReadResult::TornWrite`] and
    /// [`WalReadResult::Corrupted`] and the checksums of
    /// [`WalReadResult::ChecksumMismatch`].
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// For a reader that stopped at damage: the typed error describing it (segment
    /// file, offset, position, checksums).
    pub fn damage_error(&self) -> Option<Error> {
        self.damage.as_ref().map(Damage::to_error)
    }

    /// Whether the damage the reader stopped at is a torn tail.
    pub fn stopped_at_torn_tail(&self) -> bool {
        matches!(&self.damage, Some(d) if d.class == DamageClass::Torn)
    }

    /// Opens `segments[index]`; false when its header is damaged (recorded as the
    /// terminal result).
    fn open_segment(&mut self) -> Result<bool> {
        let segment = &self.segments[self.index];
        let next_start = self.segments.get(self.index + 1).map(|s| s.start);
        match SegmentScanner::open_from(
            self.storage.as_ref(),
            segment,
            segment.start.max(self.floor),
            next_start,
            self.max_record_size,
        )? {
            Ok(scanner) => {
                self.position = scanner.position();
                self.scanner = Some(scanner);
                self.opener = None;
                Ok(true)
            }
            Err(damage) => {
                self.position = damage.position;
                self.stop_at(damage);
                Ok(false)
            }
        }
    }

    fn stop_at(&mut self, damage: Damage) {
        tracing::debug!(path = %damage.path.display(), offset = damage.offset, position = damage.position, class = ?damage.class, problem = %damage.problem, "log reader stopped at damage");
        self.terminal = Some(WalReadResult::from_damage(&damage));
        self.scanner = None;
        self.damage = Some(damage);
    }

    /// Walks the current segment's records up to `target`, checking that it is a
    /// record boundary.
    fn seek(&mut self, target: u64) -> Result<()> {
        let scanner = self.scanner.as_mut().expect("segment is open");
        let mut before = scanner.position();
        while scanner.position() < target {
            before = scanner.position();
            match scanner.next_record()? {
                Step::Record { .. } => {}
                Step::End => {
                    return Err(Error::PositionBeyondEnd {
                        position: target,
                        path: self.dir.clone(),
                        end: scanner.position(),
                    })
                }
                Step::Damaged(d) if d.class == DamageClass::Torn => {
                    return Err(Error::PositionBeyondEnd {
                        position: target,
                        path: self.dir.clone(),
                        end: d.position,
                    })
                }
                Step::Damaged(d) => return Err(d.to_error()),
            }
        }
        if scanner.position() != target {
            return Err(Error::NotARecordBoundary {
                position: target,
                path: scanner.path().to_path_buf(),
                before,
                after: Some(scanner.position()),
            });
        }
        self.position = target;
        Ok(())
    }

    /// Reads the next entry.
    ///
    /// # Errors
    /// I/O errors and [`Error::UnsupportedVersion`]. Damage is not an error here but
    /// a [`WalReadResult`] variant.
    pub fn read_next(&mut self) -> Result<WalReadResult> {
        Ok(match self.read_next_ref()? {
            WalReadRef::Entry { entry, .. } => WalReadResult::Entry(entry.into_owned()),
            WalReadRef::End(end) => end,
        })
    }

    /// Reads the next entry without copying its key and value: they borrow from
    /// the reader's buffer until the next call.
    ///
    /// # Errors
    /// As [`read_next`](Self::read_next); for a sealed segment also
    /// [`Error::KeyUnavailable`], [`Error::KeyMismatch`] and
    /// [`Error::AuthenticationFailed`] (a record whose checksums verify but
    /// that does not authenticate: tampering, never a torn tail). After one
    /// of these the reader stays at the record: reading again fails again.
    pub fn read_next_ref(&mut self) -> Result<WalReadRef<'_>> {
        loop {
            if let Some(t) = &self.terminal {
                return Ok(WalReadRef::End(t.clone()));
            }
            let Some(scanner) = self.scanner.as_mut() else {
                self.terminal = Some(WalReadResult::Eof);
                continue;
            };
            let offset = scanner.offset();
            let (position, kind) = match scanner.next_record()? {
                Step::Record { position, kind, .. } => (position, kind),
                Step::End => {
                    if self.index + 1 < self.segments.len() {
                        self.index += 1;
                        self.open_segment()?;
                    } else {
                        self.terminal = Some(WalReadResult::Eof);
                    }
                    continue;
                }
                Step::Damaged(d) => {
                    self.position = d.position;
                    self.stop_at(d);
                    continue;
                }
            };
            let sealed = self.unseal(offset, kind)?;
            let scanner = self.scanner.as_ref().expect("segment is open");
            let next = scanner.position();
            let payload = if sealed {
                &self.plain[..]
            } else {
                scanner.last_payload()
            };
            if kind == KIND_SYNC_MARKER && payload.is_empty() {
                self.position = next;
                continue;
            }
            // Decide on the verified payload first, then lend it out: a borrow is
            // only taken on the path that returns it.
            let problem = match change_ranges(kind, payload) {
                Ok(Some((key, value))) => {
                    self.position = next;
                    let payload = if sealed {
                        &self.plain[..]
                    } else {
                        self.scanner.as_ref().expect("open").last_payload()
                    };
                    let entry = match value {
                        Some(value) => WalEntryRef::Put {
                            key: &payload[key],
                            value: &payload[value],
                        },
                        None => WalEntryRef::Delete { key: &payload[key] },
                    };
                    return Ok(WalReadRef::Entry { position, entry });
                }
                Ok(None) => match WalEntry::decode(kind, payload) {
                    Ok(entry) => {
                        self.position = next;
                        let entry = WalEntryRef::Owned(entry);
                        return Ok(WalReadRef::Entry { position, entry });
                    }
                    Err(e) => e,
                },
                Err(e) => e,
            };
            let damage = Damage {
                class: DamageClass::Corrupt,
                path: scanner.path().to_path_buf(),
                offset,
                position,
                problem: Problem::Undecodable(problem),
            };
            self.stop_at(damage);
        }
    }

    /// For a record of a sealed segment (just read, at file `offset`):
    /// opens its payload into `plain` and returns true; false for a
    /// plaintext segment. On a key or authentication error the scanner is
    /// put back at the record, so the reader stays there.
    fn unseal(&mut self, offset: u64, kind: u8) -> Result<bool> {
        let scanner = self.scanner.as_mut().expect("segment is open");
        let Some(seal) = scanner.seal_header() else {
            return Ok(false);
        };
        let opened = match &self.opener {
            Some(opener) => opener.open(offset, kind, scanner.last_payload()),
            None => self.keys.opener(scanner.path(), seal).and_then(|opener| {
                let plain = opener.open(offset, kind, scanner.last_payload());
                self.opener = Some(opener);
                plain
            }),
        };
        match opened {
            Ok(plain) => {
                self.plain = plain;
                Ok(true)
            }
            Err(e) => {
                scanner.seek_offset(offset);
                Err(e)
            }
        }
    }
}

/// What [`WalReader::read_next_ref`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalReadRef<'a> {
    /// The next entry, borrowing from the reader, and the log position where it
    /// starts.
    Entry {
        /// Where the entry starts (sync markers skipped before it excluded).
        position: u64,
        /// The entry.
        entry: WalEntryRef<'a>,
    },
    /// The end of what can be read: `Eof` or the damage found (never `Entry`).
    End(WalReadResult),
}

impl Iterator for WalReader {
    type Item = Result<WalEntry>;

    /// Yields entries until the clean end; damage is yielded once as its typed
    /// error (a torn tail as `WalCorrupted` with a "torn tail" reason), then `None`.
    fn next(&mut self) -> Option<Self::Item> {
        match self.read_next() {
            Ok(WalReadResult::Entry(e)) => Some(Ok(e)),
            Ok(WalReadResult::Eof) => None,
            Ok(_) if self.damage_yielded => None,
            Ok(_) => {
                self.damage_yielded = true;
                self.damage_error().map(Err)
            }
            Err(e) => Some(Err(e)),
        }
    }
}
