#![doc = include_str!("../docs.md")]
#![warn(missing_docs)]

mod cache;
mod config;
mod glob;
mod global;
mod lock;
mod memory;
mod pipeline;
mod pool;
mod redis_cache;
mod redis_error;
mod validate;

pub use cache::{Cache, SetOptions};
pub use config::RedisCacheConfig;
pub use global::{close_redis_cache, get_cache, get_redis_cache, init_redis_cache};
pub use lock::{MAX_BLOCKING_TIMEOUT_SECS, MAX_LOCK_TIMEOUT_SECS};
pub use memory::InMemoryCache;
pub use pipeline::{Pipeline, PipelineOp};
pub use pool::PooledConnection;
pub use redis_cache::RedisCache;
pub use validate::MAX_TTL_SECS;
#[cfg(feature = "testkit")]
pub mod testkit;
