//! Key-ordered iteration over a [`TrackedState`](super::TrackedState): the
//! base's sorted run merged with the sorted changes above it.

use super::base::{Base, Slot};
use std::cmp::Ordering;

/// Pairs of `base[next..end]` merged with `changes` (sorted, one per key; a
/// change replaces the base's pair of the same key, a `None` hides it).
/// Used by iteration (`iter`, `range`, `snapshot`) and by the fold of
/// settled changes into a new base.
pub(super) struct Merged<'a, I: Iterator<Item = Slot<'a>>> {
    pub(super) base: &'a Base,
    pub(super) next: usize,
    pub(super) end: usize,
    pub(super) changes: std::iter::Peekable<I>,
}

impl<'a, I: Iterator<Item = Slot<'a>>> Iterator for Merged<'a, I> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let base_key = (self.next < self.end).then(|| self.base.key(self.next));
            let take_base = match (base_key, self.changes.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(b), Some(&(c, _))) => match b.cmp(c) {
                    Ordering::Less => true,
                    Ordering::Equal => {
                        self.next += 1; // replaced or hidden by the change
                        false
                    }
                    Ordering::Greater => false,
                },
            };
            if take_base {
                let pair = self.base.pair(self.next);
                self.next += 1;
                return Some(pair);
            }
            if let Some((key, Some(value))) = self.changes.next() {
                return Some((key, value));
            }
        }
    }
}
