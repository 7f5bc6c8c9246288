//! The document conformance kit against a MySQL/MariaDB server (`MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306`): every case gets its own database, dropped afterwards.
//! Skipped with a message when no server answers, failing when `CI` is set.

mod common;

use std::sync::Arc;

use common::{Databases, with_databases};
use storage_core::DocumentStorageBackend;
use storage_core::testkit::document::{DocumentKitHarness, cases};

struct Harness(Arc<Databases>);

#[async_trait::async_trait]
impl DocumentKitHarness for Harness {
    async fn fresh(&self) -> Arc<dyn DocumentStorageBackend> {
        Arc::new(self.0.open().await)
    }
}

/// One test per case of the kit (the list of `storage_core::document_conformance_tests!`).
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod document_conformance {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    with_databases(stringify!($case), |dbs| async move {
                        cases::$case(&Harness(dbs)).await;
                    })
                    .await;
                }
            )*
        }
    };
}

conformance!(
    name_and_type,
    profile_round_trip,
    profile_upsert_is_idempotent_and_keeps_created_at,
    missing_ids_are_none_or_false,
    tenant_isolation,
    entity_round_trip_and_upsert_keeps_id,
    search_entities_matches_name_content_aliases,
    list_entities_pages_without_gaps,
    bad_input_is_rejected_and_nothing_written,
    hostile_values_are_stored_verbatim,
    vault_round_trip_filters_and_update,
    todo_round_trip_order_and_status,
    tips_round_trip_and_paging,
    conversation_lifecycle,
    message_lifecycle,
    message_thinking_sequence,
    monitoring_aggregates,
    concurrent_writers_lose_nothing,
    closed_backend_refuses_calls,
);
