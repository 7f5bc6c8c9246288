//! Real-data benchmark of the remote Qdrant backend on `data/context-corpus` (2991 contexts,
//! 384-dim unit vectors, 60 queries with exact top-10 ground truth).
//!
//! Run with `cargo bench -p storage-qdrant --bench qdrant_remote`. By default it runs against
//! the **in-process test server** (`tests/grpc_server`: qdrant-client's generated gRPC
//! services over the embedded engine, on loopback), so the numbers measure this backend's
//! gRPC path (encoding, round trips, waits) plus the embedded engine, not a Qdrant server
//! deployment. With `QDRANT_URL` set it runs against that server instead (in collections
//! prefixed `ocbench_<pid>_`). Measures ingest (batch upserts with `wait=true`), re-ingest,
//! single upserts, search p50/p99 and recall@10 (per query: its context type and, when set,
//! its user), a filtered count round trip and full scroll. Results are printed and written to
//! `target/bench-results/qdrant-remote.txt`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use storage_core::{StorageBackend, VectorStorageBackend};
use storage_qdrant::{QdrantRemoteBackend, QdrantRemoteConfig};

mod corpus;
#[path = "../tests/grpc_server/mod.rs"]
mod grpc_server;

use corpus::{BATCH, DIM, load, measure_search, scroll_all};

async fn run() -> String {
    let (contexts, queries) = load();
    let mut out = String::new();

    let (_server, url, target, prefix) = match std::env::var("QDRANT_URL") {
        Ok(url) => (
            None,
            url.clone(),
            format!("the Qdrant server at {url}"),
            format!("ocbench_{}_", std::process::id()),
        ),
        Err(_) => {
            let server = grpc_server::start(None).await;
            let url = server.url.clone();
            (
                Some(server),
                url,
                "the in-process gRPC test server (loopback, embedded engine behind it, exact \
                 search; not a Qdrant server deployment)"
                    .to_owned(),
                String::new(),
            )
        }
    };
    writeln!(
        out,
        "qdrant remote (qdrant-client 1.20, gRPC) against {target}\ncorpus: {} contexts x {DIM} dims, {} queries",
        contexts.len(),
        queries.len()
    )
    .unwrap();

    let start = Instant::now();
    let mut config = QdrantRemoteConfig::new(url, DIM).with_collection_prefix(prefix);
    if let Ok(key) = std::env::var("QDRANT_API_KEY") {
        config = config.with_api_key(key);
    }
    let store = QdrantRemoteBackend::connect(config).await.expect("connect");
    writeln!(
        out,
        "connect (creates 5 collections and their payload indexes): {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    )
    .unwrap();

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
        "ingest: {:.0} contexts/s ({:.2} s, batches of {BATCH}, wait=true)",
        contexts.len() as f64 / ingest,
        ingest
    )
    .unwrap();
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
        "single upsert (acknowledged): {:.2} ms each",
        single.elapsed().as_secs_f64() * 10.0
    )
    .unwrap();

    let (p50, p99, recall) = measure_search(&store, &queries).await;
    writeln!(
        out,
        "search: p50 {p50:.3} ms, p99 {p99:.3} ms, recall@10 {recall:.4}"
    )
    .unwrap();
    let start = Instant::now();
    let counts = store
        .get_all_processed_context_counts()
        .await
        .expect("counts");
    writeln!(
        out,
        "counts of all types (5 server-side counts): {} contexts in {:.2} ms",
        counts.values().sum::<u64>(),
        start.elapsed().as_secs_f64() * 1000.0
    )
    .unwrap();
    let (n, ms) = scroll_all(&store).await;
    writeln!(out, "full scroll: {n} contexts in {ms:.1} ms (batch 100)").unwrap();
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
    std::fs::write(dir.join("qdrant-remote.txt"), &report).expect("write results");
}
