//! A multipart upload through `object_store`, with a bounded number of parts
//! in flight.
//!
//! Invariant: at most `max_in_flight` parts are being sent at once; a
//! `put_part` beyond that waits for the oldest, so memory is bounded by
//! `max_in_flight` parts plus the caller's buffer. A part sent by
//! `start_part` is not counted there: its caller holds it until the answer
//! (and bounds how many it starts). `complete` and `abort` wait for every
//! part first, of either kind, and `complete` fails if a started part
//! failed. An upload dropped unfinished is aborted in the background (best
//! effort; garbage collection covers a crash).

use super::Pending;
use crate::blob::{BlobError, BlobKey, BlobOp, BlobResult, MultipartUpload, PartInFlight};
use bytes::Bytes;
use object_store::PutPayload;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tokio::runtime::Handle;

pub(super) struct Upload {
    handle: Handle,
    key: BlobKey,
    /// `None` once completed or aborted.
    inner: Option<Box<dyn object_store::MultipartUpload>>,
    in_flight: VecDeque<Pending<()>>,
    max_in_flight: usize,
    /// Parts sent by `start_part` whose tasks are still running.
    started: Arc<Started>,
}

/// The parts `start_part` sent that have not finished, and whether one of
/// them failed.
#[derive(Debug, Default)]
struct Started {
    state: Mutex<(usize, bool)>,
    idle: Condvar,
}

/// Ends a started part when its task finishes or is dropped unfinished
/// (a runtime shut down), so `drain` never waits for a task that is gone.
struct EndOnDrop {
    started: Arc<Started>,
    failed: bool,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.started.end(self.failed);
    }
}

impl Started {
    fn lock(&self) -> MutexGuard<'_, (usize, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self) {
        self.lock().0 += 1;
    }

    fn end(&self, failed: bool) {
        let mut state = self.lock();
        state.0 -= 1;
        state.1 |= failed;
        self.idle.notify_all();
    }

    /// Waits until every started part finished; true if one failed.
    fn wait_idle(&self) -> bool {
        let mut state = self.lock();
        while state.0 > 0 {
            state = self.idle.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.1
    }
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("key", &self.key)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl Upload {
    pub(super) fn new(
        handle: Handle,
        key: BlobKey,
        inner: Box<dyn object_store::MultipartUpload>,
        max_in_flight: usize,
    ) -> Self {
        Upload {
            handle,
            key,
            inner: Some(inner),
            in_flight: VecDeque::new(),
            max_in_flight: max_in_flight.max(1),
            started: Arc::default(),
        }
    }

    /// Waits for every part in flight: the first error of `put_part`'s, or
    /// a failure of any `start_part`'s.
    fn drain(&mut self) -> BlobResult<()> {
        let mut first = Ok(());
        while let Some(part) = self.in_flight.pop_front() {
            if let (Err(e), Ok(())) = (part.wait(), &first) {
                first = Err(e);
            }
        }
        if self.started.wait_idle() && first.is_ok() {
            first = Err(BlobError::Backend {
                operation: BlobOp::Complete,
                key: self.key.to_string(),
                reason: "a part of the upload failed".into(),
            });
        }
        first
    }

    /// Runs `f` on the inner upload as one task and waits for it.
    fn finish<F>(&mut self, op: BlobOp, f: F) -> BlobResult<()>
    where
        F: FnOnce(
                Box<dyn object_store::MultipartUpload>,
            ) -> futures::future::BoxFuture<'static, object_store::Result<()>>
            + Send
            + 'static,
    {
        let inner = self.inner.take().expect("an upload is open until consumed");
        Pending::spawn(&self.handle, op, self.key.as_str(), f(inner)).wait()
    }
}

impl MultipartUpload for Upload {
    fn put_part(&mut self, bytes: Bytes) -> BlobResult<()> {
        while self.in_flight.len() >= self.max_in_flight {
            let oldest = self.in_flight.pop_front().expect("not empty");
            oldest.wait()?;
        }
        let inner = self
            .inner
            .as_mut()
            .expect("an upload is open until consumed");
        let part = inner.put_part(PutPayload::from(bytes));
        let pending = Pending::spawn(&self.handle, BlobOp::Multipart, self.key.as_str(), part);
        self.in_flight.push_back(pending);
        Ok(())
    }

    fn start_part(&mut self, bytes: Bytes) -> BlobResult<PartInFlight> {
        let inner = self
            .inner
            .as_mut()
            .expect("an upload is open until consumed");
        let part = inner.put_part(PutPayload::from(bytes));
        self.started.begin();
        let mut end = EndOnDrop {
            started: self.started.clone(),
            failed: true,
        };
        let task = async move {
            let result = part.await;
            end.failed = result.is_err();
            drop(end);
            result
        };
        let pending = Pending::spawn(&self.handle, BlobOp::Multipart, self.key.as_str(), task);
        Ok(PartInFlight::pending(move || pending.wait()))
    }

    fn complete(mut self: Box<Self>) -> BlobResult<()> {
        self.drain()?;
        self.finish(BlobOp::Complete, |mut inner| {
            Box::pin(async move { inner.complete().await.map(|_| ()) })
        })
    }

    fn abort(mut self: Box<Self>) -> BlobResult<()> {
        let _ = self.drain();
        self.finish(BlobOp::Abort, |mut inner| {
            Box::pin(async move { inner.abort().await })
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(mut inner) = self.inner.take() {
            // Abandoned: abort it without waiting (this may run inside a runtime).
            self.handle.spawn(async move {
                let _ = inner.abort().await;
            });
        }
    }
}
