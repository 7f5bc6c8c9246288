//! The benchmark corpus (`data/context-corpus`: contexts, 384-dim vectors, queries with exact
//! top-10 ground truth) and the measurements every Qdrant benchmark makes.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::Value as Json;
use storage_core::model::{ContextProperties, ContextType, ProcessedContext};
use storage_core::time::parse_timestamp;
use storage_core::{Scope, ScrollQuery, SearchQuery, VectorStorageBackend};

pub const DIM: usize = 384;
pub const BATCH: usize = 256;
pub const SEARCH_ROUNDS: usize = 20;

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/context-corpus")
}

pub fn read_vectors(path: &Path) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(path).expect("read vectors");
    bytes
        .chunks_exact(4 * DIM)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect()
}

pub fn read_jsonl(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .expect("read jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

pub fn s(v: &Json, k: &str) -> Option<String> {
    v.get(k).and_then(Json::as_str).map(str::to_owned)
}

pub fn to_context(v: &Json, vector: Vec<f32>) -> ProcessedContext {
    let t: ContextType = s(v, "context_type").unwrap().parse().unwrap();
    let mut c = ProcessedContext::new(t, s(v, "text").unwrap());
    c.id = s(v, "id").unwrap();
    let created = parse_timestamp(&s(v, "create_time").unwrap()).unwrap();
    c.properties = ContextProperties::at(created);
    c.properties.event_time = parse_timestamp(&s(v, "event_time").unwrap()).unwrap();
    c.properties.user_id = s(v, "user_id");
    c.properties.device_id = s(v, "device_id");
    c.properties.agent_id = s(v, "agent_id");
    c.properties.source_file_key = s(v, "source_file_key");
    c.properties.time_bucket = v.get("time_bucket").and_then(|b| s(b, "day"));
    c.extracted_data.title = s(v, "title");
    c.extracted_data.keywords = v["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    c.extracted_data.importance = v["importance"].as_u64().unwrap() as u8;
    c.vectorize.vector = Some(vector);
    c
}

pub struct Query {
    pub vector: Vec<f32>,
    pub context_type: ContextType,
    pub user_id: Option<String>,
    pub truth: Vec<String>,
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Search latency p50 / p99 (ms) over `SEARCH_ROUNDS` rounds and recall@10 (first round).
pub async fn measure_search(
    store: &dyn VectorStorageBackend,
    queries: &[Query],
) -> (f64, f64, f64) {
    let mut times = Vec::new();
    let mut recall = 0.0;
    for round in 0..SEARCH_ROUNDS {
        for q in queries {
            let mut sq = SearchQuery::new(q.vector.clone())
                .top_k(10)
                .context_types([q.context_type]);
            if let Some(u) = &q.user_id {
                sq = sq.scope(Scope::user(u.clone()));
            }
            let start = Instant::now();
            let hits = store.search(&sq).await.expect("search");
            times.push(start.elapsed());
            if round == 0 {
                let got: HashSet<&str> = hits.iter().map(|h| h.context.id.as_str()).collect();
                let hit = q
                    .truth
                    .iter()
                    .filter(|id| got.contains(id.as_str()))
                    .count();
                recall += hit as f64 / q.truth.len().max(1) as f64;
            }
        }
    }
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        recall / queries.len() as f64,
    )
}

/// Scrolls everything in pages of 100: (count, milliseconds).
pub async fn scroll_all(store: &dyn VectorStorageBackend) -> (usize, f64) {
    let start = Instant::now();
    let all: Vec<_> = store
        .scroll_processed_contexts(ScrollQuery {
            batch_size: 100,
            ..ScrollQuery::default()
        })
        .try_collect()
        .await
        .expect("scroll");
    (all.len(), start.elapsed().as_secs_f64() * 1000.0)
}

/// The corpus contexts and the queries with their ground truth.
pub fn load() -> (Vec<ProcessedContext>, Vec<Query>) {
    let dir = corpus_dir();
    let records = read_jsonl(&dir.join("contexts.jsonl"));
    let vectors = read_vectors(&dir.join("vectors.f32"));
    assert_eq!(records.len(), vectors.len());
    let contexts: Vec<ProcessedContext> = records
        .iter()
        .zip(vectors)
        .map(|(r, v)| to_context(r, v))
        .collect();
    let qs = read_jsonl(&dir.join("queries.jsonl"));
    let qv = read_vectors(&dir.join("query_vectors.f32"));
    let gt = read_jsonl(&dir.join("ground_truth.jsonl"));
    let queries: Vec<Query> = qs
        .iter()
        .zip(qv)
        .zip(&gt)
        .map(|((q, v), g)| {
            assert_eq!(q["id"], g["query_id"]);
            Query {
                vector: v,
                context_type: s(q, "context_type").unwrap().parse().unwrap(),
                user_id: s(q, "user_id"),
                truth: g["filtered"]["top10"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| s(h, "id").unwrap())
                    .collect(),
            }
        })
        .collect();
    (contexts, queries)
}
