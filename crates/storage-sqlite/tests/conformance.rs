//! The document conformance kit against SQLite files in a temporary directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use storage_core::DocumentStorageBackend;
use storage_core::testkit::document::DocumentKitHarness;
use storage_sqlite::{SqliteBackend, SqliteConfig};

struct TempDirHarness {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl TempDirHarness {
    fn new() -> Self {
        TempDirHarness {
            dir: tempfile::tempdir().expect("temp dir"),
            next: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl DocumentKitHarness for TempDirHarness {
    async fn fresh(&self) -> Arc<dyn DocumentStorageBackend> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // A nested directory also checks that missing parents are created.
        let path = self.dir.path().join(format!("db{n}")).join("app.db");
        Arc::new(
            SqliteBackend::open(SqliteConfig::new(path))
                .await
                .expect("open sqlite"),
        )
    }
}

storage_core::document_conformance_tests!(TempDirHarness::new());
