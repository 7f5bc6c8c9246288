//! Search stays exact (recall@10 against brute force) after the engine's optimisers ran:
//! in the background after overwrites with the default settings (no HNSW index), and with an
//! HNSW index built on real embeddings (the corpus) and searched with the default `hnsw_ef`.
#![cfg(feature = "local")]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{ctx, normalised, vector};
use storage_core::model::ContextType;
use storage_core::{SearchQuery, StorageBackend, VectorStorageBackend};
use storage_qdrant::{QdrantLocalBackend, QdrantLocalConfig};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Exact top-k ids by brute force (score descending, then id).
fn brute_force(points: &[(String, Vec<f32>)], q: &[f32], k: usize) -> Vec<String> {
    let mut scored: Vec<_> = points
        .iter()
        .map(|(id, v)| (cosine(q, v), id.clone()))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

async fn recall_at_10(
    store: &QdrantLocalBackend,
    points: &[(String, Vec<f32>)],
    queries: &[Vec<f32>],
) -> f64 {
    let mut found = 0usize;
    for q in queries {
        let truth: HashSet<String> = brute_force(points, q, 10).into_iter().collect();
        let hits = store
            .search(&SearchQuery::new(q.clone()).top_k(10))
            .await
            .expect("search");
        found += hits
            .iter()
            .filter(|h| truth.contains(&h.context.id))
            .count();
    }
    found as f64 / (10 * queries.len()) as f64
}

/// Waits (bounded) until the background optimiser has completed `runs` runs and stopped.
async fn wait_for_background_optimizer(store: &QdrantLocalBackend, runs: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (done, running) = store.background_optimizer_state();
        if done >= runs && !running {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the background optimiser did not finish: {done} runs, running {running}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrites_optimise_in_the_background_and_search_stays_exact() {
    const DIM: usize = 32;
    const N: u64 = 1500;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = QdrantLocalConfig::new(dir.path(), DIM);
    cfg.vacuum_after_changes = 200;
    let store = QdrantLocalBackend::open(cfg.clone()).await.unwrap();

    let points: Vec<(String, Vec<f32>)> = (0..N)
        .map(|i| (format!("p{i:05}"), normalised(&vector(DIM, i))))
        .collect();
    let batch: Vec<_> = points
        .iter()
        .map(|(id, v)| ctx(id, ContextType::Event, v.clone()))
        .collect();
    for chunk in batch.chunks(100) {
        store.batch_upsert_processed_context(chunk).await.unwrap();
    }
    // Overwrite 600 of them: past `vacuum_after_changes`, so the optimiser is started, and the
    // write calls return without waiting for it.
    for chunk in batch[..600].chunks(100) {
        store.batch_upsert_processed_context(chunk).await.unwrap();
    }
    wait_for_background_optimizer(&store, 1).await;

    // Queries near stored points (cos about 0.9): the rest of each top-10 is a close call
    // among near-orthogonal vectors, which only an exact search gets right.
    let queries: Vec<Vec<f32>> = (0..40u64)
        .map(|i| {
            let target = &points[(i * 37 % N) as usize].1;
            let noise = normalised(&vector(DIM, 10_000 + i));
            normalised(
                &target
                    .iter()
                    .zip(&noise)
                    .map(|(t, n)| 0.9 * t + 0.44 * n)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let r = recall_at_10(&store, &points, &queries).await;
    assert_eq!(r, 1.0, "recall@10 after background optimisation");
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        N
    );

    store.close().await.unwrap();
    let store = QdrantLocalBackend::open(cfg).await.unwrap();
    let r = recall_at_10(&store, &points, &queries).await;
    assert_eq!(r, 1.0, "recall@10 after reopening");
    store.close().await.unwrap();
}

fn read_vectors(path: &Path, dim: usize) -> Vec<Vec<f32>> {
    std::fs::read(path)
        .expect("read vectors")
        .chunks_exact(4 * dim)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hnsw_index_on_real_embeddings_keeps_recall_with_the_default_ef() {
    const DIM: usize = 384;
    const N: usize = 1200;
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/context-corpus");
    let vectors = read_vectors(&corpus.join("vectors.f32"), DIM);
    let queries = read_vectors(&corpus.join("query_vectors.f32"), DIM);
    let points: Vec<(String, Vec<f32>)> = vectors
        .into_iter()
        .take(N)
        .enumerate()
        .map(|(i, v)| (format!("c{i:05}"), v))
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = QdrantLocalConfig::new(dir.path(), DIM);
    // 1 200 vectors of 384 dimensions are about 1.8 MB: indexed.
    cfg.indexing_threshold_kb = Some(200);
    let store = QdrantLocalBackend::open(cfg).await.unwrap();
    let batch: Vec<_> = points
        .iter()
        .map(|(id, v)| ctx(id, ContextType::Knowledge, v.clone()))
        .collect();
    for chunk in batch.chunks(200) {
        store.batch_upsert_processed_context(chunk).await.unwrap();
    }
    store.optimize().await.unwrap();
    let r = recall_at_10(&store, &points, &queries).await;
    assert!(r >= 0.99, "recall@10 with an HNSW index: {r}");
    store.close().await.unwrap();
}
