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

/// One test per case of the kit (its one list, from `storage_core::for_each_document_case!`).
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod document_conformance {
            use super::*;
            $( case!($case); )*
        }
    };
}

/// One kit case as a test.
macro_rules! case {
    ($case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            with_databases(stringify!($case), |dbs| async move {
                cases::$case(&Harness(dbs)).await;
            })
            .await;
        }
    };
}

storage_core::for_each_document_case!(conformance);
