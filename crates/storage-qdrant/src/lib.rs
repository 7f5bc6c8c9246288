#![doc = include_str!("../docs.md")]
#![warn(missing_docs)]
// The shared mapping (filters, ids, payloads) serves the modes; with none enabled it is idle.
#![cfg_attr(not(any(feature = "local", feature = "remote")), allow(dead_code))]

mod config;
mod filter;
mod ids;
#[cfg(feature = "local")]
mod local;
mod points;
mod query;
#[cfg(feature = "remote")]
mod remote;
mod schema;

pub use config::{MAX_VECTOR_SIZE, QdrantLocalConfig};
#[cfg(feature = "local")]
pub use local::QdrantLocalBackend;
#[cfg(feature = "remote")]
pub use remote::{QdrantRemoteBackend, QdrantRemoteConfig};
