//! [`BlockCache`]: verified blocks of a remote view's files, in memory,
//! bounded in bytes.
//!
//! Invariants: only blocks that matched their file's block table are
//! inserted (the caller verifies); the bytes held never exceed the budget
//! by more than one block; eviction is first in, first out (a look-up's
//! search path is short-lived, and the background download makes every
//! block local soon).

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Verified blocks by (file, block number).
#[derive(Debug)]
pub(crate) struct BlockCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    blocks: HashMap<(u64, usize), Bytes>,
    order: VecDeque<(u64, usize)>,
    bytes: usize,
}

impl BlockCache {
    /// A cache holding at most about `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        BlockCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Block `block` of file `file`, if cached.
    pub(crate) fn get(&self, file: u64, block: usize) -> Option<Bytes> {
        self.lock().blocks.get(&(file, block)).cloned()
    }

    /// Caches a verified block, evicting the oldest ones over the budget.
    pub(crate) fn insert(&self, file: u64, block: usize, bytes: Bytes) {
        let mut inner = self.lock();
        let len = bytes.len();
        if inner.blocks.insert((file, block), bytes).is_some() {
            return;
        }
        inner.order.push_back((file, block));
        inner.bytes += len;
        while inner.bytes > self.budget && inner.order.len() > 1 {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(b) = inner.blocks.remove(&old) {
                inner.bytes -= b.len();
            }
        }
    }

    /// Drops every block (the view went local).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        *inner = Inner::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_budget_oldest_out_first() {
        let cache = BlockCache::new(100);
        for b in 0..5 {
            cache.insert(1, b, Bytes::from(vec![b as u8; 40]));
        }
        assert!(cache.get(1, 0).is_none() && cache.get(1, 2).is_none());
        assert_eq!(cache.get(1, 4).unwrap()[0], 4);
        assert_eq!(cache.get(1, 3).unwrap()[0], 3);
        assert!(cache.lock().bytes <= 100);
    }
}
