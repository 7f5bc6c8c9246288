//! The shared vector conformance kit against a real Chroma server (see `common`), one
//! collection prefix per case.

mod common;

use std::sync::Arc;

use storage_chroma::ChromaBackend;
use storage_core::VectorStorageBackend;
use storage_core::testkit::vector::{KitSpec, VectorKitHarness, cases};

struct Harness {
    url: String,
}

#[async_trait::async_trait]
impl VectorKitHarness for Harness {
    async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
        let config = common::config(&self.url, spec.dimension, "kit")
            .with_todo_embeddings(spec.todo_embeddings);
        Arc::new(ChromaBackend::open(config).await.expect("open chroma"))
    }
}

/// The kit's cases, each skipped (with a message) when no server is available. The list
/// mirrors `storage_core::vector_conformance_tests!`, which cannot skip.
macro_rules! kit {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(url) = common::shared_url().await else { return };
                cases::$case(&Harness { url }).await;
            }
        )*
    };
}

kit!(
    round_trips_every_field,
    upsert_is_idempotent,
    batch_upsert_returns_ids_in_order,
    missing_ids_are_absent_not_errors,
    get_by_ids_keeps_order_across_types,
    search_ranks_by_cosine_similarity,
    search_merges_types_and_honours_top_k_and_threshold,
    filter_equality_and_membership,
    filter_numeric_ranges,
    filter_or_and_negation,
    filter_string_range,
    filter_on_json_list_field_is_refused,
    tenant_scope_isolates,
    hierarchy_search_by_day_week_and_month,
    delete_by_source_file_respects_user,
    scroll_yields_everything_once,
    list_pages_are_disjoint_and_complete,
    counts_per_type,
    bad_input_is_refused_and_writes_nothing,
    todo_embeddings,
    collection_names,
    close_then_calls_fail,
);
