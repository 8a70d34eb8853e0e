//! One contract for every [`BlobStore`]: a conformance suite that runs the
//! same checks against any implementation (the local directory, the
//! simulator, `object_store` in memory and against a real S3 server), so
//! that they behave alike wherever highwater depends on it. Users run it on
//! their own backend the same way. The idea is `object_store`'s
//! integration suite; the checks are highwater's contract (the module docs
//! of [`crate::blob`]).
//!
//! Each public function checks one part of the contract under a prefix of
//! `root` named after the function (emptied first, so a suite can run again
//! in the same bucket), and panics with a message naming the broken rule.
//! [`run_all`] runs every check.
//!
//! The invariants checked:
//! - objects: create-if-absent answers `Created` once and `AlreadyExists`
//!   after, keeping the first bytes; put replaces, visible at once to get,
//!   head and list; the etag, when given, changes on replace; a missing
//!   object is `NotFound` for get, ranged get and head; empty objects work;
//! - ranged reads return exactly the bytes asked; an empty range, or one
//!   that ends past the object, is `InvalidRange`;
//! - listings: all depths under a prefix, segment-wise (`a/b` is under `a`,
//!   `ab` is not), sorted by key, strictly after the cursor, paginated
//!   without loss or repetition;
//! - delete is idempotent and the object is gone from get, head and list;
//! - multipart uploads hold their parts in order (the order parts were
//!   sent or started, whatever order started parts are waited for), are
//!   invisible until
//!   completed, and an aborted one never appears; [`BlobWriter`](crate::blob::BlobWriter) streams
//!   objects of one and of several parts; collecting abandoned uploads
//!   leaves objects and uploads started after the time given alone;
//! - concurrent creates of one key: exactly one `Created`, and the object
//!   holds that caller's bytes.
//!
//! What a store may do is not checked (for example whether a create that
//! timed out happened: the simulator's tests cover the callers' side).

mod listing;
mod multipart;
mod objects;

pub use listing::{deletes, listings};
pub use multipart::{abandoned_uploads, multipart_uploads};
pub use objects::{concurrent_creates, creates, missing_objects, puts, ranged_reads};

use super::{list_all, BlobError, BlobKey, BlobResult, BlobStore};
use std::fmt::Debug;

/// Runs every check against `store`, each under its own prefix of `root`.
///
/// # Panics
/// On the first broken rule, with a message naming it and the store.
pub fn run_all(store: &dyn BlobStore, root: &BlobKey) {
    creates(store, root);
    puts(store, root);
    missing_objects(store, root);
    ranged_reads(store, root);
    listings(store, root);
    deletes(store, root);
    multipart_uploads(store, root);
    abandoned_uploads(store, root);
    concurrent_creates(store, root);
}

/// The empty prefix `root/name` for one check.
#[track_caller]
fn scratch(store: &dyn BlobStore, root: &BlobKey, name: &str) -> BlobKey {
    let prefix = ok(store, root.join(name), "make the scratch prefix");
    for meta in ok(
        store,
        list_all(store, Some(&prefix)),
        "list the scratch prefix",
    ) {
        ok(store, store.delete(&meta.key), "clear the scratch prefix");
    }
    prefix
}

/// `prefix/name`.
#[track_caller]
fn key(prefix: &BlobKey, name: &str) -> BlobKey {
    prefix.join(name).expect("a valid test key")
}

/// The store's name for messages: its `Debug` output up to the first brace.
fn label(store: &dyn BlobStore) -> String {
    let debug = format!("{store:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The value of `result`, or a panic naming `what` and the store.
#[track_caller]
fn ok<T>(store: &dyn BlobStore, result: BlobResult<T>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{}: {what} failed: {e}", label(store)))
}

/// Panics unless `result` is an error that `expected` accepts.
#[track_caller]
fn fails<T: Debug>(
    store: &dyn BlobStore,
    result: BlobResult<T>,
    expected: fn(&BlobError) -> bool,
    what: &str,
) {
    match result {
        Ok(v) => panic!("{}: {what} must fail, but returned {v:?}", label(store)),
        Err(e) if !expected(&e) => {
            panic!(
                "{}: {what} failed with the wrong error: {e:?}",
                label(store)
            )
        }
        Err(_) => {}
    }
}

/// Bytes `0, 1, 2, …` (mod 251) of length `n`, so any shifted range differs.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i % 251) as u8).wrapping_add(seed))
        .collect()
}
