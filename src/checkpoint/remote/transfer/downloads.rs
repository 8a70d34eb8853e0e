//! [`download`]: objects to new local files, in ranges fetched in parallel
//! and written in place, each file checked against its size and CRC32C (the
//! module docs of `transfer`: bounds, checks, errors).

use super::{idempotent, lock, Direction, DownloadFile, Run, TransferOptions, TransferStats};
use crate::blob::{BlobError, BlobOp, BlobStore};
use crate::error::{Error, IoContext, Result};
use crate::storage::{OpenMode, Storage, StorageFile};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Downloads every object into its `dest` (created new; its directory
/// exists), verifying size and whole-file CRC32C, and fsyncs each file (not
/// the directory: the caller renames the directory into place and syncs it).
///
/// # Errors
/// The first error: [`Error::CheckpointFileMismatch`] naming the key (as the
/// path) when an object's size or CRC32C is not the expected one;
/// [`Error::Blob`] of a request after its retries
/// ([`BlobError::NotFound`] for a missing object); [`Error::Io`] naming a
/// `dest` that cannot be created, written or synced. Every file the call
/// created is then removed (best effort).
pub(crate) fn download(
    store: &dyn BlobStore,
    storage: &dyn Storage,
    files: &[DownloadFile],
    opts: &TransferOptions,
) -> Result<TransferStats> {
    let range_bytes = opts.download_part_bytes();
    let ranges = |f: &DownloadFile| f.size.div_ceil(range_bytes);
    let states: Vec<FileState> = files
        .iter()
        .map(|f| FileState {
            ranges: ranges(f),
            state: Mutex::new(Ranges::default()),
        })
        .collect();
    let count = files
        .iter()
        .fold(0u64, |n, f| n.saturating_add(ranges(f)).saturating_add(1));
    // Per file: its head (or, when empty, its creation), then its ranges.
    let units = files.iter().enumerate().flat_map(|(i, f)| {
        let n = ranges(f);
        let first = if n == 0 {
            Unit::Empty(i)
        } else {
            Unit::Head(i)
        };
        std::iter::once(first).chain((0..n).map(move |r| Unit::Range(i, r)))
    });
    let total = files.iter().fold(0u64, |n, f| n.saturating_add(f.size));
    let run = Run::new(Direction::Download, opts, total, files.len() as u64);
    let job = Job {
        store,
        storage,
        files,
        states: &states,
        range_bytes,
        run: &run,
    };
    run.work(opts.concurrency, count, units, |u| job.unit(u), || {});
    if run.stopped() {
        job.remove_created();
    }
    let stats = run.finish()?;
    tracing::debug!(
        files = files.len(),
        requests = stats.requests,
        bytes = stats.bytes,
        "downloaded checkpoint files"
    );
    Ok(stats)
}

/// One piece of work of a download.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// Create (and sync) an empty file: no request.
    Empty(usize),
    /// Check the object's size.
    Head(usize),
    /// Fetch and write range `r`.
    Range(usize, u64),
}

#[derive(Debug)]
struct FileState {
    /// How many ranges the file has.
    ranges: u64,
    state: Mutex<Ranges>,
}

#[derive(Debug, Default)]
struct Ranges {
    /// The new file while ranges are written (closed when done).
    file: Option<Arc<dyn StorageFile>>,
    /// This call created `dest` (so it removes it on failure).
    created: bool,
    /// The CRC32C of ranges `0..prefix`, combined in order.
    crc: u32,
    /// How many ranges `crc` covers.
    prefix: u64,
    /// Ranges written after a gap: range → (CRC32C, length), combined once
    /// the ranges before them are.
    later: BTreeMap<u64, (u32, u64)>,
}

struct Job<'a> {
    store: &'a dyn BlobStore,
    storage: &'a dyn Storage,
    files: &'a [DownloadFile],
    states: &'a [FileState],
    range_bytes: u64,
    run: &'a Run,
}

impl Job<'_> {
    fn unit(&self, unit: Unit) -> Result<()> {
        match unit {
            Unit::Empty(i) => {
                let file = self.dest(i)?;
                let dest = &self.files[i].dest;
                file.sync_all().ctx("sync", dest)?;
                lock(&self.states[i].state).file = None;
                self.run.file_done();
                Ok(())
            }
            Unit::Head(i) => {
                let f = &self.files[i];
                let meta = self
                    .run
                    .request("head", &f.key, idempotent, || self.store.head(&f.key))?;
                if meta.size != f.size {
                    return Err(mismatch(f, meta.size, 0));
                }
                Ok(())
            }
            Unit::Range(i, r) => self.range(i, r),
        }
    }

    /// Fetches range `r` of file `i` and writes it in place; the last range
    /// checks the whole file's CRC32C and syncs it.
    fn range(&self, i: usize, r: u64) -> Result<()> {
        let (f, st) = (&self.files[i], &self.states[i]);
        let start = r * self.range_bytes;
        let end = (start + self.range_bytes).min(f.size);
        let bytes = self
            .run
            .request("get", &f.key, idempotent, || {
                self.store.get_range(&f.key, start..end)
            })
            .map_err(|e| match e {
                // The object ends before the expected size.
                BlobError::InvalidRange { size, .. } => mismatch(f, size, 0),
                e => Error::Blob(e),
            })?;
        if bytes.len() as u64 != end - start {
            return Err(Error::Blob(BlobError::Backend {
                operation: BlobOp::Get,
                key: f.key.to_string(),
                reason: format!("range {start}..{end} answered with {} bytes", bytes.len()),
            }));
        }
        let crc = crc32c::crc32c(&bytes);
        let file = self.dest(i)?;
        file.write_all_at(&bytes, start).ctx("write", &f.dest)?;
        drop(bytes);
        self.run.moved(end - start);

        let mut ranges = lock(&st.state);
        ranges.later.insert(r, (crc, end - start));
        loop {
            let next = ranges.prefix;
            let Some((crc, len)) = ranges.later.remove(&next) else {
                break;
            };
            ranges.crc = if ranges.prefix == 0 {
                crc
            } else {
                // A range is at most `part_bytes`, a `usize`.
                crc32c::crc32c_combine(ranges.crc, crc, len as usize)
            };
            ranges.prefix += 1;
        }
        if ranges.prefix < st.ranges {
            return Ok(());
        }
        let whole = ranges.crc;
        ranges.file = None;
        drop(ranges);
        if whole != f.crc32c {
            return Err(mismatch(f, f.size, whole));
        }
        file.sync_all().ctx("sync", &f.dest)?;
        self.run.file_done();
        Ok(())
    }

    /// The new file of `i`, created by the first unit that needs it.
    fn dest(&self, i: usize) -> Result<Arc<dyn StorageFile>> {
        let dest = &self.files[i].dest;
        let mut ranges = lock(&self.states[i].state);
        if let Some(file) = &ranges.file {
            return Ok(file.clone());
        }
        let file = self
            .storage
            .open_file(dest, OpenMode::CreateNew)
            .ctx("create", dest)?;
        ranges.created = true;
        ranges.file = Some(file.clone());
        Ok(file)
    }

    /// Removes every file the call created (best effort).
    fn remove_created(&self) {
        for (f, st) in self.files.iter().zip(self.states) {
            let mut ranges = lock(&st.state);
            ranges.file = None;
            if !ranges.created {
                continue;
            }
            if let Err(e) = self.storage.remove_file(&f.dest) {
                tracing::warn!(path = %f.dest.display(), error = %e, "cannot remove a partly downloaded checkpoint file");
            }
        }
    }
}

/// The object of `f` is not what the checkpoint lists.
fn mismatch(f: &DownloadFile, actual_size: u64, actual_crc: u32) -> Error {
    Error::CheckpointFileMismatch {
        path: PathBuf::from(f.key.as_str()),
        expected_size: f.size,
        actual_size,
        expected_crc: f.crc32c,
        actual_crc,
    }
}
