//! Writes are never lost: while the server is down, upserts are kept in order and retried in
//! the background, `close()` flushes them, deletes wait for them. Each test runs its own
//! `chroma run` so that it can stop and restart it (needs the `chroma` command).

mod common;

use std::time::{Duration, Instant};

use common::ChromaProcess;
use storage_chroma::{ChromaBackend, ChromaConfig};
use storage_core::testkit::vector::cases::context;
use storage_core::{ContextType, ErrorKind, StorageBackend, VectorStorageBackend};

const DIM: usize = 8;

async fn own_server(dir: &std::path::Path) -> Option<ChromaProcess> {
    if !common::chroma_installed() {
        common::skip(
            "the `chroma` command is not installed (pip install chromadb); this test stops and restarts its own server",
        );
        return None;
    }
    Some(ChromaProcess::start(dir, None).await)
}

/// A quick config; the server is the test's own, in a temp directory removed with it, so
/// no cleanup guard is needed.
fn quick(url: &str) -> ChromaConfig {
    let (mut c, _) = common::config(url, DIM, "dur");
    c.max_retries = 1;
    c.retry_backoff_ms = 50;
    c.max_backoff_ms = 500;
    c.timeout_secs = 5.0;
    c.connect_timeout_secs = 1.0;
    c
}

async fn ids_present(config: &ChromaConfig, ids: &[&str]) -> Vec<String> {
    let b = ChromaBackend::open(config.clone()).await.expect("reopen");
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let found = b.get_by_ids(&ids, None).await.expect("get_by_ids");
    b.close().await.expect("close reader");
    found.into_iter().map(|c| c.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_writes_kept_while_the_server_was_down() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(server) = own_server(dir.path()).await else {
        return;
    };
    let config = quick(&server.url);
    let b = ChromaBackend::open(config.clone()).await.expect("open");
    b.upsert_processed_context(&context("a", ContextType::Event, 1))
        .await
        .expect("upsert while up");

    server.kill().await;
    let batch = vec![
        context("b1", ContextType::Event, 2),
        context("b2", ContextType::Knowledge, 3),
        context("b3", ContextType::Event, 4),
    ];
    let e = b
        .batch_upsert_processed_context(&batch)
        .await
        .expect_err("server is down");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("kept pending"), "{e}");
    assert_eq!(b.pending_records(), 3);
    let e = b
        .upsert_processed_context(&context("c", ContextType::Event, 5))
        .await
        .expect_err("still down");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        b.pending_records(),
        4,
        "later writes queue behind earlier ones"
    );
    let e = b
        .delete_processed_context("a", ContextType::Event)
        .await
        .expect_err("deletes wait for pending writes");
    assert_eq!(e.kind(), ErrorKind::Unavailable);

    let _server = ChromaProcess::start(dir.path(), Some(server.port)).await;
    b.close().await.expect("close flushes the pending writes");
    assert_eq!(b.pending_records(), 0);
    assert_eq!(
        ids_present(&config, &["a", "b1", "b2", "b3", "c"]).await,
        vec!["a", "b1", "b2", "b3", "c"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_retry_lands_pending_writes_and_keeps_their_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(server) = own_server(dir.path()).await else {
        return;
    };
    let config = quick(&server.url);
    let b = ChromaBackend::open(config.clone()).await.expect("open");
    server.kill().await;
    let mut first = context("x", ContextType::Document, 1);
    first.extracted_data.title = Some("first".into());
    let mut second = first.clone();
    second.extracted_data.title = Some("second".into());
    assert!(b.upsert_processed_context(&first).await.is_err());
    assert!(b.upsert_processed_context(&second).await.is_err());
    assert_eq!(b.pending_records(), 2);

    let _server = ChromaProcess::start(dir.path(), Some(server.port)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.pending_records() > 0 {
        assert!(
            Instant::now() < deadline,
            "background retry did not land the writes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = b
        .get_processed_context("x", ContextType::Document, false)
        .await
        .expect("get")
        .expect("written by the background retry");
    assert_eq!(
        got.extracted_data.title.as_deref(),
        Some("second"),
        "order kept"
    );
    b.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reports_what_it_cannot_flush_and_stays_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(server) = own_server(dir.path()).await else {
        return;
    };
    let mut config = quick(&server.url);
    config.close_timeout_secs = 1.0;
    let b = ChromaBackend::open(config.clone()).await.expect("open");
    server.kill().await;
    assert!(
        b.upsert_processed_context(&context("y", ContextType::Event, 1))
            .await
            .is_err()
    );
    let e = b.close().await.expect_err("cannot flush while down");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("1 records are still pending"), "{e}");
    assert_eq!(b.pending_records(), 1, "nothing dropped");

    let _server = ChromaProcess::start(dir.path(), Some(server.port)).await;
    b.health_check()
        .await
        .expect("still open after a failed close");
    b.close().await.expect("second close flushes");
    assert_eq!(ids_present(&config, &["y"]).await, vec!["y"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_fails_clearly_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = quick(&format!("http://127.0.0.1:{port}"));
    config.max_retries = 0;
    let e = ChromaBackend::open(config)
        .await
        .expect_err("nothing listens");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().starts_with("chromadb open:"), "{e}");
}
