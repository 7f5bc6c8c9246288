//! Vector backend conformance kit.
//!
//! A backend's test file implements [`VectorKitHarness`] and invokes
//! [`crate::vector_conformance_tests!`], which expands to one `#[tokio::test]` per case:
//!
//! ```ignore
//! struct Harness;
//! #[async_trait::async_trait]
//! impl storage_core::testkit::vector::VectorKitHarness for Harness {
//!     async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> { ... }
//! }
//! storage_core::vector_conformance_tests!(Harness);
//! ```

use std::sync::Arc;

use async_trait::async_trait;

use crate::backend::VectorStorageBackend;

/// What a case needs from a fresh backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KitSpec {
    /// Vector dimension of the backend.
    pub dimension: usize,
    /// Whether todo embeddings (the `todo` collection) are enabled.
    pub todo_embeddings: bool,
}

/// Creates empty backends for the kit's cases.
#[async_trait]
pub trait VectorKitHarness: Send + Sync {
    /// A new, empty backend configured as `spec` says. Each call must return a backend that
    /// shares no data with any other (a fresh temp directory, a unique collection prefix...).
    async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend>;
}
