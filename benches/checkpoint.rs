//! Checkpoint benchmarks, each against a baseline measured in the same run, with
//! a serde_json checkpoint (the common home-grown way) as a peer.
//!
//! State: 1 M keys of 16 bytes (`key-000000000042`), values of 100 printable
//! bytes (printable so the JSON peer can hold them as strings without escaping).
//!
//! Criterion groups:
//! - `full_checkpoint`: `IncrementalCheckpointManager::create_checkpoint` with the
//!   whole state as one snapshot part (encode + write + fsync + metadata + atomic
//!   rename + directory fsyncs). Baseline `plain_write_fsync`: `write_all` of the
//!   same number of bytes into a new file + `fsync`.
//! - `delta_checkpoint`: a delta checkpoint after changing 1% of the keys
//!   (`StateDelta::from_changes` over the 10 k changed pairs included; generating
//!   the pairs is not).
//! - `open_first_get`: `StateFileView::open` + one `get` on the 1 M-key snapshot
//!   file, and the same through the manager (`open_state_view`, which also reads
//!   and checks the metadata); baseline `full_deserialise`: read the file and
//!   `StateSnapshot::from_bytes`.
//! - `json_peer`: the state as a `BTreeMap<String, String>` written with
//!   serde_json to a file + fsync, and read back.
//!
//! After the groups, `main` prints a SUMMARY of ratios from separate timed
//! passes (median of 5) in this same run. `-- --test` runs everything once on
//! 20 k keys.

mod common;

use common::{bench_dir, key, median, ms, value, VALUE_LEN};
use criterion::Criterion;
use highwater::checkpoint::{CheckpointRequest, PartInput};
use highwater::{
    CheckpointConfig, IncrementalCheckpointManager, IncrementalCheckpointMetadata, StateDelta,
    StateFileView, StateSnapshot,
};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEYS: usize = 1_000_000;
const KEYS_TEST: usize = 20_000;

fn state(n: usize) -> StateSnapshot {
    StateSnapshot::from_sorted((0..n).map(|i| (key(i), value(i, 0)))).expect("sorted keys")
}

/// Changes to 1% of the keys (a different 1% each round), as an operator would
/// hand them over: built outside the timed region.
fn one_percent(n: usize, round: usize) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let step = 100;
    (0..n / step)
        .map(|j| {
            let i = j * step + round % step;
            (key(i), Some(value(i, round + 1)))
        })
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    snapshot: StateSnapshot,
    file_bytes: Vec<u8>,
    json_map: BTreeMap<String, String>,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let snapshot = state(n);
        let file_bytes = snapshot.to_bytes().expect("encode").to_vec();
        let json_map = snapshot
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.to_vec()).expect("ascii"),
                    String::from_utf8(v.to_vec()).expect("ascii"),
                )
            })
            .collect();
        Fixture {
            dir: bench_dir(),
            snapshot,
            file_bytes,
            json_map,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn manager(dir: &Path) -> IncrementalCheckpointManager {
    IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir)
            .with_max_retained(1_000_000)
            .with_max_delta_chain(u32::MAX)
            .with_max_delta_ratio(1e9),
    )
    .expect("manager")
}

/// A full checkpoint of the fixture's state.
fn checkpoint_full(
    m: &IncrementalCheckpointManager,
    snapshot: &StateSnapshot,
) -> IncrementalCheckpointMetadata {
    m.create_checkpoint(CheckpointRequest::new(1).with_part("state", PartInput::Snapshot(snapshot)))
        .expect("checkpoint")
}

/// A manager over a fresh directory holding one full checkpoint of the state.
fn checkpointed(f: &Fixture) -> (tempfile::TempDir, IncrementalCheckpointManager, u64) {
    let dir = tempfile::tempdir_in(f.dir.path()).expect("dir");
    let m = manager(dir.path());
    let id = checkpoint_full(&m, &f.snapshot).id;
    (dir, m, id)
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

// ------------------------------------------------------------ operations

/// One full checkpoint into a fresh directory; returns its time (the directory
/// is removed outside the timing).
fn full_checkpoint(f: &Fixture) -> Duration {
    let dir = tempfile::tempdir_in(f.dir.path()).expect("dir");
    let m = manager(dir.path());
    let (t, meta) = timed(|| checkpoint_full(&m, &f.snapshot));
    black_box(meta);
    t
}

fn plain_write_fsync(f: &Fixture) -> Duration {
    let path = f.path("plain.bin");
    let _ = fs::remove_file(&path);
    let (t, ()) = timed(|| {
        let mut file = File::create(&path).expect("create");
        file.write_all(&f.file_bytes).expect("write");
        file.sync_all().expect("fsync");
    });
    t
}

/// A base checkpoint plus `rounds` delta checkpoints on it; returns the time of
/// each delta.
fn delta_checkpoints(f: &Fixture, rounds: usize) -> Vec<Duration> {
    let (_dir, m, _) = checkpointed(f);
    let n = f.snapshot.len();
    (0..rounds)
        .map(|round| {
            let changes = one_percent(n, round);
            let m = &m;
            timed(move || {
                let delta = StateDelta::from_changes(changes);
                m.create_checkpoint(
                    CheckpointRequest::new(2 + round as u64)
                        .with_part("state", PartInput::Delta(&delta)),
                )
                .expect("delta")
            })
            .0
        })
        .collect()
}

fn snapshot_file(f: &Fixture) -> PathBuf {
    let path = f.path("state.hwstate");
    if !path.exists() {
        fs::write(&path, &f.file_bytes).expect("write");
    }
    path
}

fn view_open_get(path: &Path, probe: &[u8]) -> Duration {
    timed(|| {
        let view = StateFileView::open(path).expect("open");
        black_box(view.get(probe).expect("get").map(<[u8]>::len));
    })
    .0
}

fn manager_view_open_get(m: &IncrementalCheckpointManager, id: u64, probe: &[u8]) -> Duration {
    timed(|| {
        let view = m.open_state_view(id, "state").expect("open");
        black_box(view.get(probe).expect("get").map(<[u8]>::len));
    })
    .0
}

fn full_deserialise(path: &Path) -> Duration {
    timed(|| {
        let bytes = fs::read(path).expect("read");
        black_box(StateSnapshot::from_bytes(&bytes).expect("decode").len());
    })
    .0
}

fn json_write(f: &Fixture) -> (Duration, u64) {
    let path = f.path("state.json");
    let _ = fs::remove_file(&path);
    let t = timed(|| {
        let file = File::create(&path).expect("create");
        let mut w = BufWriter::with_capacity(1 << 20, file);
        serde_json::to_writer(&mut w, &f.json_map).expect("json");
        let file = w.into_inner().expect("flush");
        file.sync_all().expect("fsync");
    })
    .0;
    (t, fs::metadata(&path).expect("stat").len())
}

fn json_read(f: &Fixture) -> Duration {
    let path = f.path("state.json");
    if !path.exists() {
        json_write(f);
    }
    timed(|| {
        let bytes = fs::read(&path).expect("read");
        let map: BTreeMap<String, String> = serde_json::from_slice(&bytes).expect("json");
        black_box(map.len());
    })
    .0
}

// ------------------------------------------------------------ criterion

fn criterion_groups(c: &mut Criterion, f: &Fixture, probe: &[u8]) {
    let mut g = c.benchmark_group("full_checkpoint");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Bytes(f.file_bytes.len() as u64));
    g.bench_function("highwater", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| full_checkpoint(f)).sum())
    });
    g.bench_function("plain_write_fsync", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| plain_write_fsync(f)).sum())
    });
    g.bench_function("json_peer_write", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| json_write(f).0).sum())
    });
    g.finish();

    let mut g = c.benchmark_group("delta_checkpoint");
    g.sample_size(10);
    g.bench_function("one_percent", |b| {
        b.iter_custom(|iters| delta_checkpoints(f, iters as usize).into_iter().sum())
    });
    g.finish();

    let path = snapshot_file(f);
    let (_dir, m, id) = checkpointed(f);
    let mut g = c.benchmark_group("open_first_get");
    g.sample_size(10);
    g.bench_function("state_file_view", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| view_open_get(&path, probe)).sum())
    });
    g.bench_function("manager_view", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| manager_view_open_get(&m, id, probe))
                .sum()
        })
    });
    g.bench_function("full_deserialise", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| full_deserialise(&path)).sum())
    });
    g.bench_function("json_peer_read", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| json_read(f)).sum())
    });
    g.finish();
}

// ------------------------------------------------------------ summary

fn summary(f: &Fixture, probe: &[u8], runs: usize) {
    let n = f.snapshot.len();
    let bytes = f.file_bytes.len() as f64;
    println!(
        "==================== SUMMARY (separate timed passes, this run, median of {runs}) ===================="
    );
    println!(
        "state: {n} keys x (16 B key + {VALUE_LEN} B value); snapshot file {:.1} MB",
        bytes / 1e6
    );

    let full = median((0..runs).map(|_| full_checkpoint(f)).collect());
    let plain = median((0..runs).map(|_| plain_write_fsync(f)).collect());
    println!(
        "full checkpoint:      {:8.1} ms  {:7.0} MB/s | plain write+fsync {:8.1} ms {:7.0} MB/s | ratio {:.2}x of plain (target >= 0.7)",
        ms(full),
        bytes / full.as_secs_f64() / 1e6,
        ms(plain),
        bytes / plain.as_secs_f64() / 1e6,
        plain.as_secs_f64() / full.as_secs_f64()
    );

    let delta = median(delta_checkpoints(f, runs.max(3)));
    println!(
        "delta checkpoint 1%:  {:8.2} ms | full / delta = {:.1}x faster (target >= 20)",
        ms(delta),
        full.as_secs_f64() / delta.as_secs_f64()
    );

    // The chain left to grow (max_delta_chain = u32::MAX): a delta's cost
    // must not grow with the chain (issue 20's measured trap).
    let chain = delta_checkpoints(f, 200);
    let (short, long) = (median(chain[..10].to_vec()), median(chain[190..].to_vec()));
    println!(
        "delta at chain 1-10:  {:8.2} ms | at chain 191-200 {:8.2} ms | ratio {:.2}x (target <= 1.2)",
        ms(short),
        ms(long),
        long.as_secs_f64() / short.as_secs_f64()
    );

    let path = snapshot_file(f);
    let (_dir, m, id) = checkpointed(f);
    let view = median((0..runs).map(|_| view_open_get(&path, probe)).collect());
    let mview = median(
        (0..runs)
            .map(|_| manager_view_open_get(&m, id, probe))
            .collect(),
    );
    let deser = median((0..runs).map(|_| full_deserialise(&path)).collect());
    println!(
        "open + first get:     {:8.3} ms (file view), {:8.3} ms (manager view) | full deserialise {:8.1} ms | {:.2}% and {:.2}% of it (target < 5%)",
        ms(view),
        ms(mview),
        ms(deser),
        100.0 * view.as_secs_f64() / deser.as_secs_f64(),
        100.0 * mview.as_secs_f64() / deser.as_secs_f64()
    );

    let jw: Vec<(Duration, u64)> = (0..runs).map(|_| json_write(f)).collect();
    let json_size = jw[0].1;
    let json_w = median(jw.into_iter().map(|x| x.0).collect());
    let json_r = median((0..runs).map(|_| json_read(f)).collect());
    println!(
        "serde_json peer:      write+fsync {:8.1} ms ({:.1} MB file) = {:.1}x our full checkpoint time | read {:8.1} ms = {:.1}x our full deserialise, {:.0}x our open+get",
        ms(json_w),
        json_size as f64 / 1e6,
        json_w.as_secs_f64() / full.as_secs_f64(),
        ms(json_r),
        json_r.as_secs_f64() / deser.as_secs_f64(),
        json_r.as_secs_f64() / view.as_secs_f64()
    );
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let n = if test_mode { KEYS_TEST } else { KEYS };
    let fixture = Fixture::new(n);
    let probe = key(n * 2 / 3);
    let mut c = Criterion::default().configure_from_args();
    criterion_groups(&mut c, &fixture, &probe);
    c.final_summary();
    summary(&fixture, &probe, if test_mode { 1 } else { 5 });
}
