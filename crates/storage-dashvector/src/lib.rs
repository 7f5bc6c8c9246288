//! Aliyun DashVector vector backend of the OpenContext storage layer, over DashVector's HTTP
//! API ([reference](https://www.alibabacloud.com/help/en/vrs/latest/http-api)) with the
//! `dashvector-auth-token` header.
//!
//! * one collection per context type (`<prefix><type>`), plus `<prefix>todo`, metric
//!   `cosine`, fields declared at creation ([`schema`]);
//! * scores are cosine similarities in `[-1, 1]` (DashVector's cosine distance `d` in
//!   `[0, 2]` becomes `1 - d`);
//! * filters become DashVector's SQL-like filter string, every value quoted by the declared
//!   type of its field; `ne`/`not in`/`not` and string ranges are `Unsupported`;
//! * scrolling walks hash ranges of a declared key with filter-only queries (see `scroll.rs`
//!   and `docs.md`);
//! * 429, 5xx, timeouts and the retryable DashVector codes are retried with exponential
//!   backoff.
//!
//! See `docs.md` in this crate for configuration and limits.
#![warn(missing_docs)]

mod backend;
mod client;
mod config;
mod filter;
mod mapping;
pub mod schema;
mod scroll;

pub use backend::DashVectorBackend;
pub use config::{DashVectorConfig, MAX_DOCS_PER_CALL};
pub use mapping::{MAX_DOC_ID_LEN, validate_doc_id};
pub use schema::FieldKind;
