//! Checkpoints with and without encryption at rest (issue 24), in one run:
//! every sealed figure against the same operation on plain files, measured
//! right beside it.
//!
//! State: 500 k keys of 16 bytes (`key-000000000042`) with 120-byte values,
//! one snapshot part (about 72 MB encoded). The plain manager and the sealed
//! one (`CheckpointConfig::with_encryption`, a `StaticKeys` with a fresh
//! `DataKey`) write into directories of their own under `bench_dir()` (the
//! target's file system, not a tmpfs).
//!
//! Criterion groups, each with a `plain` and a `sealed` function:
//! - `full_checkpoint`: `create_checkpoint` of the whole state into a fresh
//!   directory (throughput: the plaintext part's bytes).
//! - `delta_checkpoint`: a delta checkpoint after changing 1% of the keys
//!   (`StateDelta::from_changes` included, generating the pairs not;
//!   throughput: the changed pairs' bytes).
//! - `restore`: `load_snapshot` of the full checkpoint (every block checked,
//!   and opened when sealed; throughput: the plaintext part's bytes).
//! - `view_gets`: `open_state_view` + 1000 `get`s of random keys
//!   (throughput: the keys and values looked up).
//!
//! After the groups, `main` prints a SUMMARY of sealed / plain ratios from
//! separate timed passes, plain and sealed alternating (median of 5).
//! `-- --test` runs everything once on 20 k keys.

mod common;

use common::{bench_dir, key, median, ms};
use criterion::{Criterion, Throughput};
use highwater::checkpoint::{CheckpointRequest, PartInput};
use highwater::crypto::{DataKey, KeyId, KeyProvider, StaticKeys};
use highwater::{
    CheckpointConfig, IncrementalCheckpointManager, StateDelta, StateSnapshot, WalEntry,
    WalOptions, WriteAheadLog,
};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEYS: usize = 500_000;
const KEYS_TEST: usize = 20_000;
const VALUE_LEN: usize = 120;
const GETS: usize = 1000;
const PART: &str = "state";

fn value(i: usize, round: usize) -> Vec<u8> {
    (0..VALUE_LEN)
        .map(|j| b'a' + ((i + j + round) % 26) as u8)
        .collect()
}

fn state(n: usize) -> StateSnapshot {
    StateSnapshot::from_sorted((0..n).map(|i| (key(i), value(i, 0)))).expect("sorted keys")
}

/// Changes to 1% of the keys (a different 1% each round), built outside the
/// timed region.
fn one_percent(n: usize, round: usize) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    (0..n / 100)
        .map(|j| {
            let i = j * 100 + round % 100;
            (key(i), Some(value(i, round + 1)))
        })
        .collect()
}

/// `GETS` keys spread over the state by a fixed xorshift (the same keys for
/// both sides).
fn probes(n: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..GETS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            key((x % n as u64) as usize)
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Plain,
    Sealed,
}

const SIDES: [Side; 2] = [Side::Plain, Side::Sealed];

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Plain => "plain",
            Side::Sealed => "sealed",
        }
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    keys: Arc<dyn KeyProvider>,
    snapshot: StateSnapshot,
    part_bytes: u64,
    probes: Vec<Vec<u8>>,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let snapshot = state(n);
        let part_bytes = snapshot.to_bytes().expect("encode").len() as u64;
        Fixture {
            dir: bench_dir(),
            keys: Arc::new(StaticKeys::new(
                KeyId::new(1).expect("key id"),
                DataKey::generate().expect("key"),
            )),
            snapshot,
            part_bytes,
            probes: probes(n),
        }
    }

    fn manager(&self, dir: &Path, side: Side) -> IncrementalCheckpointManager {
        let config = CheckpointConfig::new(dir)
            .with_max_retained(1_000_000)
            .with_max_delta_chain(u32::MAX)
            .with_max_delta_ratio(1e9);
        let config = match side {
            Side::Plain => config,
            Side::Sealed => config.with_encryption(self.keys.clone()),
        };
        IncrementalCheckpointManager::new(config).expect("manager")
    }

    fn full(&self, m: &IncrementalCheckpointManager) -> u64 {
        m.create_checkpoint(
            CheckpointRequest::new(1).with_part(PART, PartInput::Snapshot(&self.snapshot)),
        )
        .expect("checkpoint")
        .id
    }

    /// A fresh directory holding one full checkpoint of the state.
    fn checkpointed(&self, side: Side) -> Checkpointed {
        let dir = tempfile::tempdir_in(self.dir.path()).expect("dir");
        let m = self.manager(dir.path(), side);
        let id = self.full(&m);
        Checkpointed { _dir: dir, m, id }
    }
}

struct Checkpointed {
    _dir: tempfile::TempDir,
    m: IncrementalCheckpointManager,
    id: u64,
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

// ------------------------------------------------------------ operations

/// One full checkpoint into a fresh directory (removed outside the timing).
fn full_checkpoint(f: &Fixture, side: Side) -> Duration {
    let dir = tempfile::tempdir_in(f.dir.path()).expect("dir");
    let m = f.manager(dir.path(), side);
    let (t, id) = timed(|| f.full(&m));
    black_box(id);
    t
}

/// `rounds` delta checkpoints on `c`'s chain, starting at `first`; the time of
/// each.
fn delta_checkpoints(f: &Fixture, c: &Checkpointed, first: usize, rounds: usize) -> Vec<Duration> {
    let n = f.snapshot.len();
    (first..first + rounds)
        .map(|round| {
            let changes = one_percent(n, round);
            timed(|| {
                let delta = StateDelta::from_changes(changes);
                c.m.create_checkpoint(
                    CheckpointRequest::new(2 + round as u64)
                        .with_part(PART, PartInput::Delta(&delta)),
                )
                .expect("delta")
            })
            .0
        })
        .collect()
}

/// Entries one log-append pass writes.
const LOG_ENTRIES: usize = 100_000;

/// `LOG_ENTRIES` puts (16-byte keys, `VALUE_LEN`-byte values) appended to a
/// new log and synced once.
fn log_append(f: &Fixture, side: Side) -> Duration {
    let dir = tempfile::tempdir_in(f.dir.path()).expect("log dir");
    let options = match side {
        Side::Plain => WalOptions::new(),
        Side::Sealed => WalOptions::new().with_encryption(f.keys.clone()),
    };
    let wal = WriteAheadLog::open(dir.path().join("wal"), options).expect("log");
    let entries: Vec<WalEntry> = (0..LOG_ENTRIES)
        .map(|i| WalEntry::Put {
            key: key(i),
            value: value(i, 0),
        })
        .collect();
    timed(|| {
        for e in &entries {
            wal.append(e).expect("append");
        }
        wal.sync().expect("sync");
    })
    .0
}

fn restore(c: &Checkpointed) -> Duration {
    timed(|| black_box(c.m.load_snapshot(c.id, PART).expect("load").len())).0
}

fn view_gets(f: &Fixture, c: &Checkpointed) -> Duration {
    timed(|| {
        let view = c.m.open_state_view(c.id, PART).expect("view");
        let mut found = 0usize;
        for k in &f.probes {
            found += view.get(k).expect("get").map_or(0, <[u8]>::len);
        }
        black_box(found)
    })
    .0
}

// ------------------------------------------------------------ criterion

fn criterion_groups(c: &mut Criterion, f: &Fixture) {
    let n = f.snapshot.len();
    let mut g = c.benchmark_group("full_checkpoint");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(f.part_bytes));
    for side in SIDES {
        g.bench_function(side.name(), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| full_checkpoint(f, side)).sum())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("delta_checkpoint");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(((n / 100) * (16 + VALUE_LEN)) as u64));
    for side in SIDES {
        let base = f.checkpointed(side);
        let mut round = 0;
        g.bench_function(side.name(), |b| {
            b.iter_custom(|iters| {
                let t = delta_checkpoints(f, &base, round, iters as usize);
                round += iters as usize;
                t.into_iter().sum()
            })
        });
    }
    g.finish();

    let bases = SIDES.map(|side| f.checkpointed(side));
    let mut g = c.benchmark_group("restore");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(f.part_bytes));
    for (side, base) in SIDES.iter().zip(&bases) {
        g.bench_function(side.name(), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| restore(base)).sum())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("view_gets");
    g.sample_size(10);
    g.throughput(Throughput::Bytes((GETS * (16 + VALUE_LEN)) as u64));
    for (side, base) in SIDES.iter().zip(&bases) {
        g.bench_function(side.name(), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| view_gets(f, base)).sum())
        });
    }
    g.finish();
}

// ------------------------------------------------------------ summary

/// `op` on both sides, alternating, `runs` times each: the medians.
fn both(runs: usize, mut op: impl FnMut(Side) -> Duration) -> [Duration; 2] {
    let mut t = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (i, side) in SIDES.into_iter().enumerate() {
            t[i].push(op(side));
        }
    }
    let [p, s] = t;
    [median(p), median(s)]
}

fn line(what: &str, bytes: u64, [plain, sealed]: [Duration; 2], target: &str) {
    let mbs = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!(
        "{what:<18} plain {:9.2} ms {:8.1} MB/s | sealed {:9.2} ms {:8.1} MB/s | sealed/plain throughput {:.2}x {target}",
        ms(plain),
        mbs(plain),
        ms(sealed),
        mbs(sealed),
        plain.as_secs_f64() / sealed.as_secs_f64()
    );
}

fn summary(f: &Fixture, runs: usize) {
    let n = f.snapshot.len();
    println!(
        "==================== SUMMARY (separate timed passes, plain and sealed alternating, median of {runs}) ===================="
    );
    println!(
        "state: {n} keys x (16 B key + {VALUE_LEN} B value); part file {:.1} MB of plaintext",
        f.part_bytes as f64 / 1e6
    );
    line(
        "full checkpoint",
        f.part_bytes,
        both(runs, |side| full_checkpoint(f, side)),
        "(target >= 0.8)",
    );
    let bases = SIDES.map(|side| f.checkpointed(side));
    let mut round = 1000;
    line(
        "delta checkpoint",
        ((n / 100) * (16 + VALUE_LEN)) as u64,
        both(runs, |side| {
            round += 1;
            delta_checkpoints(f, &bases[side as usize], round, 1)[0]
        }),
        "",
    );
    let bases = SIDES.map(|side| f.checkpointed(side));
    line(
        "restore",
        f.part_bytes,
        both(runs, |side| restore(&bases[side as usize])),
        "(target >= 0.7)",
    );
    line(
        "log append",
        (LOG_ENTRIES * (16 + VALUE_LEN)) as u64,
        both(runs, |side| log_append(f, side)),
        "",
    );
    line(
        "view + 1000 gets",
        (GETS * (16 + VALUE_LEN)) as u64,
        both(runs, |side| view_gets(f, &bases[side as usize])),
        "",
    );
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let fixture = Fixture::new(if test_mode { KEYS_TEST } else { KEYS });
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    criterion_groups(&mut c, &fixture);
    c.final_summary();
    summary(&fixture, if test_mode { 1 } else { 5 });
}
