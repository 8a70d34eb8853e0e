//! Key groups: the unit of keyed state that moves between workers when a job
//! rescales (docs/DISTRIBUTED.md, "Key groups").
//!
//! Invariants:
//! - [`key_group`] is a function of the key's bytes and the group count only,
//!   and is part of the on-disk format forever (committed fixtures test it).
//! - [`KeyGroups::range_of`] splits `0..count` into contiguous, disjoint
//!   ranges that cover it, in worker order, sizes differing by at most one.
//! - A stored key is its group as 2 big-endian bytes, then its bytes, so the
//!   keys of a range of groups are one contiguous run of a sorted file.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The key-group count a job gets unless it says otherwise (Flink's default
/// max parallelism).
pub const DEFAULT_KEY_GROUPS: u32 = 128;
/// The most key groups a job can have (a group is stored in 2 bytes).
pub const MAX_KEY_GROUPS: u32 = 32_768;
/// The bytes a group takes in front of each stored key.
pub(crate) const GROUP_PREFIX_LEN: usize = 2;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit hash behind [`key_group`]: FNV-1a, then the MurmurHash3
/// finaliser.
fn hash(key: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The key group of `key` among `count` groups: `((h >> 32) * count) >> 32`
/// for `h` the hash of docs/DISTRIBUTED.md. Never changes.
///
/// `count` must be in `1..=MAX_KEY_GROUPS` ([`KeyGroups::new`] checks it);
/// a `count` of 0 answers 0.
///
/// ```
/// use highwater::cluster::key_group;
/// let g = key_group(b"user-42", 128);
/// assert!(g < 128);
/// assert_eq!(g, key_group(b"user-42", 128)); // a function of the bytes only
/// ```
pub fn key_group(key: &[u8], count: u32) -> u32 {
    (((hash(key) >> 32) * u64::from(count)) >> 32) as u32
}

/// A contiguous range of key groups, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyGroupRange {
    /// The first group in the range.
    pub start: u32,
    /// One past the last group.
    pub end: u32,
}

impl KeyGroupRange {
    /// The groups `start..end`.
    pub fn new(start: u32, end: u32) -> Self {
        KeyGroupRange { start, end }
    }

    /// How many groups it holds.
    pub fn len(&self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    /// Whether it holds no group.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `group` is in it.
    pub fn contains(&self, group: u32) -> bool {
        self.start <= group && group < self.end
    }

    /// The groups both ranges hold (`None` when none).
    pub fn intersect(&self, other: &KeyGroupRange) -> Option<KeyGroupRange> {
        let r = KeyGroupRange::new(self.start.max(other.start), self.end.min(other.end));
        (!r.is_empty()).then_some(r)
    }
}

impl std::fmt::Display for KeyGroupRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A job's key-group count, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyGroups(u32);

impl Default for KeyGroups {
    fn default() -> Self {
        KeyGroups(DEFAULT_KEY_GROUPS)
    }
}

impl KeyGroups {
    /// `count` key groups.
    ///
    /// # Errors
    /// `InvalidConfig` unless `count` is in `1..=MAX_KEY_GROUPS`.
    pub fn new(count: u32) -> Result<Self> {
        if count == 0 || count > MAX_KEY_GROUPS {
            return Err(Error::InvalidConfig {
                setting: "key_groups",
                reason: format!("{count} key groups; a job has 1 to {MAX_KEY_GROUPS}"),
            });
        }
        Ok(KeyGroups(count))
    }

    /// The count.
    pub fn count(&self) -> u32 {
        self.0
    }

    /// Every group: `0..count`.
    pub fn all(&self) -> KeyGroupRange {
        KeyGroupRange::new(0, self.0)
    }

    /// The group of `key` ([`key_group`]).
    pub fn of(&self, key: &[u8]) -> u32 {
        key_group(key, self.0)
    }

    /// The groups worker `index` of `workers` owns: `index*count/workers ..
    /// (index+1)*count/workers`.
    ///
    /// # Errors
    /// `InvalidConfig` when `workers` is 0 or above the group count, or
    /// `index` is not below `workers`.
    ///
    /// ```
    /// use highwater::cluster::KeyGroups;
    /// let groups = KeyGroups::new(128)?;
    /// assert_eq!(groups.range_of(0, 3)?.end, 42);
    /// assert_eq!(groups.range_of(2, 3)?.end, 128);
    /// # Ok::<(), highwater::Error>(())
    /// ```
    pub fn range_of(&self, index: u32, workers: u32) -> Result<KeyGroupRange> {
        if workers == 0 || workers > self.0 || index >= workers {
            return Err(Error::InvalidConfig {
                setting: "workers",
                reason: format!(
                    "worker {index} of {workers}: a job of {} key groups runs 1 to {} workers, indexed from 0",
                    self.0, self.0
                ),
            });
        }
        let at = |i: u32| (u64::from(i) * u64::from(self.0) / u64::from(workers)) as u32;
        Ok(KeyGroupRange::new(at(index), at(index + 1)))
    }
}

/// The 2 bytes in front of every stored key of `group`.
pub(crate) fn group_prefix(group: u32) -> [u8; GROUP_PREFIX_LEN] {
    (group as u16).to_be_bytes()
}

/// The group and user key of a stored key (`None` when it is too short).
pub(crate) fn split_stored(stored: &[u8]) -> Option<(u32, &[u8])> {
    let (g, key) = stored.split_at_checked(GROUP_PREFIX_LEN)?;
    Some((u32::from(u16::from_be_bytes([g[0], g[1]])), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_group_once() {
        for count in [1, 2, 7, 128, 1000] {
            let groups = KeyGroups::new(count).unwrap();
            for workers in 1..=count.min(9) {
                let mut next = 0;
                for i in 0..workers {
                    let r = groups.range_of(i, workers).unwrap();
                    assert_eq!(r.start, next);
                    assert!(!r.is_empty());
                    next = r.end;
                }
                assert_eq!(next, count);
            }
        }
        assert!(KeyGroups::new(0).is_err());
        assert!(KeyGroups::new(MAX_KEY_GROUPS + 1).is_err());
        assert!(KeyGroups::default().range_of(3, 3).is_err());
    }

    #[test]
    fn stored_keys_sort_by_group_then_key() {
        let groups = KeyGroups::new(MAX_KEY_GROUPS).unwrap();
        let g = groups.of(b"abc");
        let k = [&group_prefix(g)[..], b"abc"].concat();
        assert_eq!(split_stored(&k), Some((g, &b"abc"[..])));
        assert!(group_prefix(g).to_vec() <= k && k < group_prefix(g + 1).to_vec());
        assert_eq!(group_prefix(MAX_KEY_GROUPS), [0x80, 0]);
        assert!(split_stored(b"a").is_none());
    }

    #[test]
    fn groups_spread_keys() {
        let mut counts = vec![0u32; 128];
        for i in 0..12_800u32 {
            counts[key_group(format!("word-{i}").as_bytes(), 128) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (50..=150).contains(&c)),
            "{counts:?}"
        );
    }
}
