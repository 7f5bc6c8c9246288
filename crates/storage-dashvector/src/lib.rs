#![doc = include_str!("../docs.md")]
#![warn(missing_docs)]

mod backend;
mod client;
mod config;
mod filter;
mod mapping;
pub mod schema;
mod scroll;

pub use backend::DashVectorBackend;
pub use config::{DashVectorConfig, MAX_DOCS_PER_CALL, MAX_RETRIES, MAX_RETRY_DELAY_MS};
pub use mapping::{MAX_DOC_ID_LEN, validate_doc_id};
pub use schema::FieldKind;
