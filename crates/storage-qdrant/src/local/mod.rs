//! Local (embedded) mode: the in-process Qdrant engine (`qdrant-edge`).

mod backend;
mod condition;
mod foreign;
mod lock;
mod records;
mod redo;
mod scroll;
mod shard;

pub use backend::QdrantLocalBackend;
