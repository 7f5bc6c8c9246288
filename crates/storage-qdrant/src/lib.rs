#![doc = include_str!("../docs.md")]
#![warn(missing_docs)]
// The shared mapping (filters, ids, payloads) serves the modes; with none enabled it is idle.
#![cfg_attr(not(feature = "local"), allow(dead_code))]

mod config;
mod filter;
mod ids;
#[cfg(feature = "local")]
mod local;
mod points;

pub use config::{MAX_VECTOR_SIZE, QdrantLocalConfig};
#[cfg(feature = "local")]
pub use local::QdrantLocalBackend;
