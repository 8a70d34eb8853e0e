//! A hostile review of the remote view (`RemoteStateView`), its answers:
//! large values under a small block cache, objects replaced after the view
//! opened, failed requests, `0xff` prefixes, empty states, damaged chain
//! members and candidates, half-cached chains. Its life cycle (threads, the
//! switch, drop, locks): `view_lifecycle.rs`.

use crate::support::{full, Site};
use highwater::blob::{BlobFault, BlobKey, BlobOp, BlobStore};
use highwater::checkpoint::{RemoteStateView, RemoteViewConfig};
use highwater::{CheckpointRequest, Error, PartInput, RemoteConfig, StateDelta, StateSnapshot};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) type Model = BTreeMap<Vec<u8>, Vec<u8>>;

pub(crate) fn remote(site: &Site) -> RemoteConfig {
    RemoteConfig::new(site.store.clone())
}

pub(crate) fn key(i: usize) -> Vec<u8> {
    format!("key-{i:07}").into_bytes()
}

/// A committed full checkpoint of `model`.
pub(crate) fn commit(site: &Site, model: &Model) {
    let m = site.manager("writer");
    full(
        &m,
        10,
        &StateSnapshot::new(model.clone().into_iter().collect()),
    )
    .unwrap();
}

pub(crate) fn open(site: &Site, name: &str, download: bool) -> RemoteStateView {
    RemoteStateView::open(
        RemoteViewConfig::new(remote(site), site.cache(name)).with_background_download(download),
    )
    .unwrap()
    .expect("a committed checkpoint")
}

/// The part objects, largest first.
fn part_objects(store: &dyn BlobStore) -> Vec<(BlobKey, u64)> {
    let page = store
        .list(Some(&BlobKey::new("parts").unwrap()), None, 1000)
        .unwrap();
    let mut objects: Vec<_> = page
        .objects
        .iter()
        .map(|m| (m.key.clone(), m.size))
        .collect();
    objects.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
    objects
}

fn replace(store: &dyn BlobStore, key: &BlobKey, bytes: Vec<u8>) {
    store.delete(key).unwrap();
    store.put(key, bytes.into()).unwrap();
}

/// A value of 8 MiB (128 blocks of 64 KiB) read through a block cache of
/// one block: one ranged get for the value, not one per block (the blocks
/// of a fetched run were looked up in the cache again one by one, and each
/// was evicted by the run's later blocks: every block re-fetched the rest
/// of the run, O(n²) bytes).
#[test]
fn a_value_spanning_many_blocks_is_fetched_once_under_a_small_block_cache() {
    let site = Site::local();
    let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    let model: Model = [
        (b"a".to_vec(), b"small".to_vec()),
        (b"big".to_vec(), big.clone()),
        (b"c".to_vec(), b"small".to_vec()),
    ]
    .into_iter()
    .collect();
    commit(&site, &model);
    let view = RemoteStateView::open(
        RemoteViewConfig::new(remote(&site), site.cache("reader"))
            .with_background_download(false)
            .with_block_cache_bytes(64 << 10),
    )
    .unwrap()
    .unwrap();
    let opened = view.report();
    assert_eq!(view.get(b"big").unwrap(), Some(big));
    let after = view.report();
    let requests = after.requests - opened.requests;
    let bytes = after.bytes_fetched - opened.bytes_fetched;
    assert!(
        requests <= 6,
        "{requests} requests for one look-up of an 8 MiB value"
    );
    // The value once, plus the search's aligned windows of 1 MiB around its
    // probes (which here overlap the value's first and last blocks) and the
    // ends columns: far from the quadratic half GiB.
    assert!(
        bytes <= (8 << 20) + (3 << 20),
        "{bytes} bytes fetched for one look-up of an 8 MiB value"
    );
    // A scan under the same cache: each block fetched once too.
    let all: Model = view.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(all, model);
    let scanned = view.report().bytes_fetched - after.bytes_fetched;
    assert!(
        scanned <= (8 << 20) + (8 << 16),
        "{scanned} bytes for a scan"
    );
}

/// The base object replaced after the view opened by another state file
/// of the same size (the same keys, every value changed in one byte): each
/// look-up answers the original value or fails; never the new one.
#[test]
fn an_object_replaced_after_the_view_opened_is_an_error_never_a_wrong_value() {
    let site = Site::local();
    let value = |i: usize, tag: u8| {
        let mut v = format!("value-{i}-").into_bytes();
        v.resize(40 + i % 50, tag);
        v
    };
    let model: Model = (0..20_000).map(|i| (key(i), value(i, b'a'))).collect();
    let other: Model = (0..20_000).map(|i| (key(i), value(i, b'b'))).collect();
    commit(&site, &model);
    let view = open(&site, "reader", false);

    let elsewhere = Site::local();
    commit(&elsewhere, &other);
    let (theirs, their_size) = part_objects(elsewhere.store.as_ref())[0].clone();
    let (ours, our_size) = part_objects(site.store.as_ref())[0].clone();
    assert_eq!(our_size, their_size, "same size, different content");
    let bytes = elsewhere.store.get(&theirs).unwrap().to_vec();
    replace(site.store.as_ref(), &ours, bytes);

    let (mut ok, mut failed) = (0, 0);
    for i in (0..20_000).step_by(37) {
        match view.get(&key(i)) {
            Ok(v) => {
                assert_eq!(v, model.get(&key(i)).cloned(), "key {i}");
                ok += 1;
            }
            Err(Error::StateChecksumMismatch { path, .. }) => {
                assert_eq!(path.to_str(), Some(ours.as_str()));
                failed += 1;
            }
            Err(e) => panic!("key {i}: {e}"),
        }
    }
    assert!(failed > 0, "ok {ok}, failed {failed}");
    for item in view.iter().unwrap() {
        match item {
            Ok((k, v)) => assert_eq!(model.get(&k), Some(&v)),
            Err(Error::StateChecksumMismatch { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Failed requests during a look-up fail that look-up only (after the
/// retries); the next one succeeds. During the download they fail the
/// download: the view stays remote and keeps answering.
#[test]
fn failed_requests_fail_the_look_up_or_the_download_never_the_answers() {
    let (site, sim) = Site::sim(7);
    let model: Model = (0..5000).map(|i| (key(i), key(i * 3))).collect();
    commit(&site, &model);
    let reader = sim.reboot();
    let config =
        RemoteViewConfig::new(RemoteConfig::new(Arc::new(reader.clone())), site.cache("r"))
            .with_background_download(false);
    let view = RemoteStateView::open(config).unwrap().unwrap();
    let next = reader.ops_of(BlobOp::Get);
    for n in next..next + 5 {
        reader.fail_nth(BlobOp::Get, n, BlobFault::Transient);
    }
    match view.get(&key(4321)) {
        Err(Error::Blob(e)) => assert!(e.is_retryable(), "{e}"),
        other => panic!("expected a failed request, got {other:?}"),
    }
    assert_eq!(
        view.get(&key(4321)).unwrap(),
        model.get(&key(4321)).cloned()
    );
    drop(view);

    // During the download: every get of the part object fails.
    let reader = sim.reboot();
    let config = RemoteViewConfig::new(
        RemoteConfig::new(Arc::new(reader.clone())),
        site.cache("r2"),
    );
    // Opening sends its gets first (the records, the file's two ranges):
    // plan transient faults for many gets after those.
    let view = RemoteStateView::open(config.clone().with_background_download(false))
        .unwrap()
        .unwrap();
    let opening = reader.ops_of(BlobOp::Get);
    drop(view);
    let reader = sim.reboot();
    for n in opening..opening + 400 {
        reader.fail_nth(BlobOp::Get, n, BlobFault::Transient);
    }
    let config = RemoteViewConfig::new(
        RemoteConfig::new(Arc::new(reader.clone())),
        site.cache("r2"),
    );
    let view = RemoteStateView::open(config).unwrap().unwrap();
    match view.wait() {
        Err(Error::RemoteViewDownload { .. }) => {}
        other => panic!("expected the download to fail, got {other:?}"),
    }
    assert!(!view.is_local());
    // Look-ups go on, from the same checkpoint: each either fails on a
    // planned fault or answers the committed state.
    let mut tries = 0;
    let all = loop {
        tries += 1;
        assert!(tries < 500, "the planned faults never ran out");
        match view
            .iter()
            .and_then(|it| it.collect::<highwater::Result<Model>>())
        {
            Ok(all) => break all,
            Err(Error::Blob(e)) => assert!(e.is_retryable(), "{e}"),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(all, model);
}

/// Prefix scans over keys of `0xff` bytes, and the empty prefix.
#[test]
fn prefix_scans_over_0xff_keys() {
    let site = Site::local();
    let keys: [&[u8]; 9] = [
        b"",
        &[0x00],
        &[0xfe, 0xff],
        &[0xfe, 0xff, 0xff],
        &[0xff],
        &[0xff, 0x00],
        &[0xff, 0xff],
        &[0xff, 0xff, 0x01],
        &[0xff, 0xff, 0xff, 0xff],
    ];
    let model: Model = keys.iter().map(|k| (k.to_vec(), k.to_vec())).collect();
    commit(&site, &model);
    for download in [false, true] {
        let view = open(&site, if download { "b" } else { "a" }, download);
        if download {
            view.wait().unwrap();
            assert!(view.is_local());
        }
        for prefix in [
            &[][..],
            &[0xff],
            &[0xff, 0xff],
            &[0xff, 0xff, 0xff],
            &[0xfe],
            &[0xfe, 0xff],
            &[0x00],
        ] {
            let got: Vec<Vec<u8>> = view.prefix(prefix).unwrap().map(|r| r.unwrap().0).collect();
            let want: Vec<Vec<u8>> = model
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect();
            assert_eq!(got, want, "prefix {prefix:?}, local {download}");
        }
        assert_eq!(view.get(&[0xff, 0xff]).unwrap(), Some(vec![0xff, 0xff]));
        assert_eq!(view.get(&[0xff, 0xff, 0xff]).unwrap(), None);
    }
}

/// An empty state, and a delta deleting every key of its base.
#[test]
fn an_empty_state_and_a_state_emptied_by_a_delta() {
    let site = Site::local();
    let m = site.manager("writer");
    let base = full(&m, 1, &StateSnapshot::new(Vec::new())).unwrap();
    drop(m);
    let view = open(&site, "a", false);
    assert_eq!(view.get(b"k").unwrap(), None);
    assert_eq!(view.iter().unwrap().count(), 0);
    assert_eq!(view.prefix(b"k").unwrap().count(), 0);
    drop(view);

    let m = site.manager("writer");
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..1000).map(|i| (key(i), key(i))).collect();
    let snap = full(&m, 2, &StateSnapshot::new(pairs)).unwrap();
    assert!(snap.id > base.id);
    let delta = StateDelta::from_changes((0..1000).map(|i| (key(i), None)));
    m.create_checkpoint(
        CheckpointRequest::new(3)
            .with_parent(snap.id)
            .with_part("state", PartInput::Delta(&delta)),
    )
    .unwrap();
    drop(m);
    for download in [false, true] {
        let view = open(&site, if download { "c" } else { "b" }, download);
        assert_eq!(view.report().layers.len(), 2);
        assert_eq!(view.get(&key(10)).unwrap(), None);
        assert_eq!(view.iter().unwrap().count(), 0);
        assert_eq!(view.range(&key(0), &key(999)).unwrap().count(), 0);
        view.wait().unwrap();
        assert_eq!(view.iter().unwrap().count(), 0);
    }
}

/// A chain base ← d1 ← d2 whose middle member's object is damaged (a byte
/// flipped in a block, checksums left as they were): look-ups answer the
/// committed value or fail naming d1's object.
#[test]
fn a_damaged_middle_member_of_a_chain_is_an_error_never_a_wrong_value() {
    let site = Site::local();
    let m = site.manager("writer");
    let mut model: Model = (0..20_000)
        .map(|i| (key(i), format!("{i}-{}", "b".repeat(100)).into_bytes()))
        .collect();
    let base = full(
        &m,
        1,
        &StateSnapshot::new(model.clone().into_iter().collect()),
    )
    .unwrap();
    let mut parent = base.id;
    let mut middle = None;
    for round in 0..2 {
        let mut changes = Vec::new();
        for i in (round..20_000).step_by(5) {
            let v = format!("r{round}-{i}").into_bytes();
            changes.push((key(i), Some(v.clone())));
            model.insert(key(i), v);
        }
        let delta = StateDelta::from_changes(changes);
        let meta = m
            .create_checkpoint(
                CheckpointRequest::new(2 + round as u64)
                    .with_parent(parent)
                    .with_part("state", PartInput::Delta(&delta)),
            )
            .unwrap();
        if round == 0 {
            let before: Vec<BlobKey> = part_objects(site.store.as_ref())
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            middle = Some(before);
        }
        parent = meta.id;
    }
    drop(m);
    // d1's object: the one present after round 0 that is not the base (the
    // base is the largest, d2 came later).
    let after_round0 = middle.unwrap();
    let d1 = after_round0[1].clone();
    let mut bytes = site.store.get(&d1).unwrap().to_vec();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    replace(site.store.as_ref(), &d1, bytes);

    let view = open(&site, "reader", true);
    assert_eq!(view.report().layers.len(), 3);
    let (mut ok, mut failed) = (0, 0);
    for i in (0..20_000).step_by(17) {
        match view.get(&key(i)) {
            Ok(v) => {
                assert_eq!(v, model.get(&key(i)).cloned(), "key {i}");
                ok += 1;
            }
            Err(Error::StateChecksumMismatch { path, .. }) => {
                assert_eq!(path.to_str(), Some(d1.as_str()));
                failed += 1;
            }
            Err(e) => panic!("key {i}: {e}"),
        }
    }
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    assert!(view.wait().is_err());
    assert!(!view.is_local());
}

/// The newest checkpoint's part object has a damaged header (same size):
/// damage, so a manager falls back to the older checkpoint; the view must
/// too (as it does for a wrong size), not fail to open.
#[test]
fn a_damaged_header_in_the_newest_checkpoint_falls_back_like_a_manager() {
    let site = Site::local();
    let m = site.manager("writer");
    let old: Model = (0..500).map(|i| (key(i), b"old".to_vec())).collect();
    let older = full(
        &m,
        1,
        &StateSnapshot::new(old.clone().into_iter().collect()),
    )
    .unwrap();
    let known: Vec<BlobKey> = part_objects(site.store.as_ref())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let new: Model = (0..500).map(|i| (key(i), b"new".to_vec())).collect();
    let newer = full(&m, 2, &StateSnapshot::new(new.into_iter().collect())).unwrap();
    drop(m);
    let (newest, _) = part_objects(site.store.as_ref())
        .into_iter()
        .find(|(k, _)| !known.contains(k))
        .unwrap();
    let mut bytes = site.store.get(&newest).unwrap().to_vec();
    bytes[30] ^= 0x01; // the entry count: the header's CRC no longer matches
    replace(site.store.as_ref(), &newest, bytes);

    let restored = site.manager("machine").remote_restore().unwrap().clone();
    assert_eq!(restored.restored, Some(older.id), "{restored:?}");
    let view = RemoteStateView::open(RemoteViewConfig::new(remote(&site), site.cache("reader")))
        .unwrap_or_else(|e| panic!("the view does not open where a manager restores: {e}"))
        .unwrap();
    assert_eq!(view.checkpoint().id, older.id);
    let rejected = view.report().rejected;
    assert!(rejected.iter().any(|r| r.id == newer.id), "{rejected:?}");
    assert_eq!(view.get(&key(3)).unwrap(), Some(b"old".to_vec()));
    view.wait().unwrap();
    let all: Model = view.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(all, old);
}

/// Candidates given up while opening leave no blocks behind: the newest
/// (a delta whose base's header is damaged) cached blocks of its own file
/// as layer 0 before the base failed; the checkpoint finally served (an
/// older full one, larger) is layer 0 too, and must not read them.
#[test]
fn blocks_of_a_candidate_given_up_are_not_read_for_the_next_one() {
    let site = Site::local();
    let m = site.manager("writer");
    let value = |tag: &str, i: usize| format!("{tag}-{i}-{}", "f".repeat(70)).into_bytes();
    let older: Model = (0..8000).map(|i| (key(i), value("older", i))).collect();
    let kept = full(
        &m,
        1,
        &StateSnapshot::new(older.clone().into_iter().collect()),
    )
    .unwrap();
    let before: Vec<BlobKey> = part_objects(site.store.as_ref())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let base: Model = (0..30_000).map(|i| (key(i), value("base", i))).collect();
    let base_meta = full(&m, 2, &StateSnapshot::new(base.into_iter().collect())).unwrap();
    let (base_key, _) = part_objects(site.store.as_ref())
        .into_iter()
        .find(|(k, _)| !before.contains(k))
        .unwrap();
    let delta = StateDelta::from_changes(
        (0..30_000)
            .step_by(10)
            .map(|i| (key(i), Some(value("d", i)))),
    );
    let newest = m
        .create_checkpoint(
            CheckpointRequest::new(3)
                .with_parent(base_meta.id)
                .with_part("state", PartInput::Delta(&delta)),
        )
        .unwrap();
    assert_eq!(newest.parent_id, Some(base_meta.id), "a delta");
    drop(m);
    let mut bytes = site.store.get(&base_key).unwrap().to_vec();
    bytes[30] ^= 0x01;
    replace(site.store.as_ref(), &base_key, bytes);

    let view = open(&site, "reader", false);
    assert_eq!(view.checkpoint().id, kept.id);
    for i in (0..8000).step_by(7) {
        assert_eq!(
            view.get(&key(i)).unwrap(),
            older.get(&key(i)).cloned(),
            "key {i}"
        );
    }
    let all: Model = view.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(all, older);
}

/// A chain whose base is cached (a manager on this machine restored it)
/// and whose delta is not: the view mixes a mapped layer and a remote one,
/// and answers the same before and after the switch.
#[test]
fn a_chain_half_cached_answers_the_same_before_and_after_the_switch() {
    let site = Site::local();
    let writer = site.manager("writer");
    let mut model: Model = (0..20_000)
        .map(|i| (key(i), format!("base-{i}-{}", "b".repeat(60)).into_bytes()))
        .collect();
    let base = full(
        &writer,
        1,
        &StateSnapshot::new(model.clone().into_iter().collect()),
    )
    .unwrap();
    drop(writer);
    drop(site.manager("reader")); // caches the base
    let writer = site.manager("writer");
    let mut changes = Vec::new();
    for i in (0..20_000).step_by(9) {
        changes.push((key(i), None));
        model.remove(&key(i));
    }
    for i in (4..20_000).step_by(9) {
        changes.push((key(i), Some(b"delta".to_vec())));
        model.insert(key(i), b"delta".to_vec());
    }
    writer
        .create_checkpoint(CheckpointRequest::new(2).with_parent(base.id).with_part(
            "state",
            PartInput::Delta(&StateDelta::from_changes(changes)),
        ))
        .unwrap();
    drop(writer);
    let view = open(&site, "reader", true);
    let layers = view.report().layers;
    assert_eq!(layers.len(), 2);
    assert!(!layers[0].local && layers[1].local, "{layers:?}");
    let check = |view: &RemoteStateView| {
        for i in (0..20_000).step_by(5) {
            assert_eq!(
                view.get(&key(i)).unwrap(),
                model.get(&key(i)).cloned(),
                "key {i}"
            );
        }
        let all: Model = view.iter().unwrap().map(Result::unwrap).collect();
        assert_eq!(all, model);
        let got: Vec<_> = view
            .range(&key(900), &key(1000))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want: Vec<_> = model
            .range(key(900)..key(1000))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want);
    };
    check(&view);
    view.wait().unwrap();
    assert!(view.is_local());
    check(&view);
}
