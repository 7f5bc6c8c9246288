#![doc = include_str!("../docs.md")]
#![warn(missing_docs)]

mod backend;
mod config;
mod core;
mod filter;
mod records;

pub use backend::ChromaBackend;
pub use config::{ChromaConfig, MAX_VECTOR_SIZE};
