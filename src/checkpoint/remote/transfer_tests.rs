use super::*;
use crate::blob::{list_all, BlobFault, BlobMeta, BlobOp, BlobStore, LocalBlobStore, SimBlobStore};
use crate::storage::FsStorage;
use bytes::Bytes;
use std::path::Path;

pub(super) const P: usize = MIN_PART_BYTES;

pub(super) fn opts(concurrency: usize, part_bytes: usize) -> TransferOptions {
    TransferOptions::new(concurrency, part_bytes)
}

/// `n` pseudo-random bytes (xorshift from `seed`): any shift or swap differs.
pub(super) fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

pub(super) fn key(name: &str) -> BlobKey {
    BlobKey::new(name).unwrap()
}

/// Writes one file per size into `dir`; returns them as uploads to `parts/f<i>`.
pub(super) fn write_files(dir: &Path, sizes: &[usize]) -> Vec<(UploadFile, Vec<u8>)> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let bytes = pattern(size, i as u64 + 1);
            let path = dir.join(format!("f{i}"));
            std::fs::write(&path, &bytes).unwrap();
            let file = UploadFile {
                path,
                size: size as u64,
                key: key(&format!("parts/f{i}")),
            };
            (file, bytes)
        })
        .collect()
}

pub(super) fn uploads(files: &[(UploadFile, Vec<u8>)]) -> Vec<UploadFile> {
    files.iter().map(|(f, _)| f.clone()).collect()
}

/// Downloads of `files` into `dir`, expecting the bytes written.
pub(super) fn downloads(dir: &Path, files: &[(UploadFile, Vec<u8>)]) -> Vec<DownloadFile> {
    files
        .iter()
        .enumerate()
        .map(|(i, (f, bytes))| DownloadFile {
            key: f.key.clone(),
            size: bytes.len() as u64,
            crc32c: crc32c::crc32c(bytes),
            dest: dir.join(format!("d{i}")),
        })
        .collect()
}

/// The sizes around the part size: none, one byte, one part and its
/// neighbours, two and a half parts.
fn edge_sizes() -> Vec<usize> {
    vec![0, 1, P - 1, P, P + 1, 5 * P / 2]
}

/// Requests an upload of `sizes` takes: one put per file of at most a part,
/// create + parts + complete for a larger one.
fn upload_requests(sizes: &[usize], part: usize) -> u64 {
    sizes
        .iter()
        .map(|&s| {
            if s <= part {
                1
            } else {
                s.div_ceil(part) as u64 + 2
            }
        })
        .sum()
}

fn round_trip(store: &dyn BlobStore) {
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sizes = edge_sizes();
    let files = write_files(src.path(), &sizes);
    let up = upload(store, &FsStorage, &uploads(&files), &opts(8, P)).unwrap();
    let total: u64 = sizes.iter().map(|&s| s as u64).sum();
    assert_eq!(
        up,
        TransferStats {
            requests: upload_requests(&sizes, P),
            bytes: total
        }
    );
    for (f, bytes) in &files {
        assert!(store.get(&f.key).unwrap()[..] == bytes[..], "{}", f.key);
    }

    let down_files = downloads(dst.path(), &files);
    let down = download(store, &FsStorage, &down_files, &opts(8, P)).unwrap();
    // A head per non-empty file and a range per part.
    let ranges: u64 = sizes.iter().map(|&s| s.div_ceil(P) as u64).sum();
    let heads = sizes.iter().filter(|&&s| s > 0).count() as u64;
    assert_eq!(
        down,
        TransferStats {
            requests: heads + ranges,
            bytes: total
        }
    );
    for (d, (_, bytes)) in down_files.iter().zip(&files) {
        let got = std::fs::read(&d.dest).unwrap();
        assert!(got == *bytes, "{} round-trips", d.dest.display());
    }
}

#[test]
fn files_of_every_edge_size_round_trip_through_the_simulator() {
    round_trip(&SimBlobStore::new(1));
}

#[test]
fn files_of_every_edge_size_round_trip_through_a_local_directory() {
    let bucket = tempfile::tempdir().unwrap();
    round_trip(&LocalBlobStore::open(bucket.path()).unwrap());
}

#[test]
fn downloads_in_small_ranges_combine_their_crcs_in_order() {
    let store = SimBlobStore::new(2);
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Ranges of 4096 bytes: many per file, the last one short.
    let files = write_files(src.path(), &[4096, 4097, 100_000, 3 * 4096 - 1]);
    for (f, bytes) in &files {
        store.put(&f.key, Bytes::from(bytes.clone())).unwrap();
    }
    let down_files = downloads(dst.path(), &files);
    let stats = download(&store, &FsStorage, &down_files, &opts(5, 4096)).unwrap();
    assert_eq!(stats.requests, 4 + 1 + 2 + 25 + 3);
    for (d, (_, bytes)) in down_files.iter().zip(&files) {
        assert!(std::fs::read(&d.dest).unwrap() == *bytes);
    }
}

#[test]
fn concurrency_one_and_eight_give_identical_objects() {
    let src = tempfile::tempdir().unwrap();
    let files = write_files(src.path(), &[3 * P + 17, 10, P, 2 * P + 1, 0]);
    let (one, eight) = (SimBlobStore::new(3), SimBlobStore::new(4));
    upload(&one, &FsStorage, &uploads(&files), &opts(1, P)).unwrap();
    upload(&eight, &FsStorage, &uploads(&files), &opts(8, P)).unwrap();
    let (a, b) = (
        list_all(&one, None).unwrap(),
        list_all(&eight, None).unwrap(),
    );
    assert_eq!(a.len(), files.len());
    let keys = |l: &[BlobMeta]| l.iter().map(|m| m.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    for (f, bytes) in &files {
        let (x, y) = (one.get(&f.key).unwrap(), eight.get(&f.key).unwrap());
        assert!(x == y && x[..] == bytes[..], "{}", f.key);
    }
}

/// A download of `objects` (key → bytes stored) expecting `expected`; the
/// error and whether every dest is gone.
fn download_expecting(
    objects: &[(&str, Vec<u8>)],
    expected: &[(&str, Vec<u8>)],
    part_bytes: usize,
) -> (Error, Vec<DownloadFile>, tempfile::TempDir) {
    let store = SimBlobStore::new(5);
    for (k, bytes) in objects {
        store.put(&key(k), Bytes::from(bytes.clone())).unwrap();
    }
    let dst = tempfile::tempdir().unwrap();
    let files: Vec<DownloadFile> = expected
        .iter()
        .enumerate()
        .map(|(i, (k, bytes))| DownloadFile {
            key: key(k),
            size: bytes.len() as u64,
            crc32c: crc32c::crc32c(bytes),
            dest: dst.path().join(format!("d{i}")),
        })
        .collect();
    let err = download(&store, &FsStorage, &files, &opts(4, part_bytes)).unwrap_err();
    (err, files, dst)
}

fn assert_mismatch(e: &Error, k: &str, expected: &[u8], actual_size: u64, actual_crc: Option<u32>) {
    match e {
        Error::CheckpointFileMismatch {
            path,
            expected_size,
            actual_size: size,
            expected_crc,
            actual_crc: crc,
        } => {
            assert_eq!(path, &PathBuf::from(k));
            assert_eq!(*expected_size, expected.len() as u64);
            assert_eq!(*expected_crc, crc32c::crc32c(expected));
            assert_eq!(*size, actual_size);
            if let Some(c) = actual_crc {
                assert_eq!(*crc, c);
            }
        }
        other => panic!("expected a mismatch of {k}, got {other:?}"),
    }
}

fn assert_removed(files: &[DownloadFile]) {
    for f in files {
        assert!(!f.dest.exists(), "{} must be removed", f.dest.display());
    }
}

#[test]
fn a_flipped_byte_is_a_mismatch_naming_the_key_and_every_dest_is_removed() {
    let good = pattern(50_000, 7);
    let mut flipped = good.clone();
    flipped[30_001] ^= 0x20;
    let other = pattern(9000, 8);
    let (e, files, _dir) = download_expecting(
        &[("parts/a", flipped.clone()), ("parts/b", other.clone())],
        &[("parts/a", good.clone()), ("parts/b", other)],
        4096,
    );
    assert_mismatch(&e, "parts/a", &good, 50_000, Some(crc32c::crc32c(&flipped)));
    assert_removed(&files);
}

#[test]
fn an_object_shorter_or_longer_than_expected_is_a_mismatch() {
    let bytes = pattern(20_000, 9);
    for actual in [19_999, 20_001, 4096, 100_000] {
        let stored = pattern(actual, 9);
        // The same leading bytes: a longer object's CRC of the expected
        // length would match, only its size tells.
        assert_eq!(stored[..actual.min(20_000)], bytes[..actual.min(20_000)]);
        let (e, files, _dir) =
            download_expecting(&[("parts/x", stored)], &[("parts/x", bytes.clone())], 4096);
        assert_mismatch(&e, "parts/x", &bytes, actual as u64, Some(0));
        assert_removed(&files);
    }
}

#[test]
fn a_missing_object_is_not_found_as_the_store_says() {
    let (e, files, _dir) = download_expecting(
        &[("parts/here", vec![1; 10])],
        &[("parts/here", vec![1; 10]), ("parts/gone", vec![2; 10])],
        4096,
    );
    match e {
        Error::Blob(BlobError::NotFound { key, .. }) => assert_eq!(key, "parts/gone"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_removed(&files);
}

#[test]
fn an_empty_file_is_created_without_a_request() {
    let store = SimBlobStore::new(6);
    let dst = tempfile::tempdir().unwrap();
    let f = DownloadFile {
        key: key("parts/empty"),
        size: 0,
        crc32c: 0,
        dest: dst.path().join("empty"),
    };
    let stats = download(&store, &FsStorage, std::slice::from_ref(&f), &opts(4, P)).unwrap();
    assert_eq!(stats, TransferStats::default());
    assert_eq!(store.ops(), 0);
    assert_eq!(std::fs::read(&f.dest).unwrap(), b"");
}

#[test]
fn a_dest_that_exists_is_an_error_and_is_left_alone() {
    let store = SimBlobStore::new(7);
    store
        .put(&key("parts/a"), Bytes::from_static(b"new"))
        .unwrap();
    let dst = tempfile::tempdir().unwrap();
    let dest = dst.path().join("a");
    std::fs::write(&dest, b"keep").unwrap();
    let f = DownloadFile {
        key: key("parts/a"),
        size: 3,
        crc32c: crc32c::crc32c(b"new"),
        dest: dest.clone(),
    };
    match download(&store, &FsStorage, &[f], &opts(2, P)).unwrap_err() {
        Error::Io {
            operation, path, ..
        } => assert_eq!((operation, path), ("create", dest.clone())),
        other => panic!("expected a create error, got {other:?}"),
    }
    assert_eq!(std::fs::read(&dest).unwrap(), b"keep");
}

#[test]
fn a_local_file_of_another_size_is_an_error_naming_it() {
    let store = SimBlobStore::new(8);
    let src = tempfile::tempdir().unwrap();
    let mut files = write_files(src.path(), &[100]);
    files[0].0.size = 101;
    match upload(&store, &FsStorage, &uploads(&files), &opts(2, P)).unwrap_err() {
        Error::Io { path, .. } => assert_eq!(path, files[0].0.path),
        other => panic!("expected an I/O error naming the file, got {other:?}"),
    }
    assert!(list_all(&store, None).unwrap().is_empty());
}

#[test]
fn transient_and_throttled_answers_are_retried_and_succeed() {
    let store = SimBlobStore::new(9);
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sizes = [100, 2 * P + 5, 7];
    let files = write_files(src.path(), &sizes);
    store.fail_nth(BlobOp::Put, 0, BlobFault::Transient);
    store.fail_nth(BlobOp::Put, 2, BlobFault::Indeterminate);
    // Multipart 0 starts the upload; 1.. are its parts.
    store.fail_nth(BlobOp::Multipart, 0, BlobFault::Throttled);
    store.fail_nth(BlobOp::Multipart, 2, BlobFault::Transient);
    store.fail_nth(BlobOp::Multipart, 3, BlobFault::Throttled);
    let up = upload(&store, &FsStorage, &uploads(&files), &opts(3, P)).unwrap();
    assert_eq!(up.requests, upload_requests(&sizes, P) + 5);
    for (f, bytes) in &files {
        assert!(store.get(&f.key).unwrap()[..] == bytes[..], "{}", f.key);
    }
    assert!(store.pending_uploads().is_empty());

    store.fail_nth(BlobOp::Head, 1, BlobFault::Throttled);
    store.fail_nth(BlobOp::Get, 3, BlobFault::Transient);
    store.fail_nth(BlobOp::Get, 4, BlobFault::Indeterminate);
    let down_files = downloads(dst.path(), &files);
    let down = download(&store, &FsStorage, &down_files, &opts(3, P)).unwrap();
    assert_eq!(down.requests, 3 + 5 + 3);
    for (d, (_, bytes)) in down_files.iter().zip(&files) {
        assert!(std::fs::read(&d.dest).unwrap() == *bytes);
    }
}

#[test]
fn a_request_failing_past_its_retries_is_the_error() {
    let store = SimBlobStore::new(10);
    store
        .put(&key("parts/a"), Bytes::from(vec![3; 10]))
        .unwrap();
    for n in 0..=u64::from(MAX_RETRIES) {
        store.fail_nth(BlobOp::Get, n, BlobFault::Transient);
    }
    let dst = tempfile::tempdir().unwrap();
    let f = DownloadFile {
        key: key("parts/a"),
        size: 10,
        crc32c: crc32c::crc32c(&[3; 10]),
        dest: dst.path().join("a"),
    };
    let e = download(&store, &FsStorage, std::slice::from_ref(&f), &opts(1, P)).unwrap_err();
    assert!(
        matches!(e, Error::Blob(BlobError::Transient { ref key, .. }) if key == "parts/a"),
        "{e:?}"
    );
    assert_removed(&[f]);
}

#[test]
fn a_part_failing_past_its_retries_aborts_the_upload_and_keeps_completed_objects() {
    let store = SimBlobStore::new(11);
    let src = tempfile::tempdir().unwrap();
    let files = write_files(src.path(), &[10, 3 * P]);
    // Multipart 0 starts the upload, 1 is part 0; part 1 fails every time.
    for n in 2..=2 + u64::from(MAX_RETRIES) {
        store.fail_nth(BlobOp::Multipart, n, BlobFault::Transient);
    }
    let e = upload(&store, &FsStorage, &uploads(&files), &opts(1, P)).unwrap_err();
    assert!(
        matches!(e, Error::Blob(BlobError::Transient { ref key, .. }) if key == "parts/f1"),
        "{e:?}"
    );
    assert!(store.pending_uploads().is_empty(), "the upload was aborted");
    assert!(store.head(&files[1].0.key).unwrap_err().is_not_found());
    // The small object was complete before the failure: it stays.
    assert_eq!(store.get(&files[0].0.key).unwrap()[..], files[0].1[..]);
}

#[test]
fn a_crash_mid_multipart_leaves_no_object() {
    let store = SimBlobStore::new(12);
    let src = tempfile::tempdir().unwrap();
    let files = write_files(src.path(), &[3 * P + 1]);
    store.fail_nth(BlobOp::Multipart, 2, BlobFault::Crash);
    let e = upload(&store, &FsStorage, &uploads(&files), &opts(4, P)).unwrap_err();
    assert!(matches!(e, Error::Blob(BlobError::Crashed { .. })), "{e:?}");
    let after = store.reboot();
    assert!(after.head(&files[0].0.key).unwrap_err().is_not_found());
    // The crashed client could not abort: the upload is left to collection.
    assert_eq!(after.pending_uploads(), vec![files[0].0.key.clone()]);
}

#[test]
fn transfers_are_counted_in_the_metrics() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let store = SimBlobStore::new(14);
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files = write_files(src.path(), &[10, 20]);
    store.fail_nth(BlobOp::Put, 0, BlobFault::Transient);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (up, down) = ::metrics::with_local_recorder(&recorder, || {
        let up = upload(&store, &FsStorage, &uploads(&files), &opts(2, P)).unwrap();
        let down = download(
            &store,
            &FsStorage,
            &downloads(dst.path(), &files),
            &opts(2, P),
        );
        (up, down.unwrap())
    });
    // One snapshot: taking one drains the counters.
    let snapshot = snapshotter.snapshot().into_vec();
    let counter = |name: &str, direction: &str| {
        snapshot
            .iter()
            .filter(|(k, ..)| {
                k.key().name() == name
                    && k.key()
                        .labels()
                        .any(|l| l.key() == "direction" && l.value() == direction)
            })
            .map(|(.., v)| match v {
                DebugValue::Counter(c) => *c,
                other => panic!("{name} is a counter, got {other:?}"),
            })
            .sum::<u64>()
    };
    assert_eq!(counter(crate::metrics::REMOTE_BYTES, "upload"), 30);
    assert_eq!(
        counter(crate::metrics::REMOTE_REQUESTS, "upload"),
        up.requests
    );
    assert_eq!(up.requests, 3);
    assert_eq!(counter(crate::metrics::REMOTE_RETRIES, "upload"), 1);
    assert_eq!(
        counter(crate::metrics::REMOTE_BYTES, "download"),
        down.bytes
    );
    assert_eq!(counter(crate::metrics::REMOTE_REQUESTS, "download"), 4);
}

#[test]
fn a_cancelled_download_starts_no_range_fails_interrupted_and_leaves_no_file() {
    let store = SimBlobStore::new(4);
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files = write_files(src.path(), &[100_000, 50_000]);
    for (f, bytes) in &files {
        store.put(&f.key, Bytes::from(bytes.clone())).unwrap();
    }
    let down_files = downloads(dst.path(), &files);
    let flag = Arc::new(AtomicBool::new(true));
    let cancelled = opts(2, 4096).with_cancel(flag.clone());
    match download(&store, &FsStorage, &down_files, &cancelled) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::Interrupted),
        other => panic!("expected an interrupted download, got {other:?}"),
    }
    assert_removed(&down_files);
    assert_eq!(store.ops_of(BlobOp::Get), 0, "no range was fetched");
    // Not cancelled, the same options download.
    flag.store(false, Ordering::SeqCst);
    download(&store, &FsStorage, &down_files, &cancelled).unwrap();
}
