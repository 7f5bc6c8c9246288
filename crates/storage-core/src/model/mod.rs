//! The data model: contexts (vector side) and records (document side).

mod context;
pub mod records;

pub use context::*;
pub use records::*;
