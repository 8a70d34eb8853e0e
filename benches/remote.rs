//! Checkpoints in object storage against moto (issues 21 and 22): a
//! checkpoint of one key/value part of about `HW_BENCH_BYTES` (default
//! 1 GiB: 1 Mi pairs of a 16-byte key and a 1008-byte value,
//! benches/remote/state.rs) published to S3, served from it by a remote view
//! and restored from it, against `object_store`'s own multipart put and
//! ranged gets of the same part-file bytes with the same part size and
//! requests in flight, in the same process, interleaved per round; and a
//! cache-hit restore.
//!
//! Not criterion (its 10 samples at least are too slow for 1 GiB through
//! moto): `HW_BENCH_ROUNDS` rounds (default 3), then a table of medians.
//! Per round, in a fresh prefix of one bucket:
//! - ours, upload: a new manager on an empty cache dir, then
//!   `create_checkpoint` of a full checkpoint (`PartInput::Snapshot`:
//!   encode, local publish, part upload, commit record); the part upload
//!   alone is the window from its first request to the commit record's
//!   create (benches/remote/timed.rs);
//! - baseline, upload: `WriteMultipart` of the same bytes (the part file
//!   as round 0 wrote it, from memory);
//! - ours, remote view (benches/remote/view.rs): `RemoteStateView::open` on
//!   an empty cache dir with the background download on, the time to the
//!   first `get` of a random key returning its (checked) value, 100 further
//!   random gets while the download runs, the time until the view is local;
//!   then the same without the download (first get only: no competition);
//! - baseline, get (paired with the view): ranged gets of the baseline's
//!   object into memory, the full download the first get is compared with;
//! - ours, restore: a new manager on another empty cache dir (claim, list,
//!   ranged gets, CRC32C, write + fsync, publish into the cache); the
//!   download alone is the window of its part requests;
//! - baseline, get (paired with the restore): the same ranged gets again;
//! - cache hit: a new manager on the restore's cache dir (no download: the
//!   local copy is verified against the record).
//!
//! Reading the view's figures against moto: moto 5.2.5 answers every ranged
//! `GET` by reading the whole object under that object's lock
//! (`FakeKey.value` in moto/s3/models.py), so one 64 KiB block fetch costs
//! about as much as one 16 MiB range of the full download, and those
//! whole-object reads of one object happen one at a time. On moto the time
//! to the first value is therefore (open + look-up requests) × moto's
//! per-request cost, and with the background download on, the look-up's
//! requests queue behind the download's (the bench times one 64 KiB ranged
//! get of the baseline's object alone, to show that cost).
//!
//! Each pair swaps order every other round. Requests are counted by the
//! metrics facade (`highwater_blob_requests_total`, HTTP requests including
//! retries) with a debugging recorder; the view's own counts are its
//! `report()`.
//!
//! Run: `bash .ci/moto.sh cargo bench --features object-store --bench remote`;
//! smoke: `HW_BENCH_BYTES=16777216 HW_BENCH_ROUNDS=1` in front. Settings:
//! `HW_BENCH_CONCURRENCY` and `HW_BENCH_PART_MIB` (comma lists: every
//! combination is run, both sides equally; defaults 8 and 16).

#[path = "remote/baseline.rs"]
mod baseline;
/// The tests' way to make a bucket on moto (its `endpoint` is the tests').
#[path = "../tests/common/moto_server.rs"]
#[allow(dead_code)]
mod moto_server;
#[path = "remote/report.rs"]
mod report;
#[path = "remote/state.rs"]
mod state;
#[path = "remote/timed.rs"]
mod timed;
#[path = "remote/view.rs"]
mod view;

use baseline::Baseline;
use bytes::Bytes;
use highwater::blob::{BlobStore, ObjectStoreBlobStore, ObjectStoreOptions};
use highwater::checkpoint::DEFAULT_PART;
use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, RemoteConfig,
    StateSnapshot,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use report::{Counts, Round};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timed::{first_commit_create, part_profile, parts_window, Timed};

/// Random gets after the first, while the view's download runs.
const FURTHER_GETS: usize = 100;
/// Random gets after the first without the download (each is several
/// sequential ranged gets: slow on moto, see docs/PERFORMANCE.md).
const FURTHER_GETS_OFF: usize = 10;
/// Timed 64 KiB ranged gets of the baseline's object (moto's cost of one
/// block fetch with nothing else in flight).
const SMALL_GETS: usize = 3;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

fn env_list(name: &str, default: usize) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v:?}: not a list of numbers"))
            })
            .collect(),
        Err(_) => vec![default],
    }
}

/// HTTP requests by operation since the last snapshot.
fn requests(snap: &Snapshotter) -> BTreeMap<String, u64> {
    let mut by_op = BTreeMap::new();
    for (key, _, _, value) in snap.snapshot().into_vec() {
        let key = key.key();
        if key.name() != highwater::metrics::BLOB_REQUESTS {
            continue;
        }
        if let DebugValue::Counter(n) = value {
            let op = key
                .labels()
                .find(|l| l.key() == "operation")
                .map_or("?".to_string(), |l| l.value().to_string());
            *by_op.entry(op).or_insert(0) += n;
        }
    }
    by_op
}

struct Bench {
    endpoint: String,
    bucket: String,
    scratch: PathBuf,
    /// The state and its number of pairs.
    state: StateSnapshot,
    pairs: u64,
    /// The checkpoint's part file (the state file), read after the first
    /// upload: what the baseline moves, so both sides send the same bytes
    /// in the same number of parts.
    file: std::sync::OnceLock<Bytes>,
    baseline: Baseline,
    snap: Snapshotter,
}

impl Bench {
    /// The part file's bytes (round 0 uploads ours first, which reads them).
    fn file(&self) -> &Bytes {
        self.file.get().expect("round 0 read the part file")
    }

    fn remote(&self, prefix: &str, concurrency: usize, part: usize) -> (RemoteConfig, Arc<Timed>) {
        let url = format!("s3://{}/{prefix}", self.bucket);
        let inner = ObjectStoreBlobStore::from_url(&url, ObjectStoreOptions::default())
            .expect("open the bucket");
        let timed = Arc::new(Timed::new(Arc::new(inner)));
        let remote = RemoteConfig::new(timed.clone() as Arc<dyn BlobStore>)
            .with_concurrency(concurrency)
            .with_part_bytes(part);
        (remote, timed)
    }

    fn manager(
        &self,
        dir: &Path,
        prefix: &str,
        concurrency: usize,
        part: usize,
    ) -> (IncrementalCheckpointManager, Arc<Timed>) {
        let (remote, timed) = self.remote(prefix, concurrency, part);
        let config = CheckpointConfig::new(dir).with_remote(remote);
        let manager = IncrementalCheckpointManager::new(config).expect("open a manager");
        (manager, timed)
    }

    /// The baseline's full download of its object: (time, requests).
    fn base_get(
        &self,
        base_key: &str,
        part: usize,
        concurrency: usize,
        verify: bool,
    ) -> (Duration, u64) {
        let started = Instant::now();
        let (got, n) =
            self.baseline
                .get_ranges(base_key, self.file().len() as u64, part, concurrency);
        let elapsed = started.elapsed();
        let len: usize = got.iter().map(Bytes::len).sum();
        assert_eq!(len, self.file().len(), "the baseline got every byte");
        if verify {
            let mut at = 0;
            for b in &got {
                assert!(
                    b[..] == self.file()[at..at + b.len()],
                    "baseline bytes differ"
                );
                at += b.len();
            }
        }
        (elapsed, n)
    }

    fn round(&self, r: usize, concurrency: usize, part: usize, verify: bool) -> (Round, Counts) {
        let prefix = format!("c{concurrency}-p{}-r{r}", part >> 20);
        let writer_dir = self.scratch.join(format!("{prefix}-writer"));
        let reader_dir = self.scratch.join(format!("{prefix}-reader"));
        let view_dir = self.scratch.join(format!("{prefix}-view"));
        let view_off_dir = self.scratch.join(format!("{prefix}-view-off"));
        let base_key = format!("{prefix}-baseline/object");
        let swap = r % 2 == 1;
        let mut round = Round::default();

        let ours_upload = || {
            let (m, timed) = self.manager(&writer_dir, &prefix, concurrency, part);
            timed.take();
            requests(&self.snap);
            let started = Instant::now();
            let meta = m
                .create_checkpoint(
                    CheckpointRequest::new(0)
                        .with_part(DEFAULT_PART, PartInput::Snapshot(&self.state)),
                )
                .expect("create the checkpoint");
            let elapsed = started.elapsed();
            let by_op = requests(&self.snap);
            let calls = timed.take();
            assert_eq!(meta.parts.len(), 1, "one part file");
            if self.file.get().is_none() {
                let path = m.store().checkpoint_path(meta.id).join(&meta.parts[0].file);
                let bytes = std::fs::read(&path).expect("read the part file");
                let _ = self.file.set(Bytes::from(bytes));
            }
            if let Some((n, latency, mean, most)) = part_profile(&calls) {
                eprintln!(
                    "  ours upload: {n} parts, {latency:.2} s each from start to answer, \
                     {mean:.1} in flight on average, {most} at most"
                );
            }
            let window = parts_window(&calls, &["put", "multipart"]);
            let commit = first_commit_create(&calls);
            let (local, parts) = match (window, commit) {
                (Some((first, _)), Some(commit)) => (first - started, commit - first),
                _ => panic!("no part upload or commit record seen: {calls:?}"),
            };
            (elapsed, local, parts, by_op, meta.parts_bytes())
        };
        let base_upload = || {
            let started = Instant::now();
            let n = self
                .baseline
                .put_multipart(&base_key, self.file(), part, concurrency);
            (started.elapsed(), n)
        };
        let (ours, base) = if swap {
            let b = base_upload();
            (ours_upload(), b)
        } else {
            let o = ours_upload();
            (o, base_upload())
        };
        let (elapsed, local, parts, upload_requests, part_bytes_written) = ours;
        round.ours_upload = elapsed;
        round.ours_local = local;
        round.ours_upload_parts = parts;
        round.base_upload = base.0;
        let base_upload_requests = base.1;

        // The remote view, then without its download; paired with a full get.
        let seed = (r as u64) << 32 | (concurrency as u64) << 16 | (part >> 20) as u64;
        let ours_view = || {
            let (remote, _) = self.remote(&prefix, concurrency, part);
            let on = view::measure(remote, &view_dir, self.pairs, FURTHER_GETS, true, seed);
            let (remote, _) = self.remote(&prefix, concurrency, part);
            let off = view::measure(
                remote,
                &view_off_dir,
                self.pairs,
                FURTHER_GETS_OFF,
                false,
                seed,
            );
            (on, off)
        };
        let (ours, base) = if swap {
            let b = self.base_get(&base_key, part, concurrency, false);
            (ours_view(), b)
        } else {
            let o = ours_view();
            (o, self.base_get(&base_key, part, concurrency, verify))
        };
        (round.view, round.view_off) = ours;
        round.base_view_get = base.0;
        let len = self.file().len() as u64;
        let mut pick = state::Picker::new(seed ^ 0xb10c);
        let mut small: Vec<Duration> = (0..SMALL_GETS)
            .map(|_| {
                let at = pick.next(len.saturating_sub(64 << 10).max(1));
                self.baseline
                    .time_range(&base_key, at..(at + (64 << 10)).min(len))
            })
            .collect();
        small.sort();
        round.base_small_get = small[small.len() / 2];

        let ours_restore = || {
            requests(&self.snap);
            let started = Instant::now();
            let (m, timed) = self.manager(&reader_dir, &prefix, concurrency, part);
            let elapsed = started.elapsed();
            let by_op = requests(&self.snap);
            let calls = timed.take();
            let report = m.remote_restore().expect("a remote manager").clone();
            assert_eq!(report.downloaded.len(), 1, "one checkpoint downloaded");
            assert!(report.cache_hits.is_empty());
            let (first, last) = parts_window(&calls, &["head", "get", "get_range"])
                .unwrap_or_else(|| panic!("no part download seen: {calls:?}"));
            if verify {
                let id = report.restored.expect("a checkpoint restored");
                let back = m
                    .store()
                    .load_snapshot(id, DEFAULT_PART)
                    .expect("read the restored state");
                assert!(
                    back == self.state,
                    "the restored state is the state written"
                );
            }
            (elapsed, last - first, by_op, report)
        };
        let (ours, base) = if swap {
            let b = self.base_get(&base_key, part, concurrency, false);
            (ours_restore(), b)
        } else {
            let o = ours_restore();
            (o, self.base_get(&base_key, part, concurrency, false))
        };
        let (elapsed, download, restore_requests, report) = ours;
        round.ours_restore = elapsed;
        round.ours_download_parts = download;
        round.base_get = base.0;

        requests(&self.snap);
        let started = Instant::now();
        let (m, _) = self.manager(&reader_dir, &prefix, concurrency, part);
        round.cache_hit = started.elapsed();
        let hit_requests = requests(&self.snap);
        let hit = m.remote_restore().expect("a remote manager");
        assert_eq!(hit.bytes_downloaded, 0, "a cache hit downloads nothing");
        assert_eq!(hit.cache_hits.len(), 1, "the cached copy is used");
        drop(m);

        for dir in [&writer_dir, &reader_dir, &view_dir, &view_off_dir] {
            std::fs::remove_dir_all(dir).expect("remove a cache dir");
        }
        self.baseline.delete_prefix(&prefix);
        self.baseline.delete_prefix(&format!("{prefix}-baseline"));
        let counts = Counts {
            upload_requests,
            restore_requests,
            restore_reported: report.requests,
            hit_requests,
            base_upload_requests,
            base_get_requests: base.1,
            part_bytes_written,
            bytes_downloaded: report.bytes_downloaded,
        };
        (round, counts)
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let endpoint = std::env::var("AWS_ENDPOINT").unwrap_or_default();
    if endpoint.is_empty() {
        eprintln!(
            "SKIPPED: the remote bench needs an S3 server: \
             bash .ci/moto.sh cargo bench --features object-store --bench remote"
        );
        return;
    }
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    recorder.install().expect("the bench's metrics recorder");

    let bytes: usize = env_or("HW_BENCH_BYTES", 1 << 30);
    let rounds: usize = env_or("HW_BENCH_ROUNDS", 3);
    let concurrency = env_list("HW_BENCH_CONCURRENCY", 8);
    let parts: Vec<usize> = env_list("HW_BENCH_PART_MIB", 16)
        .into_iter()
        .map(|m| m << 20)
        .collect();
    let scratch = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-remote");
    std::fs::create_dir_all(&scratch).expect("the scratch dir");
    let scratch = tempfile::tempdir_in(&scratch).expect("a scratch dir");

    let bucket = moto_server::fresh_bucket(&endpoint, "bench");
    let worker_threads = ObjectStoreOptions::default().worker_threads;
    let pairs = state::pairs_for(bytes);
    let made = Instant::now();
    let snapshot = state::snapshot(pairs);
    eprintln!(
        "state: {pairs} pairs, {} bytes of keys and values, made in {:.2} s",
        snapshot.data_bytes(),
        made.elapsed().as_secs_f64()
    );
    let bench = Bench {
        baseline: Baseline::new(&bucket, worker_threads),
        endpoint,
        bucket,
        scratch: scratch.path().to_path_buf(),
        state: snapshot,
        pairs,
        file: std::sync::OnceLock::new(),
        snap,
    };
    println!(
        "remote bench: {pairs} pairs ({} bytes of keys and values), {rounds} round(s), \
         {} at {}, scratch {}",
        bench.state.data_bytes(),
        bench.bucket,
        bench.endpoint,
        bench.scratch.display()
    );
    for &c in &concurrency {
        for &p in &parts {
            let mut all = Vec::with_capacity(rounds);
            let mut counts = None;
            for r in 0..rounds {
                let (round, c_) = bench.round(r, c, p, r == 0);
                report::round_line(r, &round);
                all.push(round);
                counts = Some(c_);
            }
            let file = bench.file().len();
            report::table(file, c, p, &all, &counts.expect("at least one round"));
        }
    }
}
