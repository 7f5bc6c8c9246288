//! Conformance kits: the same cases run against every backend (feature `testkit`).
//!
//! Modelled on OpenDAL's behaviour tests: one suite, every service, capability flags gate
//! what a backend does not claim.

pub mod document;
mod memory;
pub mod vector;

pub use memory::MemoryVectorBackend;
