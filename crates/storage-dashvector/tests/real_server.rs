//! Smoke test against a real DashVector cluster when `DASHVECTOR_ENDPOINT` and
//! `DASHVECTOR_API_KEY` are set; skipped with a message otherwise (DashVector is a cloud
//! service, so CI runs the fake-server tests instead). Uses collections prefixed
//! `octest<pid>_` and deletes them afterwards.

use std::time::{Duration, Instant};

use storage_core::testkit::vector::cases::{context, unit_vector};
use storage_core::{ContextType, SearchQuery, VectorStorageBackend};
use storage_dashvector::{DashVectorBackend, DashVectorConfig};

const DIM: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_round_trip() {
    let (Ok(endpoint), Ok(key)) = (
        std::env::var("DASHVECTOR_ENDPOINT"),
        std::env::var("DASHVECTOR_API_KEY"),
    ) else {
        println!(
            "skipped: set DASHVECTOR_ENDPOINT and DASHVECTOR_API_KEY to test a real DashVector cluster"
        );
        return;
    };
    let prefix = format!("octest{}_", std::process::id());
    let config = DashVectorConfig::new(&endpoint, &key, DIM).with_collection_prefix(&prefix);
    let b = DashVectorBackend::open(config.clone()).await.expect("open");
    let c = context("real-1", ContextType::Event, 3);
    b.upsert_processed_context(&c).await.expect("upsert");
    // DashVector is eventually consistent: poll for the write.
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        if let Some(got) = b
            .get_processed_context("real-1", ContextType::Event, false)
            .await
            .expect("get")
        {
            break got;
        }
        assert!(Instant::now() < deadline, "the upsert never became visible");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(got.id, "real-1");
    let hits = b
        .search(&SearchQuery::new(unit_vector(3, DIM)).context_types([ContextType::Event]))
        .await
        .expect("search");
    assert!(
        (hits[0].score - 1.0).abs() < 1e-3,
        "score {}",
        hits[0].score
    );
    // Clean up the test collections.
    let http = reqwest::Client::new();
    let base = if endpoint.starts_with("http") {
        endpoint.trim_end_matches('/').to_owned()
    } else {
        format!("https://{}", endpoint.trim_end_matches('/'))
    };
    for name in b.get_collection_names().await.expect("names") {
        http.delete(format!("{base}/v1/collections/{name}"))
            .header("dashvector-auth-token", &key)
            .send()
            .await
            .expect("drop test collection");
    }
}
