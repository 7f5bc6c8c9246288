//! The shared vector conformance kit against the local backend, one temp directory per case.
#![cfg(feature = "local")]

use std::sync::{Arc, Mutex};

use storage_core::VectorStorageBackend;
use storage_core::testkit::vector::{KitSpec, VectorKitHarness};
use storage_qdrant::{QdrantLocalBackend, QdrantLocalConfig};

/// Opens each backend in a fresh temp directory, kept until the harness is dropped.
struct Harness {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

#[async_trait::async_trait]
impl VectorKitHarness for Harness {
    async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = QdrantLocalConfig::new(dir.path(), spec.dimension)
            .with_todo_embeddings(spec.todo_embeddings);
        let backend = QdrantLocalBackend::open(config)
            .await
            .expect("open local qdrant");
        self.dirs.lock().expect("dirs").push(dir);
        Arc::new(backend)
    }
}

fn harness() -> Harness {
    Harness {
        dirs: Mutex::new(Vec::new()),
    }
}

storage_core::vector_conformance_tests!(harness());
