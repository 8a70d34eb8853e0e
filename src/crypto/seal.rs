//! Sealed files: a 48-byte header, then blocks sealed with AES-256-GCM under
//! a key derived for the one file (docs/FORMAT.md §8).
//!
//! Invariants:
//! - A [`SealedWriter`] seals blocks in order, each index once, and nothing
//!   after the block it sealed as the last: a (file key, nonce) pair never
//!   seals two plaintexts.
//! - A [`SealedReader`] returns a block's bytes only after its tag verified
//!   under the file's key, its index and its last-block flag, with the
//!   header as associated data; otherwise `AuthenticationFailed` naming the
//!   file, the block's offset and the key id.
//! - A header is checked (magic, version, CRC32C, key id, kind) before any
//!   key is asked for.

use super::key::{DataKey, KeyId, KeyProvider};
use crate::error::{Error, Result};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

mod at;

/// The length of a sealed file's header.
pub const SEAL_HEADER_LEN: usize = crate::sealing::SEALED_HEADER_LEN;
/// What sealing adds to each block: the GCM tag.
pub const TAG_LEN: usize = 16;
/// The most blocks one file seals.
pub const MAX_BLOCKS: u64 = 1 << 32;
const MAGIC: &[u8; 8] = crate::sealing::SEALED_MAGIC;
const VERSION: u16 = 1;
const INFO: &[u8] = b"highwater-seal-v1";
const KEY_CHECK_INFO: &[u8] = b"highwater-key-check-v1";

/// What a sealed file holds (part of its key derivation: a block of one
/// kind never opens as another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// A write-ahead log segment.
    LogSegment,
    /// A state file (snapshot or delta).
    StateFile,
    /// An Arrow part.
    ArrowPart,
    /// A record (metadata, commit record, report).
    Record,
    /// A sink's staged output.
    SinkStaging,
}

impl FileKind {
    fn code(self) -> u8 {
        match self {
            FileKind::LogSegment => 1,
            FileKind::StateFile => 2,
            FileKind::ArrowPart => 3,
            FileKind::Record => 4,
            FileKind::SinkStaging => 5,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => FileKind::LogSegment,
            2 => FileKind::StateFile,
            3 => FileKind::ArrowPart,
            4 => FileKind::Record,
            5 => FileKind::SinkStaging,
            _ => return None,
        })
    }
}

/// A sealed file's header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealHeader {
    /// What the file holds.
    pub kind: FileKind,
    /// The key it is sealed with.
    pub key_id: KeyId,
    /// Random, new for every file: what names the file.
    pub file_id: [u8; 16],
    /// The key's check value ([`key_check`]): tells a wrong key from
    /// tampering before any block is opened.
    pub key_check: [u8; 8],
}

/// The check value of data key `key` named `id`: the first 8 bytes of
/// HMAC-SHA256(key, "highwater-key-check-v1" || id as u32 LE). The same for
/// every file sealed with the key; it says nothing of the key but whether
/// a given key is it.
pub fn key_check(key: &DataKey, id: KeyId) -> [u8; 8] {
    let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.bytes());
    let mut msg = Vec::with_capacity(KEY_CHECK_INFO.len() + 4);
    msg.extend_from_slice(KEY_CHECK_INFO);
    msg.extend_from_slice(&id.get().to_le_bytes());
    let tag = ring::hmac::sign(&mac, &msg);
    let mut out = [0u8; 8];
    out.copy_from_slice(&tag.as_ref()[..8]);
    out
}

impl SealHeader {
    /// The 48 header bytes.
    pub fn encode(&self) -> [u8; SEAL_HEADER_LEN] {
        let mut out = [0u8; SEAL_HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[10] = self.kind.code();
        out[12..16].copy_from_slice(&self.key_id.get().to_le_bytes());
        out[16..32].copy_from_slice(&self.file_id);
        out[32..40].copy_from_slice(&self.key_check);
        let crc = crc32c::crc32c(&out[..44]);
        out[44..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks the header at the start of `bytes` (of file
    /// `path`).
    ///
    /// # Errors
    /// `StateCorrupted` naming the file and the offset for a short,
    /// foreign or damaged header; `UnsupportedVersion` for another version.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |offset: u64, reason: String| Error::StateCorrupted {
            path: path.to_path_buf(),
            offset,
            reason,
        };
        let Some(h) = bytes.get(..SEAL_HEADER_LEN) else {
            return Err(bad(
                0,
                format!(
                    "{} bytes; a sealed file's header is {SEAL_HEADER_LEN}",
                    bytes.len()
                ),
            ));
        };
        if &h[..8] != MAGIC {
            return Err(bad(0, "not a sealed file (magic)".into()));
        }
        let stored = u32::from_le_bytes(h[44..48].try_into().expect("4 bytes"));
        let actual = crc32c::crc32c(&h[..44]);
        if stored != actual {
            return Err(Error::StateChecksumMismatch {
                path: path.to_path_buf(),
                region: "sealed-file header",
                offset: 0,
                expected: stored,
                actual,
            });
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: u32::from(version),
                supported: u32::from(VERSION),
            });
        }
        let kind = FileKind::from_code(h[10])
            .ok_or_else(|| bad(10, format!("unknown file kind {}", h[10])))?;
        let key_id = KeyId::new(u32::from_le_bytes(h[12..16].try_into().expect("4 bytes")))
            .map_err(|_| bad(12, "key id 0".into()))?;
        let mut file_id = [0u8; 16];
        file_id.copy_from_slice(&h[16..32]);
        let mut key_check = [0u8; 8];
        key_check.copy_from_slice(&h[32..40]);
        if h[11] != 0 || h[40..44].iter().any(|&b| b != 0) {
            return Err(bad(11, "reserved header bytes are not zero".into()));
        }
        Ok(SealHeader {
            kind,
            key_id,
            file_id,
            key_check,
        })
    }
}

/// Fills `bytes` from the operating system's random generator.
pub(crate) fn random(bytes: &mut [u8], operation: &'static str) -> Result<()> {
    SystemRandom::new().fill(bytes).map_err(|_| Error::Io {
        operation,
        path: "the system random generator".into(),
        source: std::io::Error::other("no random bytes"),
    })
}

/// The file's own key: HKDF-SHA256 of the data key, salted with the file
/// id, for the kind and key id.
fn file_cipher(key: &DataKey, header: &SealHeader) -> LessSafeKey {
    let id = header.key_id.get().to_le_bytes();
    let kind = [header.kind.code()];
    let info: [&[u8]; 3] = [INFO, &kind, &id];
    let prk = Salt::new(HKDF_SHA256, &header.file_id).extract(key.bytes());
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    LessSafeKey::new(UnboundKey::from(okm))
}

fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_le_bytes());
    n[11] = u8::from(last);
    n
}

/// Seals the blocks of one new file, in order.
pub struct SealedWriter {
    header: [u8; SEAL_HEADER_LEN],
    info: SealHeader,
    cipher: LessSafeKey,
    next: u64,
    closed: bool,
}

impl std::fmt::Debug for SealedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedWriter")
            .field("header", &self.info)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl SealedWriter {
    /// A new file of `kind`, sealed with `provider`'s current key and a new
    /// random file id.
    ///
    /// # Errors
    /// The provider's errors; `Io` when the random generator fails.
    pub fn new(provider: &dyn KeyProvider, kind: FileKind) -> Result<Self> {
        let (key_id, key) = provider.current_key()?;
        let mut file_id = [0u8; 16];
        random(&mut file_id, "generate a file id")?;
        let info = SealHeader {
            kind,
            key_id,
            file_id,
            key_check: key_check(&key, key_id),
        };
        Ok(SealedWriter {
            header: info.encode(),
            cipher: file_cipher(&key, &info),
            info,
            next: 0,
            closed: false,
        })
    }

    /// The header to write first.
    pub fn header(&self) -> &[u8; SEAL_HEADER_LEN] {
        &self.header
    }

    /// The file's id (record it where the file is named, so that an older
    /// file put in its place is refused).
    pub fn file_id(&self) -> [u8; 16] {
        self.info.file_id
    }

    /// The key id the file is sealed with.
    pub(crate) fn key_id(&self) -> KeyId {
        self.info.key_id
    }

    /// Seals `buf` in place as block `index` of a sealed file and returns
    /// its tag: for `crypto::file`, which seals block 0 last and every
    /// other index once, in order (its invariant; this writer checks only
    /// the bound).
    ///
    /// # Errors
    /// `InvalidArgument` at or past [`MAX_BLOCKS`].
    pub(crate) fn seal_file_block(
        &mut self,
        index: u64,
        last: bool,
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        if index >= MAX_BLOCKS {
            return Err(Error::invalid_argument(
                "seal a block",
                format!("block {index} of a file sealed up to {MAX_BLOCKS} blocks"),
            ));
        }
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce(index, last)),
                Aad::from(&self.header[..]),
                buf,
            )
            .map_err(|_| Error::invalid_argument("seal a block", "AES-GCM refused the block"))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Seals the next block; `last` for the file's last one.
    ///
    /// # Errors
    /// `InvalidArgument` after the last block, or past [`MAX_BLOCKS`].
    pub fn seal_next(&mut self, plaintext: &[u8], last: bool) -> Result<Vec<u8>> {
        if self.closed || self.next >= MAX_BLOCKS {
            return Err(Error::invalid_argument(
                "seal a block",
                format!(
                    "block {} of a file sealed up to its last block or {MAX_BLOCKS} blocks",
                    self.next
                ),
            ));
        }
        let mut sealed = Vec::with_capacity(plaintext.len() + TAG_LEN);
        sealed.extend_from_slice(plaintext);
        self.cipher
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce(self.next, last)),
                Aad::from(&self.header[..]),
                &mut sealed,
            )
            .map_err(|_| Error::invalid_argument("seal a block", "AES-GCM refused the block"))?;
        self.next += 1;
        self.closed = last;
        Ok(sealed)
    }
}

/// Opens the blocks of one sealed file, in any order.
pub struct SealedReader {
    path: PathBuf,
    header: [u8; SEAL_HEADER_LEN],
    info: SealHeader,
    cipher: LessSafeKey,
}

impl std::fmt::Debug for SealedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedReader")
            .field("path", &self.path)
            .field("header", &self.info)
            .finish_non_exhaustive()
    }
}

impl SealedReader {
    /// Opens file `path`, whose first bytes are `header`: checks the header,
    /// that it is of `kind` (and, with `expected_file_id`, that it is that
    /// file, not an older one put back), and asks `provider` for its key.
    ///
    /// # Errors
    /// [`SealHeader::decode`]'s errors; `StateCorrupted` for another kind
    /// or file id; `KeyUnavailable` naming the file and the key id when the
    /// provider does not have the key; the provider's errors.
    pub fn open(
        provider: &dyn KeyProvider,
        path: &Path,
        header: &[u8],
        kind: FileKind,
        expected_file_id: Option<[u8; 16]>,
    ) -> Result<Self> {
        let info = SealHeader::decode(path, header)?;
        let bad = |offset: u64, reason: String| Error::StateCorrupted {
            path: path.to_path_buf(),
            offset,
            reason,
        };
        if info.kind != kind {
            return Err(bad(10, format!("a sealed {:?}, not a {kind:?}", info.kind)));
        }
        if expected_file_id.is_some_and(|id| id != info.file_id) {
            return Err(bad(
                16,
                "another file's id: an older or foreign file in this one's place".into(),
            ));
        }
        let key = provider
            .key(info.key_id)?
            .ok_or_else(|| Error::KeyUnavailable {
                path: path.to_path_buf(),
                key_id: info.key_id.get(),
            })?;
        if key_check(&key, info.key_id) != info.key_check {
            return Err(Error::KeyMismatch {
                path: path.to_path_buf(),
                key_id: info.key_id.get(),
            });
        }
        let mut h = [0u8; SEAL_HEADER_LEN];
        h.copy_from_slice(&header[..SEAL_HEADER_LEN]);
        Ok(SealedReader {
            path: path.to_path_buf(),
            header: h,
            cipher: file_cipher(&key, &info),
            info,
        })
    }

    /// The file's header.
    pub fn header(&self) -> &SealHeader {
        &self.info
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// [`open_block`](Self::open_block) in place: `buf` holds the sealed
    /// block; returns the plaintext's length (its first bytes).
    ///
    /// # Errors
    /// As [`open_block`](Self::open_block).
    pub(crate) fn open_block_in_place(
        &self,
        index: u64,
        last: bool,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<usize> {
        self.open_in_place(nonce(index, last), &self.header, buf, offset)
    }

    /// Opens the sealed block in `buf` in place under `nonce` with `ad` as
    /// associated data; the plaintext's length.
    ///
    /// # Errors
    /// `AuthenticationFailed` naming the file, `offset` and the key id.
    fn open_in_place(
        &self,
        nonce: [u8; 12],
        ad: &[u8],
        buf: &mut [u8],
        offset: u64,
    ) -> Result<usize> {
        self.cipher
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(ad), buf)
            .map(|plain| plain.len())
            .map_err(|_| Error::AuthenticationFailed {
                path: self.path.clone(),
                offset,
                key_id: self.info.key_id.get(),
            })
    }

    /// Opens block `index` (sealed as the last block when `last`), which
    /// lies at byte `offset` of the file.
    ///
    /// # Errors
    /// `AuthenticationFailed` naming the file, `offset` and the key id: a
    /// wrong key, a changed byte, a block from another position or file, or
    /// a last-block flag that does not match (a file cut short).
    pub fn open_block(
        &self,
        index: u64,
        last: bool,
        sealed: &[u8],
        offset: u64,
    ) -> Result<Vec<u8>> {
        let mut buf = sealed.to_vec();
        let len = self.open_block_in_place(index, last, &mut buf, offset)?;
        buf.truncate(len);
        Ok(buf)
    }
}
