//! The simulated processes: workers and coordinators, each a state machine
//! that takes one step at a time on its own client of the shared bucket.
//! A step returns `Err` only for a broken invariant; an error the protocol
//! expects (a crash, a lost answer, fencing, an abort) makes the actor dead,
//! and the supervisor restarts the run.

use super::check::{Checker, Out};
use super::input::{decode_count, encode_count, Input};
use super::rng::Rng;
use highwater::blob::{BlobError, BlobStore, SimBlobStore};
use highwater::cluster::{
    ClusterWorker, Coordinator, GlobalCheckpoint, KeyGroupRange, StoreTransport, WorkerConfig,
    WorkerReport,
};
use highwater::{Error, SourcePositions, TrackedState};
use std::sync::Arc;
use std::time::Duration;

/// What the simulation counted, over all seeds.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub runs: u64,
    pub rescales: u64,
    pub restores: u64,
    pub commits: u64,
    pub aborts: u64,
    pub zombie_fenced: u64,
    pub zombie_commit_attempts: u64,
    pub crashes: u64,
    pub faults: u64,
    pub published: u64,
    pub collections: u64,
}

/// An error the protocol must survive (the actor stops), as opposed to one
/// that means the protocol is broken.
pub fn expected(e: &Error) -> bool {
    match e {
        Error::Blob(b) => b.is_indeterminate(),
        Error::Fenced { .. } | Error::EpochAborted { .. } => true,
        _ => false,
    }
}

pub fn arc(store: &SimBlobStore) -> Arc<dyn BlobStore> {
    Arc::new(store.clone())
}

#[derive(Debug)]
enum Phase {
    Join,
    Work,
    Send(WorkerReport),
    Done,
}

/// One worker process.
#[derive(Debug)]
pub struct WorkerActor {
    pub generation: u64,
    pub index: u32,
    pub store: SimBlobStore,
    pub weight: u64,
    pub dead: Option<String>,
    max_chain: usize,
    phase: Phase,
    worker: Option<ClusterWorker>,
    state: TrackedState,
    sources: SourcePositions,
    range: KeyGroupRange,
    epoch: u64,
    out: Vec<Out>,
}

impl WorkerActor {
    pub fn new(generation: u64, index: u32, store: SimBlobStore, rng: &mut Rng) -> Self {
        WorkerActor {
            generation,
            index,
            store,
            weight: rng.range(1, 8),
            dead: None,
            max_chain: rng.range(1, 4) as usize,
            phase: Phase::Join,
            worker: None,
            state: TrackedState::new(),
            sources: SourcePositions::new(),
            range: KeyGroupRange::new(0, 0),
            epoch: 0,
            out: Vec::new(),
        }
    }

    pub fn runnable(&self) -> bool {
        self.dead.is_none() && !matches!(self.phase, Phase::Done)
    }

    fn die(&mut self, checker: &Checker, what: &str, e: Error) -> Result<(), String> {
        if !expected(&e) {
            return Err(format!(
                "seed {}: worker {} of run {}: {what} failed: {e}",
                checker.seed, self.index, self.generation
            ));
        }
        self.dead = Some(format!("{what}: {e}"));
        Ok(())
    }

    pub fn step(
        &mut self,
        rng: &mut Rng,
        input: &Input,
        checker: &mut Checker,
        stats: &mut Stats,
    ) -> Result<(), String> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Join => self.join(input, checker, stats),
            Phase::Work => self.work(rng, input, checker),
            Phase::Send(report) => self.send(report, input, checker),
            Phase::Done => Ok(()),
        }
    }

    fn join(
        &mut self,
        input: &Input,
        checker: &mut Checker,
        stats: &mut Stats,
    ) -> Result<(), String> {
        let config = WorkerConfig::new(arc(&self.store), self.generation, self.index)
            .with_max_chain(self.max_chain);
        let (worker, restored) = match ClusterWorker::join(config) {
            Ok(j) => j,
            Err(e) => return self.die(checker, "join", e),
        };
        stats.restores += 1;
        self.range = worker.key_groups();
        if restored.epoch != worker.plan().base_epoch {
            return Err(format!(
                "seed {}: worker {} restored epoch {}, its plan's base is {}",
                checker.seed,
                self.index,
                restored.epoch,
                worker.plan().base_epoch
            ));
        }
        checker.restored(input, self.generation, self.index, self.range, &restored)?;
        let range = self.range;
        let mine = |name: &str| {
            name.strip_prefix('p')
                .and_then(|d| d.parse::<u32>().ok())
                .is_some_and(|p| range.contains(p))
        };
        self.sources = restored.source_positions(mine);
        for p in range.start..range.end {
            if self.sources.offset(&Input::name(p)).is_none() {
                self.sources
                    .set_offset(Input::name(p), 0)
                    .expect("a new partition");
            }
        }
        self.state = restored.state;
        self.epoch = restored.epoch + 1;
        self.worker = Some(worker);
        self.phase = if self.epoch > input.final_epoch() {
            Phase::Done
        } else {
            Phase::Work
        };
        Ok(())
    }

    fn work(&mut self, rng: &mut Rng, input: &Input, checker: &mut Checker) -> Result<(), String> {
        let pending: Vec<u32> = (self.range.start..self.range.end)
            .filter(|&p| self.offset(p) < input.barrier(p, self.epoch))
            .collect();
        if pending.is_empty() {
            // Every partition is at the barrier: checkpoint the epoch.
            let handle = checker.stage(self.generation, self.epoch, std::mem::take(&mut self.out));
            let worker = self.worker.as_mut().expect("joined");
            return match worker.checkpoint(self.epoch, &mut self.state, &self.sources, vec![handle])
            {
                Ok(report) => {
                    self.phase = Phase::Send(report);
                    Ok(())
                }
                Err(e) => self.die(checker, "checkpoint", e),
            };
        }
        let p = pending[rng.below(pending.len() as u64) as usize];
        let name = Input::name(p);
        for _ in 0..rng.range(1, 3) {
            let i = self.offset(p);
            if i >= input.barrier(p, self.epoch) {
                break;
            }
            let word = &input.records[p as usize][i as usize];
            let count = self.state.get(word.as_bytes()).map_or(0, decode_count) + 1;
            self.state
                .put(word.as_bytes().to_vec(), encode_count(count));
            self.sources
                .set_offset(name.clone(), i + 1)
                .expect("forward");
            self.sources.advance_watermark(name.clone(), i as i64);
            self.out.push(Out {
                p,
                i,
                word: word.clone(),
                count,
            });
        }
        self.phase = Phase::Work;
        Ok(())
    }

    fn send(
        &mut self,
        report: WorkerReport,
        input: &Input,
        checker: &Checker,
    ) -> Result<(), String> {
        match StoreTransport::new(arc(&self.store)).send(&report) {
            Ok(()) => {
                self.epoch += 1;
                self.phase = if self.epoch > input.final_epoch() {
                    Phase::Done
                } else {
                    Phase::Work
                };
                Ok(())
            }
            // A lost answer: send the same bytes again.
            Err(Error::Blob(BlobError::Indeterminate { .. })) => {
                self.phase = Phase::Send(report);
                Ok(())
            }
            Err(e) => self.die(checker, "send", e),
        }
    }

    fn offset(&self, p: u32) -> u64 {
        self.sources.offset(&Input::name(p)).unwrap_or(0)
    }
}

#[derive(Debug)]
enum CPhase {
    Publish { gc: GlobalCheckpoint, next: usize },
    Collect { waited: u64 },
    Done,
}

/// One coordinator process.
#[derive(Debug)]
pub struct CoordActor {
    pub coordinator: Coordinator,
    pub store: SimBlobStore,
    pub weight: u64,
    pub dead: Option<String>,
    pub zombie: bool,
    deadline: u64,
    phase: CPhase,
}

impl CoordActor {
    /// A started coordinator: it first publishes the base's handles again.
    pub fn new(
        coordinator: Coordinator,
        store: SimBlobStore,
        deadline: u64,
        rng: &mut Rng,
    ) -> Self {
        let phase = match coordinator.restored() {
            Some(gc) => CPhase::Publish {
                gc: gc.clone(),
                next: 0,
            },
            None => CPhase::Collect { waited: 0 },
        };
        CoordActor {
            coordinator,
            store,
            weight: rng.range(1, 8),
            dead: None,
            zombie: false,
            deadline,
            phase,
        }
    }

    pub fn runnable(&self) -> bool {
        self.dead.is_none() && !self.done()
    }

    pub fn done(&self) -> bool {
        matches!(self.phase, CPhase::Done)
    }

    fn die(&mut self, checker: &Checker, what: &str, e: Error) -> Result<(), String> {
        let stopped =
            matches!(e, Error::InvalidArgument(_)) && self.coordinator.stopped().is_some();
        if !expected(&e) && !stopped {
            return Err(format!(
                "seed {}: coordinator of run {}: {what} failed: {e}",
                checker.seed,
                self.coordinator.generation()
            ));
        }
        self.dead = Some(format!("{what}: {e}"));
        Ok(())
    }

    pub fn step(
        &mut self,
        rng: &mut Rng,
        input: &Input,
        checker: &mut Checker,
        stats: &mut Stats,
    ) -> Result<(), String> {
        match std::mem::replace(&mut self.phase, CPhase::Done) {
            CPhase::Collect { waited } => self.collect(waited, checker, stats),
            CPhase::Publish { gc, next } => self.publish(gc, next, rng, input, checker, stats),
            CPhase::Done => Ok(()),
        }
    }

    fn collect(
        &mut self,
        waited: u64,
        checker: &mut Checker,
        stats: &mut Stats,
    ) -> Result<(), String> {
        let generation = self.coordinator.generation();
        let epoch = self.coordinator.next_epoch();
        let got = match StoreTransport::new(arc(&self.store)).received(generation, epoch) {
            Ok(got) => got,
            Err(e) => return self.die(checker, "collect", e),
        };
        if (got.len() as u32) < self.coordinator.plan().workers && waited < self.deadline {
            self.phase = CPhase::Collect { waited: waited + 1 };
            return Ok(());
        }
        if self.zombie {
            stats.zombie_commit_attempts += 1;
        }
        match self.coordinator.commit(epoch, got.into_values().collect()) {
            Ok(gc) => {
                checker.committed(generation, &gc)?;
                stats.commits += 1;
                self.phase = CPhase::Publish { gc, next: 0 };
                Ok(())
            }
            Err(e) => {
                match &e {
                    Error::EpochAborted { .. } => stats.aborts += 1,
                    Error::Fenced { .. } if self.zombie => stats.zombie_fenced += 1,
                    _ => {}
                }
                self.die(checker, "commit", e)
            }
        }
    }

    fn publish(
        &mut self,
        gc: GlobalCheckpoint,
        next: usize,
        rng: &mut Rng,
        input: &Input,
        checker: &mut Checker,
        stats: &mut Stats,
    ) -> Result<(), String> {
        let handles = gc.sink_handles();
        if let Some(h) = handles.get(next) {
            checker.publish(&gc, h)?;
            stats.published += 1;
            self.phase = CPhase::Publish { gc, next: next + 1 };
            return Ok(());
        }
        // Every handle is published: the next epoch may commit.
        if let Err(e) = self.coordinator.sinks_committed(gc.epoch) {
            return self.die(checker, "sinks_committed", e);
        }
        if rng.chance(250) {
            stats.collections += 1;
            let retained = rng.range(1, 3) as usize;
            if let Err(e) = self
                .coordinator
                .collect_garbage(retained, Duration::from_secs(3600))
            {
                return self.die(checker, "collect_garbage", e);
            }
        }
        self.phase = if self.coordinator.next_epoch() > input.final_epoch() {
            CPhase::Done
        } else {
            CPhase::Collect { waited: 0 }
        };
        Ok(())
    }
}
