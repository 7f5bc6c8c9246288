//! Scale benchmark of the embedded default (local Qdrant) on the workload of the speed issue:
//! 384-dimensional random unit vectors, 10 users, 10 chunks per source file, batches of 100,
//! 200 queries at cosine about 0.9 to a stored vector. For each size N (default 10 000 and
//! 100 000; `SCALE_N=1000,10000` to choose):
//!
//! 1. first ingest: contexts/s and the latency of each batch call (p50, p99, max);
//! 2. recall@10 against brute force, unfiltered and with a `user_id` scope, and latency;
//! 3. re-upsert of 8 000 existing contexts (N/10 when smaller): contexts/s and batch latency,
//!    which is where the engine's optimisers are triggered;
//! 4. searches while the background optimiser runs, then recall once it has finished;
//! 5. close, reopen time, recall after reopening.
//!
//! Run with `cargo bench -p storage-qdrant --bench qdrant_scale`; results are printed and
//! written to `target/bench-results/qdrant-scale.txt`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use storage_core::model::{ContextProperties, ContextType, ProcessedContext};
use storage_core::{Scope, SearchQuery, StorageBackend, VectorStorageBackend};
use storage_qdrant::{QdrantLocalBackend, QdrantLocalConfig};

const DIM: usize = 384;
const USERS: usize = 10;
const BATCH: usize = 100;
const QUERIES: usize = 200;

/// xorshift64*: deterministic and fast.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Approximately normal (sum of uniforms).
    fn gauss(&mut self) -> f32 {
        let mut s = 0.0;
        for _ in 0..4 {
            s += (self.next() >> 11) as f32 / (1u64 << 53) as f32;
        }
        s - 2.0
    }
    fn unit(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..DIM).map(|_| self.gauss()).collect();
        normalise(v)
    }
}

fn normalise(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn context(i: usize, vector: Vec<f32>) -> ProcessedContext {
    let mut c = ProcessedContext::new(ContextType::Document, format!("chunk {i}"));
    c.id = format!("ctx-{i:07}");
    c.properties = ContextProperties::at(storage_core::time::now());
    c.properties.user_id = Some(format!("user-{}", i % USERS));
    c.properties.source_file_key = Some(format!("user-{}:file-{}", i % USERS, i / 10));
    c.vectorize.vector = Some(vector);
    c
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn lat(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        percentile(&v, 1.0)
    )
}

struct Query {
    vector: Vec<f32>,
    user: String,
    truth_all: Vec<usize>,
    truth_user: Vec<usize>,
}

fn top10(vectors: &[Vec<f32>], q: &[f32], keep: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(11);
    for (i, v) in vectors.iter().enumerate() {
        if !keep(i) {
            continue;
        }
        let s: f32 = v.iter().zip(q).map(|(a, b)| a * b).sum();
        if best.len() < 10 || s > best[best.len() - 1].0 {
            best.push((s, i));
            best.sort_by(|a, b| b.0.total_cmp(&a.0));
            best.truncate(10);
        }
    }
    best.into_iter().map(|(_, i)| i).collect()
}

async fn recall(store: &QdrantLocalBackend, queries: &[Query]) -> (f64, f64, Vec<Duration>) {
    let (mut all, mut user) = (0usize, 0usize);
    let mut times = Vec::new();
    for q in queries {
        let t = Instant::now();
        let hits = store
            .search(&SearchQuery::new(q.vector.clone()).top_k(10))
            .await
            .expect("search");
        times.push(t.elapsed());
        all += hits
            .iter()
            .filter(|h| {
                q.truth_all
                    .iter()
                    .any(|i| h.context.id == format!("ctx-{i:07}"))
            })
            .count();
        let t = Instant::now();
        let hits = store
            .search(
                &SearchQuery::new(q.vector.clone())
                    .top_k(10)
                    .scope(Scope::user(q.user.clone())),
            )
            .await
            .expect("search");
        times.push(t.elapsed());
        user += hits
            .iter()
            .filter(|h| {
                q.truth_user
                    .iter()
                    .any(|i| h.context.id == format!("ctx-{i:07}"))
            })
            .count();
    }
    let n = (10 * queries.len()) as f64;
    (all as f64 / n, user as f64 / n, times)
}

async fn run(n: usize, out: &mut String) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ n as u64);
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| rng.unit()).collect();
    let queries: Vec<Query> = (0..QUERIES)
        .map(|k| {
            let target = (k * 7919) % n;
            let noise = rng.unit();
            let v = normalise(
                vectors[target]
                    .iter()
                    .zip(&noise)
                    .map(|(t, e)| 0.9 * t + 0.436 * e)
                    .collect(),
            );
            let user = target % USERS;
            Query {
                truth_all: top10(&vectors, &v, |_| true),
                truth_user: top10(&vectors, &v, |i| i % USERS == user),
                user: format!("user-{user}"),
                vector: v,
            }
        })
        .collect();

    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = QdrantLocalConfig::new(dir.path(), DIM);
    let store = QdrantLocalBackend::open(cfg.clone()).await.expect("open");
    writeln!(out, "\n## N = {n}").unwrap();

    let mut batch_times = Vec::new();
    let start = Instant::now();
    for (b, chunk) in vectors.chunks(BATCH).enumerate() {
        let batch: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| context(b * BATCH + j, v.clone()))
            .collect();
        let t = Instant::now();
        store
            .batch_upsert_processed_context(&batch)
            .await
            .expect("upsert");
        batch_times.push(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    writeln!(
        out,
        "first ingest: {:.0} contexts/s ({secs:.1} s); batch call {}",
        n as f64 / secs,
        lat(batch_times)
    )
    .unwrap();

    let (ra, ru, times) = recall(&store, &queries).await;
    writeln!(
        out,
        "after ingest: recall@10 {ra:.4} unfiltered, {ru:.4} user-scoped; search {}",
        lat(times)
    )
    .unwrap();

    let again = 8000.min(n / 10);
    let mut batch_times = Vec::new();
    let start = Instant::now();
    for b in 0..again / BATCH {
        let batch: Vec<_> = (0..BATCH)
            .map(|j| {
                let i = (b * BATCH + j) * 7 % n;
                context(i, vectors[i].clone())
            })
            .collect();
        let t = Instant::now();
        store
            .batch_upsert_processed_context(&batch)
            .await
            .expect("upsert");
        batch_times.push(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    writeln!(
        out,
        "re-upsert of {again}: {:.0} contexts/s ({secs:.1} s); batch call {}",
        again as f64 / secs,
        lat(batch_times)
    )
    .unwrap();

    let mut during = Vec::new();
    let wait = Instant::now();
    while store.background_optimizer_state().1 {
        let (_, _, t) = recall(&store, &queries[..20]).await;
        during.extend(t);
    }
    let (runs, _) = store.background_optimizer_state();
    writeln!(
        out,
        "background optimiser: {runs} run(s), finished {:.1} s after the last write; {} searches meanwhile: {}",
        wait.elapsed().as_secs_f64(),
        during.len(),
        if during.is_empty() { "-".to_owned() } else { lat(during) }
    )
    .unwrap();
    let (ra, ru, times) = recall(&store, &queries).await;
    writeln!(
        out,
        "after optimisation: recall@10 {ra:.4} unfiltered, {ru:.4} user-scoped; search {}",
        lat(times)
    )
    .unwrap();

    store.close().await.expect("close");
    let t = Instant::now();
    let store = QdrantLocalBackend::open(cfg).await.expect("reopen");
    let reopen = t.elapsed().as_secs_f64() * 1000.0;
    let (ra, ru, _) = recall(&store, &queries).await;
    writeln!(
        out,
        "reopen: {reopen:.0} ms; recall@10 {ra:.4} unfiltered, {ru:.4} user-scoped; disk {:.1} MiB",
        store.disk_usage() as f64 / (1 << 20) as f64
    )
    .unwrap();
    store.close().await.expect("close");
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SCALE_N")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut out = format!(
        "qdrant local scale benchmark: {DIM}-d random unit vectors, {USERS} users, batches of {BATCH}, {QUERIES} queries at cos ~0.9\n"
    );
    for n in sizes {
        rt.block_on(run(n, &mut out));
        println!("{out}");
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-results");
    std::fs::create_dir_all(&dir).expect("results dir");
    std::fs::write(dir.join("qdrant-scale.txt"), &out).expect("write results");
}
