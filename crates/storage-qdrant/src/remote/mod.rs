//! Remote mode: a Qdrant server over gRPC (`qdrant-client`).

mod backend;
mod client;
mod condition;
mod config;
mod error;
mod records;
mod scroll;

pub use backend::QdrantRemoteBackend;
pub use config::QdrantRemoteConfig;
