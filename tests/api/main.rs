//! What a user reads and calls first: the README's example, the design brief's
//! public names, the metrics, and the read-only inspection API. One test binary
//! (`cargo test --test api`).

#[path = "../common/mod.rs"]
mod common;

mod design_names;
mod inspection;
mod metrics;
mod readme;
