//! State files: snapshots, deltas, the mapped view, Arrow parts, the committed
//! format fixtures and property tests. One test binary (`cargo test --test state`).

mod arrow_feature;
#[cfg(feature = "arrow")]
mod arrow_state;
mod state_format_fixtures;
mod state_properties;
mod state_snapshot;
mod state_tracked;
