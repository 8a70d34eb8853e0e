//! Checkpoints in a remote location (a blob store): publish and restore
//! through the cache, commit records and fencing, fallback past damaged
//! checkpoints, the example pipeline against a remote location, and the
//! crash suite (faults at every blob and disk operation, zombie writers).
//! One test binary (`cargo test --test remote`).

mod crash;
mod example_pipeline;
mod fencing;
mod gc_crash;
mod harness;
mod holes;
mod hooked;
mod local_crash;
mod progress;
mod publish_restore;
mod sink;
mod support;
mod view;
mod view_attacks;
mod view_lifecycle;
mod zombie;
