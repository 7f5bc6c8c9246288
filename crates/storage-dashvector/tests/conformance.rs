//! The shared vector conformance kit against the in-process fake DashVector server (one fake
//! per case).

mod common;

use std::sync::Arc;

use storage_core::VectorStorageBackend;
use storage_core::testkit::vector::{KitSpec, VectorKitHarness};

struct Harness;

#[async_trait::async_trait]
impl VectorKitHarness for Harness {
    async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
        let (_fake, backend) = common::open(spec.dimension, spec.todo_embeddings).await;
        Arc::new(backend)
    }
}

storage_core::vector_conformance_tests!(Harness);
