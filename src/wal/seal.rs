//! Sealed segments (docs/FORMAT.md §1, "Sealed segments"): the seal header
//! after a version 2 segment header, and sealing and opening record
//! payloads with the segment's key, the record's file offset as the nonce
//! index and its kind byte as associated data.
//!
//! Invariants:
//! - The checks here that need no key (magic, CRC, kind of the seal header)
//!   are the same with and without the `encryption` feature, so open,
//!   repair and verify classify a sealed segment's damage the same in
//!   every build.
//! - A [`Sealer`] seals offsets in strictly increasing order and belongs to
//!   the one segment file this process created with it: records are only
//!   ever sealed into a segment through its own sealer (no offset of a
//!   sealed segment is sealed twice).
//! - A record's plaintext is returned only after its tag verified.

use super::format::HeaderProblem;
use crate::error::{Error, Result};
use std::fmt;
use std::path::Path;

/// Length of the seal header.
pub(crate) const SEAL_LEN: usize = crate::sealing::SEALED_HEADER_LEN;
/// What sealing adds to a record's payload: the GCM tag.
pub(crate) const TAG: u32 = 16;
/// The kind code of a log segment in a seal header (§8).
const LOG_SEGMENT_KIND: u8 = 1;

/// Checks the seal header at the start of `b` without a key: its length,
/// magic, CRC and kind (version, reserved bytes and key are checked when
/// a record is opened).
///
/// # Errors
/// The [`HeaderProblem::Seal`] saying what is wrong.
pub(crate) fn check_seal_header(b: &[u8]) -> std::result::Result<[u8; SEAL_LEN], HeaderProblem> {
    let Some(h) = b.get(..SEAL_LEN) else {
        return Err(HeaderProblem::Seal("shorter than 48 bytes"));
    };
    if !crate::sealing::is_sealed(h) {
        return Err(HeaderProblem::Seal("bad magic"));
    }
    if super::format::le_u32(&h[44..48]) != crc32c::crc32c(&h[..44]) {
        return Err(HeaderProblem::Seal("checksum mismatch"));
    }
    if h[10] != LOG_SEGMENT_KIND {
        return Err(HeaderProblem::Seal("not a log segment's"));
    }
    let mut out = [0u8; SEAL_LEN];
    out.copy_from_slice(h);
    Ok(out)
}

/// The key id a checked seal header names.
fn key_id(seal: &[u8; SEAL_LEN]) -> u32 {
    crate::sealing::header_key_id(seal).unwrap_or_default()
}

/// The keys a log is sealed and opened with: none (plaintext segments are
/// written, sealed ones cannot be opened), or a key provider.
#[derive(Clone, Default)]
pub(crate) struct Keys {
    #[cfg(feature = "encryption")]
    provider: Option<std::sync::Arc<dyn crate::crypto::KeyProvider>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(feature = "encryption")]
        if let Some(p) = &self.provider {
            return f.debug_tuple("Keys").field(p).finish();
        }
        f.write_str("Keys(none)")
    }
}

impl Keys {
    /// The keys of `provider` (`None`: no keys).
    #[cfg(feature = "encryption")]
    pub(crate) fn new(provider: Option<std::sync::Arc<dyn crate::crypto::KeyProvider>>) -> Self {
        Keys { provider }
    }

    /// Whether new segments are sealed.
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(feature = "encryption")]
        if self.provider.is_some() {
            return true;
        }
        false
    }

    /// Bytes sealing adds to a record's payload.
    pub(crate) fn overhead(&self) -> u32 {
        if self.is_on() {
            TAG
        } else {
            0
        }
    }

    /// A sealer for one new segment (its seal header has a new file id and
    /// the provider's current key); `None` without keys.
    ///
    /// # Errors
    /// The provider's errors; `Io` when the random generator fails.
    pub(crate) fn sealer(&self) -> Result<Option<Sealer>> {
        #[cfg(feature = "encryption")]
        if let Some(p) = &self.provider {
            let w =
                crate::crypto::SealedWriter::new(p.as_ref(), crate::crypto::FileKind::LogSegment)?;
            return Ok(Some(Sealer(w)));
        }
        Ok(None)
    }

    /// Opens the records of the sealed segment `path` whose seal header is
    /// `seal` (checked by [`check_seal_header`]).
    ///
    /// # Errors
    /// `KeyUnavailable` naming the file and key id without a provider (or a
    /// build without the `encryption` feature) or when the provider lacks
    /// the key; `KeyMismatch` for another key under that id;
    /// `UnsupportedVersion` and `StateCorrupted` for a seal header this
    /// build does not accept; the provider's errors.
    pub(crate) fn opener(&self, path: &Path, seal: &[u8; SEAL_LEN]) -> Result<Opener> {
        #[cfg(feature = "encryption")]
        if let Some(p) = &self.provider {
            let kind = crate::crypto::FileKind::LogSegment;
            let reader = crate::crypto::SealedReader::open(p.as_ref(), path, seal, kind, None)?;
            return Ok(Opener(reader));
        }
        Err(Error::KeyUnavailable {
            path: path.to_path_buf(),
            key_id: key_id(seal),
        })
    }
}

impl super::log::Active {
    /// Whether records may be appended to it by a writer with `keys`: a
    /// writer with keys only to a sealed segment it created (and has not
    /// cut); one without only to a plaintext segment. Otherwise the next
    /// append starts a new segment (docs/FORMAT.md §1, "Sealed segments").
    pub(super) fn appendable(&self, keys: &Keys) -> bool {
        if keys.is_on() {
            self.sealer.is_some()
        } else {
            self.records_offset == super::format::SEGMENT_HEADER_LEN
        }
    }
}

/// Seals the records of one segment this process created.
#[cfg(feature = "encryption")]
#[derive(Debug)]
pub(crate) struct Sealer(crate::crypto::SealedWriter);
/// Seals the records of one segment (none exist without the `encryption`
/// feature).
#[cfg(not(feature = "encryption"))]
#[derive(Debug)]
pub(crate) enum Sealer {}

impl Sealer {
    /// The seal header to write after the segment header.
    pub(crate) fn header(&self) -> [u8; SEAL_LEN] {
        #[cfg(feature = "encryption")]
        return *self.0.header();
        #[cfg(not(feature = "encryption"))]
        match *self {}
    }

    /// The sealed payload of the record of `kind` at file offset `offset`.
    ///
    /// # Errors
    /// `InvalidArgument` for an offset not above the last one sealed.
    pub(crate) fn seal(&mut self, offset: u64, kind: u8, plaintext: &[u8]) -> Result<Vec<u8>> {
        #[cfg(feature = "encryption")]
        return self.0.seal_at(offset, &[kind], plaintext);
        #[cfg(not(feature = "encryption"))]
        {
            let _ = (offset, kind, plaintext);
            match *self {}
        }
    }
}

/// Opens the records of one sealed segment.
#[cfg(feature = "encryption")]
#[derive(Debug)]
pub(crate) struct Opener(crate::crypto::SealedReader);
/// Opens the records of one sealed segment (none exist without the
/// `encryption` feature).
#[cfg(not(feature = "encryption"))]
#[derive(Debug)]
pub(crate) enum Opener {}

impl Opener {
    /// The plaintext payload of the record of `kind` at file offset
    /// `offset`, whose stored (checksum-verified) payload is `sealed`.
    ///
    /// # Errors
    /// `AuthenticationFailed` naming the file, `offset` and the key id.
    pub(crate) fn open(&self, offset: u64, kind: u8, sealed: &[u8]) -> Result<Vec<u8>> {
        #[cfg(feature = "encryption")]
        return self.0.open_at(offset, &[kind], sealed, offset);
        #[cfg(not(feature = "encryption"))]
        {
            let _ = (offset, kind, sealed);
            match *self {}
        }
    }
}
