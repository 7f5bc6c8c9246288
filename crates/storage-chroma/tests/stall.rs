//! A server that stops answering (SIGSTOP: it keeps its port, the kernel accepts
//! connections, nothing replies): `open`, a search, an upsert and a delete each fail within
//! `ChromaConfig::request_bound` (plus slack) with `Timeout`, never hang; a timed-out upsert
//! is kept and lands once the server continues. The test runs its own `chroma run`.

mod common;

use std::time::{Duration, Instant};

use common::ChromaProcess;
use storage_chroma::ChromaBackend;
use storage_core::testkit::vector::cases::context;
use storage_core::{
    ContextType, ErrorKind, SearchQuery, StorageBackend, StorageError, VectorStorageBackend,
    WriteOutcome,
};

const DIM: usize = 8;
/// Room for a loaded machine on top of the configured bound.
const SLACK: Duration = Duration::from_secs(15);

/// Runs `f`, failing the test if it takes longer than `bound + SLACK` (a hang).
async fn bounded<T>(what: &str, bound: Duration, f: impl std::future::Future<Output = T>) -> T {
    let start = Instant::now();
    let r = tokio::time::timeout(bound + SLACK, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {:?} + {SLACK:?}", bound));
    eprintln!(
        "{what}: returned after {:?} (bound {bound:?})",
        start.elapsed()
    );
    r
}

fn assert_timeout(what: &str, e: &StorageError) {
    assert_eq!(e.kind(), ErrorKind::Timeout, "{what}: {e}");
    assert!(e.is_retryable(), "{what}: {e}");
    assert!(e.to_string().contains("chromadb"), "{what}: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_times_out_every_call_within_the_configured_bound() {
    if !common::chroma_installed() {
        common::skip(
            "the `chroma` command is not installed (pip install chromadb); this test stops its own server",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = ChromaProcess::start(dir.path(), None).await;
    // The server is this test's own, in a temp directory removed with it: no cleanup guard.
    let (mut config, _) = common::config(&server.url, DIM, "stall");
    config.timeout_secs = 1.0;
    config.connect_timeout_secs = 1.0;
    config.max_retries = 1;
    config.retry_backoff_ms = 50;
    config.max_backoff_ms = 100;
    config.close_timeout_secs = 60.0;
    let bound = config.request_bound();
    assert_eq!(bound, Duration::from_millis(2050));
    let b = ChromaBackend::open(config.clone()).await.expect("open");
    let mut first = context("s1", ContextType::Event, 1);
    first.extracted_data.title = Some("before".into());
    b.upsert_processed_context(&first)
        .await
        .expect("upsert while up");

    let stopped = server.stop();

    let e = bounded("open", bound, ChromaBackend::open(config.clone()))
        .await
        .expect_err("stalled server");
    assert_timeout("open", &e);
    assert!(e.to_string().contains("timeout_secs = 1 s"), "{e}");
    assert!(e.to_string().starts_with("chromadb open:"), "{e}");

    let e = bounded(
        "search",
        bound,
        b.search(&SearchQuery::new(vec![1.0; DIM]).top_k(3)),
    )
    .await
    .expect_err("stalled server");
    assert_timeout("search", &e);
    assert_eq!(e.outcome(), WriteOutcome::NotApplied, "a read");

    // A timed-out upsert: the request may have reached the server (outcome unknown), the
    // records are kept and re-sent; repeating is safe (upserts by id are idempotent).
    let mut second = first.clone();
    second.extracted_data.title = Some("after".into());
    let e = bounded("upsert", bound, b.upsert_processed_context(&second))
        .await
        .expect_err("stalled server");
    assert_timeout("upsert", &e);
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    assert!(e.to_string().contains("kept pending"), "{e}");
    assert!(
        e.to_string().contains("may or may not have been applied"),
        "{e}"
    );
    assert_eq!(b.pending_records(), 1);

    // A delete (it reads the existing ids first, then sends the kept upsert before it)
    // times out too, and deletes nothing.
    let e = bounded(
        "delete",
        bound * 2,
        b.delete_processed_context("s1", ContextType::Event),
    )
    .await
    .expect_err("stalled server");
    assert_timeout("delete", &e);
    assert_eq!(e.outcome(), WriteOutcome::NotApplied, "{e}");

    drop(stopped); // SIGCONT
    bounded(
        "close",
        Duration::from_secs_f64(config.close_timeout_secs),
        b.close(),
    )
    .await
    .expect("close flushes the kept upsert once the server answers");
    assert_eq!(b.pending_records(), 0);
    let reader = ChromaBackend::open(config).await.expect("reopen");
    let got = reader
        .get_processed_context("s1", ContextType::Event, false)
        .await
        .expect("get")
        .expect("still there: the delete was not applied");
    assert_eq!(got.extracted_data.title.as_deref(), Some("after"));
    reader.close().await.expect("close reader");
}
