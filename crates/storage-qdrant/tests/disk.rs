//! Trap (b): the engine never truncates its write-ahead log. Disk use must stay bounded when
//! the same points are rewritten again and again, and trimming the log must not break later
//! overwrites (segments ignore operations numbered below a point's version). The redo log
//! stays below `redo_log_max_kb` between calls (checkpoints).
#![cfg(feature = "local")]

mod common;

use common::{ctx, vector};
use storage_core::model::ContextType;
use storage_core::{StorageBackend, VectorStorageBackend};
use storage_qdrant::{QdrantLocalBackend, QdrantLocalConfig};

const DIM: usize = 64;
const N: usize = 200;

fn config(dir: &std::path::Path) -> QdrantLocalConfig {
    let mut c = QdrantLocalConfig::new(dir, DIM);
    c.wal_segment_kb = 128;
    c.wal_max_kb = 512;
    c.vacuum_after_changes = 500;
    c.redo_log_max_kb = 1024;
    c
}

/// Size of the redo log; checkpoints keep it at most `redo_log_max_kb` between calls.
fn redo_log_size(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join("redo.log")).map_or(0, |m| m.len())
}

async fn write_round(store: &QdrantLocalBackend, round: i64) {
    let batch: Vec<_> = (0..N)
        .map(|i| {
            let mut c = ctx(
                &format!("d-{i}"),
                ContextType::Document,
                vector(DIM, (i as u64) * 1000 + round as u64),
            );
            c.metadata.insert("round".into(), round.into());
            c.metadata.insert("filler".into(), "x".repeat(500).into());
            c
        })
        .collect();
    store.batch_upsert_processed_context(&batch).await.unwrap();
}

async fn assert_round(store: &QdrantLocalBackend, round: i64) {
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Document)
            .await
            .unwrap(),
        N as u64
    );
    for i in [0, N / 2, N - 1] {
        let c = store
            .get_processed_context(&format!("d-{i}"), ContextType::Document, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.metadata["round"], round, "d-{i} after round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_the_same_points_keeps_disk_use_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = QdrantLocalBackend::open(config(dir.path())).await.unwrap();
    write_round(&store, 0).await;
    let after_first = store.disk_usage();
    let mut peak = after_first;
    let mut max_redo = 0;
    for round in 1..=40 {
        write_round(&store, round).await;
        assert_round(&store, round).await;
        peak = peak.max(store.disk_usage());
        let redo = redo_log_size(dir.path());
        max_redo = max_redo.max(redo);
        assert!(
            redo <= 1024 * 1024,
            "redo log is {redo} B after round {round}"
        );
        if round % 10 == 0 {
            // Reopen: the WAL is trimmed at open too, and numbering must continue.
            store.close().await.unwrap();
            store = QdrantLocalBackend::open(config(dir.path())).await.unwrap();
            assert_round(&store, round).await;
        }
    }
    // Deletes after trimming still apply.
    assert!(
        store
            .delete_processed_context("d-3", ContextType::Document)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_processed_context("d-3", ContextType::Document, false)
            .await
            .unwrap()
            .is_none()
    );
    let wal: u64 = walk_size(&dir.path().join("document").join("wal"));
    eprintln!(
        "disk after first round {after_first} B, peak {peak} B, WAL now {wal} B, \
         redo log peak {max_redo} B"
    );
    // Each round (~260 KB of records) is logged: the log grew and was checkpointed.
    assert!(max_redo > 500 * 1024, "redo log peak {max_redo} B");
    // 40 rewrites of ~200 KB of payload and vectors each would leave > 8 MB of log alone.
    assert!(wal <= 4 * 128 * 1024 + 512 * 1024, "WAL is {wal} B");
    assert!(
        peak < after_first + 2 * 1024 * 1024,
        "peak disk use {peak} B, first round {after_first} B"
    );
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum()
}
