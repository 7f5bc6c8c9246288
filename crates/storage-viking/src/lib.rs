#![doc = include_str!("../docs.md")]
#![warn(missing_docs)]

mod backend;
mod client;
mod config;
mod filter;
mod mapping;
mod schema;
pub mod signing;

pub use backend::{MAX_BATCH, MAX_SEARCH_LIMIT, VikingBackend};
pub use config::{MetadataField, MetadataFieldType, VikingConfig};
