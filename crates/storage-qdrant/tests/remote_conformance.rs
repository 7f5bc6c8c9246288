//! The shared vector conformance kit against remote mode, over real gRPC:
//!
//! * `in_process`: always, against the in-process test server (`grpc_server`, the embedded
//!   engine behind qdrant-client's generated gRPC services), one server per case;
//! * `real_server`: against the Qdrant server at `QDRANT_URL` when it is set. Without it the
//!   test prints why it is skipped: CI has no Qdrant server, so it is skipped there too.
//!
//! Both go through one harness, [`Prefixed`]: every backend it makes gets its own collection
//! prefix under the run's prefix (`octest_<pid>_<nanos>_<n>_`), and a [`PrefixCleanup`]
//! guard deletes every collection of the run when the harness is dropped, also when a case
//! fails. The in-process runs then check that the server holds no collection of the run, so
//! the cleanup that protects a real server is exercised by every `cargo test`.
#![cfg(feature = "remote")]

mod cleanup;
mod grpc_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cleanup::{PrefixCleanup, run_prefix};
use storage_core::VectorStorageBackend;
use storage_core::testkit::vector::{KitSpec, VectorKitHarness};
use storage_qdrant::{QdrantRemoteBackend, QdrantRemoteConfig};

/// Makes backends on one server, each under its own prefix within the run's prefix; the
/// guard removes the run's collections when dropped.
struct Prefixed {
    url: String,
    api_key: Option<String>,
    next: AtomicUsize,
    cleanup: PrefixCleanup,
}

impl Prefixed {
    fn new(url: &str, api_key: Option<String>) -> Prefixed {
        Prefixed {
            url: url.to_owned(),
            cleanup: PrefixCleanup::new(url, api_key.clone(), run_prefix()),
            api_key,
            next: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl VectorKitHarness for Prefixed {
    async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut config = QdrantRemoteConfig::new(self.url.clone(), spec.dimension)
            .with_todo_embeddings(spec.todo_embeddings)
            .with_collection_prefix(format!("{}{n}_", self.cleanup.prefix()));
        if let Some(key) = &self.api_key {
            config = config.with_api_key(key.clone());
        }
        Arc::new(
            QdrantRemoteBackend::connect(config)
                .await
                .expect("connect to the server"),
        )
    }
}

mod in_process {
    use super::*;

    /// One in-process server per case, under the shared prefixed harness. When dropped, the
    /// cleanup guard runs first (the server still answers), then the server must hold no
    /// collection of the run.
    pub(crate) struct Harness {
        kit: Option<Prefixed>,
        server: grpc_server::TestServer,
    }

    #[async_trait::async_trait]
    impl VectorKitHarness for Harness {
        async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
            self.kit.as_ref().expect("harness in use").fresh(spec).await
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            let prefix = self.kit.as_ref().map(|k| k.cleanup.prefix().to_owned());
            drop(self.kit.take());
            let left: Vec<String> = self
                .server
                .state
                .collection_names()
                .into_iter()
                .filter(|n| prefix.as_deref().is_some_and(|p| n.starts_with(p)))
                .collect();
            if !left.is_empty() && !std::thread::panicking() {
                panic!("the cleanup guard left collections behind: {left:?}");
            }
        }
    }

    pub(crate) fn harness() -> Harness {
        let server = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(grpc_server::start(None))
        });
        Harness {
            kit: Some(Prefixed::new(&server.url, None)),
            server,
        }
    }

    storage_core::vector_conformance_tests!(harness());

    /// A case that fails half-way (after its backend created collections) still leaves no
    /// collection behind: the guard runs while the test unwinds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_case_leaves_no_collections() {
        let server = grpc_server::start(None).await;
        let url = server.url.clone();
        let prefix = tokio::spawn(async move {
            let kit = Prefixed::new(&url, None);
            let prefix = kit.cleanup.prefix().to_owned();
            let _backend = kit
                .fresh(KitSpec {
                    dimension: 4,
                    todo_embeddings: true,
                })
                .await;
            let made = server_names_with(&url, &prefix).await;
            assert_eq!(made.len(), 6, "{made:?}");
            panic!("deliberate failure of {prefix}");
        })
        .await
        .unwrap_err();
        assert!(prefix.is_panic());
        let left: Vec<String> = server
            .state
            .collection_names()
            .into_iter()
            .filter(|n| n.starts_with("octest_"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(server.state.calls("delete_collection"), 6);
    }

    async fn server_names_with(url: &str, prefix: &str) -> Vec<String> {
        PrefixCleanup::new(url, None, prefix)
            .remaining()
            .await
            .expect("list")
    }
}

mod real_server {
    use super::*;
    use storage_core::testkit::vector::cases;

    /// Every case of the kit, in the kit's order, against the server at `QDRANT_URL`; the
    /// run's collections are deleted at the end, also when a case fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_against_qdrant_url() {
        let Ok(url) = std::env::var("QDRANT_URL") else {
            eprintln!(
                "skipped: QDRANT_URL is not set (a real Qdrant server, e.g. http://localhost:6333; \
                 the in-process gRPC server runs the same kit in `in_process`)"
            );
            return;
        };
        let h = Prefixed::new(&url, std::env::var("QDRANT_API_KEY").ok());
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
        let made = h.cleanup.remaining().await.expect("list collections");
        assert!(!made.is_empty(), "the run made no collections?");
        drop(h);
    }
}
