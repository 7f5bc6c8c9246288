//! Core of the OpenContext storage layer: the data model, the backend traits, the error type,
//! the filter language, configuration, the backend factory and the embedder trait.
//!
//! Backends live in their own crates (`storage-sqlite`, `storage-qdrant`, ...) and depend on
//! this crate only; users depend on the umbrella crate `opencontext-storage`.
#![warn(missing_docs)]

mod backend;
pub mod config;
mod document;
mod embedder;
mod error;
mod factory;
pub mod filter;
pub mod model;
pub mod payload;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
pub mod time_bucket;
pub mod validate;

pub use backend::*;
pub use config::{AppConfig, BackendConfig};
pub use document::*;
pub use embedder::*;
pub use error::{ErrorKind, Result, ResultExt, StorageError, WriteOutcome};
pub use factory::*;
pub use filter::{Filter, Scope, Value};
pub use model::*;
pub use time::Timestamp;
