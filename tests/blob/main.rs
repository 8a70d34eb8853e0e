//! Blob stores: the conformance suite against every implementation (a local
//! directory, the simulator, `object_store` in memory and, with the
//! `object-store` feature and a server, moto's S3), the simulator's faults,
//! keys and locations. One test binary (`cargo test --test blob`; the S3
//! tests need `--features object-store` and the server: docs/OBJECT_STORAGE.md).

mod conformance;
mod locations;
#[cfg(feature = "object-store")]
mod moto;
#[cfg(feature = "object-store")]
mod object_store_runtime;
mod sim_faults;
