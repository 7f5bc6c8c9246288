//! Real-data benchmark of the local Qdrant backend on `data/context-corpus` (2991 contexts,
//! 384-dim unit vectors, 60 queries with exact top-10 ground truth).
//!
//! Run with `cargo bench -p storage-qdrant`. Measures ingest throughput (batch upserts, each
//! made durable by one synced redo-log record; the first ingest also creates the collections
//! and their payload indexes), re-ingest into the existing collections, single upserts,
//! search latency p50/p99 and recall@10 (per query: its context type and, when set, its
//! user), full scroll time, reopen time and disk use; once with plain segments
//! (exact scan, the default below 10 000 KB of vectors per collection) and once after
//! `optimize()` with a low indexing threshold (HNSW). Results are printed and written to
//! `target/bench-results/qdrant-local.txt`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use storage_core::{StorageBackend, VectorStorageBackend};
use storage_qdrant::{QdrantLocalBackend, QdrantLocalConfig};

mod corpus;

use corpus::{BATCH, DIM, load, measure_search, scroll_all};

async fn run() -> String {
    let (contexts, queries) = load();

    let mut out = String::new();
    let tmp = tempfile::tempdir().expect("temp dir");
    writeln!(
        out,
        "qdrant local (qdrant-edge 0.7.0), corpus: {} contexts x {DIM} dims, {} queries",
        contexts.len(),
        queries.len()
    )
    .unwrap();

    // Ingest.
    let store = QdrantLocalBackend::open(QdrantLocalConfig::new(tmp.path(), DIM))
        .await
        .expect("open");
    let start = Instant::now();
    for batch in contexts.chunks(BATCH) {
        store
            .batch_upsert_processed_context(batch)
            .await
            .expect("upsert");
    }
    let ingest = start.elapsed().as_secs_f64();
    writeln!(
        out,
        "ingest: {:.0} contexts/s ({:.2} s, batches of {BATCH}, one synced redo record per batch)",
        contexts.len() as f64 / ingest,
        ingest
    )
    .unwrap();
    // Steady state: the same corpus again into the existing collections (overwrites).
    let start = Instant::now();
    for batch in contexts.chunks(BATCH) {
        store
            .batch_upsert_processed_context(batch)
            .await
            .expect("upsert");
    }
    let again = start.elapsed().as_secs_f64();
    writeln!(
        out,
        "re-ingest into existing collections: {:.0} contexts/s ({:.2} s)",
        contexts.len() as f64 / again,
        again
    )
    .unwrap();
    let single = Instant::now();
    for c in contexts.iter().take(100) {
        store
            .upsert_processed_context(c)
            .await
            .expect("single upsert");
    }
    writeln!(
        out,
        "single upsert (durable): {:.2} ms each",
        single.elapsed().as_secs_f64() * 10.0
    )
    .unwrap();
    writeln!(
        out,
        "disk use after ingest: {:.1} MiB allocated",
        store.disk_usage() as f64 / 1048576.0
    )
    .unwrap();

    let (p50, p99, recall) = measure_search(&store, &queries).await;
    writeln!(
        out,
        "search (plain segments, exact): p50 {p50:.3} ms, p99 {p99:.3} ms, recall@10 {recall:.4}"
    )
    .unwrap();
    let (n, ms) = scroll_all(&store).await;
    writeln!(out, "full scroll: {n} contexts in {ms:.1} ms (batch 100)").unwrap();
    store.close().await.expect("close");

    let start = Instant::now();
    let mut cfg = QdrantLocalConfig::new(tmp.path(), DIM);
    cfg.indexing_threshold_kb = Some(100);
    let store = QdrantLocalBackend::open(cfg).await.expect("reopen");
    writeln!(
        out,
        "reopen: {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    )
    .unwrap();
    let start = Instant::now();
    store.optimize().await.expect("optimize");
    writeln!(
        out,
        "optimize (HNSW above 100 KB): {:.2} s",
        start.elapsed().as_secs_f64()
    )
    .unwrap();
    let (p50, p99, recall) = measure_search(&store, &queries).await;
    writeln!(
        out,
        "search (HNSW): p50 {p50:.3} ms, p99 {p99:.3} ms, recall@10 {recall:.4}"
    )
    .unwrap();
    let (n, ms) = scroll_all(&store).await;
    writeln!(
        out,
        "full scroll after optimize: {n} contexts in {ms:.1} ms"
    )
    .unwrap();
    writeln!(
        out,
        "disk use after optimize: {:.1} MiB allocated",
        store.disk_usage() as f64 / 1048576.0
    )
    .unwrap();
    store.close().await.expect("close");
    out
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: skip the long run there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let report = rt.block_on(run());
    print!("{report}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-results");
    std::fs::create_dir_all(&dir).expect("results dir");
    std::fs::write(dir.join("qdrant-local.txt"), &report).expect("write results");
}
