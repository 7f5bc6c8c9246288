//! Trap (a): writes are durable when the call returns, even if the process dies right after
//! (and even if the machine loses power: the child discards the unsynced part of the redo log).
//! Trap (c): a store directory can be opened once at a time.
#![cfg(feature = "local")]

mod common;

use std::process::Command;

use common::{ctx, open, vector};
use storage_core::model::ContextType;
use storage_core::{ErrorKind, StorageBackend, VectorStorageBackend};
use storage_qdrant::QdrantLocalBackend;

const CHILD_DIR: &str = "STORAGE_QDRANT_KILL_TEST_DIR";
const DIM: usize = 16;

/// The child half of the kill test: upsert, then abort without any cleanup or drop.
async fn child(dir: &str) -> ! {
    let store = open(std::path::Path::new(dir), DIM).await;
    let batch: Vec<_> = (0..50)
        .map(|i| ctx(&format!("k-{i}"), ContextType::Knowledge, vector(DIM, i)))
        .collect();
    store
        .batch_upsert_processed_context(&batch)
        .await
        .expect("batch upsert");
    let mut single = ctx("e-1", ContextType::Event, vector(DIM, 99));
    single.metadata.insert("note".into(), "written last".into());
    store
        .upsert_processed_context(&single)
        .await
        .expect("upsert");
    store
        .delete_processed_context("k-0", ContextType::Knowledge)
        .await
        .expect("delete");
    // A power loss keeps only what was synced: this fails the test if a write returned
    // before its redo record was synced. The abort then skips every flush and drop.
    store
        .discard_unsynced_redo_log()
        .expect("simulate power loss");
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_an_abort_right_after_they_return() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(&dir).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "writes_survive_an_abort_right_after_they_return",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .status()
        .expect("spawn child test process");
    assert!(
        !status.success(),
        "the child must die by abort, got {status:?}"
    );

    let store = open(dir.path(), DIM).await;
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Knowledge)
            .await
            .unwrap(),
        49
    );
    assert!(
        store
            .get_processed_context("k-0", ContextType::Knowledge, false)
            .await
            .unwrap()
            .is_none()
    );
    let k7 = store
        .get_processed_context("k-7", ContextType::Knowledge, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(k7.vectorize.vector.unwrap().len(), DIM);
    let e1 = store
        .get_processed_context("e-1", ContextType::Event, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e1.metadata["note"], "written last");

    // The reopened store keeps accepting overwrites and deletes (WAL numbering continues).
    let mut again = ctx("k-7", ContextType::Knowledge, vector(DIM, 7));
    again.metadata.insert("round".into(), 2.into());
    store.upsert_processed_context(&again).await.unwrap();
    let k7 = store
        .get_processed_context("k-7", ContextType::Knowledge, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(k7.metadata["round"], 2);
    assert!(
        store
            .delete_processed_context("k-8", ContextType::Knowledge)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Knowledge)
            .await
            .unwrap(),
        48
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_second_open_fails_with_conflict_until_the_first_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path(), DIM).await;
    first
        .upsert_processed_context(&ctx("a", ContextType::Event, vector(DIM, 1)))
        .await
        .unwrap();

    let err = QdrantLocalBackend::open(common::config(dir.path(), DIM))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("already open"), "{err}");
    // The failed open touched nothing: the first store still works.
    assert_eq!(
        first
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        1
    );

    first.close().await.unwrap();
    first.close().await.unwrap();
    let e = first
        .get_processed_context_count(ContextType::Event)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotInitialized);
    assert_eq!(
        first.health_check().await.unwrap_err().kind(),
        ErrorKind::NotInitialized
    );
    assert_eq!(
        first
            .upsert_processed_context(&ctx("b", ContextType::Event, vector(DIM, 2)))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotInitialized
    );

    let second = open(dir.path(), DIM).await;
    second.health_check().await.unwrap();
    assert_eq!(
        second
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        1
    );
    drop(second);
    // Dropping releases the lock too.
    let third = open(dir.path(), DIM).await;
    assert_eq!(
        third
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn reopening_with_another_dimension_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), DIM).await;
    store
        .upsert_processed_context(&ctx("a", ContextType::Event, vector(DIM, 1)))
        .await
        .unwrap();
    store.close().await.unwrap();
    let err = QdrantLocalBackend::open(common::config(dir.path(), DIM * 2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    // The lock was released by the failed open.
    let again = open(dir.path(), DIM).await;
    assert_eq!(
        again
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        1
    );
}
