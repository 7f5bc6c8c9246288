//! The shared vector conformance kit against remote mode, over real gRPC:
//!
//! * `in_process`: always, against the in-process test server (`grpc_server`, the embedded
//!   engine behind qdrant-client's generated gRPC services), one server per case;
//! * `real_server`: against the Qdrant server at `QDRANT_URL` when it is set (each case in
//!   its own collections, `octest_<pid>_<n>_` prefixed). Without it the test prints why it
//!   is skipped: CI has no Qdrant server, so it is skipped there too.
#![cfg(feature = "remote")]

mod grpc_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use storage_core::VectorStorageBackend;
use storage_core::testkit::vector::{KitSpec, VectorKitHarness};
use storage_qdrant::{QdrantRemoteBackend, QdrantRemoteConfig};

mod in_process {
    use super::*;

    /// Starts one server per backend; the servers stop when the harness is dropped.
    pub(crate) struct Harness {
        servers: Mutex<Vec<grpc_server::TestServer>>,
    }

    #[async_trait::async_trait]
    impl VectorKitHarness for Harness {
        async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
            let server = grpc_server::start(None).await;
            let config = QdrantRemoteConfig::new(server.url.clone(), spec.dimension)
                .with_todo_embeddings(spec.todo_embeddings);
            let backend = QdrantRemoteBackend::connect(config)
                .await
                .expect("connect to the in-process server");
            self.servers.lock().expect("servers").push(server);
            Arc::new(backend)
        }
    }

    pub(crate) fn harness() -> Harness {
        Harness {
            servers: Mutex::new(Vec::new()),
        }
    }

    storage_core::vector_conformance_tests!(harness());
}

mod real_server {
    use super::*;
    use storage_core::testkit::vector::cases;

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    struct Harness {
        url: String,
    }

    #[async_trait::async_trait]
    impl VectorKitHarness for Harness {
        async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let mut config = QdrantRemoteConfig::new(self.url.clone(), spec.dimension)
                .with_todo_embeddings(spec.todo_embeddings)
                .with_collection_prefix(format!("octest_{}_{n}_{nanos}_", std::process::id()));
            if let Ok(key) = std::env::var("QDRANT_API_KEY") {
                config = config.with_api_key(key);
            }
            Arc::new(
                QdrantRemoteBackend::connect(config)
                    .await
                    .expect("connect to QDRANT_URL"),
            )
        }
    }

    /// Every case of the kit, in the kit's order, against the server at `QDRANT_URL`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_against_qdrant_url() {
        let Ok(url) = std::env::var("QDRANT_URL") else {
            eprintln!(
                "skipped: QDRANT_URL is not set (a real Qdrant server, e.g. http://localhost:6333; \
                 the in-process gRPC server runs the same kit in `in_process`)"
            );
            return;
        };
        let h = Harness { url };
        cases::round_trips_every_field(&h).await;
        cases::upsert_is_idempotent(&h).await;
        cases::batch_upsert_returns_ids_in_order(&h).await;
        cases::missing_ids_are_absent_not_errors(&h).await;
        cases::get_by_ids_keeps_order_across_types(&h).await;
        cases::search_ranks_by_cosine_similarity(&h).await;
        cases::search_merges_types_and_honours_top_k_and_threshold(&h).await;
        cases::filter_equality_and_membership(&h).await;
        cases::filter_numeric_ranges(&h).await;
        cases::filter_or_and_negation(&h).await;
        cases::filter_string_range(&h).await;
        cases::filter_on_json_list_field_is_refused(&h).await;
        cases::tenant_scope_isolates(&h).await;
        cases::hierarchy_search_by_day_week_and_month(&h).await;
        cases::delete_by_source_file_respects_user(&h).await;
        cases::scroll_yields_everything_once(&h).await;
        cases::list_pages_are_disjoint_and_complete(&h).await;
        cases::counts_per_type(&h).await;
        cases::bad_input_is_refused_and_writes_nothing(&h).await;
        cases::todo_embeddings(&h).await;
        cases::collection_names(&h).await;
        cases::close_then_calls_fail(&h).await;
    }
}
