//! The log's durable start position (its **floor**): records below it are
//! released — never read, never scanned, never needed (docs/FORMAT.md §1,
//! "The floor file").
//!
//! Invariants:
//! - The floor only rises; it is written atomically (temporary file, fsync,
//!   rename, directory fsync) before anything below it is deleted, so a crash
//!   leaves either the old floor or the new one, and the segments it still
//!   needs.
//! - Every open of the log ([`live_segments`]) hides the segments wholly below
//!   the floor and starts reading the segment that holds it at the floor's own
//!   file offset: a record header's checksum binds its position, so the record
//!   there verifies without reading what precedes it.
//! - A missing floor file is floor 0.

use super::segment::{list_segments, SegmentMeta};
use crate::error::{Error, IoContext, Result};
use crate::storage::{OpenMode, Storage};
use std::path::{Path, PathBuf};

/// Name of the floor file in a log directory.
pub const FLOOR_FILE_NAME: &str = "FLOOR";
/// Name of the temporary file a new floor is written to before its rename.
pub const FLOOR_TEMP_NAME: &str = "FLOOR.tmp";
/// Magic number at the start of the floor file.
pub const FLOOR_MAGIC: [u8; 8] = *b"HWWALFLR";
/// Format version of the floor file.
pub const FLOOR_VERSION: u32 = 1;
/// Length of the floor file.
pub const FLOOR_LEN: usize = super::position_file::POSITION_FILE_LEN;

/// Encodes the floor file for `position` (docs/FORMAT.md §1; the layout of
/// `position_file.rs`).
pub fn encode_floor(position: u64) -> [u8; FLOOR_LEN] {
    super::position_file::encode(FLOOR_MAGIC, FLOOR_VERSION, position)
}

/// Decodes a floor file's bytes.
///
/// # Errors
/// [`Error::WalCorrupted`] (naming `path` and the offset of the bad field) for
/// a wrong length, magic, reserved bytes or position;
/// [`Error::WalChecksumMismatch`]; [`Error::UnsupportedVersion`] for a
/// verified file of another version.
pub fn decode_floor(path: &Path, b: &[u8]) -> Result<u64> {
    super::position_file::decode(path, "floor file", FLOOR_MAGIC, FLOOR_VERSION, b)
}

/// The floor of the log in `dir`: 0 when it has no floor file (or no directory).
///
/// # Errors
/// As [`decode_floor`], and I/O errors other than "not found".
pub fn read_floor(storage: &dyn Storage, dir: &Path) -> Result<u64> {
    let path = dir.join(FLOOR_FILE_NAME);
    let file = match storage.open_file(&path, OpenMode::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let len = file.len().ctx("stat", &path)?;
    if len != FLOOR_LEN as u64 {
        return Err(super::damage::wal_corrupted(
            path,
            0,
            0,
            super::DamageClass::Corrupt,
            super::Problem::FileLength {
                file: "floor file",
                len,
                expected: FLOOR_LEN as u64,
            },
        ));
    }
    let mut b = [0u8; FLOOR_LEN];
    file.read_exact_at(&mut b, 0).ctx("read", &path)?;
    decode_floor(&path, &b)
}

/// Makes `position` the floor of the log in `dir`, durably: the temporary
/// file is written and fsynced, renamed over the floor file, and the directory
/// fsynced. The directory must exist.
///
/// # Errors
/// I/O errors, naming the file (a failed directory fsync is not retried).
pub fn write_floor(storage: &dyn Storage, dir: &Path, position: u64) -> Result<()> {
    let temp = dir.join(FLOOR_TEMP_NAME);
    let path = dir.join(FLOOR_FILE_NAME);
    let file = storage
        .open_file(&temp, OpenMode::Create)
        .ctx("create", &temp)?;
    file.truncate(0).ctx("truncate", &temp)?;
    file.write_all_at(&encode_floor(position), 0)
        .ctx("write", &temp)?;
    file.sync_all().ctx("sync", &temp)?;
    drop(file);
    storage.rename(&temp, &path).ctx("rename", &temp)?;
    storage.sync_dir(dir).ctx("sync directory", dir)?;
    tracing::info!(dir = %dir.display(), floor = position, "raised the write-ahead log's floor");
    Ok(())
}

/// The segments of a log as every reader and writer sees them: the floor, and
/// the segments not wholly below it, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFiles {
    /// Records below this position are released.
    pub floor: u64,
    /// The segments still holding records at or after the floor.
    pub segments: Vec<SegmentMeta>,
    /// Segments wholly below the floor (left over by an interrupted release;
    /// never read, removed by the next release).
    pub released: Vec<PathBuf>,
}

impl LogFiles {
    /// The first position a reader may read: the floor, or the start of the
    /// oldest live segment when that is later.
    pub fn first_position(&self) -> u64 {
        self.segments
            .first()
            .map_or(self.floor, |s| s.start.max(self.floor))
    }

    /// Where reading segment `index` starts: its start, or the floor for the
    /// segment that holds it.
    pub fn read_start(&self, index: usize) -> u64 {
        self.segments[index].start.max(self.floor)
    }

    /// The same segments with the floor raised to `floor` (a read-only view:
    /// nothing is written). A lower `floor` changes nothing.
    pub fn with_floor(mut self, floor: u64) -> Self {
        if floor > self.floor {
            self.floor = floor;
            let keep = self.first_live(floor);
            self.released
                .extend(self.segments.drain(..keep).map(|s| s.path));
        }
        self
    }

    /// Index of the first segment not wholly below `floor`.
    fn first_live(&self, floor: u64) -> usize {
        // Segment i is wholly below the floor when the next one starts at or
        // below it; the newest one always stays.
        let mut keep = 0;
        while keep + 1 < self.segments.len() && self.segments[keep + 1].start <= floor {
            keep += 1;
        }
        keep
    }
}

/// The log in `dir` as seen through its floor (see [`LogFiles`]). A missing
/// directory has floor 0 and no segments.
///
/// # Errors
/// I/O errors, and the errors of [`read_floor`] for a damaged floor file.
pub fn live_segments(storage: &dyn Storage, dir: &Path) -> Result<LogFiles> {
    let segments = list_segments(storage, dir)?;
    let floor = if segments.is_empty() && !storage.exists(dir).ctx("stat", dir)? {
        0
    } else {
        read_floor(storage, dir)?
    };
    Ok(LogFiles {
        floor: 0,
        segments,
        released: Vec::new(),
    }
    .with_floor(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_round_trips_and_rejects_damage() {
        let p = Path::new("FLOOR");
        let b = encode_floor(240);
        assert_eq!(decode_floor(p, &b).unwrap(), 240);
        for i in 0..FLOOR_LEN {
            let mut d = b;
            d[i] ^= 1;
            assert!(decode_floor(p, &d).is_err(), "flip at {i}");
        }
        assert!(decode_floor(p, &b[..20]).is_err());
    }

    #[test]
    fn segments_wholly_below_the_floor_are_hidden() {
        let seg = |start| SegmentMeta {
            start,
            path: PathBuf::from(format!("{start}")),
        };
        let files = LogFiles {
            floor: 0,
            segments: vec![seg(0), seg(100), seg(200)],
            released: vec![],
        };
        let v = files.clone().with_floor(150);
        assert_eq!(v.segments, vec![seg(100), seg(200)]);
        assert_eq!(v.first_position(), 150);
        assert_eq!(v.read_start(0), 150);
        assert_eq!(v.read_start(1), 200);
        let v = files.clone().with_floor(200);
        assert_eq!(v.segments, vec![seg(200)]);
        let v = files.with_floor(900);
        assert_eq!(v.segments, vec![seg(200)]);
        assert_eq!(v.read_start(0), 900);
    }
}
