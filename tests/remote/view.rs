//! The remote view (`RemoteStateView`): look-ups served from the object
//! store before the download ends equal the same look-ups after it; damaged
//! blocks on the server are typed errors for the look-ups that touch them,
//! never a wrong value; a crash of the local disk during the background
//! download leaves a cache that is verified before reuse.

use crate::hooked::{Hooked, When};
use crate::support::{full, Site};
use highwater::blob::{BlobKey, BlobOp, BlobStore, SimBlobStore};
use highwater::checkpoint::{RemoteStateView, RemoteViewConfig};
use highwater::storage::{CrashImage, CrashSimStorage};
use highwater::{CheckpointRequest, Error, PartInput, RemoteConfig, StateDelta, StateSnapshot};
use std::collections::BTreeMap;
use std::sync::Arc;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:07}").into_bytes()
}

fn value(i: usize, tag: &str) -> Vec<u8> {
    format!("{tag}-{i}-{}", "v".repeat(i % 120)).into_bytes()
}

/// A full checkpoint of 30 000 keys (about 2.5 MiB, dozens of blocks), then
/// a delta putting and deleting some; returns the resolved state.
fn committed_chain(site: &Site) -> Model {
    let m = site.manager("writer");
    let mut model: Model = (0..30_000).map(|i| (key(i), value(i, "base"))).collect();
    let snap = StateSnapshot::new(model.clone().into_iter().collect());
    let base = full(&m, 10, &snap).unwrap();
    let mut changes = Vec::new();
    for i in (0..30_000).step_by(7) {
        changes.push((key(i), Some(value(i, "delta"))));
        model.insert(key(i), value(i, "delta"));
    }
    for i in (3..30_000).step_by(11) {
        if i % 7 != 0 {
            changes.push((key(i), None));
            model.remove(&key(i));
        }
    }
    changes.push((key(40_000), Some(b"new".to_vec())));
    model.insert(key(40_000), b"new".to_vec());
    let delta = StateDelta::from_changes(changes);
    m.create_checkpoint(
        CheckpointRequest::new(20)
            .with_offsets(std::collections::HashMap::from([("src".to_string(), 20)]))
            .with_parent(base.id)
            .with_part("state", PartInput::Delta(&delta)),
    )
    .unwrap();
    model
}

fn remote(site: &Site) -> RemoteConfig {
    RemoteConfig::new(site.store.clone())
}

/// Checks a sample of look-ups, a range and a prefix scan against the model.
fn check_against(view: &RemoteStateView, model: &Model) {
    for i in (0..30_000)
        .step_by(997)
        .chain([3, 7, 11, 29_999, 40_000, 50_000])
    {
        assert_eq!(
            view.get(&key(i)).unwrap(),
            model.get(&key(i)).cloned(),
            "key {i}"
        );
    }
    let range: Vec<_> = view
        .range(&key(12_000), &key(12_300))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<_> = model
        .range(key(12_000)..key(12_300))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(range, expected);
    let prefix: Vec<_> = view
        .prefix(b"key-00271")
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<_> = model
        .iter()
        .filter(|(k, _)| k.starts_with(b"key-00271"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(prefix, expected);
    assert!(!prefix.is_empty());
}

#[test]
fn look_ups_before_the_download_equal_look_ups_after_it() {
    let site = Site::local();
    let model = committed_chain(&site);
    // Remote only: every answer comes from ranged gets.
    let config = RemoteViewConfig::new(remote(&site), site.cache("reader"));
    let view = RemoteStateView::open(config.clone().with_background_download(false))
        .unwrap()
        .expect("a committed checkpoint");
    assert!(!view.is_local());
    check_against(&view, &model);
    let all: Model = view.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(all, model);
    let report = view.report();
    assert_eq!(report.layers.len(), 2);
    assert!(report
        .layers
        .iter()
        .all(|l| !l.local && l.verified_blocks > 0));
    assert!(report.requests > 0);
    drop(view);

    // With the download: the same answers while it runs (held at its
    // first request: the head after those of an open, counted on a view
    // without a download), and after it.
    let counting = Hooked::new(site.store.clone());
    let config_on =
        |store: Arc<Hooked>| RemoteViewConfig::new(RemoteConfig::new(store), site.cache("reader"));
    drop(
        RemoteStateView::open(config_on(counting.clone()).with_background_download(false)).unwrap(),
    );
    let heads_of_open = counting.calls(BlobOp::Head);
    let hooked = Hooked::new(site.store.clone());
    let (release, held) = std::sync::mpsc::channel::<()>();
    hooked.at(BlobOp::Head, heads_of_open, When::Before, move || {
        let _ = held.recv_timeout(std::time::Duration::from_secs(120));
    });
    let view = RemoteStateView::open(config_on(hooked.clone()))
        .unwrap()
        .unwrap();
    check_against(&view, &model);
    let all: Model = view.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(all, model);
    assert!(
        !view.is_local(),
        "the download is held: every answer was remote"
    );
    assert_eq!(
        hooked.pending(),
        0,
        "the download reached its first request"
    );
    let held_report = view.report();
    assert!(held_report.bytes_to_download > 0 && !held_report.download_done);
    assert!(held_report.bytes_downloaded < held_report.bytes_to_download);
    release.send(()).unwrap();
    view.wait().unwrap();
    assert!(view.is_local());
    let done = view.report();
    assert!(done.download_done);
    assert_eq!(done.bytes_downloaded, done.bytes_to_download);
    let before = view.report().requests;
    check_against(&view, &model);
    assert_eq!(
        view.report().requests,
        before,
        "local look-ups send no request"
    );
    let all: Model = view.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(all, model);
    drop(view);

    // Reopened: the cached copy verifies and serves at once; a manager
    // opened on the same directory finds it cached too.
    let view = RemoteStateView::open(config).unwrap().unwrap();
    assert!(view.is_local());
    assert_eq!(view.report().requests, 0);
    let served = view.checkpoint().clone();
    assert_eq!(served.source_offsets.get("src"), Some(&20));
    check_against(&view, &model);
    drop(view);
    let m = site.manager("reader");
    let restore = m.remote_restore().unwrap();
    assert!(restore.downloaded.is_empty(), "{restore:?}");
    // The hand-over: recovery from the manager's directory restores the
    // checkpoint the view served, with its offsets.
    let wal = site.root.path().join("wal");
    let recovered = highwater::RecoveryManager::recover_simple(site.cache("reader"), &wal).unwrap();
    assert_eq!(recovered.checkpoint_id, Some(served.id));
    assert_eq!(recovered.source_offsets, served.source_offsets);
    let state = recovered.state_snapshot.unwrap();
    assert_eq!(state.len(), model.len());
}

/// The base snapshot's object, rewritten with byte `at` flipped.
fn damage(store: &dyn BlobStore, at_fraction: f64) -> BlobKey {
    let page = store
        .list(Some(&BlobKey::new("parts").unwrap()), None, 1000)
        .unwrap();
    // The largest object is the base snapshot.
    let big = page.objects.iter().max_by_key(|m| m.size).unwrap();
    let mut bytes = store.get(&big.key).unwrap().to_vec();
    let at = (bytes.len() as f64 * at_fraction) as usize;
    bytes[at] ^= 0x5a;
    store.delete(&big.key).unwrap();
    store.put(&big.key, bytes.into()).unwrap();
    big.key.clone()
}

#[test]
fn a_damaged_block_is_an_error_for_the_look_ups_that_touch_it_never_a_wrong_value() {
    let site = Site::local();
    let model = committed_chain(&site);
    // A byte in the values column (the archive's later half).
    let damaged = damage(site.store.as_ref(), 0.7);
    let config = RemoteViewConfig::new(remote(&site), site.cache("reader"));
    let view = RemoteStateView::open(config).unwrap().unwrap();
    let (mut ok, mut failed) = (0, 0);
    for i in 0..30_000 {
        match view.get(&key(i)) {
            Ok(v) => {
                assert_eq!(v, model.get(&key(i)).cloned(), "key {i}");
                ok += 1;
            }
            Err(Error::StateChecksumMismatch { path, region, .. }) => {
                assert_eq!(path.to_str(), Some(damaged.as_str()));
                assert_eq!(region, "payload block");
                failed += 1;
            }
            Err(e) => panic!("key {i}: unexpected error {e}"),
        }
    }
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    // A scan over everything stops at the damage with the same error.
    let scan: Vec<_> = view.iter().unwrap().collect();
    let err = scan.last().unwrap().as_ref().unwrap_err();
    assert!(matches!(err, Error::StateChecksumMismatch { .. }), "{err}");
    for item in &scan[..scan.len() - 1] {
        let (k, v) = item.as_ref().unwrap();
        assert_eq!(model.get(k), Some(v));
    }
    // The download finds the damage too: the view stays remote.
    match view.wait() {
        Err(Error::RemoteViewDownload { source, .. }) => {
            assert!(
                matches!(*source, Error::CheckpointFileMismatch { .. }),
                "{source}"
            )
        }
        other => panic!("expected the download to fail, got {other:?}"),
    }
    assert!(!view.is_local());
    let report = view.report();
    assert!(report.download_error.is_some());
    let base = report.layers.last().unwrap();
    assert!(base.verified_blocks > 0 && base.verified_blocks < base.blocks);
}

#[test]
fn a_crash_during_the_background_download_leaves_a_cache_verified_before_reuse() {
    let sim = SimBlobStore::new(3);
    let site = Site {
        root: tempfile::tempdir().unwrap(),
        store: Arc::new(sim.clone()),
    };
    let model = committed_chain(&site);
    let dir = site.cache("reader");
    let config = |disk: &CrashSimStorage| {
        RemoteViewConfig::new(RemoteConfig::new(Arc::new(sim.reboot())), &dir)
            .with_storage(Arc::new(disk.clone()))
    };
    // The disk operations of one open and download.
    let count = CrashSimStorage::new();
    let view = RemoteStateView::open(config(&count)).unwrap().unwrap();
    view.wait().unwrap();
    drop(view);
    let total = count.operations();
    assert!(total > 10, "{total} operations");
    for k in (0..total).step_by(((total / 40) as usize).max(1)) {
        for image in [
            CrashImage::LoseUnsynced,
            CrashImage::KeepUnsynced,
            CrashImage::Torn { seed: k + 1 },
        ] {
            let disk = CrashSimStorage::new();
            disk.crash_at(k);
            if let Ok(Some(view)) = RemoteStateView::open(config(&disk)) {
                let _ = view.wait();
            }
            disk.crash();
            let rebooted = disk.image(image);
            let view = RemoteStateView::open(config(&rebooted))
                .unwrap_or_else(|e| panic!("crash at op {k}, {image:?}: reopen: {e}"))
                .unwrap();
            check_against(&view, &model);
            view.wait()
                .unwrap_or_else(|e| panic!("crash at op {k}, {image:?}: download: {e}"));
            assert!(view.is_local());
            let all: Model = view.iter().unwrap().map(Result::unwrap).collect();
            assert_eq!(all, model, "crash at op {k}, {image:?}");
        }
    }
}

/// A cold `get` costs a few requests, not one per level of the binary
/// search: 200 000 keys (about 9 MiB of keys and ends, 18 levels) answered
/// from a view opened without a download, each look-up on a fresh view.
#[test]
fn a_cold_get_costs_a_few_requests_per_layer() {
    let site = Site::local();
    let m = site.manager("writer");
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..200_000).map(|i| (key(i), value(i, "v"))).collect();
    full(&m, 1, &StateSnapshot::new(pairs)).unwrap();
    drop(m);
    let config =
        RemoteViewConfig::new(remote(&site), site.cache("reader")).with_background_download(false);
    for i in [0, 77_777, 123_456, 199_999] {
        let view = RemoteStateView::open(config.clone()).unwrap().unwrap();
        let opened = view.report().requests;
        assert_eq!(view.get(&key(i)).unwrap(), Some(value(i, "v")));
        let cost = view.report().requests - opened;
        assert!(cost <= 8, "a cold get of key {i} sent {cost} requests");
    }
}
