//! The simulation's ground truth and its invariants: every record the store
//! ever held (read by an observer client with no faults, after every step),
//! the sink's staged and published output, and the checks of restores,
//! commits and publishing (module docs of `sim`).

use super::input::Input;
use highwater::blob::{list_all, BlobKey, BlobStore, SimBlobStore};
use highwater::cluster::{
    decode_record, ClusterRecord, GlobalCheckpoint, RestoredWorker, SinkHandle,
};
use std::collections::{BTreeMap, BTreeSet};

/// One record as the observer saw it (records are create-only; retention
/// may delete them later, the observer keeps them).
#[derive(Debug, Clone)]
pub enum Seen {
    Claim,
    Epoch { generation: u64, epoch: u64 },
}

/// One output record of a worker: record `i` of partition `p` was `word`,
/// and the word's count after it was `count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub p: u32,
    pub i: u64,
    pub word: String,
    pub count: u64,
}

/// A worker's output of one epoch attempt, staged under its handle.
#[derive(Debug, Clone)]
pub struct Staged {
    pub generation: u64,
    pub epoch: u64,
    pub out: Vec<Out>,
}

pub struct Checker {
    pub seed: u64,
    observer: SimBlobStore,
    pub records: BTreeMap<u64, Seen>,
    staged: BTreeMap<u64, Staged>,
    next_handle: u64,
    published_handles: BTreeSet<u64>,
    /// Epoch -> the generation whose attempt of it was published.
    published_epochs: BTreeMap<u64, u64>,
    published: BTreeMap<(u32, u64), Out>,
}

pub const SINK: &str = "words";

impl Checker {
    pub fn new(seed: u64, observer: SimBlobStore) -> Self {
        Checker {
            seed,
            observer,
            records: BTreeMap::new(),
            staged: BTreeMap::new(),
            next_handle: 1,
            published_handles: BTreeSet::new(),
            published_epochs: BTreeMap::new(),
            published: BTreeMap::new(),
        }
    }

    fn fail(&self, what: String) -> String {
        format!("seed {}: {what}", self.seed)
    }

    /// Reads the records created since the last look and checks that no
    /// two commit the same epoch (invariant 3).
    pub fn observe(&mut self) -> Result<(), String> {
        let prefix = BlobKey::new("commits").expect("a valid key");
        let listed = list_all(&self.observer, Some(&prefix)).expect("the observer has no faults");
        for meta in listed {
            let Some(slot) = meta
                .key
                .as_str()
                .strip_prefix("commits/")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            if self.records.contains_key(&slot) {
                continue;
            }
            let bytes = self.observer.get(&meta.key).expect("no faults");
            let seen = match decode_record(slot, &bytes) {
                Ok(ClusterRecord::Claim { .. }) => Seen::Claim,
                Ok(ClusterRecord::Epoch(e)) => Seen::Epoch {
                    generation: e.generation,
                    epoch: e.epoch,
                },
                Ok(other) => return Err(self.fail(format!("slot {slot}: {other:?}"))),
                Err(e) => return Err(self.fail(format!("slot {slot} does not decode: {e}"))),
            };
            if let Seen::Epoch { epoch, .. } = seen {
                if let Some(other) = self.epoch_slots(epoch).first() {
                    return Err(self.fail(format!(
                        "invariant 3: epoch {epoch} committed twice, in slots {other} and {slot}"
                    )));
                }
            }
            self.records.insert(slot, seen);
        }
        Ok(())
    }

    fn epoch_slots(&self, epoch: u64) -> Vec<u64> {
        self.records
            .iter()
            .filter(|(_, r)| matches!(r, Seen::Epoch { epoch: e, .. } if *e == epoch))
            .map(|(s, _)| *s)
            .collect()
    }

    /// Stages a worker's output of an epoch attempt; the handle to report.
    pub fn stage(&mut self, generation: u64, epoch: u64, out: Vec<Out>) -> SinkHandle {
        let id = self.next_handle;
        self.next_handle += 1;
        self.staged.insert(
            id,
            Staged {
                generation,
                epoch,
                out,
            },
        );
        SinkHandle {
            sink: SINK.into(),
            handle: id.to_be_bytes().to_vec(),
        }
    }

    /// A commit that returned `Ok` to the coordinator of `generation`
    /// (invariant 4: no claim of a newer run came before the record).
    pub fn committed(&mut self, generation: u64, gc: &GlobalCheckpoint) -> Result<(), String> {
        self.observe()?;
        match self.records.get(&gc.slot) {
            Some(Seen::Epoch {
                generation: g,
                epoch,
            }) if *g == generation && *epoch == gc.epoch => {}
            other => {
                return Err(self.fail(format!(
                    "run {generation}'s commit of epoch {} returned Ok, slot {} holds {other:?}",
                    gc.epoch, gc.slot
                )))
            }
        }
        if let Some((slot, _)) = self
            .records
            .range(generation + 1..gc.slot)
            .find(|(_, r)| matches!(r, Seen::Claim))
        {
            return Err(self.fail(format!(
                "invariant 4: the zombie coordinator of run {generation} committed epoch {} in slot {} after run {slot} claimed",
                gc.epoch, gc.slot
            )));
        }
        Ok(())
    }

    /// Publishes one handle of `gc` (idempotent), checking that the epoch is
    /// committed, that the handle is of the attempt `gc` commits, that no
    /// other attempt of the epoch was published, and that no record is
    /// published twice (invariant 1).
    pub fn publish(&mut self, gc: &GlobalCheckpoint, handle: &SinkHandle) -> Result<(), String> {
        self.observe()?;
        if !matches!(self.records.get(&gc.slot),
            Some(Seen::Epoch { generation, epoch }) if *generation == gc.generation && *epoch == gc.epoch)
        {
            return Err(self.fail(format!(
                "invariant 1: epoch {} of run {} published, but no record commits it (slot {})",
                gc.epoch, gc.generation, gc.slot
            )));
        }
        let id = <[u8; 8]>::try_from(handle.handle.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| self.fail(format!("a handle of {} bytes", handle.handle.len())))?;
        let Some(staged) = self.staged.get(&id) else {
            return Err(self.fail(format!("handle {id} was never staged")));
        };
        if staged.epoch != gc.epoch || staged.generation != gc.generation {
            return Err(self.fail(format!(
                "handle {id} stages epoch {} of run {}, published as epoch {} of run {}",
                staged.epoch, staged.generation, gc.epoch, gc.generation
            )));
        }
        if !self.published_handles.insert(id) {
            return Ok(()); // idempotent: published before
        }
        if let Some(g) = self.published_epochs.insert(gc.epoch, gc.generation) {
            if g != gc.generation {
                return Err(self.fail(format!(
                    "invariant 1: epoch {} published from run {g}'s attempt and run {}'s",
                    gc.epoch, gc.generation
                )));
            }
        }
        for out in staged.out.clone() {
            let at = (out.p, out.i);
            if let Some(before) = self.published.insert(at, out.clone()) {
                return Err(self.fail(format!(
                    "invariant 1: record {at:?} published twice ({before:?}, then {out:?} in epoch {})",
                    gc.epoch
                )));
            }
        }
        Ok(())
    }

    /// A worker's restore (invariant 2): of the newest epoch committed
    /// before its run's claim, positions at that epoch's barriers, and its
    /// state the counts over exactly those prefixes of its partitions.
    pub fn restored(
        &mut self,
        input: &Input,
        generation: u64,
        worker: u32,
        range: highwater::cluster::KeyGroupRange,
        restored: &RestoredWorker,
    ) -> Result<(), String> {
        self.observe()?;
        let newest = self
            .records
            .range(..generation)
            .rev()
            .find_map(|(_, r)| match r {
                Seen::Epoch { epoch, .. } => Some(*epoch),
                Seen::Claim => None,
            })
            .unwrap_or(0);
        let who = format!("invariant 2: worker {worker} of run {generation} (groups {range})");
        if restored.epoch != newest {
            return Err(self.fail(format!(
                "{who} restored epoch {}, the newest committed before its claim is {newest}",
                restored.epoch
            )));
        }
        let b = restored.epoch;
        if b == 0 {
            if !restored.positions.is_empty() || !restored.state.is_empty() {
                return Err(self.fail(format!("{who}: a new job restored something")));
            }
            return Ok(());
        }
        for p in 0..input.groups {
            let want = input.barrier(p, b);
            let got = restored.positions.get(&Input::name(p));
            let ok = got.is_some_and(|pos| {
                pos.offset == Some(want) && pos.watermark == want.checked_sub(1).map(|w| w as i64)
            });
            if !ok {
                return Err(self.fail(format!(
                    "{who}: partition {p} restored at {got:?}, epoch {b}'s barrier is {want}"
                )));
            }
        }
        let state: BTreeMap<Vec<u8>, Vec<u8>> = restored
            .state
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let want = input.counts(range, |p| input.barrier(p, b));
        if state != want {
            let diff: Vec<_> = want
                .iter()
                .filter(|(k, v)| state.get(*k) != Some(v))
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .chain(
                    state
                        .keys()
                        .filter(|k| !want.contains_key(*k))
                        .map(|k| format!("+{}", String::from_utf8_lossy(k))),
                )
                .take(8)
                .collect();
            return Err(self.fail(format!(
                "{who}: the state of epoch {b} ({} keys) is not the counts of its offsets ({} keys); differs at {diff:?}",
                state.len(),
                want.len()
            )));
        }
        Ok(())
    }

    /// After the final run (invariants 1 and 3): the committed epochs are
    /// 1, 2, … in slot order, each published from the attempt its record
    /// commits, and the published output is the direct computation.
    pub fn finish(&mut self, input: &Input) -> Result<(), String> {
        self.observe()?;
        let epochs: Vec<(u64, u64)> = self
            .records
            .values()
            .filter_map(|r| match r {
                Seen::Epoch { generation, epoch } => Some((*epoch, *generation)),
                Seen::Claim => None,
            })
            .collect();
        let want: Vec<u64> = (1..=input.final_epoch()).collect();
        let got: Vec<u64> = epochs.iter().map(|e| e.0).collect();
        if got != want {
            return Err(self.fail(format!("committed epochs {got:?}, expected {want:?}")));
        }
        for (e, g) in &epochs {
            let has_output = self
                .staged
                .values()
                .any(|s| s.epoch == *e && s.generation == *g && !s.out.is_empty());
            let published = self.published_epochs.get(e);
            if (has_output && published != Some(g)) || published.is_some_and(|p| p != g) {
                return Err(self.fail(format!(
                    "invariant 1: epoch {e} committed by run {g}, published from {published:?}"
                )));
            }
        }
        let mut counts: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for p in 0..input.groups {
            for (i, word) in input.records[p as usize].iter().enumerate() {
                match self.published.get(&(p, i as u64)) {
                    Some(out) if &out.word == word => {
                        counts.entry(word).or_default().push(out.count)
                    }
                    other => {
                        return Err(self.fail(format!(
                        "invariant 1: record {i} of partition {p} ({word}) published as {other:?}"
                    )))
                    }
                }
            }
        }
        let total: usize = input.records.iter().map(Vec::len).sum();
        if self.published.len() != total {
            return Err(self.fail(format!(
                "{} records published, the input has {total}",
                self.published.len()
            )));
        }
        for (word, mut c) in counts {
            c.sort_unstable();
            if c != (1..=c.len() as u64).collect::<Vec<_>>() {
                return Err(self.fail(format!("the counts published for {word} are {c:?}")));
            }
        }
        Ok(())
    }
}
