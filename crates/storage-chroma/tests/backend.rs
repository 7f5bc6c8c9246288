//! Chroma-specific behaviour against a real server (see `common`): filter semantics the kit
//! does not reach, the original's layout and names, tenants, batching, scroll consistency.

mod common;

use std::collections::HashSet;

use futures::StreamExt;
use serde_json::json;
use storage_chroma::{ChromaBackend, ChromaConfig};
use storage_core::testkit::vector::cases::context;
use storage_core::{
    ContextType, ErrorKind, Filter, HierarchyQuery, ProcessedContext, Scope, ScrollQuery,
    SearchQuery, StorageBackend, VectorStorageBackend,
};

const DIM: usize = 8;

async fn open(tag: &str) -> Option<(ChromaBackend, ChromaConfig, common::Cleanup)> {
    let url = common::shared_url().await?;
    let (config, cleanup) = common::config(&url, DIM, tag);
    Some((
        ChromaBackend::open(config.clone()).await.expect("open"),
        config,
        cleanup,
    ))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn found(b: &ChromaBackend, f: Filter) -> (Vec<String>, Vec<String>) {
    let hits = b
        .search(
            &SearchQuery::new(vec![1.0; DIM])
                .top_k(100)
                .filter(f.clone()),
        )
        .await
        .expect("search");
    let scrolled: Vec<String> = b
        .scroll_processed_contexts(ScrollQuery {
            filter: Some(f),
            batch_size: 2,
            ..ScrollQuery::default()
        })
        .map(|c| c.expect("scroll").id)
        .collect()
        .await;
    (
        sorted(hits.into_iter().map(|h| h.context.id).collect()),
        sorted(scrolled),
    )
}

/// Every filter gives what `Filter::matches` says on the flat payload, including on records
/// that lack the field (where `$ne`, `$nin` and negated ranges must match).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_agree_with_the_reference_semantics_on_missing_fields() {
    let Some((b, _, _cleanup)) = open("flt").await else {
        return;
    };
    let mut batch = Vec::new();
    for i in 0..10u64 {
        let mut c = context(&format!("m{i}"), ContextType::Knowledge, i + 1);
        if i % 2 == 0 {
            c.properties.device_id = Some("laptop".into());
            c.metadata.insert("score".into(), json!(i));
        }
        if i % 3 == 0 {
            c.properties.time_bucket = Some(format!("2026-03-0{}", i / 3 + 1));
        }
        batch.push(c);
    }
    b.batch_upsert_processed_context(&batch)
        .await
        .expect("batch");
    let filters = [
        Filter::ne("device_id", "laptop"),
        Filter::not_in("device_id", ["laptop", "phone"]),
        Filter::gte("score", 4).not(),
        Filter::between("time_bucket", "2026-03-02", "2026-03-04"),
        Filter::between("time_bucket", "2026-03-02", "2026-03-04")
            .not()
            .and(Filter::ne("device_id", "laptop")),
        Filter::eq("id", "m3").or(Filter::eq("id", "m4")),
        Filter::In("score".into(), vec![2.into(), 4.5.into(), "x".into()]),
        Filter::gt("score", 2.5).and(Filter::lt("score", 7)),
    ];
    for f in filters {
        let expected: Vec<String> = batch
            .iter()
            .filter(|c| {
                let mut p = storage_core::payload::to_payload(c).unwrap();
                p.insert("id".into(), json!(c.id));
                f.matches(&p)
            })
            .map(|c| c.id.clone())
            .collect();
        let (searched, scrolled) = found(&b, f.clone()).await;
        assert_eq!(searched, sorted(expected.clone()), "search with {f:?}");
        assert_eq!(scrolled, sorted(expected), "scroll with {f:?}");
    }
    // A string range in a search is exact: the top hit among the matching ones, not among all.
    let hits = b
        .search(
            &SearchQuery::new(batch[9].vectorize.vector.clone().unwrap())
                .top_k(1)
                .filter(Filter::between("time_bucket", "2026-03-01", "2026-03-02")),
        )
        .await
        .expect("search");
    assert_eq!(hits.len(), 1);
    assert!(["m0", "m3"].contains(&hits[0].context.id.as_str()));
}

/// A record written in the original's layout (by its Python client) reads back, from a
/// collection named as the original names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_records_in_the_original_layout_and_names_collections_like_it() {
    let Some((b, config, _cleanup)) = open("orig").await else {
        return;
    };
    let names = b.get_collection_names().await.expect("names");
    assert_eq!(
        names,
        ["profile", "entity", "document", "event", "knowledge"]
            .map(|t| format!("{}{t}", config.collection_prefix))
    );
    let client = reqwest::Client::new();
    let base = format!(
        "{}/api/v2/tenants/default_tenant/databases/{}",
        config.url.clone().unwrap(),
        config.database
    );
    let coll: serde_json::Value = client
        .post(format!("{base}/collections"))
        .json(&json!({"name": format!("{}event", config.collection_prefix), "get_or_create": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let meta = json!({
        "title": "from python", "keywords": "[\"a\", \"b\"]", "entities": "[]",
        "context_type": "event", "confidence": 0, "importance": 3, "raw_properties": "[]",
        "create_time": "2025-05-01T08:00:00", "create_time_ts": 1746086400,
        "event_time": "2025-05-01T08:00:00", "event_time_ts": 1746086400,
        "update_time": "2025-05-01T08:00:00", "update_time_ts": 1746086400,
        "is_processed": false, "has_compression": false, "call_count": 0, "merge_count": 0,
        "duration_count": 1, "enable_merge": false, "is_happend": true,
        "hierarchy_level": 0, "children_ids": "[]", "user_id": "u1", "custom": "{\"k\": 1}"
    });
    let r = client
        .post(format!(
            "{base}/collections/{}/upsert",
            coll["id"].as_str().unwrap()
        ))
        .json(
            &json!({"ids": ["py-1"], "embeddings": [[1.0, 0, 0, 0, 0, 0, 0, 0]],
                      "documents": ["written by the original"], "metadatas": [meta]}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let c = b
        .get_processed_context("py-1", ContextType::Event, true)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(c.extracted_data.title.as_deref(), Some("from python"));
    assert_eq!(c.extracted_data.keywords, vec!["a", "b"]);
    assert_eq!(c.vectorize.text.as_deref(), Some("written by the original"));
    assert_eq!(c.metadata["custom"], json!({"k": 1}));
    assert!(
        c.properties.is_happened,
        "the original's `is_happend` is read"
    );
    assert!(!c.metadata.contains_key("is_happend"));
    assert_eq!(c.vectorize.vector.as_ref().map(Vec::len), Some(DIM));
    let hits = b
        .search(&SearchQuery::new(vec![1.0, 0., 0., 0., 0., 0., 0., 0.]).scope(Scope::user("u1")))
        .await
        .expect("search");
    assert_eq!(hits[0].context.id, "py-1");
    assert!((hits[0].score - 1.0).abs() < 1e-5);
}

/// A missing tenant and database are created; big batches are split; secrets stay hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_tenant_and_database_splits_batches_and_hides_secrets() {
    let Some(url) = common::shared_url().await else {
        return;
    };
    let (mut config, _) = common::config(&url, DIM, "ten");
    // Chroma cannot delete tenants: one test tenant (created when missing, as on every fresh
    // server), and a database of this run's own, removed whatever happens.
    config.tenant = common::TEST_TENANT.into();
    config.database = common::unique_prefix("db").trim_end_matches('_').to_owned();
    let _cleanup = common::Cleanup::database(&config);
    config.max_batch_size = Some(7);
    config.auth_token = storage_core::config::Secret::new("tok-s3cret");
    let b = ChromaBackend::open(config)
        .await
        .expect("open in a new database, maybe a new tenant");
    assert_eq!(b.batch_size(), 7);
    let debug = format!("{b:?}");
    assert!(!debug.contains("tok-s3cret"), "{debug}");
    let batch: Vec<ProcessedContext> = (0..50)
        .map(|i| context(&format!("s{i}"), ContextType::Document, i))
        .collect();
    b.batch_upsert_processed_context(&batch)
        .await
        .expect("split batch");
    assert_eq!(
        b.get_processed_context_count(ContextType::Document)
            .await
            .unwrap(),
        50
    );
    b.close().await.unwrap();
}

/// Records present from the start to the end of a scroll are yielded exactly once while
/// others are inserted and deleted meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_is_exact_under_concurrent_writes() {
    let Some((b, _, _cleanup)) = open("scr").await else {
        return;
    };
    let batch: Vec<ProcessedContext> = (0..60)
        .map(|i| context(&format!("c{i:02}"), ContextType::Event, i))
        .collect();
    b.batch_upsert_processed_context(&batch)
        .await
        .expect("batch");
    let mut stream = b.scroll_processed_contexts(ScrollQuery {
        batch_size: 10,
        ..ScrollQuery::default()
    });
    let mut seen = Vec::new();
    for _ in 0..15 {
        seen.push(stream.next().await.unwrap().unwrap().id);
    }
    let extra: Vec<ProcessedContext> = (0..30)
        .map(|i| context(&format!("a{i:02}"), ContextType::Event, 100 + i))
        .collect();
    b.batch_upsert_processed_context(&extra)
        .await
        .expect("insert meanwhile");
    let gone: Vec<String> = (50..60).map(|i| format!("c{i:02}")).collect();
    b.delete_contexts(&gone, ContextType::Event)
        .await
        .expect("delete meanwhile");
    while let Some(c) = stream.next().await {
        seen.push(c.unwrap().id);
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    for i in 0..50 {
        assert!(
            unique.contains(&format!("c{i:02}")),
            "c{i:02} present throughout"
        );
    }
}

/// Without bounds, `search_by_hierarchy` returns every record of the level, those without a
/// `time_bucket` too (the original asks Chroma for the level only); a bound excludes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hierarchy_without_bounds_keeps_records_without_a_bucket() {
    let Some((b, _, _cleanup)) = open("hier").await else {
        return;
    };
    let mut with = context("h1", ContextType::Event, 1);
    with.properties.hierarchy_level = 1;
    with.properties.time_bucket = Some("2026-02-21".into());
    let mut without = context("h2", ContextType::Event, 2);
    without.properties.hierarchy_level = 1;
    let other_level = context("h3", ContextType::Event, 3);
    b.batch_upsert_processed_context(&[with, without, other_level])
        .await
        .expect("upsert");
    let q = |start: Option<&str>| HierarchyQuery {
        context_type: ContextType::Event,
        hierarchy_level: 1,
        time_bucket_start: start.map(str::to_owned),
        time_bucket_end: None,
        user_id: None,
        top_k: 20,
    };
    let ids = |hits: Vec<storage_core::ScoredContext>| {
        hits.into_iter().map(|h| h.context.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(b.search_by_hierarchy(&q(None)).await.unwrap()),
        ["h2", "h1"],
        "by bucket, none first"
    );
    assert_eq!(
        ids(b.search_by_hierarchy(&q(Some("2026-02-01"))).await.unwrap()),
        ["h1"]
    );
}

/// With `vector_size` unset (as in the original's entries) and no collection holding a
/// vector yet, `open` asks for it, and creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_vector_size_without_vectors_is_a_clear_config_error() {
    let Some(url) = common::shared_url().await else {
        return;
    };
    let (mut config, _cleanup) = common::config(&url, 0, "novs");
    config.vector_size = 0;
    let e = ChromaBackend::open(config.clone())
        .await
        .expect_err("no size");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("'vector_size' is not set"), "{e}");
    let names = common::collection_names(&url, &config.tenant, &config.database).await;
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with(&config.collection_prefix)),
        "{names:?}"
    );
}

/// The cleanup guard removes a test's collections also when the test panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_guard_removes_collections_of_a_failing_test() {
    let Some(url) = common::shared_url().await else {
        return;
    };
    let (config, cleanup) = common::config(&url, DIM, "guard");
    let prefix = config.collection_prefix.clone();
    let (tenant, database) = (config.tenant.clone(), config.database.clone());
    let failing = tokio::spawn(async move {
        let _cleanup = cleanup;
        let b = ChromaBackend::open(config).await.expect("open");
        b.upsert_processed_context(&context("g1", ContextType::Event, 1))
            .await
            .expect("upsert");
        panic!("a failing test");
    });
    assert!(failing.await.unwrap_err().is_panic());
    let names = common::collection_names(&url, &tenant, &database).await;
    assert!(
        names.iter().all(|n| !n.starts_with(&prefix)),
        "left behind: {names:?}"
    );
}
