//! Checkpoints in a remote location (a blob store): publish and restore
//! through the cache, commit records and fencing, fallback past damaged
//! checkpoints. One test binary (`cargo test --test remote`).

mod fencing;
mod publish_restore;
mod sink;
mod support;
