//! The processing pause of an asynchronous checkpoint against the
//! checkpoint's duration (issue 20: a 1% delta over 1 M keys, pause under
//! 10% of the checkpoint's duration).
//!
//! State: 1 M keys of 16 bytes, values of 100 bytes, in a `TrackedState`,
//! checkpointed once in full; each round changes the same 10 k keys (1%) to
//! new values and writes a delta checkpoint over that full one (the round's
//! delta checkpoint is deleted afterwards, so every round has the same chain).
//!
//! Criterion groups (`async_delta_checkpoint`):
//! - `submit_prebuilt`: the caller's time in `BackgroundCheckpointer::submit`
//!   with the delta already built (an owned `StateDelta` handed over);
//! - `freeze_then_submit`: `TrackedState::freeze()` + submit of the frozen
//!   changes (`FrozenChanges` is an `IntoPart`: its delta is built on the
//!   background thread) — the pause an operator pays;
//! - `delta_then_submit`: `TrackedState::delta()` + submit: the pause when the
//!   delta is built on the caller's thread;
//! - `sync_create`: `create_checkpoint` of the same delta on the caller's
//!   thread (the whole checkpoint).
//!
//! After the groups, `main` prints a SUMMARY from separate timed passes
//! (median of 7): each pause, the checkpoint's duration (from the start of
//! submit until it is durable), and their ratio. `-- --test` runs everything
//! once on 20 k keys.

mod common;

use common::{bench_dir, key, median, ms, value};
use criterion::Criterion;
use highwater::{
    BackgroundCheckpointer, CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager,
    StateDelta, StateSnapshot, TrackedState,
};
use std::time::{Duration, Instant};

const KEYS: usize = 1_000_000;
const KEYS_TEST: usize = 20_000;

/// What the caller's thread does in the timed pause.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pause {
    /// Submit a delta built before the clock starts.
    Submit,
    /// `freeze()` + submit (the delta is built on the background thread).
    Freeze,
    /// `delta()` + submit.
    Delta,
}

/// The operator, its checkpointer and the full checkpoint every delta builds on.
struct Fixture {
    _dir: tempfile::TempDir,
    state: TrackedState,
    checkpointer: BackgroundCheckpointer,
    full: u64,
    n: usize,
    round: usize,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let dir = bench_dir();
        let config = CheckpointConfig::new(dir.path().join("ckpt"))
            .with_max_delta_chain(1_000)
            .with_max_retained(1_000);
        let manager = IncrementalCheckpointManager::new(config).expect("manager");
        let snapshot =
            StateSnapshot::from_sorted((0..n).map(|i| (key(i), value(i, 0)))).expect("sorted keys");
        let full = manager
            .create_checkpoint(CheckpointRequest::new(0).with_owned_part("state", snapshot.clone()))
            .expect("full checkpoint")
            .id;
        Fixture {
            _dir: dir,
            state: TrackedState::from_snapshot(&snapshot),
            checkpointer: BackgroundCheckpointer::new(manager),
            full,
            n,
            round: 0,
        }
    }

    /// Changes 1% of the keys (the same ones every round, to new values).
    fn change(&mut self) {
        self.round += 1;
        for i in (0..self.n).step_by(100) {
            self.state.put(key(i), value(i, self.round));
        }
    }

    fn request(delta: StateDelta) -> CheckpointRequest<'static> {
        CheckpointRequest::new(0).with_owned_part("state", delta)
    }

    /// Deletes the delta checkpoint `id` so the next one builds on the full
    /// checkpoint again.
    fn undo(&self, id: u64) {
        let manager = self.checkpointer.manager();
        manager.delete_checkpoint(id).expect("delete");
        manager.restored_from(Some(self.full));
    }

    /// One asynchronous round: (pause, checkpoint duration).
    fn async_round(&mut self, pause: Pause) -> (Duration, Duration) {
        self.change();
        let prebuilt = (pause == Pause::Submit).then(|| self.state.delta());
        let started = Instant::now();
        let (request, frozen) = match (pause, prebuilt) {
            (Pause::Submit, Some(delta)) => (Self::request(delta), None),
            (Pause::Freeze, _) => {
                let frozen = self.state.freeze();
                let id = frozen.id();
                (
                    CheckpointRequest::new(0).with_owned_part("state", frozen),
                    Some(id),
                )
            }
            _ => (Self::request(self.state.delta()), None),
        };
        self.checkpointer.submit(request).expect("submit");
        let paused = started.elapsed();
        let outcome = self.checkpointer.wait().expect("an outcome");
        let written = outcome.result.expect("checkpoint");
        assert!(written.is_delta());
        if let Some(id) = frozen {
            // The same 10 k keys change every round: the next delta is as large.
            assert!(self.state.checkpoint_succeeded(id));
        }
        self.undo(written.id);
        (paused, outcome.duration)
    }

    /// One synchronous round: the checkpoint's duration.
    fn sync_round(&mut self) -> Duration {
        self.change();
        let delta = self.state.delta();
        let started = Instant::now();
        let written = self
            .checkpointer
            .manager()
            .create_checkpoint(Self::request(delta))
            .expect("checkpoint");
        let took = started.elapsed();
        self.undo(written.id);
        took
    }
}

fn benches(c: &mut Criterion, f: &mut Fixture) {
    let mut g = c.benchmark_group("async_delta_checkpoint");
    g.sample_size(10);
    g.bench_function("submit_prebuilt", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f.async_round(Pause::Submit).0).sum())
    });
    g.bench_function("freeze_then_submit", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f.async_round(Pause::Freeze).0).sum())
    });
    g.bench_function("delta_then_submit", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f.async_round(Pause::Delta).0).sum())
    });
    g.bench_function("sync_create", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f.sync_round()).sum())
    });
    g.finish();
}

fn summary(f: &mut Fixture, runs: usize) {
    let (mut pre_pause, mut pre_total) = (Vec::new(), Vec::new());
    let (mut with_pause, mut with_total) = (Vec::new(), Vec::new());
    let (mut frz_pause, mut frz_total) = (Vec::new(), Vec::new());
    let mut sync = Vec::new();
    for _ in 0..runs {
        let (p, t) = f.async_round(Pause::Submit);
        pre_pause.push(p);
        pre_total.push(t);
        let (p, t) = f.async_round(Pause::Freeze);
        frz_pause.push(p);
        frz_total.push(t);
        let (p, t) = f.async_round(Pause::Delta);
        with_pause.push(p);
        with_total.push(t);
        sync.push(f.sync_round());
    }
    let (pp, pt) = (median(pre_pause), median(pre_total));
    let (wp, wt) = (median(with_pause), median(with_total));
    let (fp, ft) = (median(frz_pause), median(frz_total));
    let s = median(sync);
    println!(
        "==================== SUMMARY (separate timed passes, this run, median of {runs}; {} keys, {} changed) ====================",
        f.n,
        f.n / 100
    );
    println!(
        "submit, delta prebuilt:      pause {:.3} ms / checkpoint {:.3} ms = {:.4} (target < 0.10)",
        ms(pp),
        ms(pt),
        pp.as_secs_f64() / pt.as_secs_f64()
    );
    println!(
        "freeze() + submit:           pause {:.3} ms / checkpoint {:.3} ms = {:.4} (target < 0.10)",
        ms(fp),
        ms(ft),
        fp.as_secs_f64() / ft.as_secs_f64()
    );
    println!(
        "delta() + submit:            pause {:.3} ms / checkpoint {:.3} ms = {:.4}",
        ms(wp),
        ms(wt),
        wp.as_secs_f64() / wt.as_secs_f64()
    );
    println!(
        "synchronous create_checkpoint of the same delta: {:.3} ms (pause = whole checkpoint); prebuilt submit's pause / it = {:.4}",
        ms(s),
        pp.as_secs_f64() / s.as_secs_f64()
    );
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let n = if test_mode { KEYS_TEST } else { KEYS };
    let mut fixture = Fixture::new(n);
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &mut fixture);
    c.final_summary();
    summary(&mut fixture, if test_mode { 1 } else { 7 });
}
