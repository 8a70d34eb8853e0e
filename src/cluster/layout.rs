//! The keys of a cluster job's location (docs/DISTRIBUTED.md, "The
//! protocol"). The commit sequence and floor markers are those of a single
//! writer's location (`checkpoint::remote::layout`); parts and reports are
//! the cluster's own.
//!
//! ```text
//! commits/<slot:020>                                           claims and epoch records
//! floor/<slot:020>                                             floor markers
//! parts/<generation:020>/<epoch:020>/<worker:05>-<nonce:016x>.hwstate
//! reports/<generation:020>/<epoch:020>/<worker:05>
//! ```
//!
//! Invariant: numbers print zero-padded, so key order is number order; a
//! part key holds the run's generation, the epoch, the worker and a random
//! nonce, so no two uploads share a key and no object is ever overwritten.

use crate::blob::BlobKey;

pub(crate) use crate::checkpoint::remote::layout::{nonce, PARTS};

/// The folder of worker reports.
pub(crate) const REPORTS: &str = "reports";

/// The key of a new part of `worker` for `epoch` in run `generation`.
pub(crate) fn part_key(generation: u64, epoch: u64, worker: u32) -> BlobKey {
    BlobKey::new(format!(
        "{PARTS}/{generation:020}/{epoch:020}/{worker:05}-{:016x}.hwstate",
        nonce()
    ))
    .expect("digits and fixed names make a valid key")
}

/// The folder of the reports of `epoch` in run `generation`.
pub(crate) fn reports_prefix(generation: u64, epoch: u64) -> BlobKey {
    BlobKey::new(format!("{REPORTS}/{generation:020}/{epoch:020}"))
        .expect("digits make a valid key")
}

/// The key of `worker`'s report of `epoch` in run `generation`.
pub(crate) fn report_key(generation: u64, epoch: u64, worker: u32) -> BlobKey {
    BlobKey::new(format!(
        "{REPORTS}/{generation:020}/{epoch:020}/{worker:05}"
    ))
    .expect("digits make a valid key")
}

/// The worker index of a report key under [`reports_prefix`].
pub(crate) fn parse_report_key(generation: u64, epoch: u64, key: &BlobKey) -> Option<u32> {
    let prefix = reports_prefix(generation, epoch);
    let digits = key
        .as_str()
        .strip_prefix(prefix.as_str())?
        .strip_prefix('/')?;
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back() {
        let k = report_key(3, 7, 12);
        assert_eq!(parse_report_key(3, 7, &k), Some(12));
        assert_eq!(parse_report_key(3, 8, &k), None);
        let p = part_key(9, 1, 0);
        assert!(p.as_str().starts_with("parts/00000000000000000009/"));
        assert_ne!(p, part_key(9, 1, 0));
    }
}
