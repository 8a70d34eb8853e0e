//! The cluster module (docs/DISTRIBUTED.md, issue 23): the key-group hash
//! against committed fixtures and the docs' formula, range restores that
//! read only their groups' bytes, rescales between every pair of worker
//! counts from 1 to 6, the protocol's edge cases and damage, the defects a
//! review found, a deterministic simulation of the protocol under crashes,
//! lost answers, zombies and rescales, and, with the `object-store`
//! feature and moto's server, a job in S3. One test binary (`cargo test
//! --test cluster`; the S3 test needs `--features object-store` and the
//! server: docs/OBJECT_STORAGE.md).

mod damage;
mod key_groups;
#[cfg(feature = "object-store")]
mod moto;
mod protocol;
mod range_restore;
mod rescale;
mod review;
mod sim;
mod support;
