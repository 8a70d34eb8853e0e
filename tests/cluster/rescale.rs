//! Rescaling between every pair of worker counts from 1 to 6: a run of `n`
//! workers commits epochs of puts, overwrites and deletes (chains of a full
//! part and deltas with tombstones), then a run of `m` workers restores
//! them; each new worker holds exactly the expected state of its key groups
//! and every partition's position, its first checkpoint is a full part,
//! and what it commits restores again.

use super::support::{sim, Job};
use highwater::cluster::PartKind;

/// `n` workers for three epochs (chains: full, delta, delta), then `m`
/// workers for two (full, then a delta on it), then a run of one worker
/// that restores everything `m` committed.
fn rescale(key_groups: u32, n: u32, m: u32) {
    let seed = u64::from(key_groups) << 16 | u64::from(n) << 8 | u64::from(m);
    let mut job = Job::new(sim(seed), key_groups, seed);
    let mut run = job.start(n);
    job.epoch(&mut run);
    job.epoch(&mut run);
    let last = job.epoch(&mut run);
    // The base's chains hold deltas with tombstones.
    assert!(last.iter().all(|r| r.chain.len() == 3));
    let tombstones: u64 = last
        .iter()
        .flat_map(|r| &r.chain[1..])
        .map(|p| *p.deletes.last().unwrap())
        .sum();
    assert!(tombstones > 0, "{n} -> {m}: no delta deleted a key");

    let mut run = job.start(m);
    assert_eq!(run.coordinator.plan().base_epoch, 3);
    let first = job.epoch(&mut run);
    for r in &first {
        assert_eq!(r.chain.len(), 1, "{n} -> {m}: the first part after join");
        assert_eq!(r.chain[0].kind, PartKind::Full);
    }
    let second = job.epoch(&mut run);
    assert!(second.iter().all(|r| r.chain.len() == 2));

    // What the rescaled run committed restores too.
    let _ = job.start(1);
}

#[test]
fn rescales_between_every_pair_of_worker_counts_from_1_to_6() {
    for n in 1..=6 {
        for m in 1..=6 {
            rescale(128, n, m);
        }
    }
}

/// Seven groups: ranges of one and two groups, boundaries that never line
/// up between the old and the new split.
#[test]
fn rescales_with_few_groups() {
    for n in 1..=6 {
        for m in 1..=6 {
            rescale(7, n, m);
        }
    }
}

/// The reports go through the store transport, and a run rescales twice.
#[test]
fn rescales_twice_through_the_store_transport() {
    let mut job = Job::new(sim(99), 128, 99);
    job.transport = true;
    job.max_chain = 2;
    for n in [4, 3, 5] {
        let mut run = job.start(n);
        for _ in 0..3 {
            job.epoch(&mut run);
        }
    }
    let _ = job.start(2);
}
