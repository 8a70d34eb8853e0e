//! [`WorkerReport`]: what a worker tells the coordinator about its part of an
//! epoch (docs/DISTRIBUTED.md, "The protocol", step 3). Plain bytes: the
//! engine may carry them over any transport.
//!
//! Invariants (checked by [`WorkerReport::from_bytes`] and again by the
//! coordinator, so a report is never trusted for having decoded):
//! - The bytes are the checksummed JSON envelope (format
//!   `highwater-worker-report`, version 1), at most [`MAX_REPORT_LEN`].
//! - The chain is non-empty, at most [`MAX_CHAIN`] parts, a full part first
//!   and deltas after it, epochs strictly increasing and none after the
//!   report's; every part is held under `parts/`.
//! - The key-group range is non-empty; the worker index is below the count.
//! - Every part's group indexes have one entry per group of the range and
//!   one more, non-decreasing from 0 (the reader checks the last against
//!   the file).

use crate::blob::BlobKey;
use crate::checkpoint::envelope;
use crate::checkpoint::remote::record::corrupted;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::key_group::KeyGroupRange;
use super::layout::PARTS;

/// The `format` field of every report.
const REPORT_FORMAT: &str = "highwater-worker-report";
const REPORT_VERSION: u32 = 1;
/// Reports larger than this are refused without being parsed.
pub const MAX_REPORT_LEN: u64 = 4 << 20;
/// The most parts a chain holds.
pub const MAX_CHAIN: usize = 64;
const MAX_SINKS: usize = 1024;
const MAX_HANDLE_BYTES: usize = 64 * 1024;
const MAX_PARTITIONS: usize = 65_536;

/// Where a source partition stands at a barrier: the next record to read
/// and the partition's watermark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// The offset of the next record to read.
    pub offset: Option<u64>,
    /// The partition's watermark.
    pub watermark: Option<i64>,
}

/// A sink's pre-commit handle for an epoch (`TransactionalSink::pre_commit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkHandle {
    /// The sink's name.
    pub sink: String,
    /// The handle that publishes the epoch's staged output.
    #[serde(with = "hex_bytes")]
    pub handle: Vec<u8>,
}

/// What a part file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PartKind {
    /// Every key of the worker's range at the part's epoch.
    Full,
    /// The keys put and deleted since the chain's previous part.
    Delta,
}

/// One part file in a worker's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    /// The object holding it (under `parts/`).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// CRC32C of the whole file.
    pub crc32c: u32,
    /// Full or delta.
    pub kind: PartKind,
    /// The epoch it was written for.
    pub epoch: u64,
    /// The group index of its put keys: entry `i` is the index of the first
    /// put key of group `key_groups.start + i`; the last entry is the count.
    /// A range restore reads exactly the keys between two entries.
    pub puts: Vec<u64>,
    /// The same for its deleted keys.
    pub deletes: Vec<u64>,
}

/// A worker's report of epoch `epoch` (module docs: the invariants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The coordinator generation the worker runs under.
    pub generation: u64,
    /// The epoch the report closes.
    pub epoch: u64,
    /// The worker's index.
    pub worker: u32,
    /// How many workers the run has.
    pub workers: u32,
    /// The key groups whose state the chain holds.
    pub key_groups: KeyGroupRange,
    /// The parts that hold the range's state at `epoch`: a full part, then
    /// deltas, oldest first.
    pub chain: Vec<PartRef>,
    /// The worker's source partitions at the barrier.
    pub positions: BTreeMap<String, SourcePosition>,
    /// The worker's sinks' handles for `epoch`.
    pub sinks: Vec<SinkHandle>,
}

impl WorkerReport {
    /// The report as bytes (checksummed JSON).
    ///
    /// # Errors
    /// `InvalidArgument` if the report breaks an invariant (module docs),
    /// does not serialise, or is over [`MAX_REPORT_LEN`] encoded (no reader
    /// would accept it).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.check(Path::new("worker report"))
            .map_err(|e| Error::invalid_argument("encode worker report", e.to_string()))?;
        let bytes = envelope::encode("encode worker report", REPORT_FORMAT, REPORT_VERSION, self)?;
        if bytes.len() as u64 > MAX_REPORT_LEN {
            return Err(Error::invalid_argument(
                "encode worker report",
                format!(
                    "worker {} of epoch {}: the report is {} bytes; a reader reads at most {MAX_REPORT_LEN}",
                    self.worker,
                    self.epoch,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// Decodes and checks a report's bytes.
    ///
    /// # Errors
    /// `CheckpointCorrupted` (naming `worker report` and the byte offset for
    /// JSON errors) for damaged bytes or a report that breaks an invariant;
    /// `UnsupportedVersion`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode_at(Path::new("worker report"), bytes)
    }

    /// [`from_bytes`](Self::from_bytes), errors naming `path`.
    pub(crate) fn decode_at(path: &Path, bytes: &[u8]) -> Result<Self> {
        if bytes.len() as u64 > MAX_REPORT_LEN {
            return Err(corrupted(
                path,
                format!(
                    "report is {} bytes; at most {MAX_REPORT_LEN} are read",
                    bytes.len()
                ),
            ));
        }
        let report: WorkerReport =
            envelope::decode(path, bytes, REPORT_FORMAT, REPORT_VERSION, "worker report")?;
        report.check(path)?;
        Ok(report)
    }

    /// The chain's objects, checked to be valid keys under `parts/`.
    pub(crate) fn part_keys(&self, path: &Path) -> Result<Vec<BlobKey>> {
        self.chain
            .iter()
            .map(|p| {
                let key = BlobKey::new(p.key.clone())
                    .map_err(|e| corrupted(path, format!("part {:?}: {e}", p.key)))?;
                if !key.as_str().starts_with(&format!("{PARTS}/")) {
                    return Err(corrupted(
                        path,
                        format!("part {key} is held outside {PARTS}/"),
                    ));
                }
                Ok(key)
            })
            .collect()
    }

    /// Checks the invariants of the module docs.
    pub(crate) fn check(&self, path: &Path) -> Result<()> {
        let who = format!("worker {} of epoch {}", self.worker, self.epoch);
        if self.workers == 0 || self.worker >= self.workers {
            return Err(corrupted(
                path,
                format!("{who}: index is not below the count {}", self.workers),
            ));
        }
        if self.key_groups.is_empty() {
            return Err(corrupted(path, format!("{who}: empty key-group range")));
        }
        if self.chain.is_empty() || self.chain.len() > MAX_CHAIN {
            return Err(corrupted(
                path,
                format!(
                    "{who}: a chain of {} parts (1 to {MAX_CHAIN})",
                    self.chain.len()
                ),
            ));
        }
        for (i, part) in self.chain.iter().enumerate() {
            let want = if i == 0 {
                PartKind::Full
            } else {
                PartKind::Delta
            };
            if part.kind != want {
                return Err(corrupted(
                    path,
                    format!("{who}: part {i} is {:?}, not {want:?}", part.kind),
                ));
            }
            if i > 0 && part.epoch <= self.chain[i - 1].epoch {
                return Err(corrupted(
                    path,
                    format!("{who}: part epochs do not increase"),
                ));
            }
        }
        let index_len = self.key_groups.len() as usize + 1;
        for (i, part) in self.chain.iter().enumerate() {
            for index in [&part.puts, &part.deletes] {
                if index.len() != index_len
                    || index[0] != 0
                    || index.windows(2).any(|w| w[0] > w[1])
                {
                    return Err(corrupted(
                        path,
                        format!("{who}: part {i}'s group index is not {index_len} non-decreasing entries from 0"),
                    ));
                }
            }
        }
        if self.chain[self.chain.len() - 1].epoch > self.epoch {
            return Err(corrupted(
                path,
                format!("{who}: a part is newer than the report"),
            ));
        }
        self.part_keys(path)?;
        if self.positions.len() > MAX_PARTITIONS || self.sinks.len() > MAX_SINKS {
            return Err(corrupted(
                path,
                format!("{who}: too many partitions or sinks"),
            ));
        }
        if self.sinks.iter().any(|s| s.handle.len() > MAX_HANDLE_BYTES) {
            return Err(corrupted(
                path,
                format!("{who}: a sink handle over {MAX_HANDLE_BYTES} bytes"),
            ));
        }
        Ok(())
    }
}

/// The path errors name for the report of `worker` in `epoch`.
pub(crate) fn report_path(key: &BlobKey) -> PathBuf {
    PathBuf::from(key.as_str())
}

/// Byte strings as lowercase hex in JSON.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd-length hex"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("not hex"))
            })
            .collect()
    }
}
