//! Benchmark of the DashVector backend on `data/context-corpus` (2991 contexts, 384-dim unit
//! vectors, 60 queries with exact top-10 ground truth), run against the in-process FAKE
//! DashVector server of the tests (`tests/common/fake.rs`), over loopback HTTP.
//!
//! What it measures is this client's cost (validation, JSON encoding, HTTP round trips,
//! decoding, the scroll cursor's extra queries) plus the fake's brute-force cosine scan; it
//! says nothing about DashVector's own server latency or its HNSW recall. Recall@10 here
//! checks that the mapping, filters and score conversion are exact (the fake is exact).
//!
//! Run with `cargo bench -p storage-dashvector`; results are printed and written to
//! `target/bench-results/storage-dashvector.txt`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::Value as Json;
use storage_core::model::{ContextProperties, ContextType, ProcessedContext};
use storage_core::time::parse_timestamp;
use storage_core::{Scope, ScrollQuery, SearchQuery, VectorStorageBackend};
use storage_dashvector::DashVectorBackend;

const DIM: usize = 384;
const SEARCH_ROUNDS: usize = 10;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/context-corpus")
}

fn read_vectors(path: &Path) -> Vec<Vec<f32>> {
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

fn read_jsonl(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .expect("read jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn s(v: &Json, k: &str) -> Option<String> {
    v.get(k).and_then(Json::as_str).map(str::to_owned)
}

fn to_context(v: &Json, vector: Vec<f32>) -> ProcessedContext {
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

struct Query {
    vector: Vec<f32>,
    context_type: ContextType,
    user_id: Option<String>,
    truth: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn measure_search(store: &DashVectorBackend, queries: &[Query]) -> (f64, f64, f64, f64) {
    let mut times = Vec::new();
    let mut recall = 0.0;
    let start = Instant::now();
    for round in 0..SEARCH_ROUNDS {
        for q in queries {
            let mut sq = SearchQuery::new(q.vector.clone())
                .top_k(10)
                .context_types([q.context_type]);
            if let Some(u) = &q.user_id {
                sq = sq.scope(Scope::user(u.clone()));
            }
            let t = Instant::now();
            let hits = store.search(&sq).await.expect("search");
            times.push(t.elapsed());
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
    let qps = times.len() as f64 / start.elapsed().as_secs_f64();
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        qps,
        recall / queries.len() as f64,
    )
}

async fn run() -> String {
    let dir = corpus_dir();
    let records = read_jsonl(&dir.join("contexts.jsonl"));
    let vectors = read_vectors(&dir.join("vectors.f32"));
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
        .map(|((q, v), g)| Query {
            vector: v,
            context_type: s(q, "context_type").unwrap().parse().unwrap(),
            user_id: s(q, "user_id"),
            truth: g["filtered"]["top10"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| s(h, "id").unwrap())
                .collect(),
        })
        .collect();

    let mut out = String::new();
    writeln!(
        out,
        "dashvector backend against the in-process FAKE server (loopback HTTP, brute-force cosine; \
         not DashVector's own performance), corpus: {} contexts x {DIM} dims, {} queries",
        contexts.len(),
        queries.len()
    )
    .unwrap();

    for batch in [256usize, 1024] {
        let (fake, store) = common::open(DIM, false).await;
        let start = Instant::now();
        for chunk in contexts.chunks(batch) {
            store
                .batch_upsert_processed_context(chunk)
                .await
                .expect("upsert");
        }
        let secs = start.elapsed().as_secs_f64();
        writeln!(
            out,
            "ingest, batches of {batch}: {:.0} contexts/s ({secs:.2} s, {} HTTP requests incl. open)",
            contexts.len() as f64 / secs,
            fake.requests()
        )
        .unwrap();
        if batch != 1024 {
            continue;
        }
        let single = Instant::now();
        for c in contexts.iter().take(100) {
            store.upsert_processed_context(c).await.expect("single");
        }
        writeln!(
            out,
            "single upsert: {:.2} ms each",
            single.elapsed().as_secs_f64() * 10.0
        )
        .unwrap();
        let (p50, p99, qps, recall) = measure_search(&store, &queries).await;
        writeln!(
            out,
            "search top-10 (type + optional user filter): p50 {p50:.3} ms, p99 {p99:.3} ms, \
             {qps:.0} queries/s sequential, recall@10 {recall:.4}"
        )
        .unwrap();
        for page in [100usize, 1000] {
            let before = fake.requests();
            let start = Instant::now();
            let all: Vec<_> = store
                .scroll_processed_contexts(ScrollQuery {
                    batch_size: page,
                    ..ScrollQuery::default()
                })
                .try_collect()
                .await
                .expect("scroll");
            writeln!(
                out,
                "full scroll, batch {page}: {} contexts in {:.1} ms, {} query requests",
                all.len(),
                start.elapsed().as_secs_f64() * 1000.0,
                fake.requests() - before
            )
            .unwrap();
        }
    }
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
    std::fs::write(dir.join("storage-dashvector.txt"), &report).expect("write results");
}
