//! Checks of multipart uploads and [`BlobWriter`].

use super::{fails, key, label, ok, pattern, scratch};
use crate::blob::{BlobError, BlobKey, BlobStore, BlobWriter, MIN_PART_BYTES};
use std::io::Write;
use std::time::UNIX_EPOCH;

/// Multipart uploads: parts in order (sent, or started and waited for in
/// any order), invisible until completed, an aborted one never appears; [`BlobWriter`] streams one and several parts.
pub fn multipart_uploads(store: &dyn BlobStore, root: &BlobKey) {
    let dir = scratch(store, root, "multipart_uploads");
    let k = key(&dir, "large");
    let parts = [
        pattern(MIN_PART_BYTES, 1),
        pattern(MIN_PART_BYTES, 2),
        pattern(1000, 3),
    ];
    let mut upload = ok(store, store.put_multipart(&k), "start an upload");
    for p in &parts {
        ok(store, upload.put_part(p.clone().into()), "send a part");
    }
    fails(
        store,
        store.head(&k),
        BlobError::is_not_found,
        "head before complete",
    );
    ok(store, upload.complete(), "complete");
    let whole = parts.concat();
    let got = ok(store, store.get(&k), "get");
    assert!(
        got.len() == whole.len() && got[..] == whole[..],
        "{}: parts in order",
        label(store)
    );
    let tail = ok(
        store,
        store.get_range(
            &k,
            (2 * MIN_PART_BYTES as u64 - 10)..(2 * MIN_PART_BYTES as u64 + 10),
        ),
        "range across parts",
    );
    assert!(
        tail[..] == whole[2 * MIN_PART_BYTES - 10..2 * MIN_PART_BYTES + 10],
        "{}: a range across parts",
        label(store)
    );

    // Started parts keep the order they were started in, whatever order
    // their answers are waited for.
    let started = key(&dir, "started");
    let mut upload = ok(store, store.put_multipart(&started), "start an upload");
    let mut in_flight = Vec::new();
    for p in &parts {
        in_flight.push(ok(
            store,
            upload.start_part(p.clone().into()),
            "start a part",
        ));
    }
    while let Some(part) = in_flight.pop() {
        ok(store, part.wait(), "wait for a started part");
    }
    ok(store, upload.complete(), "complete started parts");
    let got = ok(store, store.get(&started), "get");
    assert!(
        got.len() == whole.len() && got[..] == whole[..],
        "{}: started parts in the order they were started",
        label(store)
    );

    let aborted = key(&dir, "aborted");
    let mut upload = ok(store, store.put_multipart(&aborted), "start an upload");
    ok(
        store,
        upload.put_part(parts[0].clone().into()),
        "send a part",
    );
    ok(store, upload.abort(), "abort");
    fails(
        store,
        store.head(&aborted),
        BlobError::is_not_found,
        "head of an aborted upload",
    );

    let small = key(&dir, "small");
    let mut w = BlobWriter::new(store, small.clone(), MIN_PART_BYTES);
    w.write_all(b"tiny").expect("write");
    assert_eq!(ok(store, w.finish(), "finish a small object"), 4);
    assert_eq!(&ok(store, store.get(&small), "get")[..], b"tiny");

    let streamed = key(&dir, "streamed");
    let bytes = pattern(2 * MIN_PART_BYTES + 12_345, 9);
    let mut w = BlobWriter::new(store, streamed.clone(), MIN_PART_BYTES);
    for chunk in bytes.chunks(1 << 20) {
        w.write_all(chunk).expect("write");
    }
    assert_eq!(
        ok(store, w.finish(), "finish a streamed object"),
        bytes.len() as u64
    );
    let got = ok(store, store.get(&streamed), "get");
    assert!(
        got[..] == bytes[..],
        "{}: a streamed object round-trips",
        label(store)
    );
    let exact = key(&dir, "exact");
    let mut w = BlobWriter::new(store, exact.clone(), MIN_PART_BYTES);
    w.write_all(&parts[0]).expect("write");
    ok(store, w.finish(), "finish an object of exactly one part");
    assert_eq!(
        ok(store, store.head(&exact), "head").size,
        MIN_PART_BYTES as u64
    );
}

/// [`BlobStore::abort_abandoned_uploads`] leaves uploads started at or after
/// the time given, and every object, alone: with the Unix epoch (nothing
/// started before it) it aborts nothing, and an upload in progress then
/// completes. (Which older uploads a store aborts is store-wide, so it is
/// not checked here, where other writers may share the store.)
pub fn abandoned_uploads(store: &dyn BlobStore, root: &BlobKey) {
    let dir = scratch(store, root, "abandoned_uploads");
    let kept = key(&dir, "kept");
    ok(store, store.put(&kept, "object".into()), "put");
    let k = key(&dir, "in-progress");
    let mut upload = ok(store, store.put_multipart(&k), "start an upload");
    ok(store, upload.put_part(pattern(10, 4).into()), "send a part");
    assert_eq!(
        ok(
            store,
            store.abort_abandoned_uploads(UNIX_EPOCH),
            "abort uploads older than the epoch"
        ),
        0,
        "{}: no upload started before the epoch",
        label(store)
    );
    ok(store, upload.complete(), "complete after the collection");
    assert_eq!(
        &ok(store, store.get(&k), "get")[..],
        &pattern(10, 4)[..],
        "{}: an upload in progress survives the collection",
        label(store)
    );
    assert_eq!(&ok(store, store.get(&kept), "get")[..], b"object");
}
