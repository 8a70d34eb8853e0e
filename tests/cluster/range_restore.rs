//! A range restore reads only its groups' bytes: one worker commits a few
//! MB of state over 128 groups into a local directory, then runs of 4 and 8
//! workers join through a store that records every read. Each worker's
//! reads are bounded by its share of the part plus the fixed overhead the
//! docs name, every ranged get lies in the header, the tail, or the blocks
//! of the worker's own runs of each column, and no read covers the file.

use super::support::{map_of, splitmix, CountingStore, Map, Read};
use highwater::blob::{BlobKey, BlobStore, LocalBlobStore};
use highwater::cluster::{ClusterWorker, Coordinator, CoordinatorConfig, PartRef, WorkerConfig};
use highwater::SourcePositions;
use std::ops::Range;
use std::sync::Arc;

const HEADER_LEN: u64 = 64;
const ROOT_LEN: u64 = 48;
const KEYS: u64 = 16_000;

fn le64(b: &[u8], at: u64) -> u64 {
    u64::from_le_bytes(b[at as usize..at as usize + 8].try_into().unwrap())
}

/// Where a part file's pieces are, read from its bytes by docs/FORMAT.md
/// §2 (independently of the library's reader).
struct Layout {
    size: u64,
    block: u64,
    payload_end: u64,
    /// From the start of the root's block to the end of the file (block
    /// table included): what opening the file fetches after the header.
    tail: Range<u64>,
    /// The file offsets where the six columns start (`key_ends`, `keys`,
    /// `value_ends`, `values`, `deleted_ends`, `deleted`).
    columns: [u64; 6],
}

impl Layout {
    fn of(file: &[u8]) -> Layout {
        let size = file.len() as u64;
        let block = 1u64 << file[14];
        let payload_end = HEADER_LEN + le64(file, 16);
        let root = payload_end - ROOT_LEN;
        let tail_from = HEADER_LEN + (root - HEADER_LEN) / block * block;
        let mut columns = [0; 6];
        for (i, c) in columns.iter_mut().enumerate() {
            let field = root + 8 * i as u64;
            let offset =
                i32::from_le_bytes(file[field as usize..field as usize + 4].try_into().unwrap());
            *c = (field as i64 + i64::from(offset)) as u64;
        }
        Layout {
            size,
            block,
            payload_end,
            tail: tail_from..size,
            columns,
        }
    }

    /// The exact byte ranges a restore of put items `lo..hi` needs: of the
    /// `ends` column the entries `lo - 1..hi` (the entry before the run
    /// gives its first item's start), of the byte column the items' bytes;
    /// for the keys and for the values.
    fn regions(&self, file: &[u8], lo: u64, hi: u64) -> Vec<Range<u64>> {
        if lo == hi {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (ends, bytes) in [
            (self.columns[0], self.columns[1]),
            (self.columns[2], self.columns[3]),
        ] {
            let end = |i: u64| le64(file, ends + 8 * i);
            out.push(ends + 8 * lo.saturating_sub(1)..ends + 8 * hi);
            let first = if lo == 0 { 0 } else { end(lo - 1) };
            out.push(bytes + first..bytes + end(hi - 1));
        }
        out
    }

    /// `r` widened to the payload blocks it touches.
    fn blocks(&self, r: &Range<u64>) -> Range<u64> {
        let start = HEADER_LEN + (r.start - HEADER_LEN) / self.block * self.block;
        let end = HEADER_LEN + (r.end - HEADER_LEN).div_ceil(self.block) * self.block;
        start..end.min(self.payload_end)
    }
}

fn inside(r: &Range<u64>, allowed: &[Range<u64>]) -> bool {
    // `allowed` is sorted and merged: a read must lie in one interval.
    allowed.iter().any(|a| a.start <= r.start && r.end <= a.end)
}

fn merged(mut v: Vec<Range<u64>>) -> Vec<Range<u64>> {
    v.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[test]
fn range_restores_read_only_their_groups_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(dir.path()).unwrap());
    let counting = CountingStore::new(local.clone());
    let store: Arc<dyn BlobStore> = counting.clone();

    // One worker, 128 groups, about 4.5 MB of state.
    let mut coordinator = Coordinator::start(CoordinatorConfig::new(store.clone(), 1)).unwrap();
    let (mut worker, mut restored) = ClusterWorker::join(WorkerConfig::new(
        store.clone(),
        coordinator.generation(),
        0,
    ))
    .unwrap();
    let mut expected = Map::new();
    for j in 0..KEYS {
        let key = format!("key-{j}").into_bytes();
        let value: Vec<u8> = (0..240 + splitmix(j) % 32).map(|i| (i ^ j) as u8).collect();
        restored.state.put(key.clone(), value.clone());
        expected.insert(key, value);
    }
    let report = worker
        .checkpoint(1, &mut restored.state, &SourcePositions::new(), vec![])
        .unwrap();
    let committed = coordinator.commit(1, vec![report]).unwrap();
    let part: PartRef = committed.reports[0].chain[0].clone();
    let file = local.get(&BlobKey::new(part.key.clone()).unwrap()).unwrap();
    let layout = Layout::of(&file);
    assert_eq!(layout.size, part.size);
    assert!(part.size > 4 << 20, "{} bytes", part.size);

    for n in [4u32, 8] {
        let coordinator = Coordinator::start(CoordinatorConfig::new(store.clone(), n)).unwrap();
        let mut total = 0;
        counting.take();
        for i in 0..n {
            let config = WorkerConfig::new(store.clone(), coordinator.generation(), i);
            let (worker, restored) = ClusterWorker::join(config).unwrap();
            let range = worker.key_groups();
            let want: Map = expected
                .iter()
                .filter(|(k, _)| worker.owns(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert!(map_of(&restored.state) == want, "worker {i} of {n}");

            // Its share: the exact runs of its groups, checked against the
            // model (2 prefix bytes + key + value + two 8-byte end offsets
            // per key, and the end offset before the run).
            let (lo, hi) = (
                part.puts[range.start as usize],
                part.puts[range.end as usize],
            );
            let regions = layout.regions(&file, lo, hi);
            let share: u64 = regions.iter().map(|r| r.end - r.start).sum();
            let model: u64 = want
                .iter()
                .map(|(k, v)| 2 + k.len() as u64 + v.len() as u64 + 16)
                .sum::<u64>()
                + if lo > 0 { 16 } else { 0 };
            assert_eq!(share, model, "worker {i} of {n}");
            // The bound: the 64-byte header, the tail opening fetches (the
            // root's block and the block table), and each of the four runs
            // (key ends, keys, value ends, values) rounded out to whole
            // 64 KiB blocks: at most one block of a neighbouring group at
            // each end of each run. (A snapshot has no deleted keys.)
            let tail = layout.tail.end - layout.tail.start;
            let bound = share + HEADER_LEN + tail + regions.len() as u64 * 2 * layout.block;

            let reads = counting.take();
            let mut tally = 0;
            let mut requests = 0;
            let allowed = merged(
                [0..HEADER_LEN, layout.tail.clone()]
                    .into_iter()
                    .chain(regions.iter().map(|r| layout.blocks(r)))
                    .collect(),
            );
            for read in &reads {
                match read {
                    Read::Whole(k) => assert!(!k.starts_with("parts/"), "a whole get of {k}"),
                    Read::Range(k, r) if *k == part.key => {
                        assert!(
                            r.end - r.start < part.size,
                            "worker {i} of {n} read {r:?}: the whole file"
                        );
                        assert!(
                            inside(r, &allowed),
                            "worker {i} of {n} (groups {range}) read {r:?}, outside {allowed:?}"
                        );
                        tally += r.end - r.start;
                        requests += 1;
                    }
                    Read::Range(k, r) => panic!("a ranged get of {k} {r:?}"),
                }
            }
            assert_eq!(restored.counts.files, 1);
            assert_eq!(restored.counts.bytes, tally, "the counts are the reads");
            assert_eq!(restored.counts.requests, requests);
            assert!(
                tally <= bound,
                "worker {i} of {n} read {tally} bytes; its share is {share}, the bound {bound}"
            );
            total += tally;
        }
        // Together: the file once, plus each worker's overhead; far less
        // than every worker reading the whole file.
        let overhead = HEADER_LEN + (layout.tail.end - layout.tail.start) + 4 * 2 * layout.block;
        assert!(
            total <= part.size + u64::from(n) * overhead,
            "{n} workers read {total}"
        );
        assert!(
            total * 3 < u64::from(n) * part.size,
            "{n} workers read {total} bytes of a {}-byte file",
            part.size
        );
        eprintln!(
            "{n} workers read {total} bytes of a {}-byte file",
            part.size
        );
    }
}
