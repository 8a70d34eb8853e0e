//! Hostile inputs for a remote state file: archives that lie (end offsets
//! out of range or decreasing, counts and column pointers that do not hold
//! together) inside files whose every checksum is right, so that only the
//! archive checks stand between them and a wrong value or a panic; and the
//! same file read remotely and mapped locally must answer alike (a view
//! switches from one to the other).

use super::block_cache::BlockCache;
use super::blocks::{Fetch, FetchCounts, RemoteStateFile};
use super::layer::{Layer, Said};
use crate::blob::{BlobKey, BlobStore, SimBlobStore};
use crate::checkpoint::remote::record::RemoteFile;
use crate::error::{Error, Result};
use crate::state::column_map::{self, ColumnMap, ROOT_LEN};
use crate::state::format::{FileLayout, Header, HEADER_LEN};
use crate::state::{encoded_file_crc, Lookup, StateFileView, StateSnapshot};
use std::path::Path;
use std::sync::Arc;

const PATH: &str = "parts/crafted";

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

/// A snapshot of `n` keys (values of varied length).
fn snapshot_file(n: usize) -> Vec<u8> {
    StateSnapshot::new((0..n).map(|i| (key(i), vec![b'v'; 1 + i % 300])).collect())
        .to_bytes()
        .unwrap()
        .to_vec()
}

fn columns(file: &[u8]) -> ColumnMap {
    let path = Path::new(PATH);
    let layout = FileLayout::parse(path, file).unwrap();
    let at = column_map::root_offset(&layout.header) as usize;
    column_map::decode_root(path, &layout.header, &file[at..at + ROOT_LEN]).unwrap()
}

/// Recomputes every checksum (block table, payload, table, header) of a
/// state file whose payload (or header fields) were changed.
fn reseal(file: &mut Vec<u8>, edit_header: impl FnOnce(&mut Header)) {
    let path = Path::new(PATH);
    // The length the header describes (the file may already be longer).
    let payload_len = u64::from_le_bytes(file[16..24].try_into().unwrap());
    let described = crate::state::format::file_len(payload_len, file[14]);
    let mut header = Header::decode(path, file, described).unwrap();
    edit_header(&mut header);
    let payload = HEADER_LEN..HEADER_LEN + header.payload_len as usize;
    let mut table = Vec::new();
    for block in file[payload.clone()].chunks(1 << header.block_shift) {
        table.extend_from_slice(&crc32c::crc32c(block).to_le_bytes());
    }
    header.payload_crc = crc32c::crc32c(&file[payload.clone()]);
    header.table_crc = crc32c::crc32c(&table);
    file[..HEADER_LEN].copy_from_slice(&header.encode());
    file.truncate(payload.end);
    file.extend_from_slice(&table);
}

fn put_u64(file: &mut [u8], at: u64, v: u64) {
    file[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
}

struct Opened {
    store: SimBlobStore,
    cache: BlockCache,
    counts: FetchCounts,
}

impl Opened {
    fn new(file: &[u8]) -> Self {
        let store = SimBlobStore::new(1);
        store
            .put(&BlobKey::new(PATH).unwrap(), file.to_vec().into())
            .unwrap();
        Opened {
            store,
            cache: BlockCache::new(1 << 20),
            counts: FetchCounts::default(),
        }
    }

    fn open(&self, file: &[u8]) -> Result<Layer> {
        let remote = RemoteFile {
            file: "part-state.hwstate".into(),
            key: PATH.into(),
            size: file.len() as u64,
            crc32c: encoded_file_crc(Path::new(PATH), file)?,
        };
        let key = BlobKey::new(PATH).unwrap();
        RemoteStateFile::open(&self.store, &key, &remote, 0, &self.cache, &self.counts)
            .map(Layer::Remote)
    }

    fn fetch(&self) -> Fetch<'_> {
        Fetch {
            store: &self.store,
            cache: &self.cache,
            counts: &self.counts,
        }
    }
}

fn local(file: &[u8]) -> Result<StateFileView> {
    StateFileView::from_mapped(
        Path::new(PATH),
        Arc::new(crate::storage::LoadedFile::from_bytes(file)),
    )
}

fn is_corruption(e: &Error) -> bool {
    matches!(
        e,
        Error::StateCorrupted { .. } | Error::StateChecksumMismatch { .. }
    )
}

/// Every look-up of `keys` through the remote layer and the mapped view:
/// the same answer, or both a corruption error.
fn same_answers(file: &[u8], keys: impl Iterator<Item = Vec<u8>>) -> (usize, usize) {
    let o = Opened::new(file);
    let remote = o.open(file);
    let mapped = local(file);
    let (remote, mapped) = match (remote, mapped) {
        (Ok(r), Ok(m)) => (r, m),
        (Err(r), Err(m)) => {
            assert!(
                is_corruption(&r) || matches!(r, Error::CheckpointFileMismatch { .. }),
                "{r}"
            );
            assert!(is_corruption(&m), "{m}");
            return (0, 0);
        }
        (r, m) => panic!(
            "the remote open says {:?}, the mapped open {:?}",
            r.map(|_| ()),
            m.map(|_| ())
        ),
    };
    let f = o.fetch();
    let (mut ok, mut failed) = (0, 0);
    for k in keys {
        let r = remote.lookup(&k, &f);
        let m = mapped.lookup(&k).map(|l| match l {
            Lookup::Put(v) => Said::Put(v.to_vec()),
            Lookup::Deleted => Said::Deleted,
            Lookup::Absent => Said::Absent,
        });
        match (r, m) {
            (Ok(r), Ok(m)) => {
                assert_eq!(r, m, "key {k:?}");
                ok += 1;
            }
            (Err(r), Err(m)) => {
                assert!(is_corruption(&r), "{r}");
                assert!(is_corruption(&m), "{m}");
                failed += 1;
            }
            (r, m) => panic!("key {k:?}: remote {r:?}, mapped {m:?}"),
        }
    }
    (ok, failed)
}

#[test]
fn a_decreasing_key_end_is_an_error_for_the_look_ups_that_read_it() {
    let mut file = snapshot_file(2000);
    let c = columns(&file);
    // key_ends[700] below key_ends[699].
    let at = c.keys.ends + 8 * 700;
    let prev = u64::from_le_bytes(file[at as usize - 8..at as usize].try_into().unwrap());
    put_u64(&mut file, at, prev - 3);
    reseal(&mut file, |_| {});
    let (ok, failed) = same_answers(&file, (0..2000).map(key));
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    let o = Opened::new(&file);
    let layer = o.open(&file).unwrap();
    match layer.lookup(&key(700), &o.fetch()) {
        Err(Error::StateCorrupted { offset, .. }) => assert_eq!(offset, at),
        other => panic!("expected StateCorrupted, got {other:?}"),
    }
}

#[test]
fn value_ends_past_their_column_or_huge_are_errors_never_a_panic() {
    for bad in [u64::MAX, u64::MAX - 7, 1 << 40] {
        let mut file = snapshot_file(500);
        let c = columns(&file);
        put_u64(&mut file, c.values.ends + 8 * 499, bad);
        put_u64(&mut file, c.keys.ends + 8 * 10, bad);
        reseal(&mut file, |_| {});
        let (ok, failed) = same_answers(&file, (0..500).map(key));
        assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    }
    // The last value's end one past its column.
    let mut file = snapshot_file(500);
    let c = columns(&file);
    put_u64(&mut file, c.values.ends + 8 * 499, c.values.bytes_len + 1);
    reseal(&mut file, |_| {});
    let o = Opened::new(&file);
    let layer = o.open(&file).unwrap();
    assert!(matches!(
        layer.lookup(&key(499), &o.fetch()),
        Err(Error::StateCorrupted { .. })
    ));
    assert_eq!(
        layer.lookup(&key(498), &o.fetch()).unwrap(),
        Said::Put(vec![b'v'; 1 + 498 % 300])
    );
}

/// The root's pointers and lengths rewritten: every lie is refused at open
/// (a typed error, no allocation from the lying count).
#[test]
fn a_root_that_lies_is_refused_at_open() {
    let base = snapshot_file(300);
    let header = Header::decode(Path::new(PATH), &base, base.len() as u64).unwrap();
    let root = column_map::root_offset(&header);
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let set32 = |field: usize, half: usize, v: u32| -> Edit {
        Box::new(move |f: &mut Vec<u8>| {
            let at = (root as usize) + 8 * field + 4 * half;
            f[at..at + 4].copy_from_slice(&v.to_le_bytes());
        })
    };
    let edits: Vec<(&str, Edit)> = vec![
        ("key_ends count +1", set32(0, 1, 301)),
        ("key_ends count huge", set32(0, 1, u32::MAX)),
        ("keys length huge", set32(1, 1, u32::MAX)),
        (
            "key_ends into the header",
            set32(0, 0, (-(root as i64)) as u32),
        ),
        ("key_ends after the root", set32(0, 0, 48)),
        ("values at the root", set32(3, 0, 0)),
        (
            "key_ends misaligned",
            set32(0, 0, 0u32.wrapping_sub(root as u32 - 64 - 4)),
        ),
        ("deleted count in a snapshot", set32(4, 1, 1)),
    ];
    for (what, edit) in edits {
        let mut file = base.clone();
        edit(&mut file);
        reseal(&mut file, |_| {});
        let o = Opened::new(&file);
        match o.open(&file) {
            Err(e) => assert!(is_corruption(&e), "{what}: {e}"),
            Ok(layer) => {
                // Accepted: then it must answer like the mapped view.
                let (_, _) = same_answers(&file, (0..300).map(key));
                panic!("{what}: accepted ({} keys)", layer.len());
            }
        }
        assert!(local(&file).is_err(), "{what}: the mapped view accepts it");
    }
    // Header counts that the payload could hold but the root does not say.
    let mut file = base.clone();
    reseal(&mut file, |h| h.entries += 1);
    match Opened::new(&file).open(&file) {
        Err(Error::StateCorrupted { reason, .. }) => {
            assert!(reason.contains("counts differ"), "{reason}")
        }
        other => panic!("expected StateCorrupted, got {:?}", other.map(|_| ())),
    }
}

/// Random bytes of the archive rewritten (checksums made right again): the
/// remote file and the mapped view agree on every look-up, and neither
/// panics.
#[test]
fn crafted_archives_answer_the_same_remotely_and_mapped() {
    let base = snapshot_file(400);
    let c = columns(&base);
    let header = Header::decode(Path::new(PATH), &base, base.len() as u64).unwrap();
    let root = column_map::root_offset(&header);
    let payload_end = HEADER_LEN as u64 + header.payload_len;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut answered = 0;
    for round in 0..300 {
        let mut file = base.clone();
        // Where: the root, an end column, or anywhere in the payload.
        let region = match round % 4 {
            0 => root..payload_end,
            1 => c.keys.ends..c.keys.ends + 8 * c.keys.count,
            2 => c.values.ends..c.values.ends + 8 * c.values.count,
            _ => HEADER_LEN as u64..payload_end,
        };
        for _ in 0..1 + next() % 3 {
            let at = region.start + next() % (region.end - region.start);
            file[at as usize] = next() as u8;
        }
        reseal(&mut file, |_| {});
        let keys = (0..420)
            .step_by(7)
            .map(key)
            .chain([b"".to_vec(), vec![0xff; 9]]);
        let (ok, _) = same_answers(&file, keys);
        answered += ok;
    }
    assert!(answered > 0);
}

/// The root copied 2 bytes past its place (its pointers adjusted, so that
/// they still point at the columns): rkyv refuses a misaligned root, and
/// so must the remote decoder.
#[test]
fn a_misaligned_root_is_refused_like_rkyv_refuses_it() {
    let base = snapshot_file(300);
    let header = Header::decode(Path::new(PATH), &base, base.len() as u64).unwrap();
    let root = column_map::root_offset(&header) as usize;
    let payload_end = HEADER_LEN + header.payload_len as usize;
    let shift = 50usize;
    let mut file = base[..payload_end].to_vec();
    let mut moved = base[root..root + ROOT_LEN].to_vec();
    for field in 0..6 {
        let at = 8 * field;
        let rel = i32::from_le_bytes(moved[at..at + 4].try_into().unwrap());
        moved[at..at + 4].copy_from_slice(&(rel - shift as i32).to_le_bytes());
    }
    file.extend_from_slice(&[0u8; 2]); // 48 + 2 = 50 bytes later
    file.extend_from_slice(&moved);
    reseal(&mut file, |h| h.payload_len += shift as u64);
    assert!(local(&file).is_err(), "rkyv accepts a misaligned root");
    match Opened::new(&file).open(&file) {
        Err(Error::StateCorrupted { offset, .. }) => assert_eq!(offset as usize, root + shift),
        other => panic!("expected StateCorrupted, got {:?}", other.map(|_| ())),
    }
}

/// A cached block holds its own bytes, not a slice of the request's buffer:
/// a slice would keep the whole buffer alive (a 1 GiB value read with one
/// request stays in memory while any of its blocks is cached, far over the
/// cache's budget). The simulated store answers with slices of the stored
/// object, so a cached block that points into the object is such a slice.
#[test]
fn cached_blocks_do_not_keep_the_request_buffer_alive() {
    let big = StateSnapshot::new(vec![(b"big".to_vec(), vec![7u8; 2 << 20])])
        .to_bytes()
        .unwrap()
        .to_vec();
    let o = Opened::new(&big);
    let layer = o.open(&big).unwrap();
    assert_eq!(
        layer.lookup(b"big", &o.fetch()).unwrap(),
        Said::Put(vec![7u8; 2 << 20])
    );
    let object = o.store.get(&BlobKey::new(PATH).unwrap()).unwrap();
    let inside = object.as_ptr() as usize..object.as_ptr() as usize + object.len();
    let blocks = (2 << 20) >> 16;
    let mut cached = 0;
    for b in 0..blocks + 2 {
        if let Some(block) = o.cache.get(0, b) {
            cached += 1;
            assert!(
                !inside.contains(&(block.as_ptr() as usize)),
                "block {b} is a slice of the request's buffer"
            );
        }
    }
    assert!(cached > 0);
}

/// A scan fetches blocks ahead of what it needs; a damaged block among
/// those it does not need must not fail the read (the mapped view, which
/// reads only what it needs, answers it): a range that ends before the
/// damage answered locally and failed remotely.
#[test]
fn a_damaged_block_fetched_ahead_does_not_fail_a_read_that_does_not_need_it() {
    let mut file = snapshot_file(20_000);
    let c = columns(&file);
    let end_of = |file: &[u8], i: u64| {
        let at = (c.values.ends + 8 * i) as usize;
        u64::from_le_bytes(file[at..at + 8].try_into().unwrap())
    };
    // Value `i` lies in one block, and the block two later is damaged.
    let block = |at: u64| (at - HEADER_LEN as u64) >> 16;
    let i = (1000..20_000u64)
        .find(|&i| {
            let (s, e) = (
                c.values.bytes + end_of(&file, i - 1),
                c.values.bytes + end_of(&file, i),
            );
            s < e && block(s) == block(e - 1) && block(s) > 0
        })
        .unwrap();
    let damaged = block(c.values.bytes + end_of(&file, i)) + 2;
    let at = HEADER_LEN + (damaged as usize) * (1 << 16) + 10;
    assert!(
        at < (c.values.bytes + c.values.bytes_len) as usize,
        "inside the values"
    );
    file[at] ^= 0x40;
    let o = Opened::new(&file);
    let layer = o.open(&file).unwrap();
    let mapped = local(&file).unwrap();
    let want = mapped.entry(i as usize).unwrap().1.to_vec();
    assert_eq!(
        layer.value(i, &o.fetch(), super::layer::SCAN).unwrap(),
        want
    );
    // The damaged block itself is still an error, for the read that needs it.
    let j = (i..20_000)
        .find(|&j| block(c.values.bytes + end_of(&file, j)) > damaged)
        .unwrap();
    assert!(
        matches!(
            layer.value(j - 1, &o.fetch(), super::layer::EXACT),
            Err(Error::StateChecksumMismatch { .. })
        ) || matches!(
            layer.value(j, &o.fetch(), super::layer::EXACT),
            Err(Error::StateChecksumMismatch { .. })
        )
    );
}
