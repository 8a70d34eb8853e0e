//! Byte layouts of the segment header and the record header (docs/FORMAT.md §1).
//!
//! Pure functions: encoding and checking bytes, no I/O. A record header is only
//! trusted once [`RecordHeader::decode`] has verified its checksum against the
//! segment identity and the record's own position.

/// Magic number at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"HWWALSEG";
/// The segment format version this build reads and writes.
pub const SEGMENT_VERSION: u32 = 1;
/// Length of the segment header in bytes.
pub const SEGMENT_HEADER_LEN: u64 = 40;
/// The version of a sealed segment (docs/FORMAT.md §1, "Sealed segments").
pub const SEALED_SEGMENT_VERSION: u32 = 2;
/// Where a sealed segment's records start: its header, then the 48-byte
/// seal header.
pub const SEALED_HEADER_LEN: u64 = SEGMENT_HEADER_LEN + 48;
/// Length of a record header in bytes.
pub const RECORD_HEADER_LEN: usize = 16;
/// Records start at file offsets that are multiples of this.
pub const RECORD_ALIGN: u64 = 8;
/// Segment start positions above this are refused (they leave no room for
/// position arithmetic to stay far from overflow).
pub const MAX_POSITION: u64 = 1 << 62;

/// Bytes a record with a payload of `payload_len` bytes occupies on disk.
pub fn record_size(payload_len: u32) -> u64 {
    RECORD_HEADER_LEN as u64 + padded(payload_len as u64)
}

/// `len` rounded up to the record alignment.
pub fn padded(len: u64) -> u64 {
    len.div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// The decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Random identity mixed into every record checksum of the segment.
    pub segment_id: u64,
    /// Log position of the segment's first record.
    pub first_position: u64,
    /// Whether it is a sealed segment (version 2, a seal header after this
    /// one, every record payload sealed).
    pub sealed: bool,
}

/// Why a segment header did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// Fewer than [`SEGMENT_HEADER_LEN`] bytes.
    Short(usize),
    /// Every byte is zero (a file created but never written).
    Zero,
    /// The magic number is wrong.
    BadMagic,
    /// The header checksum does not match.
    Checksum {
        /// Stored checksum.
        expected: u32,
        /// Computed checksum.
        actual: u32,
    },
    /// A valid header of a version this build does not read.
    Version(u32),
    /// A field holds a value that is not allowed.
    Invalid(&'static str),
    /// A sealed segment's seal header is short, foreign or damaged.
    Seal(&'static str),
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderProblem::Short(n) => write!(f, "segment header truncated to {n} bytes"),
            HeaderProblem::Zero => write!(f, "segment header is all zeros"),
            HeaderProblem::BadMagic => write!(f, "bad segment magic number"),
            HeaderProblem::Checksum { expected, actual } => write!(
                f,
                "segment header checksum mismatch: stored {expected:#010x}, computed {actual:#010x}"
            ),
            HeaderProblem::Version(v) => write!(f, "unsupported segment version {v}"),
            HeaderProblem::Invalid(what) => write!(f, "invalid segment header: {what}"),
            HeaderProblem::Seal(what) => write!(f, "sealed segment's seal header: {what}"),
        }
    }
}

impl SegmentHeader {
    /// The file offset of the segment's first record: the one place that
    /// says where records start (40, or 88 for a sealed segment).
    pub fn records_offset(&self) -> u64 {
        if self.sealed {
            SEALED_HEADER_LEN
        } else {
            SEGMENT_HEADER_LEN
        }
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN as usize] {
        let mut b = [0u8; SEGMENT_HEADER_LEN as usize];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        let version = if self.sealed {
            SEALED_SEGMENT_VERSION
        } else {
            SEGMENT_VERSION
        };
        b[8..12].copy_from_slice(&version.to_le_bytes());
        b[12..16].copy_from_slice(&(self.records_offset() as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.segment_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_position.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies a header.
    ///
    /// # Errors
    /// A [`HeaderProblem`] saying what is wrong.
    pub fn decode(b: &[u8]) -> Result<Self, HeaderProblem> {
        if b.len() < SEGMENT_HEADER_LEN as usize {
            return Err(HeaderProblem::Short(b.len()));
        }
        let b = &b[..SEGMENT_HEADER_LEN as usize];
        if b.iter().all(|&x| x == 0) {
            return Err(HeaderProblem::Zero);
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err(HeaderProblem::BadMagic);
        }
        let expected = le_u32(&b[36..40]);
        let actual = crc32c::crc32c(&b[0..36]);
        if expected != actual {
            return Err(HeaderProblem::Checksum { expected, actual });
        }
        let version = le_u32(&b[8..12]);
        let sealed = match version {
            SEGMENT_VERSION => false,
            SEALED_SEGMENT_VERSION => true,
            other => return Err(HeaderProblem::Version(other)),
        };
        let header_len = if sealed {
            SEALED_HEADER_LEN
        } else {
            SEGMENT_HEADER_LEN
        };
        if le_u32(&b[12..16]) as u64 != header_len {
            return Err(HeaderProblem::Invalid(
                "header_len is not 40 (version 1) or 88 (version 2)",
            ));
        }
        if le_u32(&b[32..36]) != 0 {
            return Err(HeaderProblem::Invalid("reserved field is not zero"));
        }
        let segment_id = le_u64(&b[16..24]);
        if segment_id == 0 {
            return Err(HeaderProblem::Invalid("segment_id is zero"));
        }
        if le_u64(&b[24..32]) > MAX_POSITION {
            return Err(HeaderProblem::Invalid("first_position is out of range"));
        }
        Ok(SegmentHeader {
            segment_id,
            first_position: le_u64(&b[24..32]),
            sealed,
        })
    }
}

/// Largest value of the 24-bit `sync_distance` field: "unknown / too far".
pub const SYNC_DISTANCE_UNKNOWN: u32 = 0xFF_FFFF;

/// The `sync_distance` to store for a record at `position` written when the log was
/// durable up to `durable`: the distance in 8-byte units, saturated.
pub fn sync_distance(position: u64, durable: u64) -> u32 {
    (position.saturating_sub(durable) / RECORD_ALIGN).min(SYNC_DISTANCE_UNKNOWN as u64) as u32
}

/// A verified record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length in bytes.
    pub payload_len: u32,
    /// Entry kind (1 = Put, 2 = Delete, 3 = Commit, 4 = Checkpoint, 5 = sync marker).
    pub kind: u8,
    /// How far back (in 8-byte units) the log was known durable when this record
    /// was written; [`SYNC_DISTANCE_UNKNOWN`] when too far to say.
    pub sync_distance: u32,
    /// CRC32C of the payload.
    pub payload_crc: u32,
}

impl RecordHeader {
    /// The position before which the log was durable when the record at `position`
    /// was written, if known.
    pub fn durable_when_written(&self, position: u64) -> Option<u64> {
        (self.sync_distance != SYNC_DISTANCE_UNKNOWN)
            .then(|| position - self.sync_distance as u64 * RECORD_ALIGN)
    }
}

/// Why a record header did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordHeaderProblem {
    /// All 16 bytes are zero.
    Zero,
    /// The header checksum does not match.
    Checksum {
        /// Stored checksum.
        expected: u32,
        /// Computed checksum.
        actual: u32,
    },
    /// The checksum matches but the sync distance points before position 0.
    BadSyncDistance,
}

/// CRC32C of a record header's first 12 bytes, seeded with the segment identity and
/// the record's position.
fn header_crc(segment_id: u64, position: u64, first12: &[u8]) -> u32 {
    // One pass over identity ‖ position ‖ header: the same value as appending the
    // header to the CRC of the seed, in one call instead of two.
    let mut buf = [0u8; 28];
    buf[0..8].copy_from_slice(&segment_id.to_le_bytes());
    buf[8..16].copy_from_slice(&position.to_le_bytes());
    buf[16..28].copy_from_slice(first12);
    crc32c::crc32c(&buf)
}

impl RecordHeader {
    /// Encodes the header of the record at `position` in segment `segment_id`.
    pub fn encode(&self, segment_id: u64, position: u64) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        b[0..4].copy_from_slice(&self.payload_len.to_le_bytes());
        b[4] = self.kind;
        b[5..8].copy_from_slice(&self.sync_distance.to_le_bytes()[..3]);
        b[8..12].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = header_crc(segment_id, position, &b[0..12]);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Verifies and decodes the header of the record expected at `position`.
    ///
    /// # Errors
    /// A [`RecordHeaderProblem`]; the length is not looked at unless the checksum
    /// verified.
    pub fn decode(
        b: &[u8; RECORD_HEADER_LEN],
        segment_id: u64,
        position: u64,
    ) -> Result<Self, RecordHeaderProblem> {
        if b.iter().all(|&x| x == 0) {
            return Err(RecordHeaderProblem::Zero);
        }
        let expected = le_u32(&b[12..16]);
        let actual = header_crc(segment_id, position, &b[0..12]);
        if expected != actual {
            return Err(RecordHeaderProblem::Checksum { expected, actual });
        }
        let sync_distance = u32::from_le_bytes([b[5], b[6], b[7], 0]);
        if sync_distance != SYNC_DISTANCE_UNKNOWN && sync_distance as u64 * RECORD_ALIGN > position
        {
            return Err(RecordHeaderProblem::BadSyncDistance);
        }
        Ok(RecordHeader {
            payload_len: le_u32(&b[0..4]),
            kind: b[4],
            sync_distance,
            payload_crc: le_u32(&b[8..12]),
        })
    }
}

/// Reads a little-endian `u32` from the first four bytes of `b`.
pub fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads a little-endian `u64` from the first eight bytes of `b`.
pub fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trips_and_detects_every_flipped_bit() {
        let h = SegmentHeader {
            segment_id: 0x1234_5678_9abc_def0,
            first_position: 4096,
            sealed: false,
        };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        let sealed = SegmentHeader { sealed: true, ..h };
        assert_eq!(SegmentHeader::decode(&sealed.encode()), Ok(sealed));
        assert_eq!(sealed.records_offset(), 88);
        assert_eq!(&sealed.encode()[8..16], &[2, 0, 0, 0, 88, 0, 0, 0]);
        for i in 0..bytes.len() * 8 {
            let mut b = bytes;
            b[i / 8] ^= 1 << (i % 8);
            assert!(
                SegmentHeader::decode(&b).is_err(),
                "bit {i} flip undetected"
            );
        }
    }

    #[test]
    fn record_header_checksum_binds_segment_and_position() {
        let h = RecordHeader {
            payload_len: 124,
            kind: 1,
            sync_distance: 3,
            payload_crc: 0xdead_beef,
        };
        let b = h.encode(7, 80);
        assert_eq!(RecordHeader::decode(&b, 7, 80), Ok(h));
        assert!(matches!(
            RecordHeader::decode(&b, 8, 80),
            Err(RecordHeaderProblem::Checksum { .. })
        ));
        assert!(matches!(
            RecordHeader::decode(&b, 7, 88),
            Err(RecordHeaderProblem::Checksum { .. })
        ));
        assert_eq!(
            RecordHeader::decode(&[0; 16], 7, 80),
            Err(RecordHeaderProblem::Zero)
        );
    }

    #[test]
    fn sync_distance_saturates_and_resolves() {
        assert_eq!(sync_distance(800, 160), 80);
        assert_eq!(sync_distance(u64::MAX / 2, 0), SYNC_DISTANCE_UNKNOWN);
        let h = RecordHeader {
            payload_len: 0,
            kind: 5,
            sync_distance: 80,
            payload_crc: 0,
        };
        assert_eq!(h.durable_when_written(800), Some(160));
        let b = h.encode(1, 800);
        assert_eq!(RecordHeader::decode(&b, 1, 800), Ok(h));
        // A distance reaching before position 0 is refused even with a valid checksum.
        let b = h.encode(1, 320);
        assert_eq!(
            RecordHeader::decode(&b, 1, 320),
            Err(RecordHeaderProblem::BadSyncDistance)
        );
    }

    #[test]
    fn record_sizes_are_aligned() {
        assert_eq!(record_size(0), 16);
        assert_eq!(record_size(1), 24);
        assert_eq!(record_size(8), 24);
        assert_eq!(record_size(124), 144);
    }
}
