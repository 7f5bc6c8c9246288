#![doc = include_str!("../docs.md")]
#![warn(missing_docs)]

mod config;
mod filter;
mod ids;
#[cfg(feature = "local")]
mod local;
mod points;

pub use config::{MAX_VECTOR_SIZE, QdrantLocalConfig};
#[cfg(feature = "local")]
pub use local::QdrantLocalBackend;
