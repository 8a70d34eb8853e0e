//! The job's input and the direct computation the simulation checks against.
//!
//! Partition `p` holds only words of key group `p` (there are as many
//! partitions as key groups), so the worker owning group `p` reads partition
//! `p`: state and input move together on a rescale. Record `i` of partition
//! `p` is a word picked by a hash of `(p, i)`. Barriers are aligned: the
//! barrier of epoch `e` in partition `p` is at offset `min(e * k, len(p))`.

use super::rng::{mix, Rng};
use highwater::cluster::{key_group, KeyGroupRange};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Input {
    pub groups: u32,
    /// Records between two barriers in each partition.
    pub k: u64,
    /// Each partition's records.
    pub records: Vec<Vec<String>>,
}

impl Input {
    pub fn new(rng: &mut Rng, groups: u32) -> Input {
        let mut vocab: Vec<Vec<String>> = vec![Vec::new(); groups as usize];
        let mut j = 0u64;
        while vocab.iter().any(|v| v.len() < 3) {
            let word = format!("w{j}");
            vocab[key_group(word.as_bytes(), groups) as usize].push(word);
            j += 1;
        }
        let k = rng.range(2, 6);
        let records = (0..groups as u64)
            .map(|p| {
                let len = if rng.chance(100) { 0 } else { rng.range(1, 24) };
                let v = &vocab[p as usize];
                (0..len)
                    .map(|i| {
                        v[(mix((p << 32) ^ i ^ 0x1234_5678) % v.len() as u64) as usize].clone()
                    })
                    .collect()
            })
            .collect();
        Input { groups, k, records }
    }

    pub fn name(p: u32) -> String {
        format!("p{p:03}")
    }

    pub fn len(&self, p: u32) -> u64 {
        self.records[p as usize].len() as u64
    }

    /// The offset of the barrier of `epoch` in partition `p`.
    pub fn barrier(&self, p: u32, epoch: u64) -> u64 {
        epoch.saturating_mul(self.k).min(self.len(p))
    }

    /// The first epoch whose barrier is at the end of every partition.
    pub fn final_epoch(&self) -> u64 {
        (0..self.groups)
            .map(|p| self.len(p).div_ceil(self.k))
            .max()
            .unwrap_or(0)
            .max(1)
    }

    /// The counts (as the workers store them) of the words of partitions
    /// `range` over their first `offset(p)` records.
    pub fn counts(
        &self,
        range: KeyGroupRange,
        offset: impl Fn(u32) -> u64,
    ) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for p in range.start..range.end {
            for w in &self.records[p as usize][..offset(p) as usize] {
                *counts.entry(w).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(w, c)| (w.as_bytes().to_vec(), encode_count(c)))
            .collect()
    }
}

pub fn encode_count(c: u64) -> Vec<u8> {
    c.to_string().into_bytes()
}

pub fn decode_count(b: &[u8]) -> u64 {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("a count the simulation wrote")
}
