//! Real-data benchmark of the Chroma backend on `data/context-corpus` (2991 contexts,
//! 384-dim unit vectors, 60 queries with exact top-10 ground truth).
//!
//! Run with `cargo bench -p storage-chroma`. Uses the server at `CHROMA_URL`, else starts
//! `chroma run` on a free port in a temp directory. Measures ingest throughput (batches of
//! 256 into fresh collections, then into the existing ones), single upserts, search latency
//! p50/p99 with recall@10 (per query: its context type and, when set, its user), and a full
//! scroll. Results are printed and written to `target/bench-results/storage-chroma.txt`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::Value as Json;
use storage_chroma::{ChromaBackend, ChromaConfig};
use storage_core::model::{ContextProperties, ContextType, ProcessedContext};
use storage_core::time::parse_timestamp;
use storage_core::{Scope, ScrollQuery, SearchQuery, StorageBackend, VectorStorageBackend};

const DIM: usize = 384;
const BATCH: usize = 256;
const SEARCH_ROUNDS: usize = 10;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/context-corpus")
}

fn read_vectors(path: &Path) -> Vec<Vec<f32>> {
    std::fs::read(path)
        .expect("read vectors")
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
    c.properties = ContextProperties::at(parse_timestamp(&s(v, "create_time").unwrap()).unwrap());
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

async fn run(url: &str) -> String {
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
    let version = reqwest::get(format!("{url}/api/v2/version"))
        .await
        .expect("version")
        .text()
        .await
        .unwrap_or_default();
    writeln!(
        out,
        "chroma server {version} (HTTP API v2, localhost), corpus: {} contexts x {DIM} dims, {} queries",
        contexts.len(),
        queries.len()
    )
    .unwrap();

    let mut config = ChromaConfig::new(url, DIM).with_prefix(common::unique_prefix("bench"));
    config.database = "opencontext_bench".into();
    // The bench's collections go when it ends, also on a long-lived CHROMA_URL server.
    let _cleanup = common::Cleanup::collections(&config);
    let start = Instant::now();
    let store = ChromaBackend::open(config.clone()).await.expect("open");
    writeln!(
        out,
        "open (creates 5 collections): {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    )
    .unwrap();
    for label in ["ingest into new collections", "re-ingest (overwrites)"] {
        let start = Instant::now();
        for batch in contexts.chunks(BATCH) {
            store
                .batch_upsert_processed_context(batch)
                .await
                .expect("upsert");
        }
        let secs = start.elapsed().as_secs_f64();
        writeln!(
            out,
            "{label}: {:.0} contexts/s ({secs:.2} s, batches of {BATCH})",
            contexts.len() as f64 / secs
        )
        .unwrap();
    }
    let start = Instant::now();
    for c in contexts.iter().take(100) {
        store.upsert_processed_context(c).await.expect("single");
    }
    writeln!(
        out,
        "single upsert: {:.2} ms each",
        start.elapsed().as_secs_f64() * 10.0
    )
    .unwrap();

    for (label, filtered) in [
        ("type + user filter", true),
        ("no filter, all 5 types", false),
    ] {
        let mut times = Vec::new();
        let mut recall = 0.0;
        for round in 0..SEARCH_ROUNDS {
            for q in &queries {
                let mut sq = SearchQuery::new(q.vector.clone()).top_k(10);
                if filtered {
                    sq = sq.context_types([q.context_type]);
                    if let Some(u) = &q.user_id {
                        sq = sq.scope(Scope::user(u.clone()));
                    }
                }
                let start = Instant::now();
                let hits = store.search(&sq).await.expect("search");
                times.push(start.elapsed());
                if round == 0 && filtered {
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
        let recall = if filtered {
            format!(", recall@10 {:.4}", recall / queries.len() as f64)
        } else {
            String::new()
        };
        writeln!(
            out,
            "search ({label}): p50 {:.3} ms, p99 {:.3} ms{recall}",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        )
        .unwrap();
    }
    let start = Instant::now();
    let all: Vec<ProcessedContext> = store
        .scroll_processed_contexts(ScrollQuery::default())
        .try_collect()
        .await
        .expect("scroll");
    writeln!(
        out,
        "full scroll: {} contexts in {:.1} ms (batch 100)",
        all.len(),
        start.elapsed().as_secs_f64() * 1000.0
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
    let report = rt.block_on(async {
        let url = common::shared_url().await?;
        Some(run(&url).await)
    });
    let Some(report) = report else { return };
    print!("{report}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-results");
    std::fs::create_dir_all(&dir).expect("results dir");
    std::fs::write(dir.join("storage-chroma.txt"), &report).expect("write results");
}
