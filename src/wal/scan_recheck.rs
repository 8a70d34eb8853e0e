//! The scanner's second look at a record of the newest segment that did
//! not verify: a live writer may be filling the zeros it preallocated
//! while the scan reads them (docs/FORMAT.md §1, "Preallocation").

use super::format::{record_size, RecordHeader, RECORD_HEADER_LEN};
use super::scan::SegmentScanner;
use crate::error::{IoContext, Result};

impl SegmentScanner {
    /// For the newest segment: whether the record at `offset`, read as `seen`
    /// (a header that did not verify, or one whose payload did not), reads as
    /// a verified record now. Then a writer was appending into the zeros it
    /// preallocated while this scan read them, and the scan's view of the
    /// log ends at `offset` (records appended after a reader reached the end
    /// are not seen). A file nobody writes reads the same twice, so damage
    /// left by a crash is still found.
    ///
    /// # Errors
    /// I/O errors.
    pub(super) fn written_since(
        &mut self,
        offset: u64,
        seen: &[u8; RECORD_HEADER_LEN],
    ) -> Result<bool> {
        if self.next_start.is_some() || offset + RECORD_HEADER_LEN as u64 > self.file_len {
            return Ok(false);
        }
        let mut now = [0u8; RECORD_HEADER_LEN];
        match self.file.read_exact_at(&mut now, offset) {
            Ok(()) => {}
            // The file got shorter (its zeros or records cut): nothing there.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e).ctx("read", &self.path),
        }
        if now == *seen && seen.iter().all(|&b| b == 0) {
            return Ok(false);
        }
        // Re-read fresh, outside the window, so a later damage check sees the
        // same bytes as before (the window is left as it was).
        self.fresh_record_verifies(offset, &now)
    }

    /// Whether `header`, read fresh at `offset`, and the payload after it in the
    /// file now verify (bounded by the maximum record size and the file).
    fn fresh_record_verifies(&self, offset: u64, header: &[u8; RECORD_HEADER_LEN]) -> Result<bool> {
        let position = self.position_of(offset);
        let Ok(h) = RecordHeader::decode(header, self.header().segment_id, position) else {
            return Ok(false);
        };
        if h.payload_len > self.max_record_size
            || offset.saturating_add(record_size(h.payload_len)) > self.file_len
        {
            return Ok(false);
        }
        let mut payload = vec![0u8; h.payload_len as usize];
        match self
            .file
            .read_exact_at(&mut payload, offset + RECORD_HEADER_LEN as u64)
        {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e).ctx("read", &self.path),
        }
        Ok(crc32c::crc32c(&payload) == h.payload_crc)
    }
}
