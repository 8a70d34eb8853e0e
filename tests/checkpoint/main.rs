//! The checkpoint manager: round trips, delta chains, retention, fallback, its
//! guard rails (delta parents, the directory lock, numbers from disk) and the
//! attacks of review 17. One test binary (`cargo test --test checkpoint`).

#[path = "../common/mod.rs"]
mod common;

mod background;
mod checkpoint_basic;
mod checkpoint_guards;
mod review17_attacks;
mod write_path;
