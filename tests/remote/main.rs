//! Checkpoints in a remote location (a blob store): publish and restore
//! through the cache, commit records and fencing, fallback past damaged
//! checkpoints, the example pipeline against a remote location. One test
//! binary (`cargo test --test remote`).

mod example_pipeline;
mod fencing;
mod publish_restore;
mod support;
