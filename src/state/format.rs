//! The state file container: a 64-byte header, the payload, and a table of
//! per-block CRC32Cs (layout in `docs/FORMAT.md` §2).
//!
//! Invariants:
//! - [`FileLayout::parse`] verifies the header CRC before reading any other header
//!   field, and checks that the file length is exactly what the header implies
//!   before anything is sized from it.
//! - The block table is verified against its own CRC (in the header) before a
//!   block checksum from it is used.
//! - No payload byte is handed out by [`FileLayout::verify_block`] callers before
//!   its block matched.

use super::crc_shift::CrcShift;
use crate::error::{Error, Result};
use std::path::Path;

/// Magic number at offset 0 of every state file.
pub(crate) const MAGIC: [u8; 8] = *b"HWSTATE\0";
/// The state file format version this build reads and writes.
pub(crate) const VERSION: u32 = 1;
/// Size of the header; the payload starts here (a multiple of 16, so the archive
/// is aligned in the file and in a memory map).
pub(crate) const HEADER_LEN: usize = 64;
/// The block shift this build writes (64 KiB blocks).
pub(crate) const BLOCK_SHIFT: u8 = 16;
const MIN_BLOCK_SHIFT: u8 = 12;
const MAX_BLOCK_SHIFT: u8 = 24;
/// From this many blocks on (16 MiB of 64 KiB blocks), [`FileLayout::verify_payload`]
/// verifies the two halves of the payload on two threads.
const PARALLEL_VERIFY_BLOCKS: usize = 256;

/// What a state file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateKind {
    /// A full state: sorted, unique key/value pairs.
    Snapshot,
    /// Keys put and keys deleted since a parent state.
    Delta,
    /// Opaque bytes serialised by the operator.
    Blob,
}

impl StateKind {
    fn code(self) -> u8 {
        match self {
            StateKind::Snapshot => 1,
            StateKind::Delta => 2,
            StateKind::Blob => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(StateKind::Snapshot),
            2 => Some(StateKind::Delta),
            3 => Some(StateKind::Blob),
            _ => None,
        }
    }

    /// A lower-case name ("snapshot", "delta", "blob").
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Snapshot => "snapshot",
            StateKind::Delta => "delta",
            StateKind::Blob => "blob",
        }
    }
}

/// The rkyv format flags of this build (FORMAT.md §2, header offset 13).
pub(crate) fn rkyv_format_flags() -> u8 {
    use rkyv::primitive::{ArchivedU64, ArchivedUsize};
    static FLAGS: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *FLAGS.get_or_init(|| {
        let width = match std::mem::size_of::<ArchivedUsize>() {
            2 => 0u8,
            4 => 1,
            _ => 2,
        };
        let unaligned = std::mem::align_of::<ArchivedU64>() == 1;
        u8::from(rkyv_is_big_endian()) | (width << 1) | (u8::from(unaligned) << 3)
    })
}

/// Whether this build's rkyv archives integers big-endian: serialise a known
/// integer and look at its first byte (the only portable way to observe the
/// archive's byte order from outside rkyv).
fn rkyv_is_big_endian() -> bool {
    rkyv::to_bytes::<rkyv::rancor::Error>(&0x0102_0304u32)
        .map(|b| b.first() == Some(&0x01))
        .unwrap_or(false)
}

/// Whether `bytes` start like a state file (its magic number).
pub(crate) fn is_state_file(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// The bytes needed to store a payload of `payload_len` bytes.
pub(crate) fn file_len(payload_len: u64, block_shift: u8) -> u64 {
    HEADER_LEN as u64 + payload_len + 4 * block_count(payload_len, block_shift)
}

fn block_count(payload_len: u64, block_shift: u8) -> u64 {
    payload_len.div_ceil(1u64 << block_shift)
}

/// The decoded header of a state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: StateKind,
    pub format_flags: u8,
    pub block_shift: u8,
    pub payload_len: u64,
    pub entries: u64,
    pub deleted: u64,
    pub payload_crc: u32,
    pub table_crc: u32,
}

impl Header {
    /// Decodes and checks the header at the start of `file` (at least its
    /// first [`HEADER_LEN`] bytes) of a file that is `actual_len` bytes long:
    /// its CRC first, then every field, then that `actual_len` is exactly what
    /// the header describes.
    ///
    /// # Errors
    /// `StateCorrupted` (short file, bad magic, bad field, wrong length),
    /// `StateChecksumMismatch`, `UnsupportedVersion`.
    pub(crate) fn decode(path: &Path, file: &[u8], actual_len: u64) -> Result<Self> {
        if file.len() < HEADER_LEN {
            return Err(corrupted(
                path,
                file.len() as u64,
                format!(
                    "file is {} bytes, shorter than the {HEADER_LEN}-byte header",
                    file.len()
                ),
            ));
        }
        let h = &file[..HEADER_LEN];
        if h[0..8] != MAGIC {
            return Err(corrupted(path, 0, "not a highwater state file (bad magic)"));
        }
        let stored = le_u32(h, 60);
        let actual = crc32c::crc32c(&h[..60]);
        if stored != actual {
            return Err(Error::StateChecksumMismatch {
                path: path.to_path_buf(),
                region: "header",
                offset: 0,
                expected: stored,
                actual,
            });
        }
        let version = le_u32(h, 8);
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: VERSION,
            });
        }
        let kind = StateKind::from_code(h[12])
            .ok_or_else(|| corrupted(path, 12, format!("unknown state kind {}", h[12])))?;
        let block_shift = h[14];
        if !(MIN_BLOCK_SHIFT..=MAX_BLOCK_SHIFT).contains(&block_shift) {
            return Err(corrupted(
                path,
                14,
                format!("block shift {block_shift} outside {MIN_BLOCK_SHIFT}..={MAX_BLOCK_SHIFT}"),
            ));
        }
        if h[15] != 0 || h[48..60].iter().any(|&b| b != 0) {
            return Err(corrupted(path, 15, "reserved header bytes are not zero"));
        }
        let header = Header {
            kind,
            format_flags: h[13],
            block_shift,
            payload_len: le_u64(h, 16),
            entries: le_u64(h, 24),
            deleted: le_u64(h, 32),
            payload_crc: le_u32(h, 40),
            table_crc: le_u32(h, 44),
        };
        let expected_flags = if kind == StateKind::Blob {
            0
        } else {
            rkyv_format_flags()
        };
        if header.format_flags != expected_flags {
            return Err(corrupted(
                path,
                13,
                format!(
                    "rkyv format flags {:#04x} differ from this build's {expected_flags:#04x} \
                     (endianness, pointer width or alignment)",
                    header.format_flags
                ),
            ));
        }
        if header.payload_len > (1u64 << 62) {
            return Err(corrupted(path, 16, "payload length is impossibly large"));
        }
        let expected_len = file_len(header.payload_len, block_shift);
        if actual_len != expected_len {
            return Err(corrupted(
                path,
                actual_len.min(expected_len),
                format!(
                    "file is {actual_len} bytes but its header describes {expected_len} bytes \
                     (truncated or extended)"
                ),
            ));
        }
        // Every entry needs at least one 8-byte end offset in the payload.
        let max_entries = header.payload_len / 8;
        if kind != StateKind::Blob && (header.entries > max_entries || header.deleted > max_entries)
        {
            return Err(corrupted(
                path,
                24,
                "entry counts cannot fit in the payload",
            ));
        }
        if kind == StateKind::Blob && (header.entries != 0 || header.deleted != 0) {
            return Err(corrupted(path, 24, "a blob has no entries"));
        }
        if kind == StateKind::Snapshot && header.deleted != 0 {
            return Err(corrupted(path, 32, "a snapshot has no deleted keys"));
        }
        Ok(header)
    }

    /// Encodes the header, computing its CRC.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12] = self.kind.code();
        b[13] = self.format_flags;
        b[14] = self.block_shift;
        b[16..24].copy_from_slice(&self.payload_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.entries.to_le_bytes());
        b[32..40].copy_from_slice(&self.deleted.to_le_bytes());
        b[40..44].copy_from_slice(&self.payload_crc.to_le_bytes());
        b[44..48].copy_from_slice(&self.table_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Builds a [`Error::StateCorrupted`].
pub(crate) fn corrupted(path: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::StateCorrupted {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// A state file whose header and block table verified: where everything is.
#[derive(Debug, Clone)]
pub(crate) struct FileLayout {
    pub header: Header,
    /// CRC32C of each payload block, from the verified table.
    pub block_crcs: Vec<u32>,
}

impl FileLayout {
    /// Parses and verifies the header and the block table of a whole state file.
    ///
    /// # Errors
    /// `StateCorrupted` (short file, bad magic, bad field, wrong length),
    /// `StateChecksumMismatch` (header or table), `UnsupportedVersion`.
    pub(crate) fn parse(path: &Path, file: &[u8]) -> Result<Self> {
        let header = Header::decode(path, file, file.len() as u64)?;
        let table_start = HEADER_LEN + header.payload_len as usize;
        Self::with_table(path, header, &file[table_start..])
    }

    /// The layout of a file whose verified `header` came first and whose
    /// block table (the file's last bytes, read separately: a remote view
    /// fetches it with one ranged get) is `table`.
    ///
    /// # Errors
    /// `StateChecksumMismatch` when the table does not match the header's
    /// table CRC; `StateCorrupted` when it has the wrong length.
    pub(crate) fn with_table(path: &Path, header: Header, table: &[u8]) -> Result<Self> {
        let table_start = HEADER_LEN as u64 + header.payload_len;
        let blocks = block_count(header.payload_len, header.block_shift);
        if table.len() as u64 != 4 * blocks {
            return Err(corrupted(
                path,
                table_start,
                format!(
                    "block table is {} bytes, the header describes {}",
                    table.len(),
                    4 * blocks
                ),
            ));
        }
        let actual = crc32c::crc32c(table);
        if actual != header.table_crc {
            return Err(Error::StateChecksumMismatch {
                path: path.to_path_buf(),
                region: "block table",
                offset: table_start,
                expected: header.table_crc,
                actual,
            });
        }
        let block_crcs = table.chunks_exact(4).map(|c| le_u32(c, 0)).collect();
        Ok(FileLayout { header, block_crcs })
    }

    /// Block size in bytes.
    pub(crate) fn block_size(&self) -> usize {
        1usize << self.header.block_shift
    }

    /// The payload byte range (in the file) of block `index`.
    pub(crate) fn block_range(&self, index: usize) -> std::ops::Range<usize> {
        let start = HEADER_LEN + index * self.block_size();
        let end = (start + self.block_size()).min(HEADER_LEN + self.header.payload_len as usize);
        start..end
    }

    /// Verifies block `index` of the payload in `file`.
    ///
    /// # Errors
    /// `StateChecksumMismatch` naming the block's file offset.
    pub(crate) fn verify_block(&self, path: &Path, file: &[u8], index: usize) -> Result<()> {
        self.verify_block_bytes(path, &file[self.block_range(index)], index)
    }

    /// Verifies block `index` of the payload, whose bytes are `block`.
    ///
    /// # Errors
    /// As [`verify_block`](Self::verify_block).
    pub(crate) fn verify_block_bytes(&self, path: &Path, block: &[u8], index: usize) -> Result<()> {
        let offset = self.block_range(index).start as u64;
        let actual = crc32c::crc32c(block);
        let expected = self.block_crcs[index];
        if actual != expected {
            return Err(Error::StateChecksumMismatch {
                path: path.to_path_buf(),
                region: "payload block",
                offset,
                expected,
                actual,
            });
        }
        Ok(())
    }

    /// Verifies every block and the whole-payload CRC. A large payload is
    /// split in two halves verified on two threads (each block is still one
    /// CRC32C call over 64 KiB); the first damaged block in file order is the
    /// one reported.
    ///
    /// # Errors
    /// `StateChecksumMismatch` naming the first damaged block.
    pub(crate) fn verify_payload(&self, path: &Path, file: &[u8]) -> Result<()> {
        let blocks = self.block_crcs.len();
        let whole = if blocks >= PARALLEL_VERIFY_BLOCKS {
            let mid = blocks / 2;
            let (first, second) = std::thread::scope(|s| {
                let second = s.spawn(|| self.verify_blocks(path, file, mid..blocks));
                let first = self.verify_blocks(path, file, 0..mid);
                // A panic in the helper is a bug in CRC code, not bad input.
                let second = second
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                (first, second)
            });
            let (first, second) = (first?, second?);
            let second_len = self.header.payload_len as usize - mid * self.block_size();
            crc32c::crc32c_combine(first, second, second_len)
        } else {
            self.verify_blocks(path, file, 0..blocks)?
        };
        if whole != self.header.payload_crc {
            return Err(Error::StateChecksumMismatch {
                path: path.to_path_buf(),
                region: "payload",
                offset: HEADER_LEN as u64,
                expected: self.header.payload_crc,
                actual: whole,
            });
        }
        Ok(())
    }

    /// Verifies blocks `blocks` and returns the CRC32C of their bytes
    /// together.
    fn verify_blocks(
        &self,
        path: &Path,
        file: &[u8],
        blocks: std::ops::Range<usize>,
    ) -> Result<u32> {
        let shift = CrcShift::for_block(self.block_size());
        let mut whole = 0u32;
        for index in blocks {
            self.verify_block(path, file, index)?;
            let range = self.block_range(index);
            whole = shift.combine(whole, self.block_crcs[index], range.len());
        }
        Ok(whole)
    }

    /// The payload slice of `file`.
    pub(crate) fn payload<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[HEADER_LEN..HEADER_LEN + self.header.payload_len as usize]
    }
}

/// Computes the block checksum table and whole-payload CRC of a payload fed in
/// pieces of any size.
#[derive(Debug)]
pub(crate) struct BlockCrcs {
    block: usize,
    current: u32,
    current_len: usize,
    whole: u32,
    table: Vec<u8>,
}

impl BlockCrcs {
    pub(crate) fn new() -> Self {
        BlockCrcs {
            block: 1usize << BLOCK_SHIFT,
            current: 0,
            current_len: 0,
            whole: 0,
            table: Vec::new(),
        }
    }

    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = (self.block - self.current_len).min(bytes.len());
            self.current = crc32c::crc32c_append(self.current, &bytes[..take]);
            self.current_len += take;
            bytes = &bytes[take..];
            if self.current_len == self.block {
                self.close_block();
            }
        }
    }

    fn close_block(&mut self) {
        self.whole =
            CrcShift::for_block(self.block).combine(self.whole, self.current, self.current_len);
        self.table.extend_from_slice(&self.current.to_le_bytes());
        self.current = 0;
        self.current_len = 0;
    }

    /// Appends the blocks `next` computed over the `next_len` bytes that
    /// follow this one's, which must end on a block boundary.
    fn append(&mut self, mut next: BlockCrcs, next_len: usize) {
        debug_assert_eq!(self.current_len, 0);
        if next.current_len > 0 {
            next.close_block();
        }
        self.whole = crc32c::crc32c_combine(self.whole, next.whole, next_len);
        self.table.extend_from_slice(&next.table);
    }

    /// The table bytes and the header for a payload of `payload_len` bytes.
    pub(crate) fn finish(
        mut self,
        kind: StateKind,
        payload_len: u64,
        entries: u64,
        deleted: u64,
    ) -> (Vec<u8>, [u8; HEADER_LEN]) {
        if self.current_len > 0 {
            self.close_block();
        }
        let header = Header {
            kind,
            format_flags: if kind == StateKind::Blob {
                0
            } else {
                rkyv_format_flags()
            },
            block_shift: BLOCK_SHIFT,
            payload_len,
            entries,
            deleted,
            payload_crc: self.whole,
            table_crc: crc32c::crc32c(&self.table),
        };
        (self.table, header.encode())
    }
}

/// Appends the block table to `file` (which holds the header placeholder and the
/// payload) and fills in the header.
pub(crate) fn seal(
    file: &mut rkyv::util::AlignedVec<16>,
    kind: StateKind,
    entries: u64,
    deleted: u64,
) {
    let payload_len = (file.len() - HEADER_LEN) as u64;
    let payload = &file[HEADER_LEN..];
    let block = 1usize << BLOCK_SHIFT;
    let blocks = payload.len().div_ceil(block);
    let (table, header) = if blocks >= PARALLEL_VERIFY_BLOCKS {
        // Two halves on two threads, each a sequence of whole blocks.
        let (first, second) = payload.split_at(blocks / 2 * block);
        let (mut a, b) = std::thread::scope(|s| {
            let b = s.spawn(|| {
                let mut crcs = BlockCrcs::new();
                crcs.update(second);
                crcs
            });
            let mut a = BlockCrcs::new();
            a.update(first);
            // A panic in the helper is a bug in CRC code, not bad input.
            (a, b.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        });
        a.append(b, second.len());
        a.finish(kind, payload_len, entries, deleted)
    } else {
        let mut crcs = BlockCrcs::new();
        crcs.update(payload);
        crcs.finish(kind, payload_len, entries, deleted)
    };
    file.extend_from_slice(&table);
    file[..HEADER_LEN].copy_from_slice(&header);
}

/// A fresh buffer holding a zeroed header placeholder, ready for the payload.
pub(crate) fn new_file_buffer(payload_capacity: usize) -> rkyv::util::AlignedVec<16> {
    let mut buf = rkyv::util::AlignedVec::<16>::with_capacity(HEADER_LEN + payload_capacity);
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    buf
}
