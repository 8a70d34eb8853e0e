//! [`upload`]: local files to objects, small ones as one put each, large ones
//! as multipart uploads whose parts go in parallel (the module docs of
//! `transfer`: bounds, order, errors).

use super::{
    idempotent, lock, unchanged, Direction, Run, TransferOptions, TransferStats, UploadFile,
};
use crate::blob::{BlobStore, MultipartUpload};
use crate::error::{Error, IoContext, Result};
use crate::storage::{OpenMode, Storage, StorageFile};
use bytes::Bytes;
use std::io;
use std::sync::{Arc, Condvar, Mutex};

/// Uploads every file to its key. Returns once every object is complete
/// (visible).
///
/// # Errors
/// The first error: [`Error::Io`] naming a file that cannot be read or that
/// has another size than listed, or [`Error::Blob`] of a request (after its
/// retries). Every multipart upload the call did not complete is aborted.
pub(crate) fn upload(
    store: &dyn BlobStore,
    storage: &dyn Storage,
    files: &[UploadFile],
    opts: &TransferOptions,
) -> Result<TransferStats> {
    let part_bytes = opts.upload_part_bytes();
    // A file of at most a part is one put (part `None`), a larger one is parts.
    let parts = |f: &UploadFile| (f.size > part_bytes).then(|| f.size.div_ceil(part_bytes));
    let states: Vec<FileState> = files
        .iter()
        .map(|f| FileState::new(parts(f).unwrap_or(0)))
        .collect();
    let count = files
        .iter()
        .fold(0u64, |n, f| n.saturating_add(parts(f).unwrap_or(1)));
    let units = files.iter().enumerate().flat_map(|(i, f)| {
        let units: Box<dyn Iterator<Item = Unit> + Send> = match parts(f) {
            None => Box::new(std::iter::once(Unit {
                file: i,
                part: None,
            })),
            Some(n) => Box::new((0..n).map(move |p| Unit {
                file: i,
                part: Some(p),
            })),
        };
        units
    });
    let total = files.iter().fold(0u64, |n, f| n.saturating_add(f.size));
    let run = Run::new(Direction::Upload, opts, total, files.len() as u64);
    let job = Job {
        store,
        storage,
        files,
        states: &states,
        part_bytes,
        run: &run,
    };
    run.work(
        opts.concurrency,
        count,
        units,
        |u| job.unit(u),
        || job.wake(),
    );
    if run.stopped() {
        job.abort_unfinished();
    }
    let stats = run.finish()?;
    tracing::debug!(
        files = files.len(),
        requests = stats.requests,
        bytes = stats.bytes,
        "uploaded checkpoint files"
    );
    Ok(stats)
}

/// One put, or one part of a multipart upload.
#[derive(Debug, Clone, Copy)]
struct Unit {
    file: usize,
    part: Option<u64>,
}

/// A file's multipart upload, shared by the workers of its parts.
#[derive(Debug)]
struct FileState {
    parts: u64,
    state: Mutex<Parts>,
    /// Signalled when the next part may start, and when the call fails.
    turn: Condvar,
}

#[derive(Debug, Default)]
struct Parts {
    /// The local file, opened once for all parts (closed when done).
    file: Option<Arc<dyn StorageFile>>,
    /// Started by part 0; taken by the complete (or the abort).
    upload: Option<Box<dyn MultipartUpload>>,
    /// The next part to start.
    next: u64,
    /// Parts whose answers came back.
    done: u64,
}

impl FileState {
    fn new(parts: u64) -> Self {
        FileState {
            parts,
            state: Mutex::new(Parts::default()),
            turn: Condvar::new(),
        }
    }
}

struct Job<'a> {
    store: &'a dyn BlobStore,
    storage: &'a dyn Storage,
    files: &'a [UploadFile],
    states: &'a [FileState],
    part_bytes: u64,
    run: &'a Run,
}

impl Job<'_> {
    fn unit(&self, unit: Unit) -> Result<()> {
        let f = &self.files[unit.file];
        match unit.part {
            None => {
                let file = open(self.storage, f)?;
                let bytes = read(&*file, f, 0, f.size)?;
                drop(file);
                self.run.request("put", &f.key, idempotent, || {
                    self.store.put(&f.key, bytes.clone())
                })?;
                self.run.moved(f.size);
                self.run.file_done();
                Ok(())
            }
            Some(part) => self.part(unit.file, part),
        }
    }

    /// Reads part `part` of file `i`, starts it in its turn, waits for its
    /// answer; the last answer completes the upload.
    fn part(&self, i: usize, part: u64) -> Result<()> {
        let (f, st) = (&self.files[i], &self.states[i]);
        let start = part * self.part_bytes;
        let end = (start + self.part_bytes).min(f.size);
        let file = {
            let mut parts = lock(&st.state);
            match &parts.file {
                Some(file) => file.clone(),
                None => parts.file.insert(open(self.storage, f)?).clone(),
            }
        };
        let bytes = read(&*file, f, start, end - start)?;
        drop(file);

        let mut parts = lock(&st.state);
        while parts.next != part {
            if self.run.stopped() {
                return Ok(());
            }
            parts = st.turn.wait(parts).unwrap_or_else(|e| e.into_inner());
        }
        if self.run.stopped() {
            return Ok(());
        }
        let mut upload = match parts.upload.take() {
            Some(upload) => upload,
            None => self.run.request("start multipart", &f.key, unchanged, || {
                self.store.put_multipart(&f.key)
            })?,
        };
        let in_flight = self.run.request("part", &f.key, unchanged, || {
            upload.start_part(bytes.clone())
        });
        // Back before any error returns: an unfinished upload is aborted.
        parts.upload = Some(upload);
        let in_flight = in_flight?;
        drop(bytes);
        parts.next += 1;
        drop(parts);
        st.turn.notify_all();

        in_flight.wait()?;
        self.run.moved(end - start);
        let mut parts = lock(&st.state);
        parts.done += 1;
        // Once the call failed, an upload is aborted, not completed.
        if parts.done < st.parts || self.run.stopped() {
            return Ok(());
        }
        parts.file = None;
        let upload = parts.upload.take();
        drop(parts);
        if let Some(upload) = upload {
            self.run.once(|| upload.complete())?;
            self.run.file_done();
        }
        Ok(())
    }

    /// Wakes every worker waiting for a turn (they see the call stopped).
    fn wake(&self) {
        for st in self.states {
            // Under the lock, so a worker between its check and its wait
            // cannot miss the wake-up.
            let _parts = lock(&st.state);
            st.turn.notify_all();
        }
    }

    /// Aborts every upload the call started and did not complete.
    fn abort_unfinished(&self) {
        for (f, st) in self.files.iter().zip(self.states) {
            let Some(upload) = lock(&st.state).upload.take() else {
                continue;
            };
            if let Err(e) = self.run.once(|| upload.abort()) {
                tracing::warn!(key = %f.key, error = %e, "cannot abort a failed multipart upload; garbage collection will");
            }
        }
    }
}

/// Opens `f` and checks its size.
fn open(storage: &dyn Storage, f: &UploadFile) -> Result<Arc<dyn StorageFile>> {
    let file = storage
        .open_file(&f.path, OpenMode::Read)
        .ctx("open", &f.path)?;
    let len = file.len().ctx("stat", &f.path)?;
    if len != f.size {
        return Err(Error::io(
            "read",
            &f.path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the file has {len} bytes, the checkpoint lists {} for object {}",
                    f.size, f.key
                ),
            ),
        ));
    }
    Ok(file)
}

/// Bytes `offset..offset + len` of `f` (`len` is at most a part).
fn read(file: &dyn StorageFile, f: &UploadFile, offset: u64, len: u64) -> Result<Bytes> {
    // At most a part, whose size came from a `usize`.
    let len = len as usize;
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, offset).ctx("read", &f.path)?;
    Ok(Bytes::from(buf))
}
