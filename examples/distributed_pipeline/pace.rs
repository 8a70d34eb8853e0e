//! How far workers may run ahead: the coordinator of run `g` puts
//! `control/<g>/allowed`, the last epoch its workers may start (the next
//! epoch to commit plus [`RUN_AHEAD`] - 1), after every publish; a worker
//! waits for it before reading past a barrier. This stands for the
//! coordinator's barrier trigger of docs/DISTRIBUTED.md ("Wiring an
//! engine's barriers"): barriers sit at fixed offsets, the coordinator only
//! says when the next one may be passed. While it waits, a worker checks
//! every so often that its run is still the newest, so the workers of a
//! superseded run stop with `Fenced` instead of waiting for ever.

use bytes::Bytes;
use highwater::blob::{BlobError, BlobKey, BlobStore};
use std::time::{Duration, Instant};

/// Epochs a worker may checkpoint beyond the next one to commit, plus one.
pub const RUN_AHEAD: u64 = 2;
const POLL: Duration = Duration::from_millis(10);

fn key(generation: u64) -> BlobKey {
    BlobKey::new(format!("control/{generation:020}/allowed")).expect("a valid key")
}

/// Lets the workers of run `generation` start every epoch up to `epoch`.
///
/// # Errors
/// The store's.
pub fn allow(store: &dyn BlobStore, generation: u64, epoch: u64) -> Result<(), BlobError> {
    store.put(&key(generation), Bytes::from(epoch.to_string()))
}

/// Waits until the workers of run `generation` may start `epoch`, calling
/// `check` (the fencing check) every `every`.
///
/// # Errors
/// `check`'s error; the store's.
pub fn wait_for(
    store: &dyn BlobStore,
    generation: u64,
    epoch: u64,
    every: Duration,
    mut check: impl FnMut() -> highwater::Result<()>,
) -> highwater::Result<()> {
    let key = key(generation);
    let mut checked = Instant::now();
    loop {
        match store.get(&key) {
            Ok(bytes) => {
                let allowed = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                if allowed >= epoch {
                    return Ok(());
                }
            }
            Err(BlobError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if checked.elapsed() >= every {
            check()?;
            checked = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}
