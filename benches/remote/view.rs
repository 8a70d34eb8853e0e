//! The remote view's measurement (issue 22): a `RemoteStateView` opened on
//! an empty cache directory, the time to its first `get` of a random
//! existing key (checked against the generated value), then further random
//! gets while the background download runs, then the time until the view
//! is local (`wait`). Each value returned is checked.
//!
//! Times are from just before `RemoteStateView::open`: the open (choose
//! the checkpoint: list, record reads; the part file's header and tail) is
//! part of the time to the first value, as it is for a recovering job.

use super::state::{key, value, Picker};
use highwater::checkpoint::{RemoteStateView, RemoteViewConfig};
use highwater::RemoteConfig;
use std::path::Path;
use std::time::{Duration, Instant};

/// One view run.
#[derive(Debug, Default, Clone)]
pub struct ViewRun {
    /// `RemoteStateView::open` returned.
    pub open: Duration,
    /// The first `get` returned (from before the open).
    pub first_get: Duration,
    /// Ranged gets and bytes of the open (`report()` after it).
    pub open_requests: u64,
    pub open_bytes: u64,
    /// Ranged gets and bytes of the first `get` alone.
    pub first_requests: u64,
    pub first_bytes: u64,
    /// Each further get, answered while the view was still remote.
    pub remote_gets: Vec<Duration>,
    /// Ranged gets and bytes of those further gets.
    pub remote_requests: u64,
    pub remote_bytes: u64,
    /// Further gets answered after the switch to the local copy.
    pub local_gets: usize,
    /// `wait()` returned: published, verified, mapped (from before the
    /// open); zero without the background download.
    pub local_after: Duration,
    /// Bytes the background download published.
    pub downloaded: u64,
}

/// Opens a view of `remote`'s newest checkpoint on the empty directory
/// `dir` and measures it (module docs). `n` pairs in the state; `further`
/// random gets after the first.
pub fn measure(
    remote: RemoteConfig,
    dir: &Path,
    n: u64,
    further: usize,
    download: bool,
    seed: u64,
) -> ViewRun {
    let mut pick = Picker::new(seed);
    let mut run = ViewRun::default();
    let started = Instant::now();
    let view = RemoteStateView::open(
        RemoteViewConfig::new(remote, dir).with_background_download(download),
    )
    .expect("open the remote view")
    .expect("a committed checkpoint");
    run.open = started.elapsed();
    let opened = view.report();
    run.open_requests = opened.requests;
    run.open_bytes = opened.bytes_fetched;

    let i = pick.next(n);
    let got = view.get(&key(i)).expect("the first get");
    run.first_get = started.elapsed();
    assert_eq!(got, Some(value(i)), "the first get returns value {i}");
    let first = view.report();
    run.first_requests = first.requests - opened.requests;
    run.first_bytes = first.bytes_fetched - opened.bytes_fetched;
    assert!(
        download || !first.local,
        "without a download the view stays remote"
    );

    let mut remote_after = first.clone();
    for _ in 0..further {
        let i = pick.next(n);
        let remote_before = !view.is_local();
        let t = Instant::now();
        let got = view.get(&key(i)).expect("a further get");
        let took = t.elapsed();
        assert_eq!(got, Some(value(i)), "a further get returns value {i}");
        if remote_before && !view.is_local() {
            run.remote_gets.push(took);
            remote_after = view.report();
        } else {
            run.local_gets += 1;
        }
    }
    run.remote_requests = remote_after.requests - first.requests;
    run.remote_bytes = remote_after.bytes_fetched - first.bytes_fetched;

    if download {
        view.wait().expect("the background download");
        run.local_after = started.elapsed();
        assert!(view.is_local(), "local after the download");
        let done = view.report();
        assert!(done.download_done);
        run.downloaded = done.bytes_downloaded;
        let i = pick.next(n);
        assert_eq!(
            view.get(&key(i)).expect("a local get"),
            Some(value(i)),
            "a get from the local copy returns value {i}"
        );
    }
    drop(view);
    run
}

/// The median and the 99th percentile of `v` (zero when empty).
pub fn median_p99(v: &[Duration]) -> (Duration, Duration) {
    if v.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    let mut v = v.to_vec();
    v.sort();
    let p99 = ((v.len() * 99).div_ceil(100)).clamp(1, v.len()) - 1;
    (v[v.len() / 2], v[p99])
}
