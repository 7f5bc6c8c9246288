//! Volcengine VikingDB vector backend of the OpenContext storage layer.
//!
//! [`VikingBackend`] implements [`storage_core::VectorStorageBackend`] over VikingDB's
//! data-plane HTTP API (<https://www.volcengine.com/docs/84313/1791133>): one collection for
//! every context type, filtered on the `context_type` field as the original does; requests are
//! signed with Volcengine's HMAC-SHA256 scheme ([`signing`]). Configuration: [`VikingConfig`];
//! the crate's `docs.md` describes the layout, the limits and how to test.
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
