//! Blocks named by where they lie rather than by a counter: a log record
//! sealed with its file offset as the nonce index (docs/FORMAT.md §1,
//! "Sealed segments"), and extra associated data after the header.
//!
//! Invariant: a writer seals indices in strictly increasing order (shared
//! with `seal_next`), so a (file key, nonce) pair never seals two blocks.

use super::{nonce, SealedReader, SealedWriter, MAX_BLOCKS, SEAL_HEADER_LEN, TAG_LEN};
use crate::error::{Error, Result};
use ring::aead::{Aad, Nonce};

impl SealedWriter {
    /// Seals `plaintext` as block `index` (never the last), with the header
    /// followed by `extra` as associated data: for formats whose blocks are
    /// named by where they lie (a log record's file offset) rather than by
    /// a counter. Indices must strictly increase, mixed with
    /// [`seal_next`](Self::seal_next) too, so no nonce repeats.
    ///
    /// # Errors
    /// `InvalidArgument` for an index not above every one sealed before,
    /// at or past [`MAX_BLOCKS`], or after the last block.
    pub(crate) fn seal_at(
        &mut self,
        index: u64,
        extra: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        if self.closed || index < self.next || index >= MAX_BLOCKS {
            return Err(Error::invalid_argument(
                "seal a block",
                format!(
                    "block {index} of a file sealed up to block {} (indices only increase, below {MAX_BLOCKS})",
                    self.next
                ),
            ));
        }
        let mut sealed = Vec::with_capacity(plaintext.len() + TAG_LEN);
        sealed.extend_from_slice(plaintext);
        let mut ad = Vec::with_capacity(SEAL_HEADER_LEN + extra.len());
        ad.extend_from_slice(&self.header);
        ad.extend_from_slice(extra);
        self.cipher
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce(index, false)),
                Aad::from(&ad[..]),
                &mut sealed,
            )
            .map_err(|_| Error::invalid_argument("seal a block", "AES-GCM refused the block"))?;
        self.next = index + 1;
        Ok(sealed)
    }
}

impl SealedReader {
    /// Opens block `index` sealed by [`SealedWriter::seal_at`] with `extra`,
    /// lying at byte `offset` of the file.
    ///
    /// # Errors
    /// As [`open_block`](Self::open_block).
    pub(crate) fn open_at(
        &self,
        index: u64,
        extra: &[u8],
        sealed: &[u8],
        offset: u64,
    ) -> Result<Vec<u8>> {
        let mut ad = Vec::with_capacity(SEAL_HEADER_LEN + extra.len());
        ad.extend_from_slice(&self.header);
        ad.extend_from_slice(extra);
        let mut buf = sealed.to_vec();
        let len = self.open_in_place(nonce(index, false), &ad, &mut buf, offset)?;
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use crate::crypto::{DataKey, FileKind, KeyId, SealedReader, SealedWriter, StaticKeys};
    use crate::Error;
    use std::path::Path;

    #[test]
    fn indices_only_increase_and_the_extra_data_and_index_are_bound() {
        let keys = StaticKeys::new(KeyId::new(3).unwrap(), DataKey::from_bytes([5; 32]));
        let mut w = SealedWriter::new(&keys, FileKind::LogSegment).unwrap();
        let a = w.seal_at(88, &[1], b"first").unwrap();
        for stale in [0, 88] {
            assert!(matches!(
                w.seal_at(stale, &[1], b"again"),
                Err(Error::InvalidArgument { .. })
            ));
        }
        assert!(w.seal_at(super::MAX_BLOCKS, &[1], b"far").is_err());
        w.seal_at(120, &[1], b"second").unwrap();
        let r = SealedReader::open(
            &keys,
            Path::new("s.wal"),
            w.header(),
            FileKind::LogSegment,
            None,
        )
        .unwrap();
        assert_eq!(r.open_at(88, &[1], &a, 88).unwrap(), b"first");
        for (index, extra) in [(96, [1]), (88, [2])] {
            match r.open_at(index, &extra, &a, 88) {
                Err(Error::AuthenticationFailed { offset, key_id, .. }) => {
                    assert_eq!((offset, key_id), (88, 3))
                }
                other => panic!("expected AuthenticationFailed, got {other:?}"),
            }
        }
    }
}
