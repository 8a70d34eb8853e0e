//! A multipart upload through `object_store`, with a bounded number of parts
//! in flight.
//!
//! Invariant: at most `max_in_flight` parts are being sent at once; a
//! `put_part` beyond that waits for the oldest, so memory is bounded by
//! `max_in_flight` parts plus the caller's buffer. `complete` waits for every
//! part first. An upload dropped unfinished is aborted in the background
//! (best effort; garbage collection covers a crash).

use super::Pending;
use crate::blob::{BlobKey, BlobOp, BlobResult, MultipartUpload};
use bytes::Bytes;
use object_store::PutPayload;
use std::collections::VecDeque;
use std::fmt;
use tokio::runtime::Handle;

pub(super) struct Upload {
    handle: Handle,
    key: BlobKey,
    /// `None` once completed or aborted.
    inner: Option<Box<dyn object_store::MultipartUpload>>,
    in_flight: VecDeque<Pending<()>>,
    max_in_flight: usize,
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
        }
    }

    fn drain(&mut self) -> BlobResult<()> {
        while let Some(part) = self.in_flight.pop_front() {
            part.wait()?;
        }
        Ok(())
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
