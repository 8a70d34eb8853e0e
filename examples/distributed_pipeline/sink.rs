//! The job's transactional sink, kept in the job's store.
//!
//! - **Pre-commit** (a worker, at barrier `e`): the epoch's output is
//!   created as `staging/<generation>/<epoch>/<worker>`; the handle names
//!   that object and the output object it publishes to,
//!   `output/<epoch>/<first group>-<end group>`.
//! - **Commit** (the coordinator, only after `Coordinator::commit` returned,
//!   and again for the restored base at start): copies the staged bytes to
//!   the output object with a create-if-absent. Idempotent: an output object
//!   that is already there with the same bytes is an earlier publish of the
//!   same committed handle; with other bytes it is an error (two different
//!   outputs for one epoch and range).
//! - **Abort**: staged objects no committed record names are never copied;
//!   a new coordinator deletes those of older runs ([`discard_staged`]).

use bytes::Bytes;
use highwater::blob::{list_all, BlobKey, BlobStore, CreateOutcome};
use highwater::cluster::{KeyGroupRange, SinkHandle};
use std::collections::BTreeSet;

/// The sink's name in worker reports.
pub const SINK: &str = "window-counts";
const STAGING: &str = "staging";
const OUTPUT: &str = "output";

fn key(text: String) -> Result<BlobKey, String> {
    BlobKey::new(text).map_err(|e| e.to_string())
}

/// Stages `bytes` as worker `worker`'s output of `epoch` in run
/// `generation`, for its key groups `groups`; returns the pre-commit handle.
pub fn stage(
    store: &dyn BlobStore,
    generation: u64,
    epoch: u64,
    worker: u32,
    groups: KeyGroupRange,
    bytes: Vec<u8>,
) -> Result<SinkHandle, String> {
    let staged = key(format!(
        "{STAGING}/{generation:020}/{epoch:020}/{worker:05}"
    ))?;
    let output = format!("{OUTPUT}/{epoch:020}/{:05}-{:05}", groups.start, groups.end);
    let bytes = Bytes::from(bytes);
    let outcome = store
        .create_if_absent(&staged, bytes.clone())
        .map_err(|e| e.to_string())?;
    if outcome != CreateOutcome::Created && store.get(&staged).map_err(|e| e.to_string())? != bytes
    {
        return Err(format!(
            "{staged} holds another process's output (two worker {worker}s in run {generation})"
        ));
    }
    Ok(SinkHandle {
        sink: SINK.to_string(),
        handle: format!("{staged}\n{output}").into_bytes(),
    })
}

/// The staged object and the output object a handle names.
fn parse(handle: &SinkHandle) -> Result<(BlobKey, BlobKey), String> {
    let text = std::str::from_utf8(&handle.handle).map_err(|e| format!("handle: {e}"))?;
    let (staged, output) = text
        .split_once('\n')
        .ok_or_else(|| format!("handle {text:?} names no output"))?;
    if !staged.starts_with(STAGING) || !output.starts_with(OUTPUT) {
        return Err(format!("handle {text:?} is not this sink's"));
    }
    Ok((key(staged.to_string())?, key(output.to_string())?))
}

/// Publishes a committed handle (idempotent; module docs). Returns whether
/// this call created the output object.
pub fn publish(store: &dyn BlobStore, handle: &SinkHandle) -> Result<bool, String> {
    let (staged, output) = parse(handle)?;
    let bytes = store.get(&staged).map_err(|e| e.to_string())?;
    match store
        .create_if_absent(&output, bytes.clone())
        .map_err(|e| e.to_string())?
    {
        CreateOutcome::Created => Ok(true),
        _ if store.get(&output).map_err(|e| e.to_string())? == bytes => Ok(false),
        _ => Err(format!(
            "{output} already holds other output than {staged}: one epoch published twice"
        )),
    }
}

/// Deletes the staged objects of runs before `generation` that `keep` (the
/// restored base's handles) does not name: output of epochs that never
/// committed. Returns how many it deleted.
pub fn discard_staged(
    store: &dyn BlobStore,
    generation: u64,
    keep: &[&SinkHandle],
) -> Result<usize, String> {
    let keep: BTreeSet<String> = keep
        .iter()
        .map(|h| parse(h).map(|(staged, _)| staged.as_str().to_string()))
        .collect::<Result<_, _>>()?;
    let prefix = key(STAGING.to_string())?;
    let mut deleted = 0;
    for meta in list_all(store, Some(&prefix)).map_err(|e| e.to_string())? {
        let older = meta
            .key
            .segments()
            .nth(1)
            .and_then(|g| g.parse::<u64>().ok())
            .is_some_and(|g| g < generation);
        if older && !keep.contains(meta.key.as_str()) {
            store.delete(&meta.key).map_err(|e| e.to_string())?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Every published output object and its bytes, by key.
pub fn read_output(store: &dyn BlobStore) -> Result<Vec<(String, Vec<u8>)>, String> {
    let prefix = key(OUTPUT.to_string())?;
    list_all(store, Some(&prefix))
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|meta| {
            let bytes = store.get(&meta.key).map_err(|e| e.to_string())?;
            Ok((meta.key.as_str().to_string(), bytes.to_vec()))
        })
        .collect()
}
