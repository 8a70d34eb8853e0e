//! Checks of single objects: create, put, get, head, ranges, races.

use super::{fails, key, label, ok, pattern, scratch};
use crate::blob::{BlobError, BlobKey, BlobStore, CreateOutcome};
use std::sync::Barrier;

/// Create-if-absent creates once and keeps the first bytes.
pub fn creates(store: &dyn BlobStore, root: &BlobKey) {
    let dir = scratch(store, root, "creates");
    let k = key(&dir, "record");
    let first = ok(store, store.create_if_absent(&k, "first".into()), "create");
    assert_eq!(
        first,
        CreateOutcome::Created,
        "{}: a new key is Created",
        label(store)
    );
    let second = ok(
        store,
        store.create_if_absent(&k, "second".into()),
        "create again",
    );
    assert_eq!(
        second,
        CreateOutcome::AlreadyExists,
        "{}: an existing key is AlreadyExists",
        label(store)
    );
    assert_eq!(
        &ok(store, store.get(&k), "get")[..],
        b"first",
        "{}: a refused create leaves the first bytes",
        label(store)
    );
    assert_eq!(
        ok(store, store.head(&k), "head").size,
        5,
        "{}: head size",
        label(store)
    );
    let empty = key(&dir, "empty");
    ok(
        store,
        store.create_if_absent(&empty, bytes::Bytes::new()),
        "create empty",
    );
    assert_eq!(ok(store, store.head(&empty), "head empty").size, 0);
    assert!(ok(store, store.get(&empty), "get empty").is_empty());
}

/// Put replaces, and the replacement is visible at once.
pub fn puts(store: &dyn BlobStore, root: &BlobKey) {
    let dir = scratch(store, root, "puts");
    let k = key(&dir, "object");
    ok(store, store.put(&k, "one".into()), "put");
    let before = ok(store, store.head(&k), "head");
    ok(store, store.put(&k, "two, longer".into()), "put again");
    assert_eq!(
        &ok(store, store.get(&k), "get")[..],
        b"two, longer",
        "{}: put replaces",
        label(store)
    );
    let after = ok(store, store.head(&k), "head");
    assert_eq!(
        after.size,
        11,
        "{}: head sees the replacement",
        label(store)
    );
    assert_eq!(after.key, k);
    if let (Some(a), Some(b)) = (&before.etag, &after.etag) {
        assert_ne!(
            a,
            b,
            "{}: the etag changes when the object is replaced",
            label(store)
        );
    }
    let listed = ok(store, store.list(Some(&dir), None, 10), "list");
    assert_eq!(
        listed.objects.len(),
        1,
        "{}: list sees the object",
        label(store)
    );
    assert_eq!(
        listed.objects[0].size,
        11,
        "{}: list sees the replacement",
        label(store)
    );
    let big = key(&dir, "big");
    let bytes = pattern(3 << 20, 7);
    ok(store, store.put(&big, bytes.clone().into()), "put 3 MiB");
    assert!(
        ok(store, store.get(&big), "get 3 MiB")[..] == bytes[..],
        "{}: a 3 MiB put round-trips",
        label(store)
    );
}

/// A missing object is NotFound for every read.
pub fn missing_objects(store: &dyn BlobStore, root: &BlobKey) {
    let dir = scratch(store, root, "missing_objects");
    let k = key(&dir, "nothing");
    fails(
        store,
        store.get(&k),
        BlobError::is_not_found,
        "get of a missing object",
    );
    fails(
        store,
        store.head(&k),
        BlobError::is_not_found,
        "head of a missing object",
    );
    fails(
        store,
        store.get_range(&k, 0..1),
        BlobError::is_not_found,
        "ranged get of a missing object",
    );
    // A prefix of existing keys is not an object.
    ok(
        store,
        store.put(&key(&dir, "nothing/below"), "x".into()),
        "put below",
    );
    fails(
        store,
        store.head(&k),
        BlobError::is_not_found,
        "head of a prefix",
    );
}

/// Ranged reads return exactly the bytes asked for.
pub fn ranged_reads(store: &dyn BlobStore, root: &BlobKey) {
    let dir = scratch(store, root, "ranged_reads");
    let k = key(&dir, "object");
    let bytes = pattern(10_000, 3);
    ok(store, store.put(&k, bytes.clone().into()), "put");
    for (start, end) in [
        (0, 10_000),
        (0, 1),
        (9_999, 10_000),
        (1234, 5678),
        (4096, 8192),
    ] {
        let got = ok(store, store.get_range(&k, start..end), "ranged get");
        assert!(
            got[..] == bytes[start as usize..end as usize],
            "{}: range {start}..{end} returns those bytes",
            label(store)
        );
    }
    let invalid = |e: &BlobError| matches!(e, BlobError::InvalidRange { .. });
    fails(store, store.get_range(&k, 5..5), invalid, "an empty range");
    fails(
        store,
        store.get_range(&k, 9_000..10_001),
        invalid,
        "a range ending past the object",
    );
    fails(
        store,
        store.get_range(&k, 10_000..10_010),
        invalid,
        "a range starting at the end",
    );
    fails(
        store,
        store.get_range(&k, 20_000..20_010),
        invalid,
        "a range starting past the end",
    );
}

/// Of concurrent creates of one key exactly one wins, and its bytes stay.
pub fn concurrent_creates(store: &dyn BlobStore, root: &BlobKey) {
    let dir = scratch(store, root, "concurrent_creates");
    let k = key(&dir, "slot");
    let n = 8;
    let barrier = Barrier::new(n);
    let outcomes: Vec<(usize, CreateOutcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (k, barrier) = (&k, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    (i, store.create_if_absent(k, format!("writer {i}").into()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (i, r) = h.join().expect("a creating thread");
                (i, ok(store, r, "concurrent create"))
            })
            .collect()
    });
    let winners: Vec<usize> = outcomes
        .iter()
        .filter(|(_, o)| *o == CreateOutcome::Created)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{}: exactly one concurrent create wins: {outcomes:?}",
        label(store)
    );
    let held = ok(store, store.get(&k), "get the slot");
    assert_eq!(
        &held[..],
        format!("writer {}", winners[0]).as_bytes(),
        "{}: the slot holds the winner's bytes",
        label(store)
    );
}
