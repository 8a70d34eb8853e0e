//! [`SimBlobStore`]: an in-memory object store whose client can crash at any
//! operation and whose answers can be lost, deterministically from a seed.
//!
//! The objects live in a bucket shared by every client made from it with
//! [`SimBlobStore::reboot`] (an object store outlives the process that
//! wrote to it). Each client counts its operations from 0; a fault planned
//! for operation `n` ([`SimBlobStore::fail_at`]) or for the `n`-th operation
//! of a kind ([`SimBlobStore::fail_nth`]) strikes there:
//!
//! | fault | a mutation (create, put, delete, part, complete, abort) | a read |
//! |---|---|---|
//! | [`BlobFault::Crash`] | takes effect or not (a seeded coin), returns `Crashed`; every later call of this client returns `Crashed` | returns `Crashed`, same |
//! | [`BlobFault::Indeterminate`] | takes effect or not (the coin), returns `Indeterminate` | returns `Transient` |
//! | [`BlobFault::Transient`] / [`BlobFault::Throttled`] | no effect, returns that error | same |
//!
//! Invariants: every effect is atomic under one lock (a create is checked and
//! applied in one step); the same seed and the same calls give the same
//! outcomes; an upload that is neither completed nor aborted stays pending
//! ([`SimBlobStore::pending_uploads`]) as a crashed writer would leave it,
//! until [`BlobStore::abort_abandoned_uploads`] aborts it: uploads and
//! objects carry the simulated clock ([`SimBlobStore::advance_clock`]).

use super::{
    check_range, page_limit, BlobError, BlobKey, BlobMeta, BlobOp, BlobResult, BlobStore,
    CreateOutcome, ListPage, MultipartUpload,
};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fault [`SimBlobStore`] injects (module docs: what each does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobFault {
    /// The client crashes at this operation.
    Crash,
    /// The answer is lost: the operation may or may not take effect.
    Indeterminate,
    /// The operation fails before it takes effect.
    Transient,
    /// The service throttles the operation (no effect).
    Throttled,
}

#[derive(Debug)]
struct Object {
    bytes: Bytes,
    etag: u64,
    modified: SystemTime,
}

#[derive(Debug, Default)]
struct Bucket {
    objects: BTreeMap<BlobKey, Object>,
    /// Pending multipart uploads by id.
    uploads: BTreeMap<u64, Upload>,
    next_id: u64,
    /// Seconds past the epoch of the simulated clock.
    clock: u64,
}

/// A multipart upload neither completed nor aborted.
#[derive(Debug)]
struct Upload {
    key: BlobKey,
    parts: Vec<Bytes>,
    /// The simulated clock when it started.
    started: SystemTime,
}

#[derive(Debug)]
struct Client {
    bucket: Arc<Mutex<Bucket>>,
    seed: u64,
    ops: AtomicU64,
    faults: Mutex<Faults>,
    crashed: AtomicBool,
}

#[derive(Debug, Default)]
struct Faults {
    at: HashMap<u64, BlobFault>,
    nth: HashMap<(BlobOp, u64), BlobFault>,
    seen: HashMap<BlobOp, u64>,
}

/// An in-memory blob store with crashes and lost answers (module docs).
///
/// # Examples
/// A create whose answer is lost: the caller cannot tell whether it
/// happened until it reads the key.
/// ```
/// use highwater::blob::{BlobFault, BlobKey, BlobStore, SimBlobStore};
/// let store = SimBlobStore::new(42);
/// let key = BlobKey::new("commits/1")?;
/// store.fail_at(0, BlobFault::Indeterminate);
/// let err = store.create_if_absent(&key, "record".into()).unwrap_err();
/// assert!(err.is_indeterminate());
/// let happened = store.head(&key).is_ok(); // either answer is possible
/// # let _ = happened;
/// # Ok::<(), highwater::blob::BlobError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SimBlobStore {
    client: Arc<Client>,
}

impl SimBlobStore {
    /// An empty bucket and a client of it; `seed` decides every coin.
    pub fn new(seed: u64) -> Self {
        Self::client_of(Arc::new(Mutex::new(Bucket::default())), seed)
    }

    fn client_of(bucket: Arc<Mutex<Bucket>>, seed: u64) -> Self {
        SimBlobStore {
            client: Arc::new(Client {
                bucket,
                seed,
                ops: AtomicU64::new(0),
                faults: Mutex::new(Faults::default()),
                crashed: AtomicBool::new(false),
            }),
        }
    }

    /// A new client of the same bucket (the process restarted): no faults
    /// planned, operations counted from 0, the seed advanced.
    pub fn reboot(&self) -> Self {
        let seed = splitmix(self.client.seed ^ 0x5eed);
        Self::client_of(self.client.bucket.clone(), seed)
    }

    /// Plans `fault` for this client's operation number `op` (from 0).
    pub fn fail_at(&self, op: u64, fault: BlobFault) {
        lock(&self.client.faults).at.insert(op, fault);
    }

    /// Plans `fault` for the `n`-th (from 0) operation of kind `kind`.
    pub fn fail_nth(&self, kind: BlobOp, n: u64, fault: BlobFault) {
        lock(&self.client.faults).nth.insert((kind, n), fault);
    }

    /// Operations this client has started (faulted ones included).
    pub fn ops(&self) -> u64 {
        self.client.ops.load(Ordering::SeqCst)
    }

    /// Operations of kind `kind` this client has started: the `n` that
    /// [`fail_nth`](Self::fail_nth) gives the next one of them.
    pub fn ops_of(&self, kind: BlobOp) -> u64 {
        lock(&self.client.faults)
            .seen
            .get(&kind)
            .copied()
            .unwrap_or(0)
    }

    /// True once this client crashed.
    pub fn crashed(&self) -> bool {
        self.client.crashed.load(Ordering::SeqCst)
    }

    /// The keys of multipart uploads neither completed nor aborted.
    pub fn pending_uploads(&self) -> Vec<BlobKey> {
        let bucket = lock(&self.client.bucket);
        bucket.uploads.values().map(|u| u.key.clone()).collect()
    }

    /// Moves the simulated clock (objects' `last_modified`, uploads' start
    /// times) forward, in whole seconds.
    pub fn advance_clock(&self, by: Duration) {
        lock(&self.client.bucket).clock += by.as_secs();
    }

    /// The simulated clock: what an object written now has as its
    /// `last_modified` (the Unix epoch until [`advance_clock`](Self::advance_clock)).
    pub fn now(&self) -> SystemTime {
        lock(&self.client.bucket).now()
    }

    /// Starts operation `op` on `key`: counts it and decides its fault.
    /// `Ok(None)`: run normally; `Ok(Some(apply))`: an indeterminate
    /// mutation, run it only if `apply`, then return `err`.
    fn begin(
        &self,
        op: BlobOp,
        key: &str,
        mutation: bool,
    ) -> BlobResult<Option<(bool, BlobError)>> {
        let c = &self.client;
        if c.crashed.load(Ordering::SeqCst) {
            return Err(crashed(op, key));
        }
        let n = c.ops.fetch_add(1, Ordering::SeqCst);
        let fault = {
            let mut faults = lock(&c.faults);
            let seen = faults.seen.entry(op).or_insert(0);
            let nth = *seen;
            *seen += 1;
            faults
                .at
                .remove(&n)
                .or_else(|| faults.nth.remove(&(op, nth)))
        };
        let coin = splitmix(c.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) & 1 == 1;
        let reason = format!("simulated fault at operation {n}");
        let key = key.to_string();
        match fault {
            None => Ok(None),
            Some(BlobFault::Transient) => Err(BlobError::Transient {
                operation: op,
                key,
                reason,
            }),
            Some(BlobFault::Throttled) => Err(BlobError::Throttled {
                operation: op,
                key,
                reason,
            }),
            Some(BlobFault::Indeterminate) if !mutation => Err(BlobError::Transient {
                operation: op,
                key,
                reason,
            }),
            Some(BlobFault::Indeterminate) => Ok(Some((
                coin,
                BlobError::Indeterminate {
                    operation: op,
                    key,
                    reason,
                },
            ))),
            Some(BlobFault::Crash) => {
                c.crashed.store(true, Ordering::SeqCst);
                if mutation {
                    Ok(Some((coin, crashed(op, &key))))
                } else {
                    Err(crashed(op, &key))
                }
            }
        }
    }

    /// Runs mutation `f` under the fault plan.
    fn mutate<T>(
        &self,
        op: BlobOp,
        key: &str,
        f: impl FnOnce(&mut Bucket) -> BlobResult<T>,
    ) -> BlobResult<T> {
        match self.begin(op, key, true)? {
            None => f(&mut lock(&self.client.bucket)),
            Some((apply, err)) => {
                if apply {
                    let _ = f(&mut lock(&self.client.bucket));
                }
                Err(err)
            }
        }
    }

    /// Runs read `f` under the fault plan.
    fn read<T>(
        &self,
        op: BlobOp,
        key: &str,
        f: impl FnOnce(&Bucket) -> BlobResult<T>,
    ) -> BlobResult<T> {
        self.begin(op, key, false)?;
        f(&lock(&self.client.bucket))
    }
}

impl Bucket {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.clock)
    }

    fn write(&mut self, key: &BlobKey, bytes: Bytes) {
        self.next_id += 1;
        let modified = self.now();
        let etag = self.next_id;
        self.objects.insert(
            key.clone(),
            Object {
                bytes,
                etag,
                modified,
            },
        );
    }

    fn object(&self, op: BlobOp, key: &BlobKey) -> BlobResult<&Object> {
        self.objects.get(key).ok_or_else(|| BlobError::NotFound {
            operation: op,
            key: key.to_string(),
        })
    }
}

fn meta(key: &BlobKey, o: &Object) -> BlobMeta {
    BlobMeta {
        key: key.clone(),
        size: o.bytes.len() as u64,
        etag: Some(format!("{:016x}", o.etag)),
        last_modified: Some(o.modified),
    }
}

impl BlobStore for SimBlobStore {
    fn create_if_absent(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<CreateOutcome> {
        self.mutate(BlobOp::Create, key.as_str(), |b| {
            if b.objects.contains_key(key) {
                return Ok(CreateOutcome::AlreadyExists);
            }
            b.write(key, bytes);
            Ok(CreateOutcome::Created)
        })
    }

    fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        self.mutate(BlobOp::Put, key.as_str(), |b| {
            b.write(key, bytes);
            Ok(())
        })
    }

    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>> {
        let id = self.mutate(BlobOp::Multipart, key.as_str(), |b| {
            b.next_id += 1;
            let upload = Upload {
                key: key.clone(),
                parts: Vec::new(),
                started: b.now(),
            };
            b.uploads.insert(b.next_id, upload);
            Ok(b.next_id)
        })?;
        Ok(Box::new(SimUpload {
            store: self.clone(),
            key: key.clone(),
            id,
        }))
    }

    fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        self.read(BlobOp::Get, key.as_str(), |b| {
            Ok(b.object(BlobOp::Get, key)?.bytes.clone())
        })
    }

    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<Bytes> {
        check_range(key, &range)?;
        self.read(BlobOp::Get, key.as_str(), |b| {
            let bytes = &b.object(BlobOp::Get, key)?.bytes;
            let size = bytes.len() as u64;
            if range.end > size {
                return Err(BlobError::InvalidRange {
                    operation: BlobOp::Get,
                    key: key.to_string(),
                    start: range.start,
                    end: range.end,
                    size,
                });
            }
            // Both ends are at most `size`, which came from a `usize`.
            Ok(bytes.slice(range.start as usize..range.end as usize))
        })
    }

    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta> {
        self.read(BlobOp::Head, key.as_str(), |b| {
            Ok(meta(key, b.object(BlobOp::Head, key)?))
        })
    }

    fn list(
        &self,
        prefix: Option<&BlobKey>,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<ListPage> {
        let label = prefix.map(BlobKey::as_str).unwrap_or("");
        self.read(BlobOp::List, label, |b| {
            let limit = page_limit(limit);
            let objects = b
                .objects
                .iter()
                .filter(|(k, _)| prefix.is_none_or(|p| k.is_under(p)))
                .filter(|(k, _)| after.is_none_or(|a| *k > a))
                .take(limit + 1)
                .map(|(k, o)| meta(k, o))
                .collect();
            Ok(ListPage::from_sorted(objects, limit))
        })
    }

    fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        self.mutate(BlobOp::Delete, key.as_str(), |b| {
            b.objects.remove(key);
            Ok(())
        })
    }

    /// Aborts the pending uploads that started (on the simulated clock)
    /// before `older_than`, in one step: one operation for the fault plan.
    fn abort_abandoned_uploads(&self, older_than: SystemTime) -> BlobResult<u64> {
        self.mutate(BlobOp::Abort, "", |b| {
            let before = b.uploads.len();
            b.uploads.retain(|_, u| u.started >= older_than);
            Ok((before - b.uploads.len()) as u64)
        })
    }
}

/// A pending upload of a [`SimBlobStore`].
#[derive(Debug)]
struct SimUpload {
    store: SimBlobStore,
    key: BlobKey,
    id: u64,
}

impl SimUpload {
    fn gone(&self, op: BlobOp) -> BlobError {
        BlobError::Backend {
            operation: op,
            key: self.key.to_string(),
            reason: "no such upload (aborted)".into(),
        }
    }
}

impl MultipartUpload for SimUpload {
    fn put_part(&mut self, bytes: Bytes) -> BlobResult<()> {
        let gone = self.gone(BlobOp::Multipart);
        self.store
            .mutate(BlobOp::Multipart, self.key.as_str(), |b| {
                let upload = b.uploads.get_mut(&self.id).ok_or(gone)?;
                upload.parts.push(bytes);
                Ok(())
            })
    }

    fn complete(self: Box<Self>) -> BlobResult<()> {
        let gone = self.gone(BlobOp::Complete);
        self.store.mutate(BlobOp::Complete, self.key.as_str(), |b| {
            let upload = b.uploads.remove(&self.id).ok_or(gone)?;
            let mut whole = BytesMut::new();
            upload.parts.iter().for_each(|p| whole.extend_from_slice(p));
            b.write(&upload.key, whole.freeze());
            Ok(())
        })
    }

    fn abort(self: Box<Self>) -> BlobResult<()> {
        self.store.mutate(BlobOp::Abort, self.key.as_str(), |b| {
            b.uploads.remove(&self.id);
            Ok(())
        })
    }
}

fn crashed(operation: BlobOp, key: &str) -> BlobError {
    BlobError::Crashed {
        operation,
        key: key.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// SplitMix64: the simulator's one source of coins.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
