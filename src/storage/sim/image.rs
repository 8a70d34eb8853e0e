//! What a crash leaves on the device: the [`CrashImage`] policies and the
//! construction of the rebooted file system from a [`Tree`].
//!
//! Everything synced survives. Of the changes made since the last sync:
//! - [`CrashImage::LoseUnsynced`] keeps none, [`CrashImage::KeepUnsynced`] keeps
//!   all of them;
//! - [`CrashImage::Torn`] keeps each directory change with even odds, in order
//!   (a rename within one directory is one change), and tears each unsynced write
//!   independently of the others, as a disk writing back dirty pages in any order
//!   would: the whole write is kept, or lost, or each 512-byte sector of it is
//!   kept, lost, zeroed, filled with random bytes or filled with stale bytes of
//!   some file (deleted ones included) at the same offset. A truncate is kept
//!   with even odds.

use super::tree::{write_at, DirNode, FileNode, FileOp, Ino, Node, Tree, ROOT};
use std::collections::{BTreeMap, HashMap};

/// Sector size at which [`CrashImage::Torn`] tears writes.
pub const SECTOR: u64 = 512;

/// Which of the unsynced changes a simulated crash keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashImage {
    /// Every change not yet made durable by a sync is lost.
    LoseUnsynced,
    /// Every change reached the device, synced or not.
    KeepUnsynced,
    /// Unsynced changes are kept, lost or torn at random, reproducibly from
    /// the seed (see the module documentation).
    Torn {
        /// Seed of the random choices.
        seed: u64,
    },
}

/// SplitMix64: a small, fast, reproducible generator (no dependency needed).
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// Builds the file system a reboot after a crash finds: every path reachable
/// through the entries the policy keeps, each file holding the bytes it keeps;
/// all of it durable.
pub(super) fn crash_image(tree: &Tree, policy: CrashImage) -> Tree {
    let mut builder = Builder {
        old: tree,
        policy,
        rng: Rng::new(match policy {
            CrashImage::Torn { seed } => seed,
            _ => 0,
        }),
        stale: tree.files().map(|f| &f.live).collect(),
        new: Tree::new(),
        copied: HashMap::from([(ROOT, ROOT)]),
    };
    let root = builder.dir_entries(ROOT);
    builder.new.set(ROOT, Node::Dir(DirNode::settled(root)));
    builder.new
}

struct Builder<'a> {
    old: &'a Tree,
    policy: CrashImage,
    rng: Rng,
    /// Contents of every file, for stale sectors.
    stale: Vec<&'a Vec<u8>>,
    new: Tree,
    /// Old inode to new inode, so an inode reachable twice is copied once.
    copied: HashMap<Ino, Ino>,
}

impl Builder<'_> {
    /// The surviving entries of directory `ino`, their inodes copied.
    fn dir_entries(&mut self, ino: Ino) -> BTreeMap<String, Ino> {
        let Node::Dir(dir) = self.old.node(ino) else {
            unreachable!("inode {ino} is a directory")
        };
        let mut entries = dir.durable.clone();
        for op in &dir.pending {
            if self.keeps_change() {
                op.apply(&mut entries);
            }
        }
        entries
            .into_iter()
            .map(|(name, child)| (name, self.copy(child)))
            .collect()
    }

    fn copy(&mut self, ino: Ino) -> Ino {
        if let Some(&done) = self.copied.get(&ino) {
            return done;
        }
        match self.old.node(ino) {
            Node::File(file) => {
                let bytes = self.file_bytes(file);
                let new = self.new.add(Node::File(FileNode::settled(bytes)));
                self.copied.insert(ino, new);
                new
            }
            Node::Dir(_) => {
                // Registered before the children, so a cycle ends here.
                let new = self.new.add(Node::Dir(DirNode::default()));
                self.copied.insert(ino, new);
                let entries = self.dir_entries(ino);
                self.new.set(new, Node::Dir(DirNode::settled(entries)));
                new
            }
        }
    }

    fn keeps_change(&mut self) -> bool {
        match self.policy {
            CrashImage::LoseUnsynced => false,
            CrashImage::KeepUnsynced => true,
            CrashImage::Torn { .. } => self.rng.coin(),
        }
    }

    fn file_bytes(&mut self, file: &FileNode) -> Vec<u8> {
        let mut bytes = file.durable.clone();
        for op in &file.pending {
            match (self.policy, op) {
                (CrashImage::LoseUnsynced, _) => {}
                (CrashImage::KeepUnsynced, _) => op.apply(&mut bytes),
                (CrashImage::Torn { .. }, FileOp::SetLen(_)) => {
                    if self.rng.coin() {
                        op.apply(&mut bytes);
                    }
                }
                (CrashImage::Torn { .. }, FileOp::Write { offset, data }) => {
                    match self.rng.below(4) {
                        0 => op.apply(&mut bytes),
                        1 => {}
                        _ => self.tear(&mut bytes, *offset, data),
                    }
                }
            }
        }
        bytes
    }

    /// Applies a write sector by sector, each sector kept, lost, zeroed, random
    /// or stale.
    fn tear(&mut self, bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        let mut at = offset;
        while at < end {
            let sector_end = ((at / SECTOR + 1) * SECTOR).min(end);
            let piece = &data[(at - offset) as usize..(sector_end - offset) as usize];
            match self.rng.below(5) {
                0 => write_at(bytes, at, piece),
                1 => {}
                2 => write_at(bytes, at, &vec![0; piece.len()]),
                3 => {
                    let random: Vec<u8> = (0..piece.len()).map(|_| self.rng.next() as u8).collect();
                    write_at(bytes, at, &random);
                }
                _ => {
                    let source = self.stale[self.rng.below(self.stale.len() as u64) as usize];
                    let stale: Vec<u8> = (at..sector_end)
                        .map(|i| source.get(i as usize).copied().unwrap_or(0))
                        .collect();
                    write_at(bytes, at, &stale);
                }
            }
            at = sector_end;
        }
    }
}
