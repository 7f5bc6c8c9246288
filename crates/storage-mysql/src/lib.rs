#![doc = include_str!("../docs.md")]
#![warn(missing_docs)]

mod backend;
mod config;
mod error;
mod mapping;
mod pool;
mod queries;
mod schema;
mod search;

pub use backend::MysqlBackend;
pub use config::{MAX_BACKOFF_MS, MAX_RETRIES, MAX_TIMEOUT_MS, MysqlConfig, SslMode};
pub use schema::SCHEMA_VERSION;

/// The statements the backend runs for the benchmarked operations, exposed so the benchmark
/// can run the very same SQL through bare sqlx. Not part of the stable API.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::queries::{GET_PROFILE_SQL, UPSERT_PROFILE_SQL};
}
