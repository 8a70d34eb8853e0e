//! Verifying an Arrow part file of a checkpoint, with and without the
//! `arrow` feature (`docs/FORMAT.md` §5, "Builds without the `arrow`
//! feature").
//!
//! Invariant: in both builds a file whose size or CRC32C differs from its
//! metadata is `CheckpointFileMismatch`; only a build with the feature also
//! checks the structure and every array.

use super::metadata::PartMetadata;
use super::store::CheckpointStore;
use crate::error::Result;
use std::path::Path;

impl CheckpointStore {
    /// Verifies the Arrow part file at `path` (its size is already checked):
    /// every checksum, the structure and every array.
    #[cfg(feature = "arrow")]
    pub(crate) fn verify_arrow_file(&self, path: &Path, part: &PartMetadata) -> Result<()> {
        self.decode_arrow_file(path, part, crate::arrow::ArrowVerification::Checksums)
            .map(drop)
    }

    /// Verifies the Arrow part file at `path` (its size is already checked)
    /// by its whole-file CRC32C: this build cannot decode it, but can tell
    /// that its bytes are the ones its metadata names.
    #[cfg(not(feature = "arrow"))]
    pub(crate) fn verify_arrow_file(&self, path: &Path, part: &PartMetadata) -> Result<()> {
        use crate::error::Error;
        let map = self
            .storage()
            .map_file(path)
            .map_err(|e| Error::io("map", path, e))?;
        let crc = crc32c::crc32c(map.bytes());
        if crc != part.crc32c {
            return Err(Error::CheckpointFileMismatch {
                path: path.to_path_buf(),
                expected_size: part.size,
                actual_size: part.size,
                expected_crc: part.crc32c,
                actual_crc: crc,
            });
        }
        Ok(())
    }
}
