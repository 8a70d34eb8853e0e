//! The cluster module (docs/DISTRIBUTED.md, issue 23). One test binary
//! (`cargo test --test cluster`).

mod review;
