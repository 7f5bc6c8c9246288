//! # opencontext-storage
//!
//! The storage layer of an AI context and memory platform, in one crate:
//!
//! * **contexts** ([`ProcessedContext`]) in a vector database: similarity search with
//!   metadata filters, tenant scopes, hierarchy (daily/weekly/monthly summary) search,
//!   document overwrite by source file, cursor scrolling;
//! * **records** in a relational database: profiles, entities, vaults, todos, tips,
//!   conversations, messages, message thinking, monitoring.
//!
//! Backends are chosen by Cargo features and by configuration (the original's YAML shape),
//! not by code: the defaults, SQLite and an embedded Qdrant engine, need no server.
//!
//! ```no_run
//! use opencontext_storage::{init_storage, get_storage, config, ContextType, ProcessedContext, SearchQuery};
//!
//! # async fn demo() -> opencontext_storage::Result<()> {
//! let cfg = config::load_config("config.yaml".as_ref())?;
//! init_storage(&cfg).await?;
//! let storage = get_storage()?;
//! let mut ctx = ProcessedContext::new(ContextType::Knowledge, "Rust has ownership.");
//! ctx.vectorize.vector = Some(vec![0.1; 384]);
//! storage.upsert_processed_context(&ctx).await?;
//! let hits = storage.search(&SearchQuery::new(vec![0.1; 384]).top_k(5)).await?;
//! println!("{} hits, best score {}", hits.len(), hits[0].score);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod global;
mod registry;
mod trace;
mod unified;
mod unified_document;

pub use global::{
    get_storage, init_storage, init_storage_with, is_initialized, reset_storage, set_storage,
};
pub use registry::default_factory;
pub use storage_core::*;
pub use unified::{UnifiedStorage, UnifiedStorageBuilder};

#[cfg(feature = "cache")]
pub use storage_cache;
#[cfg(feature = "chromadb")]
pub use storage_chroma;
#[cfg(feature = "dashvector")]
pub use storage_dashvector;
#[cfg(feature = "mysql")]
pub use storage_mysql;
#[cfg(any(feature = "qdrant-local", feature = "qdrant-remote"))]
pub use storage_qdrant;
#[cfg(feature = "sqlite")]
pub use storage_sqlite;
#[cfg(feature = "vikingdb")]
pub use storage_viking;
