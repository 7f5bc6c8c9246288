#![doc = include_str!("../docs.md")]
#![warn(missing_docs)]

mod backend;
mod config;
mod mapping;
mod pool;
mod queries;
mod schema;
mod search;

pub use backend::SqliteBackend;
pub use config::{DEFAULT_PATH, SqliteConfig, Synchronous};
pub use schema::SCHEMA_VERSION;

/// The statements the backend runs for the benchmarked operations, exposed so the benchmark
/// can run the very same SQL through bare rusqlite. Not part of the stable API.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::pool::configure_for_bench;
    pub use crate::queries::{GET_PROFILE_SQL, INSERT_TODO_SQL, UPSERT_PROFILE_SQL};
}
