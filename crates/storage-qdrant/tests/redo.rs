//! The redo log: replay over an already flushed store (a crash between a checkpoint's flush
//! and the log's truncation), torn tails, corruption in the middle, todo records replayed
//! while todos are disabled.
#![cfg(feature = "local")]

mod common;

use std::path::{Path, PathBuf};

use common::{ctx, vector};
use futures::TryStreamExt;
use storage_core::model::{ContextType, ProcessedContext};
use storage_core::{ErrorKind, ScrollQuery, StorageBackend, VectorStorageBackend};
use storage_qdrant::{QdrantLocalBackend, QdrantLocalConfig};

const DIM: usize = 8;

fn config(dir: &Path) -> QdrantLocalConfig {
    QdrantLocalConfig::new(dir, DIM).with_todo_embeddings(true)
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("redo.log")
}

/// Everything in the store: contexts with vectors, sorted, and the todos near a query.
async fn state(store: &QdrantLocalBackend) -> (Vec<ProcessedContext>, Vec<(i64, String)>) {
    let mut all: Vec<ProcessedContext> = store
        .scroll_processed_contexts(ScrollQuery {
            need_vector: true,
            ..ScrollQuery::default()
        })
        .try_collect()
        .await
        .unwrap();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let mut todos: Vec<(i64, String)> = store
        .search_similar_todos(&vector(DIM, 1), 100, -1.0)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.todo_id, t.content))
        .collect();
    todos.sort();
    (all, todos)
}

/// A history with overwrites, deletes by id and by source (one revived afterwards) and todos.
async fn write_history(store: &QdrantLocalBackend) {
    let mut batch = Vec::new();
    for i in 0..30u64 {
        let t = ContextType::ALL[i as usize % ContextType::ALL.len()];
        let mut c = ctx(&format!("c-{i}"), t, vector(DIM, i));
        c.properties.source_file_key = Some(format!("file-{}", i % 3));
        batch.push(c);
    }
    store.batch_upsert_processed_context(&batch).await.unwrap();
    for i in 0..10u64 {
        let t = ContextType::ALL[i as usize % ContextType::ALL.len()];
        let mut c = ctx(&format!("c-{i}"), t, vector(DIM, 100 + i));
        c.metadata.insert("round".into(), 2.into());
        c.properties.source_file_key = Some("file-1".into());
        store.upsert_processed_context(&c).await.unwrap();
    }
    assert!(
        store
            .delete_by_source_file("file-1", Some("u1"))
            .await
            .unwrap()
            > 0
    );
    // Revive one deleted context under the same source: replaying the deletion must not
    // remove it again at the end.
    let mut revived = ctx("c-1", ContextType::Entity, vector(DIM, 500));
    revived.properties.source_file_key = Some("file-1".into());
    store.upsert_processed_context(&revived).await.unwrap();
    assert!(
        store
            .delete_processed_context("c-12", ContextType::ALL[12 % ContextType::ALL.len()])
            .await
            .unwrap()
    );
    for id in 0..5 {
        store
            .upsert_todo_embedding(
                id,
                &format!("todo {id}"),
                &vector(DIM, 900 + id as u64),
                None,
            )
            .await
            .unwrap();
    }
    assert!(store.delete_todo_embedding(3).await.unwrap());
    store
        .upsert_todo_embedding(4, "todo 4, edited", &vector(DIM, 1000), None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_an_already_applied_log_gives_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = QdrantLocalBackend::open(config(dir.path())).await.unwrap();
    write_history(&store).await;
    let expected = state(&store).await;
    assert!(expected.0.iter().any(|c| c.id == "c-1"));
    assert!(!expected.0.iter().any(|c| c.id == "c-12" || c.id == "c-4"));
    assert!(expected.0.iter().any(|c| c.id == "c-15"));
    // The log as a crash between the checkpoint's flush and its truncation would leave it.
    let log = std::fs::read(log_path(dir.path())).unwrap();
    assert!(
        log.len() > 1000,
        "the history is in the log ({} B)",
        log.len()
    );
    store.close().await.unwrap();
    assert_eq!(std::fs::metadata(log_path(dir.path())).unwrap().len(), 0);

    std::fs::write(log_path(dir.path()), &log).unwrap();
    let store = QdrantLocalBackend::open(config(dir.path())).await.unwrap();
    assert_eq!(state(&store).await, expected);
    // Replay ends with a checkpoint.
    assert_eq!(std::fs::metadata(log_path(dir.path())).unwrap().len(), 0);
    store.close().await.unwrap();

    // The same log plus a torn tail (a record cut short by a crash): the tail is dropped.
    let mut torn = log.clone();
    torn.extend_from_slice(&log[..log.len().min(700)]);
    std::fs::write(log_path(dir.path()), &torn).unwrap();
    let store = QdrantLocalBackend::open(config(dir.path())).await.unwrap();
    assert_eq!(state(&store).await, expected);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_in_the_middle_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = QdrantLocalBackend::open(config(dir.path())).await.unwrap();
    write_history(&store).await;
    let log = std::fs::read(log_path(dir.path())).unwrap();
    store.close().await.unwrap();

    let mut bad = log.clone();
    bad[40] ^= 0x01; // inside the first record, which others follow
    std::fs::write(log_path(dir.path()), &bad).unwrap();
    let err = QdrantLocalBackend::open(config(dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataCorrupted, "{err}");
    // Nothing was touched: with the intact log the store opens (the lock was released).
    assert_eq!(std::fs::read(log_path(dir.path())).unwrap(), bad);
    std::fs::write(log_path(dir.path()), &log).unwrap();
    let store = QdrantLocalBackend::open(config(dir.path())).await.unwrap();
    assert!(
        store
            .get_processed_context("c-1", ContextType::Entity, false)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todo_records_are_replayed_when_todos_are_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let store = QdrantLocalBackend::open(config(dir.path())).await.unwrap();
    store
        .upsert_todo_embedding(7, "water plants", &vector(DIM, 7), None)
        .await
        .unwrap();
    let log = std::fs::read(log_path(dir.path())).unwrap();
    drop(store);
    // As if the process had died before any checkpoint.
    std::fs::write(log_path(dir.path()), &log).unwrap();
    let disabled = QdrantLocalBackend::open(QdrantLocalConfig::new(dir.path(), DIM))
        .await
        .unwrap();
    disabled.close().await.unwrap();
    assert_eq!(std::fs::metadata(log_path(dir.path())).unwrap().len(), 0);
    let store = QdrantLocalBackend::open(config(dir.path())).await.unwrap();
    let hits = store
        .search_similar_todos(&vector(DIM, 7), 5, 0.5)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].content, "water plants");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_checkpointed_when_it_exceeds_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.redo_log_max_kb = 4;
    let store = QdrantLocalBackend::open(cfg.clone()).await.unwrap();
    let mut max_seen = 0;
    for i in 0..60u64 {
        let mut c = ctx(&format!("k-{i}"), ContextType::Knowledge, vector(DIM, i));
        c.metadata.insert("filler".into(), "y".repeat(300).into());
        store.upsert_processed_context(&c).await.unwrap();
        max_seen = max_seen.max(std::fs::metadata(log_path(dir.path())).unwrap().len());
    }
    assert!(max_seen <= 4 * 1024, "redo log reached {max_seen} B");
    assert!(max_seen > 0);
    // Checkpointed data and the records since survive a drop without close.
    drop(store);
    let store = QdrantLocalBackend::open(cfg).await.unwrap();
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Knowledge)
            .await
            .unwrap(),
        60
    );
}
