//! Restoring a range of key groups from a committed epoch: for each report
//! whose range overlaps it, the overlap's keys from each part of its chain,
//! read with exact ranged gets through the group index, folded oldest first
//! (docs/DISTRIBUTED.md, "Rescaling").
//!
//! Invariants:
//! - Only the blocks that hold the overlap's entries (end offsets and bytes
//!   of each column) are fetched, besides each file's header and tail; every
//!   block is verified against the file's table before a byte of it is used,
//!   and each file against the report's size and CRC32C.
//! - A stored key outside the group the index puts it in, or whose group is
//!   not its user key's, is `CheckpointCorrupted` naming the object: never a
//!   key restored to the wrong worker.
//! - Newer parts decide: a delta's put replaces, its delete removes.

use super::key_group::{split_stored, KeyGroupRange, KeyGroups};
use super::protocol::restore_sources;
use super::record::GlobalCheckpoint;
use super::report::{PartRef, WorkerReport};
use crate::blob::{BlobKey, BlobStore};
use crate::checkpoint::remote::record::{corrupted, RemoteFile};
use crate::checkpoint::remote::view::block_cache::BlockCache;
use crate::checkpoint::remote::view::blocks::{Fetch, FetchCounts, RemoteStateFile, EXACT};
use crate::error::{Error, Result};
use crate::state::column_map::ColumnSpan;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Part files a range restore reads at once.
const RESTORE_CONCURRENCY: usize = 8;

/// Restored pairs, by user key.
pub(crate) type Pairs = BTreeMap<Vec<u8>, Vec<u8>>;

/// What a range restore read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RestoreCounts {
    /// Ranged gets sent.
    pub requests: u64,
    /// Bytes fetched.
    pub bytes: u64,
    /// Part files opened.
    pub files: u64,
}

/// Items `range` of column `c`: one exact read of their end offsets, one of
/// their bytes.
fn items(
    file: &RemoteStateFile,
    c: &ColumnSpan,
    range: std::ops::Range<u64>,
    f: &Fetch<'_>,
) -> Result<Vec<Vec<u8>>> {
    if range.is_empty() {
        return Ok(Vec::new());
    }
    if range.end > c.count {
        return Err(corrupted(
            file.path(),
            format!(
                "the group index reaches item {}, the column holds {}",
                range.end, c.count
            ),
        ));
    }
    let first = range.start.saturating_sub(1);
    let raw = file.read(c.ends + 8 * first..c.ends + 8 * range.end, f, EXACT)?;
    let mut ends: Vec<u64> = raw
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    if range.start == 0 {
        ends.insert(0, 0);
    }
    if ends.windows(2).any(|w| w[0] > w[1]) || ends.last().is_some_and(|&e| e > c.bytes_len) {
        return Err(corrupted(
            file.path(),
            "end offsets out of order or past the column",
        ));
    }
    let (lo, hi) = (ends[0], ends[ends.len() - 1]);
    let bytes = file.read(c.bytes + lo..c.bytes + hi, f, EXACT)?;
    Ok(ends
        .windows(2)
        .map(|w| bytes[(w[0] - lo) as usize..(w[1] - lo) as usize].to_vec())
        .collect())
}

/// Checks that `stored` holds a key of group `g`'s run, and returns the
/// user key.
fn user_key(
    path: &Path,
    groups: KeyGroups,
    stored: Vec<u8>,
    within: KeyGroupRange,
) -> Result<Vec<u8>> {
    match split_stored(&stored) {
        Some((g, key)) if within.contains(g) && groups.of(key) == g => Ok(key.to_vec()),
        _ => Err(corrupted(
            path,
            format!("a stored key is not of the key groups {within} the group index says"),
        )),
    }
}

/// Keys `range` of column `c`, read with their neighbours: the key before
/// the range must be of a group before `want`, the key after it of a group
/// after, so that a group index pointing into the middle of `want`'s run
/// cannot leave some of its keys out unnoticed. The neighbours' bytes
/// border the range's, so they rarely cost another block.
fn bounded_keys(
    file: &RemoteStateFile,
    c: &ColumnSpan,
    range: std::ops::Range<u64>,
    want: KeyGroupRange,
    f: &Fetch<'_>,
) -> Result<Vec<Vec<u8>>> {
    if range.start > range.end || range.end > c.count {
        return Err(corrupted(
            file.path(),
            format!(
                "the group index says items {range:?}, the column holds {}",
                c.count
            ),
        ));
    }
    let before = range.start > 0;
    let after = range.end < c.count;
    let wide = range.start - u64::from(before)..range.end + u64::from(after);
    let mut keys = items(file, c, wide, f)?;
    let group = |k: &[u8]| split_stored(k).map(|(g, _)| g);
    if after {
        let k = keys.pop().expect("the key after the range was read");
        if group(&k).is_none_or(|g| g < want.end) {
            return Err(corrupted(
                file.path(),
                format!("the group index ends groups {want} before one of their keys"),
            ));
        }
    }
    if before {
        let k = keys.remove(0);
        if group(&k).is_none_or(|g| g >= want.start) {
            return Err(corrupted(
                file.path(),
                format!("the group index starts groups {want} after one of their keys"),
            ));
        }
    }
    Ok(keys)
}

/// What one part says about the overlap: keys deleted, pairs put (user
/// keys, checked).
#[derive(Default)]
struct Overlap {
    deleted: Vec<Vec<u8>>,
    put: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads the overlap `want` of one part.
fn read_part(
    store: &dyn BlobStore,
    groups: KeyGroups,
    report: &WorkerReport,
    part: &PartRef,
    want: KeyGroupRange,
    f: (&BlockCache, &FetchCounts, u64),
) -> Result<Overlap> {
    let key = BlobKey::new(part.key.clone())?;
    let remote = RemoteFile {
        file: part.key.clone(),
        key: part.key.clone(),
        size: part.size,
        crc32c: part.crc32c,
    };
    let (cache, counts, id) = f;
    let file = RemoteStateFile::open(store, &key, &remote, id, cache, counts)?;
    let fetch = Fetch {
        store,
        cache,
        counts,
    };
    let at = |index: &[u64], g: u32| index[(g - report.key_groups.start) as usize];
    let cols = *file.columns();
    if at(&part.puts, report.key_groups.end) != cols.keys.count
        || at(&part.deletes, report.key_groups.end) != cols.deleted.count
    {
        return Err(corrupted(
            file.path(),
            "the group index does not count the file's keys",
        ));
    }
    let puts = at(&part.puts, want.start)..at(&part.puts, want.end);
    let keys = bounded_keys(&file, &cols.keys, puts.clone(), want, &fetch)?;
    let values = items(&file, &cols.values, puts, &fetch)?;
    let dels = at(&part.deletes, want.start)..at(&part.deletes, want.end);
    let mut out = Overlap::default();
    for k in bounded_keys(&file, &cols.deleted, dels, want, &fetch)? {
        out.deleted.push(user_key(file.path(), groups, k, want)?);
    }
    for (k, v) in keys.into_iter().zip(values) {
        out.put.push((user_key(file.path(), groups, k, want)?, v));
    }
    Ok(out)
}

/// The state of key groups `range` at `base`'s epoch, and what reading it
/// cost.
///
/// # Errors
/// The store's errors (`Blob(NotFound)` for a missing part);
/// `StateChecksumMismatch`, `StateCorrupted`, `CheckpointFileMismatch` or
/// `CheckpointCorrupted` naming the object for damage.
pub(crate) fn restore_range(
    store: &dyn BlobStore,
    base: &GlobalCheckpoint,
    range: KeyGroupRange,
) -> Result<(Pairs, RestoreCounts)> {
    let groups = KeyGroups::new(base.key_groups)?;
    let cache = BlockCache::new(16 << 20);
    let counts = FetchCounts::default();
    // Every part to read, in fold order (each overlap's chain, oldest
    // first); read in parallel, folded in this order.
    let tasks: Vec<(&WorkerReport, &PartRef, KeyGroupRange)> = restore_sources(base, range)
        .into_iter()
        .flat_map(|(i, want)| {
            let report = &base.reports[i];
            report.chain.iter().map(move |part| (report, part, want))
        })
        .collect();
    let results: Vec<Mutex<Option<Result<Overlap>>>> =
        tasks.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..RESTORE_CONCURRENCY.min(tasks.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(report, part, want)) = tasks.get(i) else {
                    break;
                };
                let got = read_part(
                    store,
                    groups,
                    report,
                    part,
                    want,
                    (&cache, &counts, i as u64 + 1),
                );
                let failed = got.is_err();
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(got);
                if failed {
                    // The restore fails anyway: stop taking parts.
                    next.store(tasks.len(), Ordering::Relaxed);
                }
            });
        }
    });
    let mut read = Vec::with_capacity(results.len());
    for slot in results {
        match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok(overlap)) => read.push(overlap),
            Some(Err(e)) => return Err(e),
            // Not read: a part failed, and its error is in another slot.
            None => {}
        }
    }
    if read.len() != tasks.len() {
        // Unreachable unless a failed part's slot was lost: never fold a
        // chain with a part missing.
        return Err(Error::invalid_argument(
            "cluster restore",
            format!("{} of {} parts were read", read.len(), tasks.len()),
        ));
    }
    let mut state = BTreeMap::new();
    for overlap in read {
        for k in overlap.deleted {
            state.remove(&k);
        }
        state.extend(overlap.put);
    }
    Ok((
        state,
        RestoreCounts {
            requests: counts.requests.load(Ordering::Relaxed),
            bytes: counts.bytes.load(Ordering::Relaxed),
            files: tasks.len() as u64,
        },
    ))
}
