//! The crash suite's harness: a seeded workload of managers opening on
//! "machines" (cache directories on an in-memory disk), writing full and
//! delta checkpoints and closing, run against a [`SimBlobStore`]; a model of
//! what was acknowledged; and the checks every restore must pass.
//!
//! The model (what "never lost, never invented" means):
//! - `acked`: the offset of the last checkpoint whose `create_checkpoint`
//!   returned Ok (or that a restore has since returned);
//! - `maybe`: the offset of the checkpoint whose `create_checkpoint` failed,
//!   which may be committed (a crash or a lost answer at its commit);
//! - a restore must return `acked`, or `maybe` (which then becomes acked),
//!   with exactly the state checkpointed at that offset; nothing older,
//!   nothing else.

pub use crate::hooked::{linked, Hooked, When};
use highwater::blob::{BlobError, BlobStore, SimBlobStore};
use highwater::inspect::{read_commit_sequence, SlotRecord};
use highwater::storage::{CrashSimStorage, Storage};
use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, RemoteConfig,
    StateDelta, StateSnapshot,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// The state of the job: key → value.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// One step of a workload.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// A manager opens on machine `name` (the previous one, if any, closes).
    Open(&'static str),
    /// A full checkpoint at this offset.
    Full(u64),
    /// A delta checkpoint at this offset (a full one if nothing was restored).
    Delta(u64),
    /// The manager closes.
    Close,
}

/// The default workload: a new job, a reopen on the same machine (cache
/// hits), a move to another machine (downloads of a chain), more deltas.
pub const WORKLOAD: &[Step] = &[
    Step::Open("a"),
    Step::Full(10),
    Step::Delta(20),
    Step::Close,
    Step::Open("a"),
    Step::Delta(30),
    Step::Close,
    Step::Open("b"),
    Step::Full(40),
    Step::Delta(50),
    Step::Close,
];

/// What was acknowledged (module docs).
#[derive(Debug, Default, Clone)]
pub struct Model {
    /// The offset of the last acknowledged checkpoint.
    pub acked: Option<u64>,
    /// The offset of a checkpoint that may or may not be committed.
    pub maybe: Option<u64>,
    /// The state checkpointed at each offset.
    pub states: BTreeMap<u64, State>,
}

/// The changes a step at `offset` makes: a few keys set, one deleted.
pub fn changes(offset: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut out: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..4)
        .map(|i| {
            let k = (offset / 10 * 3 + i) % 40;
            (
                format!("k{k:03}").into_bytes(),
                Some(format!("v{offset}-{i}").into_bytes()),
            )
        })
        .collect();
    let gone = (offset / 10 * 7 + 5) % 40;
    if !out
        .iter()
        .any(|(k, _)| *k == format!("k{gone:03}").into_bytes())
    {
        out.push((format!("k{gone:03}").into_bytes(), None));
    }
    out.sort();
    out
}

fn apply(state: &mut State, changes: &[(Vec<u8>, Option<Vec<u8>>)]) {
    for (k, v) in changes {
        match v {
            Some(v) => state.insert(k.clone(), v.clone()),
            None => state.remove(k),
        };
    }
}

/// Where managers run: machines are directories of one in-memory disk (or of
/// a disk per test), all publishing to `store`.
#[derive(Clone)]
pub struct Env {
    /// The local disk.
    pub disk: Arc<dyn Storage>,
    /// The bucket (a client of it).
    pub store: Arc<dyn BlobStore>,
}

impl Env {
    /// Machines on a fresh in-memory disk, publishing to `store`.
    pub fn new(store: Arc<dyn BlobStore>) -> Self {
        Env {
            disk: Arc::new(CrashSimStorage::new()),
            store,
        }
    }

    /// The same machines, publishing through another client.
    pub fn with_store(&self, store: Arc<dyn BlobStore>) -> Self {
        Env {
            disk: self.disk.clone(),
            store,
        }
    }

    /// The cache directory of machine `name`.
    pub fn dir(name: &str) -> PathBuf {
        PathBuf::from("/job").join(name)
    }

    /// The config of a manager on machine `name`.
    pub fn config(&self, name: &str) -> CheckpointConfig {
        CheckpointConfig::new(Self::dir(name))
            .with_storage(self.disk.clone())
            // Collections only when a test asks: the faults these tests
            // plan are numbered by operation (tests/remote/gc_crash.rs
            // crashes collections).
            .with_remote(
                RemoteConfig::new(self.store.clone()).with_gc_interval(std::time::Duration::MAX),
            )
    }

    /// Opens a manager on machine `name`.
    ///
    /// # Errors
    /// The manager's.
    pub fn open(&self, name: &str) -> highwater::Result<IncrementalCheckpointManager> {
        IncrementalCheckpointManager::new(self.config(name))
    }
}

/// A manager and the state it was restored to (and has written since).
#[derive(Debug)]
pub struct Running {
    /// The manager.
    pub manager: IncrementalCheckpointManager,
    /// The state of its base.
    pub state: State,
    /// Whether it has a base to write deltas on.
    pub has_base: bool,
}

impl Model {
    /// Checks what `manager` restored when it opened against the model
    /// (module docs), and returns the restored state with the manager.
    ///
    /// # Errors
    /// A description of the violation.
    pub fn check_restore(
        &mut self,
        manager: IncrementalCheckpointManager,
    ) -> Result<Running, String> {
        let restore = manager
            .remote_restore()
            .ok_or("no remote restore report")?
            .clone();
        let latest = manager
            .find_latest_checkpoint()
            .map_err(|e| format!("find_latest_checkpoint: {e}"))?;
        if latest.as_ref().map(|m| m.id) != restore.restored {
            return Err(format!(
                "the cache's latest checkpoint {:?} is not the restored one {:?}",
                latest.map(|m| m.id),
                restore.restored
            ));
        }
        let Some(meta) = latest else {
            if let Some(acked) = self.acked {
                return Err(format!(
                    "restored nothing, but the checkpoint at offset {acked} was acknowledged (report: {restore:?})"
                ));
            }
            self.maybe = None;
            return Ok(Running {
                manager,
                state: State::new(),
                has_base: false,
            });
        };
        let offset = meta.wal_position;
        if Some(offset) != self.acked && Some(offset) != self.maybe {
            return Err(format!(
                "restored checkpoint {} at offset {offset}, but the last acknowledged is {:?} and the one in doubt {:?} (report: {restore:?})",
                meta.id, self.acked, self.maybe
            ));
        }
        let expected = self
            .states
            .get(&offset)
            .ok_or_else(|| format!("no state modelled at offset {offset}"))?
            .clone();
        let snapshot = manager
            .load_snapshot(meta.id, "state")
            .map_err(|e| format!("loading restored checkpoint {}: {e}", meta.id))?;
        let got: State = snapshot
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        if got != expected {
            return Err(format!(
                "checkpoint {} at offset {offset}: restored state differs from the checkpointed one",
                meta.id
            ));
        }
        if meta.source_offsets.get("src") != Some(&offset) {
            return Err(format!(
                "checkpoint {}: offsets {:?} do not match its WAL position {offset}",
                meta.id, meta.source_offsets
            ));
        }
        self.acked = Some(offset);
        self.maybe = None;
        Ok(Running {
            manager,
            state: expected,
            has_base: true,
        })
    }

    /// Writes the checkpoint of `step` (Full or Delta) on `r`, updating the
    /// model: Ok acknowledges it; an error leaves it in doubt.
    ///
    /// # Errors
    /// The manager's error.
    pub fn write(&mut self, r: &mut Running, step: Step) -> highwater::Result<()> {
        let (offset, delta) = match step {
            Step::Full(o) => (o, false),
            Step::Delta(o) => (o, r.has_base),
            _ => unreachable!("only checkpoint steps are written"),
        };
        let ch = changes(offset);
        let mut next = r.state.clone();
        apply(&mut next, &ch);
        self.states.insert(offset, next.clone());
        let request = CheckpointRequest::new(offset)
            .with_offsets(HashMap::from([("src".to_string(), offset)]));
        let snapshot;
        let delta_value;
        let request = if delta {
            delta_value = StateDelta::from_changes(ch);
            request.with_part("state", PartInput::Delta(&delta_value))
        } else {
            snapshot = StateSnapshot::new(next.clone().into_iter().collect());
            request.with_part("state", PartInput::Snapshot(&snapshot))
        };
        match r.manager.create_checkpoint(request) {
            Ok(meta) => {
                assert_eq!(meta.wal_position, offset);
                self.acked = Some(offset);
                self.maybe = None;
                r.state = next;
                r.has_base = true;
                Ok(())
            }
            Err(e) => {
                self.maybe = Some(offset);
                Err(e)
            }
        }
    }
}

/// How far a workload got.
pub struct Outcome {
    /// The first error, and the step it happened at.
    pub error: Option<(usize, highwater::Error)>,
    /// A violation of the model found on the way.
    pub violation: Option<String>,
}

/// Runs `steps` on `env` until the first error, checking every open.
pub fn run(env: &Env, steps: &[Step], model: &mut Model) -> Outcome {
    let mut running: Option<Running> = None;
    for (i, &step) in steps.iter().enumerate() {
        match step {
            Step::Open(name) => {
                // The previous manager lets go of its lock first.
                drop(running.take());
                match env.open(name) {
                    Ok(m) => match model.check_restore(m) {
                        Ok(r) => running = Some(r),
                        Err(v) => {
                            return Outcome {
                                error: None,
                                violation: Some(format!("step {i} (open {name}): {v}")),
                            }
                        }
                    },
                    Err(e) => {
                        return Outcome {
                            error: Some((i, e)),
                            violation: None,
                        }
                    }
                }
            }
            Step::Close => running = None,
            Step::Full(_) | Step::Delta(_) => {
                let r = running.as_mut().expect("a workload opens before it writes");
                if let Err(e) = model.write(r, step) {
                    return Outcome {
                        error: Some((i, e)),
                        violation: None,
                    };
                }
            }
        }
    }
    Outcome {
        error: None,
        violation: None,
    }
}

/// After a fault: a rebooted process (`store`, a new client of the bucket)
/// opens on `machine`, must restore what the model allows, then commits one
/// more checkpoint that a manager on a third machine restores. Returns the
/// offset the reopened manager restored.
///
/// # Errors
/// A description of the violation.
pub fn recover_and_resume(
    env: &Env,
    machine: &'static str,
    model: &mut Model,
) -> Result<Option<u64>, String> {
    let m = env
        .open(machine)
        .map_err(|e| format!("reopening on {machine} after the fault: {e}"))?;
    let mut r = model.check_restore(m)?;
    let restored = model.acked;
    model
        .write(&mut r, Step::Delta(1000))
        .map_err(|e| format!("checkpointing after recovery: {e}"))?;
    drop(r);
    let third = env
        .open("resumed")
        .map_err(|e| format!("opening a third machine: {e}"))?;
    model.check_restore(third)?;
    check_sequence(env.store.clone())?;
    Ok(restored)
}

/// The commit sequence's own invariants: every record decodes; checkpoint
/// ids grow strictly with slots; no checkpoint record of generation `g` sits
/// after a newer claim (a fenced writer never committed after the claim).
///
/// # Errors
/// A description of the violation.
pub fn check_sequence(store: Arc<dyn BlobStore>) -> Result<(), String> {
    let seq = read_commit_sequence(&RemoteConfig::new(store))
        .map_err(|e| format!("reading the commit sequence: {e}"))?;
    let mut last_id = 0;
    let mut newest_claim = 0;
    for c in &seq.commits {
        match &c.record {
            Ok(SlotRecord::Claim { generation, .. }) => newest_claim = *generation,
            Ok(SlotRecord::Checkpoint(cp)) => {
                if cp.metadata.id <= last_id {
                    return Err(format!(
                        "slot {} commits checkpoint {} after checkpoint {last_id}",
                        c.slot, cp.metadata.id
                    ));
                }
                if cp.generation < newest_claim {
                    return Err(format!(
                        "slot {}: generation {} committed after the claim of generation {newest_claim}",
                        c.slot, cp.generation
                    ));
                }
                last_id = cp.metadata.id;
            }
            Ok(other) => return Err(format!("slot {}: unexpected record {other:?}", c.slot)),
            Err(e) => return Err(format!("slot {}: {e}", c.slot)),
        }
    }
    Ok(())
}

/// The number of blob operations `steps` make without faults.
pub fn count_ops(steps: &[Step]) -> u64 {
    let sim = SimBlobStore::new(0);
    let env = Env::new(Arc::new(sim.clone()));
    let mut model = Model::default();
    let out = run(&env, steps, &mut model);
    assert!(
        out.error.is_none() && out.violation.is_none(),
        "the workload runs clean"
    );
    sim.ops()
}

/// True for the error a fenced writer gets.
pub fn is_fenced(e: &highwater::Error) -> bool {
    matches!(e, highwater::Error::Fenced { .. })
}

/// True for a blob error of the kind a fault injects.
pub fn is_blob(e: &highwater::Error) -> bool {
    matches!(
        e,
        highwater::Error::Blob(
            BlobError::Crashed { .. }
                | BlobError::Indeterminate { .. }
                | BlobError::Transient { .. }
                | BlobError::Throttled { .. }
        )
    )
}
