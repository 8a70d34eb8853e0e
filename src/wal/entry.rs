//! [`WalEntry`], the unit of the log, and its payload encoding (docs/FORMAT.md §1,
//! "kind and the payload encoding").
//!
//! Decoding is total: any byte string either decodes to exactly one entry or yields
//! a [`DecodeError`]; lengths are checked against the bytes present before anything
//! is allocated.

use std::collections::HashMap;
use std::ops::Range;

/// Record kind of [`WalEntry::Put`].
pub const KIND_PUT: u8 = 1;
/// Record kind of [`WalEntry::Delete`].
pub const KIND_DELETE: u8 = 2;
/// Record kind of [`WalEntry::Commit`].
pub const KIND_COMMIT: u8 = 3;
/// Record kind of [`WalEntry::Checkpoint`].
pub const KIND_CHECKPOINT: u8 = 4;
/// Record kind of the internal sync marker (empty payload, never returned by a
/// reader): written after the final fsync of a clean close, so that its sync
/// distance vouches for every record before it.
pub const KIND_SYNC_MARKER: u8 = 5;
/// Record kind of [`WalEntry::Watermarks`].
pub const KIND_WATERMARKS: u8 = 6;

/// One entry of the write-ahead log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalEntry {
    /// Sets `key` to `value`. Becomes visible at the next `Commit`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Removes `key`. Becomes visible at the next `Commit`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Closes a transaction: the Puts and Deletes since the previous Commit become
    /// visible together with these source offsets and this watermark.
    Commit {
        /// Source offsets consumed, by source (or partition) name.
        offsets: HashMap<String, u64>,
        /// Event-time watermark, if the operator has one.
        watermark: Option<i64>,
    },
    /// Marks that checkpoint `id` was taken at this point of the log.
    Checkpoint {
        /// The checkpoint's id.
        id: u64,
    },
    /// The watermark of each named source partition. Part of the transaction
    /// it is in: like a Put, it becomes visible at the next `Commit`, whose
    /// `watermark` is the combined one (see
    /// [`SourcePositions`](crate::SourcePositions)). Partitions it does not
    /// name keep their watermark.
    Watermarks {
        /// Watermark by source partition name.
        watermarks: HashMap<String, i64>,
    },
}

/// Why a payload did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The record kind is not one this build knows.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// A length or field runs past the end of the payload.
    #[error("payload truncated: {field} needs {needed} bytes at byte {at}, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Byte offset in the payload.
        at: usize,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the payload.
        available: usize,
    },
    /// Bytes are left over after the entry.
    #[error("{0} unexpected trailing bytes after the entry")]
    TrailingBytes(usize),
    /// A source name is not valid UTF-8.
    #[error("source name at byte {0} is not valid UTF-8")]
    InvalidUtf8(usize),
    /// A flag byte holds something other than 0 or 1.
    #[error("flag at byte {at} is {value}, expected 0 or 1")]
    InvalidFlag {
        /// Byte offset in the payload.
        at: usize,
        /// The byte found.
        value: u8,
    },
    /// Source names of a Commit are not in strictly ascending byte order (a
    /// duplicate, or an encoder that did not sort).
    #[error("source name at byte {0} is not strictly greater than the one before")]
    UnsortedSources(usize),
    /// A Commit without a watermark has something other than zero in the
    /// watermark field (only one encoding of an entry is valid).
    #[error("watermark at byte {0} must be 0 when the Commit has none")]
    AbsentWatermarkNotZero(usize),
}

impl WalEntry {
    /// The record kind this entry is written with.
    pub fn kind(&self) -> u8 {
        match self {
            WalEntry::Put { .. } => KIND_PUT,
            WalEntry::Delete { .. } => KIND_DELETE,
            WalEntry::Commit { .. } => KIND_COMMIT,
            WalEntry::Checkpoint { .. } => KIND_CHECKPOINT,
            WalEntry::Watermarks { .. } => KIND_WATERMARKS,
        }
    }

    /// The exact number of payload bytes [`WalEntry::encode_into`] appends.
    pub fn encoded_len(&self) -> u64 {
        match self {
            WalEntry::Put { key, value } => 8 + key.len() as u64 + value.len() as u64,
            WalEntry::Delete { key } => 4 + key.len() as u64,
            WalEntry::Commit { offsets, .. } => 9 + named_map_len(offsets),
            WalEntry::Checkpoint { .. } => 8,
            WalEntry::Watermarks { watermarks } => named_map_len(watermarks),
        }
    }

    /// Appends the payload encoding to `out`. The caller has checked that
    /// [`WalEntry::encoded_len`] fits the maximum record size (so every length fits
    /// in a `u32`).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            WalEntry::Put { key, value } => {
                put_bytes(out, key);
                put_bytes(out, value);
            }
            WalEntry::Delete { key } => put_bytes(out, key),
            WalEntry::Commit { offsets, watermark } => {
                out.push(u8::from(watermark.is_some()));
                out.extend_from_slice(&watermark.unwrap_or(0).to_le_bytes());
                encode_named_map(out, offsets, |v| v.to_le_bytes());
            }
            WalEntry::Checkpoint { id } => out.extend_from_slice(&id.to_le_bytes()),
            WalEntry::Watermarks { watermarks } => {
                encode_named_map(out, watermarks, |v| v.to_le_bytes());
            }
        }
    }

    /// Decodes the payload of a record of `kind`.
    ///
    /// # Errors
    /// A [`DecodeError`] when the bytes are not exactly one entry of that kind.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<WalEntry, DecodeError> {
        WalEntryRef::decode(kind, payload).map(WalEntryRef::into_owned)
    }

    /// Decodes a Commit, Checkpoint or Watermarks payload (the kinds that own
    /// their data).
    fn decode_owned(kind: u8, payload: &[u8]) -> Result<WalEntry, DecodeError> {
        let mut r = Cursor { b: payload, at: 0 };
        let entry = match kind {
            KIND_COMMIT => {
                let flag_at = r.at;
                let flag = r.take("watermark flag", 1)?[0];
                let wm_at = r.at;
                let wm = i64::from_le_bytes(r.array("watermark")?);
                let watermark = match flag {
                    0 if wm != 0 => return Err(DecodeError::AbsentWatermarkNotZero(wm_at)),
                    0 => None,
                    1 => Some(wm),
                    value => return Err(DecodeError::InvalidFlag { at: flag_at, value }),
                };
                let offsets = r.named_map(
                    ["source count", "source name", "source offset"],
                    u64::from_le_bytes,
                )?;
                WalEntry::Commit { offsets, watermark }
            }
            KIND_CHECKPOINT => WalEntry::Checkpoint {
                id: u64::from_le_bytes(r.array("checkpoint id")?),
            },
            KIND_WATERMARKS => WalEntry::Watermarks {
                watermarks: r.named_map(
                    ["partition count", "partition name", "partition watermark"],
                    i64::from_le_bytes,
                )?,
            },
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(entry)
    }
}

/// Appends a length-prefixed byte string.
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Payload bytes of a map of names to 8-byte values.
fn named_map_len<V>(map: &HashMap<String, V>) -> u64 {
    4 + map.keys().map(|k| 12 + k.len() as u64).sum::<u64>()
}

/// Appends a count, then each name (length-prefixed, in ascending byte order)
/// with its 8-byte value.
fn encode_named_map<V>(out: &mut Vec<u8>, map: &HashMap<String, V>, le: impl Fn(&V) -> [u8; 8]) {
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    let mut sorted: Vec<(&String, &V)> = map.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, value) in sorted {
        put_bytes(out, name.as_bytes());
        out.extend_from_slice(&le(value));
    }
}

/// A decoded entry whose keys and values borrow from the record's payload: what
/// replay reads without allocating per entry. Commits and Checkpoint markers
/// (rare, small) are decoded owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalEntryRef<'a> {
    /// [`WalEntry::Put`], borrowed.
    Put {
        /// The key.
        key: &'a [u8],
        /// The new value.
        value: &'a [u8],
    },
    /// [`WalEntry::Delete`], borrowed.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// A Commit, Checkpoint marker or Watermarks entry.
    Owned(WalEntry),
}

impl<'a> WalEntryRef<'a> {
    /// Decodes the payload of a record of `kind`, borrowing keys and values.
    ///
    /// # Errors
    /// A [`DecodeError`] when the bytes are not exactly one entry of that kind.
    pub fn decode(kind: u8, payload: &'a [u8]) -> Result<Self, DecodeError> {
        match change_ranges(kind, payload)? {
            Some((key, Some(value))) => Ok(WalEntryRef::Put {
                key: &payload[key],
                value: &payload[value],
            }),
            Some((key, None)) => Ok(WalEntryRef::Delete { key: &payload[key] }),
            None => WalEntry::decode_owned(kind, payload).map(WalEntryRef::Owned),
        }
    }

    /// For a Put or Delete, its key and new value (`None`: deleted).
    pub fn change(&self) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        match *self {
            WalEntryRef::Put { key, value } => Some((key, Some(value))),
            WalEntryRef::Delete { key } => Some((key, None)),
            WalEntryRef::Owned(_) => None,
        }
    }

    /// The owned entry.
    pub fn into_owned(self) -> WalEntry {
        match self {
            WalEntryRef::Put { key, value } => WalEntry::Put {
                key: key.to_vec(),
                value: value.to_vec(),
            },
            WalEntryRef::Delete { key } => WalEntry::Delete { key: key.to_vec() },
            WalEntryRef::Owned(entry) => entry,
        }
    }
}

/// A change's key range and, for a Put, its value range.
pub(crate) type ChangeRanges = (Range<usize>, Option<Range<usize>>);

/// Checks that a verified payload of `kind` decodes as an entry (or is a sync
/// marker), without building it.
///
/// # Errors
/// The [`DecodeError`] reading it would fail with.
pub(crate) fn check_payload(kind: u8, payload: &[u8]) -> Result<(), DecodeError> {
    if kind == KIND_SYNC_MARKER && payload.is_empty() {
        return Ok(());
    }
    match change_ranges(kind, payload)? {
        Some(_) => Ok(()),
        None => WalEntry::decode(kind, payload).map(drop),
    }
}

/// Byte ranges in `payload` of a Put's key and value, or a Delete's key (value
/// `None`); `None` for the other kinds. Ranges, not slices, so that a reader can
/// validate a record before it lends out its bytes.
///
/// # Errors
/// A [`DecodeError`] when a Put or Delete payload is not exactly one entry.
pub(crate) fn change_ranges(kind: u8, payload: &[u8]) -> Result<Option<ChangeRanges>, DecodeError> {
    let mut r = Cursor { b: payload, at: 0 };
    let ranges = match kind {
        KIND_PUT => {
            let key = r.range("key")?;
            (key, Some(r.range("value")?))
        }
        KIND_DELETE => (r.range("key")?, None),
        _ => return Ok(None),
    };
    r.finish()?;
    Ok(Some(ranges))
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.b.len() - self.at
    }

    fn take(&mut self, field: &'static str, n: u64) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() as u64 {
            return Err(DecodeError::Truncated {
                field,
                at: self.at,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.b[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(field, N as u64)?);
        Ok(a)
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = u32::from_le_bytes(self.array(field)?);
        self.take(field, len as u64)
    }

    /// A map written by [`encode_named_map`]: names strictly ascending, UTF-8.
    /// `fields` names the count, a name and a value, for errors.
    fn named_map<V>(
        &mut self,
        [count_field, name_field, value_field]: [&'static str; 3],
        value: impl Fn([u8; 8]) -> V,
    ) -> Result<HashMap<String, V>, DecodeError> {
        let count = u32::from_le_bytes(self.array(count_field)?) as usize;
        // Every name takes at least 12 bytes: bound the map by the payload.
        let mut map = HashMap::with_capacity(count.min(self.remaining() / 12));
        let mut previous: Option<&[u8]> = None;
        for _ in 0..count {
            let name_at = self.at + 4;
            let raw = self.bytes(name_field)?;
            if previous.is_some_and(|p| p >= raw) {
                return Err(DecodeError::UnsortedSources(name_at));
            }
            previous = Some(raw);
            let name = std::str::from_utf8(raw)
                .map_err(|_| DecodeError::InvalidUtf8(name_at))?
                .to_owned();
            map.insert(name, value(self.array(value_field)?));
        }
        Ok(map)
    }

    /// A length-prefixed field, as a range of the payload.
    fn range(&mut self, field: &'static str) -> Result<Range<usize>, DecodeError> {
        let len = u32::from_le_bytes(self.array(field)?);
        let start = self.at;
        self.take(field, len as u64)?;
        Ok(start..self.at)
    }

    /// Fails when bytes are left over.
    fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(e: &WalEntry) {
        let mut buf = Vec::new();
        e.encode_into(&mut buf);
        assert_eq!(buf.len() as u64, e.encoded_len());
        assert_eq!(WalEntry::decode(e.kind(), &buf).as_ref(), Ok(e));
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(&WalEntry::Put {
            key: b"k".to_vec(),
            value: vec![7; 100],
        });
        round_trip(&WalEntry::Delete { key: vec![] });
        round_trip(&WalEntry::Commit {
            offsets: HashMap::from([("a".into(), 1), ("topic-0".into(), u64::MAX)]),
            watermark: Some(-5),
        });
        round_trip(&WalEntry::Commit {
            offsets: HashMap::new(),
            watermark: None,
        });
        round_trip(&WalEntry::Checkpoint { id: 42 });
        round_trip(&WalEntry::Watermarks {
            watermarks: HashMap::from([("p0".into(), i64::MIN), ("p1".into(), 7)]),
        });
        round_trip(&WalEntry::Watermarks {
            watermarks: HashMap::new(),
        });
    }

    #[test]
    fn garbage_lengths_do_not_allocate_or_panic() {
        // A key length of 4 GiB in a 12-byte payload.
        let payload = [0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8];
        assert!(matches!(
            WalEntry::decode(KIND_PUT, &payload),
            Err(DecodeError::Truncated { .. })
        ));
        // A Commit claiming 4 billion sources.
        let mut c = vec![0u8; 9];
        c.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(WalEntry::decode(KIND_COMMIT, &c).is_err());
        assert_eq!(WalEntry::decode(9, &[]), Err(DecodeError::UnknownKind(9)));
    }

    /// Found by the `wal_record` fuzz target: a Commit without a watermark but
    /// with garbage in the watermark field decoded, and re-encoded differently.
    #[test]
    fn an_absent_watermark_must_be_zero() {
        let payload = [0, 0xfb, 0xff, 0xff, 0xff, 12, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            WalEntry::decode(KIND_COMMIT, &payload),
            Err(DecodeError::AbsentWatermarkNotZero(1))
        );
        let mut canonical = payload;
        canonical[1..9].fill(0);
        round_trip(&WalEntry::decode(KIND_COMMIT, &canonical).unwrap());
    }

    proptest! {
        #[test]
        fn decode_never_panics(kind in 0u8..8, bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = WalEntry::decode(kind, &bytes);
        }

        #[test]
        fn puts_round_trip(key in proptest::collection::vec(any::<u8>(), 0..40),
                           value in proptest::collection::vec(any::<u8>(), 0..200)) {
            round_trip(&WalEntry::Put { key, value });
        }
    }
}
