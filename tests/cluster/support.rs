//! Helpers of the cluster tests: a store that records every read, and a
//! model job driven through the public API that knows the state and
//! positions every restore must give back.
#![allow(dead_code)]

use bytes::Bytes;
use highwater::blob::{
    BlobKey, BlobMeta, BlobResult, BlobStore, CreateOutcome, ListPage, MultipartUpload,
    SimBlobStore,
};
use highwater::cluster::{
    ClusterWorker, Coordinator, CoordinatorConfig, PartKind, SourcePosition, StoreTransport,
    WorkerConfig, WorkerReport,
};
use highwater::{SourcePositions, TrackedState};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// State as the tests compare it.
pub type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory store.
pub fn sim(seed: u64) -> Arc<dyn BlobStore> {
    Arc::new(SimBlobStore::new(seed))
}

/// SplitMix64: the tests' deterministic coin.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A state as a map.
pub fn map_of(state: &TrackedState) -> Map {
    state
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

/// One read a [`CountingStore`] served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A whole-object `get`.
    Whole(String),
    /// A ranged get.
    Range(String, Range<u64>),
}

/// A store that records every `get` and `get_range` it serves.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn BlobStore>,
    reads: Mutex<Vec<Read>>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn BlobStore>) -> Arc<Self> {
        Arc::new(CountingStore {
            inner,
            reads: Mutex::new(Vec::new()),
        })
    }

    /// The reads since the last call, and forgets them.
    pub fn take(&self) -> Vec<Read> {
        std::mem::take(&mut self.reads.lock().unwrap())
    }
}

impl BlobStore for CountingStore {
    fn create_if_absent(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<CreateOutcome> {
        self.inner.create_if_absent(key, bytes)
    }
    fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        self.inner.put(key, bytes)
    }
    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(key)
    }
    fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        self.reads
            .lock()
            .unwrap()
            .push(Read::Whole(key.to_string()));
        self.inner.get(key)
    }
    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<Bytes> {
        self.reads
            .lock()
            .unwrap()
            .push(Read::Range(key.to_string(), range.clone()));
        self.inner.get_range(key, range)
    }
    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta> {
        self.inner.head(key)
    }
    fn list(
        &self,
        prefix: Option<&BlobKey>,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<ListPage> {
        self.inner.list(prefix, after, limit)
    }
    fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        self.inner.delete(key)
    }
    fn abort_abandoned_uploads(&self, older_than: SystemTime) -> BlobResult<u64> {
        self.inner.abort_abandoned_uploads(older_than)
    }
}

/// Replaces the byte at `at` of object `key` by its complement.
pub fn flip(store: &dyn BlobStore, key: &str, at: usize) {
    let key = BlobKey::new(key).unwrap();
    let mut bytes = store.get(&key).unwrap().to_vec();
    bytes[at] ^= 0xff;
    store.put(&key, Bytes::from(bytes)).unwrap();
}

/// One run of a [`Job`]: its coordinator and its joined workers, with the
/// state each restored.
pub struct Run {
    pub coordinator: Coordinator,
    pub workers: Vec<ClusterWorker>,
    pub states: Vec<TrackedState>,
    /// Parts in each worker's chain since it joined (the next checkpoint
    /// is full at 0 and at the job's `max_chain`).
    pub chains: Vec<usize>,
}

/// A job driven through the public API, and what it must hold: the state
/// and source positions of its last committed epoch.
pub struct Job {
    pub store: Arc<dyn BlobStore>,
    pub key_groups: u32,
    pub max_chain: usize,
    pub seed: u64,
    /// Keys `0..keys` of [`Job::key`] are written.
    pub keys: u64,
    /// Partitions `p0..` the runs read.
    pub partitions: u32,
    /// Send reports through [`StoreTransport`] instead of handing them over.
    pub transport: bool,
    pub expected: Map,
    pub positions: BTreeMap<String, SourcePosition>,
    /// The last committed epoch.
    pub epoch: u64,
}

impl Job {
    pub fn new(store: Arc<dyn BlobStore>, key_groups: u32, seed: u64) -> Job {
        Job {
            store,
            key_groups,
            max_chain: 3,
            seed,
            keys: 300,
            partitions: 8,
            transport: false,
            expected: Map::new(),
            positions: BTreeMap::new(),
            epoch: 0,
        }
    }

    /// Key `j`: mostly text, every 7th not UTF-8.
    pub fn key(j: u64) -> Vec<u8> {
        if j % 7 == 3 {
            let mut k = vec![0xff, 0xfe];
            k.extend_from_slice(&j.to_be_bytes());
            k
        } else {
            format!("key-{j}").into_bytes()
        }
    }

    /// Starts a run of `n` workers: claims, publishes the base again, joins
    /// every worker, and asserts each restored exactly the expected state
    /// of its key groups, all of them together the whole expected state,
    /// and every partition's position.
    pub fn start(&mut self, n: u32) -> Run {
        let config = CoordinatorConfig::new(self.store.clone(), n).with_key_groups(self.key_groups);
        let mut coordinator = Coordinator::start(config).unwrap();
        assert_eq!(coordinator.restored().map_or(0, |b| b.epoch), self.epoch);
        if self.epoch > 0 {
            coordinator.sinks_committed(self.epoch).unwrap();
        }
        let mut workers = Vec::new();
        let mut states = Vec::new();
        let mut union = Map::new();
        for i in 0..n {
            let config = WorkerConfig::new(self.store.clone(), coordinator.generation(), i)
                .with_max_chain(self.max_chain);
            let (worker, restored) = ClusterWorker::join(config).unwrap();
            assert_eq!(restored.epoch, self.epoch, "worker {i} of {n}");
            let got = map_of(&restored.state);
            let want: Map = self
                .expected
                .iter()
                .filter(|(k, _)| worker.owns(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert!(
                got == want,
                "worker {i} of {n} (groups {}) restored {} keys, expected {}; \
                 extra {:?}, missing {:?}",
                worker.key_groups(),
                got.len(),
                want.len(),
                got.keys().find(|k| !want.contains_key(*k)),
                want.keys().find(|k| !got.contains_key(*k)),
            );
            assert_eq!(restored.positions, self.positions, "worker {i} of {n}");
            for (k, v) in got {
                assert!(union.insert(k, v).is_none(), "a key restored twice");
            }
            workers.push(worker);
            states.push(restored.state);
        }
        assert_eq!(union, self.expected, "the workers restored the whole state");
        Run {
            coordinator,
            chains: vec![0; n as usize],
            workers,
            states,
        }
    }

    /// The next epoch in `run`: puts, overwrites and deletes across the key
    /// space (each on the worker owning the key), new positions, a
    /// checkpoint on every worker (asserting full or delta as the chain
    /// rule says), a commit and the sinks' acknowledgement. Returns the
    /// committed reports.
    pub fn epoch(&mut self, run: &mut Run) -> Vec<WorkerReport> {
        let epoch = self.epoch + 1;
        let n = run.workers.len() as u32;
        for j in 0..self.keys {
            let coin = splitmix(self.seed ^ (epoch << 40) ^ j);
            let key = Job::key(j);
            let owner = run.workers.iter().position(|w| w.owns(&key)).unwrap();
            match coin % 8 {
                0 | 1 => {
                    let value = format!("v{epoch}-{j}-{}", "x".repeat((coin >> 8) as usize % 40));
                    run.states[owner].put(key.clone(), value.clone().into_bytes());
                    self.expected.insert(key, value.into_bytes());
                }
                2 => {
                    run.states[owner].delete(&key);
                    self.expected.remove(&key);
                }
                _ => {}
            }
        }
        let mut reports = Vec::new();
        for (i, worker) in run.workers.iter_mut().enumerate() {
            let mut sources = SourcePositions::new();
            for q in (0..self.partitions).filter(|q| q % n == i as u32) {
                let p = format!("p{q}");
                let offset = epoch * 1000 + u64::from(q);
                let watermark = epoch as i64 * 10 + i64::from(q);
                sources.set_offset(p.clone(), offset).unwrap();
                sources.advance_watermark(p.clone(), watermark);
                self.positions.insert(
                    p,
                    SourcePosition {
                        offset: Some(offset),
                        watermark: Some(watermark),
                    },
                );
            }
            let report = worker
                .checkpoint(epoch, &mut run.states[i], &sources, vec![])
                .unwrap();
            let chain = &mut run.chains[i];
            *chain = if *chain == 0 || *chain >= self.max_chain {
                1
            } else {
                *chain + 1
            };
            assert_eq!(
                report.chain.len(),
                *chain,
                "worker {i} of {n}, epoch {epoch}"
            );
            assert_eq!(report.chain[0].kind, PartKind::Full);
            assert!(report.chain[1..].iter().all(|p| p.kind == PartKind::Delta));
            assert_eq!(report.chain.last().unwrap().epoch, epoch);
            reports.push(report);
        }
        if self.transport {
            let transport = StoreTransport::new(self.store.clone())
                .with_poll_interval(Duration::from_millis(5));
            for r in &reports {
                transport.send(r).unwrap();
            }
            let generation = run.coordinator.generation();
            reports = transport
                .wait(generation, epoch, n, Duration::from_secs(60))
                .unwrap();
        }
        let committed = run.coordinator.commit(epoch, reports.clone()).unwrap();
        assert_eq!(committed.epoch, epoch);
        assert_eq!(committed.positions(), self.positions);
        run.coordinator.sinks_committed(epoch).unwrap();
        self.epoch = epoch;
        reports
    }
}
