//! The shared vector conformance kit against a real Chroma server (see `common`), one
//! collection prefix per case.

mod common;

use std::sync::Arc;

use storage_chroma::ChromaBackend;
use storage_core::VectorStorageBackend;
use storage_core::testkit::vector::{KitSpec, VectorKitHarness, cases};

struct Harness {
    url: String,
    /// One guard per `fresh` backend: its collections go when the case ends, passed or not.
    cleanups: std::sync::Mutex<Vec<common::Cleanup>>,
}

#[async_trait::async_trait]
impl VectorKitHarness for Harness {
    async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
        let (config, cleanup) = common::config(&self.url, spec.dimension, "kit");
        self.cleanups.lock().unwrap().push(cleanup);
        let config = config.with_todo_embeddings(spec.todo_embeddings);
        Arc::new(ChromaBackend::open(config).await.expect("open chroma"))
    }
}

/// The kit's cases (the list comes from `storage_core::for_each_vector_case!`), each skipped
/// with a message when no server is available.
macro_rules! kit {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(url) = common::shared_url().await else { return };
                let harness = Harness { url, cleanups: Default::default() };
                cases::$case(&harness).await;
            }
        )*
    };
}

storage_core::for_each_vector_case!(kit);
