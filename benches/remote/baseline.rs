//! The baseline: `object_store`'s own multipart put and ranged gets of the
//! same bytes, with the same part size and the same number of requests in
//! flight, on the bench's own tokio runtime (as many worker threads as the
//! highwater store's runtime: `ObjectStoreOptions::default().worker_threads`).
//! Also the bucket and the clean-up between rounds.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use std::ops::Range;
use std::sync::Arc;

/// The baseline's store and runtime.
pub struct Baseline {
    pub store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
}

impl Baseline {
    /// `bucket` on the S3 server of the environment (`AWS_ENDPOINT`, …).
    pub fn new(bucket: &str, worker_threads: usize) -> Self {
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .expect("an S3 store from the environment");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .thread_name("bench-baseline")
            .enable_all()
            .build()
            .expect("the baseline's runtime");
        Baseline {
            store: Arc::new(store),
            runtime,
        }
    }

    /// Uploads `data` to `key` with `WriteMultipart`: parts of `part_bytes`,
    /// at most `concurrency` in flight. Returns the requests sent.
    pub fn put_multipart(
        &self,
        key: &str,
        data: &Bytes,
        part_bytes: usize,
        concurrency: usize,
    ) -> u64 {
        let (store, path, data) = (self.store.clone(), Path::from(key), data.clone());
        self.runtime.block_on(async move {
            let upload = store.put_multipart(&path).await.expect("start the upload");
            let mut writer = WriteMultipart::new_with_chunk_size(upload, part_bytes);
            let mut parts = 0u64;
            for start in (0..data.len()).step_by(part_bytes) {
                writer
                    .wait_for_capacity(concurrency)
                    .await
                    .expect("a part of the baseline upload");
                writer.put(data.slice(start..(start + part_bytes).min(data.len())));
                parts += 1;
            }
            writer.finish().await.expect("complete the baseline upload");
            parts + 2
        })
    }

    /// Reads `key` (`len` bytes) into memory with ranged gets of
    /// `part_bytes`, at most `concurrency` in flight. Returns the ranges in
    /// order and the requests sent.
    pub fn get_ranges(
        &self,
        key: &str,
        len: u64,
        part_bytes: usize,
        concurrency: usize,
    ) -> (Vec<Bytes>, u64) {
        let (store, path) = (self.store.clone(), Path::from(key));
        let ranges: Vec<Range<u64>> = (0..len)
            .step_by(part_bytes)
            .map(|s| s..(s + part_bytes as u64).min(len))
            .collect();
        let requests = ranges.len() as u64;
        let got = self.runtime.block_on(async move {
            futures::stream::iter(ranges)
                .map(|r| {
                    let (store, path) = (store.clone(), path.clone());
                    async move { store.get_range(&path, r).await }
                })
                .buffered(concurrency)
                .try_collect::<Vec<Bytes>>()
                .await
                .expect("a ranged get of the baseline")
        });
        (got, requests)
    }

    /// One ranged get of `range` of `key`, timed: what one block fetch of
    /// a remote view costs on this server with nothing else in flight.
    pub fn time_range(&self, key: &str, range: Range<u64>) -> std::time::Duration {
        let (store, path) = (self.store.clone(), Path::from(key));
        let want = (range.end - range.start) as usize;
        let started = std::time::Instant::now();
        let got = self
            .runtime
            .block_on(async move { store.get_range(&path, range).await })
            .expect("a small ranged get of the baseline");
        let elapsed = started.elapsed();
        assert_eq!(got.len(), want, "the small ranged get's length");
        elapsed
    }

    /// Deletes every object under `prefix`.
    pub fn delete_prefix(&self, prefix: &str) {
        let (store, path) = (self.store.clone(), Path::from(prefix));
        self.runtime.block_on(async move {
            let keys: Vec<Path> = store
                .list(Some(&path))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .expect("list for the clean-up");
            for key in keys {
                store.delete(&key).await.expect("delete for the clean-up");
            }
        });
    }
}
