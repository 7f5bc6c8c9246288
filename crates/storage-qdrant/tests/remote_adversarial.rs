//! Adversarial tests of remote mode against the in-process gRPC server (`grpc_server`): odd
//! ids, bad vectors and payloads, filters on non-fields, huge batches, time bucket bounds,
//! failures injected in the middle of a split batch, API keys, unreachable and silent
//! servers, configuration mistakes. Every bad input must fail with a clear `InvalidInput`
//! before any request and leave the stored data as it was.
#![cfg(feature = "remote")]

mod grpc_server;

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::json;
use storage_core::model::{ContextProperties, ContextType, ProcessedContext};
use storage_core::time::parse_timestamp;
use storage_core::{
    ErrorKind, Filter, HierarchyQuery, ListQuery, Scope, ScrollQuery, SearchQuery,
    VectorStorageBackend,
};
use storage_qdrant::{QdrantRemoteBackend, QdrantRemoteConfig};
use tonic::Status;

const DIM: usize = 4;

/// Every data-path method of the server (collection management is excluded).
const DATA_METHODS: &[&str] = &["upsert", "query", "scroll", "get", "count", "delete"];

fn ctx(id: &str, t: ContextType, seed: f32) -> ProcessedContext {
    let mut c = ProcessedContext::new(t, format!("text of {id}"));
    c.id = id.to_owned();
    c.properties = ContextProperties::at(parse_timestamp("2026-02-21T09:30:00+08:00").unwrap());
    c.properties.user_id = Some("u1".into());
    c.vectorize.vector = Some(vec![1.0, seed, 0.5, -seed]);
    c
}

fn config(url: &str) -> QdrantRemoteConfig {
    let mut c = QdrantRemoteConfig::new(url, DIM);
    c.retry_backoff_ms = 1;
    c
}

async fn connect(url: &str) -> QdrantRemoteBackend {
    QdrantRemoteBackend::connect(config(url))
        .await
        .expect("connect")
}

fn data_calls(s: &grpc_server::TestServer) -> u64 {
    DATA_METHODS.iter().map(|m| s.state.calls(m)).sum()
}

/// Every id of every type, sorted, with the stored context (vector left out).
async fn snapshot(b: &QdrantRemoteBackend) -> Vec<ProcessedContext> {
    let mut all: Vec<ProcessedContext> = b
        .scroll_processed_contexts(ScrollQuery::default())
        .try_collect()
        .await
        .unwrap();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}

/// Unicode, long, UUID-looking, numeric-looking and punctuation ids all round-trip as the same
/// string through every read path; a UUID id is not taken as the point id itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_ids_round_trip_unchanged() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    let uuid_lower = "550e8400-e29b-41d4-a716-446655440000".to_owned();
    let uuid_upper = uuid_lower.to_ascii_uppercase();
    let uuid_simple = uuid_lower.replace('-', "");
    let ids: Vec<String> = vec![
        "日本語-🎉-ünïcödé".into(),
        "é".repeat(256), // 512 bytes: exactly the limit
        uuid_lower.clone(),
        uuid_upper.clone(),
        uuid_simple.clone(),
        "0".into(),
        "18446744073709551615".into(),
        "a b/c\\d\"e'f".into(),
        " leading and trailing ".into(),
        "🎉".into(),
    ];
    let contexts: Vec<ProcessedContext> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ctx(id, ContextType::Knowledge, i as f32 / 10.0))
        .collect();
    let stored = backend
        .batch_upsert_processed_context(&contexts)
        .await
        .unwrap();
    assert_eq!(stored, ids);
    assert_eq!(
        backend
            .get_processed_context_count(ContextType::Knowledge)
            .await
            .unwrap(),
        ids.len() as u64,
        "the UUID spellings are distinct contexts"
    );
    for (id, c) in ids.iter().zip(&contexts) {
        let got = backend
            .get_processed_context(id, ContextType::Knowledge, false)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id:?} not found"));
        let mut expected = c.clone();
        expected.vectorize.vector = None;
        assert_eq!(got, expected, "{id:?}");
    }
    // get_by_ids keeps the caller's order.
    let mut reversed = ids.clone();
    reversed.reverse();
    let got: Vec<String> = backend
        .get_by_ids(&reversed, None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(got, reversed);
    // Search and listing report the string ids.
    let hits = backend
        .search(&SearchQuery::new(vec![1.0, 0.0, 0.5, 0.0]).top_k(100))
        .await
        .unwrap();
    let mut hit_ids: Vec<String> = hits.into_iter().map(|h| h.context.id).collect();
    hit_ids.sort();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(hit_ids, sorted);
    let listed: Vec<String> = snapshot(&backend).await.into_iter().map(|c| c.id).collect();
    assert_eq!(listed, sorted);
    // The point id of a UUID-looking id is still its UUID v5, as in the original.
    let raw = qdrant_client::Qdrant::from_url(&server.url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    let direct = raw
        .get_points(qdrant_client::qdrant::GetPointsBuilder::new(
            "knowledge",
            vec![uuid_lower.clone().into()],
        ))
        .await
        .unwrap();
    assert!(
        direct.result.is_empty(),
        "a UUID id must not be used as the point id"
    );
    // Deleting one UUID spelling leaves the others.
    assert_eq!(
        backend
            .delete_contexts(std::slice::from_ref(&uuid_upper), ContextType::Knowledge)
            .await
            .unwrap(),
        1
    );
    assert!(
        backend
            .get_processed_context(&uuid_lower, ContextType::Knowledge, false)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        backend
            .get_processed_context(&uuid_upper, ContextType::Knowledge, false)
            .await
            .unwrap()
            .is_none()
    );
}

/// Bad ids, vectors, payloads and metadata keys: a clear `InvalidInput` naming the field and
/// the bound, no request, nothing stored changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_request_and_changes_nothing() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    let good: Vec<ProcessedContext> = (0..5)
        .map(|i| ctx(&format!("keep{i}"), ContextType::Event, i as f32))
        .collect();
    backend.batch_upsert_processed_context(&good).await.unwrap();
    let before = snapshot(&backend).await;
    let calls = data_calls(&server);

    let with_vector = |id: &str, v: Vec<f32>| {
        let mut c = ctx(id, ContextType::Event, 0.0);
        c.vectorize.vector = Some(v);
        c
    };
    let mut no_vector = ctx("keep0", ContextType::Event, 0.0);
    no_vector.vectorize.vector = None;
    let mut huge = ctx("keep1", ContextType::Event, 0.0);
    huge.vectorize.text = Some("x".repeat((1 << 20) + 10));
    let mut shadow = ctx("keep2", ContextType::Event, 0.0);
    shadow.metadata.insert("user_id".into(), json!("intruder"));
    let mut shadow_orig = ctx("keep3", ContextType::Event, 0.0);
    shadow_orig
        .metadata
        .insert("original_id".into(), json!("other"));
    let mut bad_key = ctx("keep3", ContextType::Event, 0.0);
    bad_key.metadata.insert("a b".into(), json!(1));
    let mut bad_bucket = ctx("keep0", ContextType::Event, 0.0);
    bad_bucket.properties.time_bucket = Some("2026-13-45".into());

    // (input, words the message must contain)
    let cases: Vec<(Vec<ProcessedContext>, Vec<&str>)> = vec![
        (
            vec![with_vector("keep0", vec![1.0, 2.0])],
            vec!["keep0", "2 components", "expected 4"],
        ),
        (
            vec![with_vector("keep0", vec![1.0; DIM + 1])],
            vec!["5 components", "expected 4"],
        ),
        (
            vec![with_vector("keep0", vec![1.0, f32::NAN, 0.0, 0.0])],
            vec!["[1]", "NaN", "finite"],
        ),
        (
            vec![with_vector("keep0", vec![1.0, 0.0, f32::INFINITY, 0.0])],
            vec!["[2]", "inf", "finite"],
        ),
        (
            vec![with_vector("keep0", vec![0.0, f32::NEG_INFINITY, 0.0, 0.0])],
            vec!["[1]", "-inf"],
        ),
        (
            vec![with_vector("keep0", vec![0.0; DIM])],
            vec!["zero vector"],
        ),
        (vec![no_vector], vec!["keep0", "no vector"]),
        (
            vec![ctx("", ContextType::Event, 0.0)],
            vec!["contexts[1].id", "empty"],
        ),
        (
            vec![ctx(&"x".repeat(513), ContextType::Event, 0.0)],
            vec!["513", "512"],
        ),
        (
            vec![ctx("nl\nid", ContextType::Event, 0.0)],
            vec!["control character"],
        ),
        (
            vec![
                ctx("keep0", ContextType::Event, 9.0),
                ctx("keep0", ContextType::Event, 8.0),
            ],
            vec!["keep0", "twice"],
        ),
        (vec![huge], vec!["keep1", "1048576"]),
        (vec![shadow], vec!["user_id", "collides"]),
        (vec![shadow_orig], vec!["original_id", "collides"]),
        (vec![bad_key], vec!["\"a b\""]),
        (vec![bad_bucket], vec!["time_bucket"]),
    ];
    for (batch, words) in cases {
        // A valid overwrite of a stored context rides along: it must not be applied either.
        let mut changed = ctx("keep4", ContextType::Event, 0.99);
        changed.extracted_data.title = Some("changed".into());
        let mut all = vec![changed];
        all.extend(batch);
        let e = backend
            .batch_upsert_processed_context(&all)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(!e.is_retryable(), "{e}");
        for w in words {
            assert!(e.to_string().contains(w), "{w:?} not in: {e}");
        }
    }
    assert_eq!(data_calls(&server), calls, "nothing was sent");
    assert_eq!(snapshot(&backend).await, before, "nothing changed");
    // (the snapshot itself reads: count the calls again from here)
    let calls = data_calls(&server);

    // Reads and deletes with bad ids or vectors.
    let e = backend
        .get_processed_context("", ContextType::Event, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = backend
        .get_by_ids(&["ok".into(), "y".repeat(600)], None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ids[1]"), "{e}");
    let e = backend
        .delete_contexts(&["keep0".into(), String::new()], ContextType::Event)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ids[1]"), "{e}");
    for v in [
        vec![f32::NAN; DIM],
        vec![1.0; DIM - 1],
        vec![0.0; DIM],
        vec![1.0, f32::INFINITY, 0.0, 0.0],
    ] {
        let e = backend.search(&SearchQuery::new(v)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    let e = backend.delete_by_source_file("", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(data_calls(&server), calls, "nothing was sent");
    assert_eq!(snapshot(&backend).await, before, "nothing changed");
    // An empty user id in the scope is a filter `user_id == ""` (fail closed), not "any user"
    // as the original's `if user_id:` would read it.
    let hits = backend
        .search(&SearchQuery::new(vec![1.0; DIM]).scope(Scope::user("")))
        .await
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
}

/// Filter keys that are not field names are refused before any request; well-formed keys of
/// fields no context has match nothing; JSON-encoded list fields are `Unsupported`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_on_non_fields() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    backend
        .upsert_processed_context(&ctx("a", ContextType::Event, 0.1))
        .await
        .unwrap();
    let calls = data_calls(&server);
    for key in ["", "a b", "1abc", "x;drop", "$where", "é"] {
        let f = Filter::eq(key, 1);
        let e = backend
            .get_all_processed_contexts(&ListQuery {
                filter: Some(f.clone()),
                ..ListQuery::default()
            })
            .await
            .expect_err(key);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{key:?}: {e}");
        let e = backend
            .search(&SearchQuery::new(vec![1.0; DIM]).filter(f.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{key:?}: {e}");
        let e = backend
            .scroll_processed_contexts(ScrollQuery {
                filter: Some(f),
                ..ScrollQuery::default()
            })
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{key:?}: {e}");
    }
    let e = backend
        .search(&SearchQuery::new(vec![1.0; DIM]).filter(Filter::eq("keywords", "x")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert_eq!(data_calls(&server), calls, "nothing was sent");
    // A valid name that no context has: nothing matches (and Ne matches all).
    let found = backend
        .get_all_processed_contexts(&ListQuery {
            filter: Some(Filter::eq("no_such_field", 1)),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
    let found = backend
        .get_all_processed_contexts(&ListQuery {
            filter: Some(Filter::ne("no_such_field", 1)),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.values().flatten().count(), 1);
}

/// A batch far above `upsert_batch_size` is split into requests, never refused, and payloads
/// near the 1 MiB limit split by size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_batches_are_split_by_count_and_by_size() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    let many: Vec<ProcessedContext> = (0..1000)
        .map(|i| {
            let t = if i % 2 == 0 {
                ContextType::Event
            } else {
                ContextType::Document
            };
            ctx(&format!("m{i}"), t, i as f32 / 1000.0)
        })
        .collect();
    let before = server.state.calls("upsert");
    let ids = backend.batch_upsert_processed_context(&many).await.unwrap();
    assert_eq!(ids.len(), 1000);
    // 500 per type, 256 per request: 2 requests per type.
    assert_eq!(server.state.calls("upsert"), before + 4);
    for t in [ContextType::Event, ContextType::Document] {
        assert_eq!(backend.get_processed_context_count(t).await.unwrap(), 500);
    }

    // 30 contexts of ~0.9 MiB: the count limit (256) allows one request, the size bound does
    // not (16 MiB per request).
    let big: Vec<ProcessedContext> = (0..30)
        .map(|i| {
            let mut c = ctx(&format!("big{i}"), ContextType::Knowledge, i as f32);
            c.vectorize.text = Some(format!("{i}:{}", "y".repeat(900 * 1024)));
            c
        })
        .collect();
    let before = server.state.calls("upsert");
    backend.batch_upsert_processed_context(&big).await.unwrap();
    let requests = server.state.calls("upsert") - before;
    assert!(requests >= 2, "{requests} request(s)");
    let back = backend
        .get_by_ids(
            &["big7".into(), "big29".into()],
            Some(ContextType::Knowledge),
        )
        .await
        .unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].vectorize.text, big[7].vectorize.text);
    assert_eq!(back[1].vectorize.text, big[29].vectorize.text);
}

/// Transient failures in the middle of a split batch are retried and the whole batch lands;
/// a permanent one stops the call, leaves the earlier requests written and the rest of the
/// store intact, and re-running the call completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_in_the_middle_of_a_split_batch() {
    let server = grpc_server::start(None).await;
    let mut c = config(&server.url);
    c.upsert_batch_size = 100;
    let backend = QdrantRemoteBackend::connect(c).await.unwrap();
    let old = ctx("old", ContextType::Event, 0.5);
    backend.upsert_processed_context(&old).await.unwrap();

    let batch: Vec<ProcessedContext> = (0..250)
        .map(|i| ctx(&format!("b{i:03}"), ContextType::Event, i as f32 / 250.0))
        .collect();
    // The second request times out twice, then goes through.
    let before = server.state.calls("upsert");
    server.state.fail_method_after(
        "upsert",
        1,
        vec![
            Status::deadline_exceeded("slow"),
            Status::deadline_exceeded("slow"),
        ],
    );
    backend
        .batch_upsert_processed_context(&batch)
        .await
        .unwrap();
    assert_eq!(
        server.state.calls("upsert"),
        before + 5,
        "3 requests + 2 retries"
    );
    assert_eq!(
        backend
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        251
    );

    // UNAVAILABLE mid-batch (qdrant-client also re-sends it once on its own): retried.
    let batch2: Vec<ProcessedContext> = (0..250)
        .map(|i| ctx(&format!("u{i:03}"), ContextType::Event, i as f32 / 250.0))
        .collect();
    server
        .state
        .fail_method_after("upsert", 2, vec![Status::unavailable("restarting"); 3]);
    backend
        .batch_upsert_processed_context(&batch2)
        .await
        .unwrap();
    assert_eq!(
        backend
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        501
    );

    // A permanent failure of the second request: an error, not retried; the first request's
    // points are written, the rest not; what was stored before is unchanged.
    let batch3: Vec<ProcessedContext> = (0..250)
        .map(|i| ctx(&format!("p{i:03}"), ContextType::Event, i as f32 / 250.0))
        .collect();
    let before = server.state.calls("upsert");
    server
        .state
        .fail_method_after("upsert", 1, vec![Status::failed_precondition("disk full")]);
    let e = backend
        .batch_upsert_processed_context(&batch3)
        .await
        .unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    assert!(e.to_string().contains("disk full"), "{e}");
    assert_eq!(e.operation(), "batch_upsert_processed_context");
    assert_eq!(
        server.state.calls("upsert"),
        before + 2,
        "stopped, not retried"
    );
    assert_eq!(
        backend
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        601,
        "the first request (100 points) was written"
    );
    let mut expected_old = old.clone();
    expected_old.vectorize.vector = None;
    assert_eq!(
        backend
            .get_processed_context("old", ContextType::Event, false)
            .await
            .unwrap(),
        Some(expected_old)
    );
    // Re-running the call is safe and completes it.
    backend
        .batch_upsert_processed_context(&batch3)
        .await
        .unwrap();
    assert_eq!(
        backend
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        751
    );

    // Retries running out mid-batch: retryable error saying so.
    let batch4: Vec<ProcessedContext> = (0..150)
        .map(|i| ctx(&format!("r{i:03}"), ContextType::Event, 0.3))
        .collect();
    server
        .state
        .fail_method_after("upsert", 1, vec![Status::deadline_exceeded("down"); 4]);
    let e = backend
        .batch_upsert_processed_context(&batch4)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("after 3 retries"), "{e}");
    server.state.fail_method_after("upsert", 0, vec![]);
}

/// Failures injected into reads: a scroll whose second page fails transiently still yields
/// every context exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scroll_survives_a_transient_failure_between_pages() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    let all: Vec<ProcessedContext> = (0..57)
        .map(|i| ctx(&format!("s{i}"), ContextType::Entity, i as f32 / 57.0))
        .collect();
    backend.batch_upsert_processed_context(&all).await.unwrap();
    server
        .state
        .fail_method_after("scroll", 2, vec![Status::deadline_exceeded("slow")]);
    let got: Vec<ProcessedContext> = backend
        .scroll_processed_contexts(ScrollQuery {
            context_types: Some(vec![ContextType::Entity]),
            batch_size: 10,
            ..ScrollQuery::default()
        })
        .try_collect()
        .await
        .unwrap();
    let mut ids: Vec<String> = got.into_iter().map(|c| c.id).collect();
    ids.sort();
    let mut expected: Vec<String> = all.into_iter().map(|c| c.id).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

/// `search_by_hierarchy` bounds are inclusive string bounds, exact at both ends; malformed or
/// inverted bounds fail before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_bucket_ranges_are_exact_at_the_boundaries() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    let days = [
        "2026-02-19",
        "2026-02-20",
        "2026-02-21",
        "2026-02-22",
        "2026-02-28",
        "2026-03-01",
    ];
    let mut contexts = Vec::new();
    for (i, d) in days.iter().enumerate() {
        let mut c = ctx(&format!("d{i}"), ContextType::Event, i as f32);
        c.properties.hierarchy_level = 1;
        c.properties.time_bucket = Some((*d).to_owned());
        contexts.push(c);
    }
    let mut weekly = ctx("w0", ContextType::Event, 0.2);
    weekly.properties.hierarchy_level = 2;
    weekly.properties.time_bucket = Some("2026-W08".into());
    contexts.push(weekly);
    let mut no_bucket = ctx("nb", ContextType::Event, 0.3);
    no_bucket.properties.hierarchy_level = 1;
    contexts.push(no_bucket);
    backend
        .batch_upsert_processed_context(&contexts)
        .await
        .unwrap();
    let q = |level: u8, start: Option<&str>, end: Option<&str>| HierarchyQuery {
        context_type: ContextType::Event,
        hierarchy_level: level,
        time_bucket_start: start.map(str::to_owned),
        time_bucket_end: end.map(str::to_owned),
        user_id: Some("u1".into()),
        top_k: 100,
    };
    let ids = |hits: Vec<storage_core::ScoredContext>| -> Vec<String> {
        hits.into_iter().map(|h| h.context.id).collect()
    };
    let cases: Vec<(HierarchyQuery, Vec<&str>)> = vec![
        (q(1, Some("2026-02-21"), Some("2026-02-21")), vec!["d2"]),
        (
            q(1, Some("2026-02-20"), Some("2026-02-22")),
            vec!["d1", "d2", "d3"],
        ),
        (q(1, Some("2026-02-28"), None), vec!["d4", "d5"]),
        (q(1, None, Some("2026-02-19")), vec!["d0"]),
        (q(1, Some("2026-02-23"), Some("2026-02-27")), vec![]),
        (
            q(1, None, None),
            vec!["nb", "d0", "d1", "d2", "d3", "d4", "d5"],
        ),
        (q(2, Some("2026-W08"), Some("2026-W08")), vec!["w0"]),
        (q(2, Some("2026-W09"), None), vec![]),
    ];
    for (query, expected) in cases {
        let mut got = ids(backend.search_by_hierarchy(&query).await.unwrap());
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{query:?}");
    }
    let calls = data_calls(&server);
    for (start, end, word) in [
        (Some("2026-02-22"), Some("2026-02-21"), "after"),
        (Some("2026-02-21"), Some("2026-02"), "granularit"),
        (Some("2026-13-01"), None, "time_bucket_start"),
        (None, Some("21/02/2026"), "time_bucket_end"),
        (Some("2026-W54"), None, "time_bucket_start"),
    ] {
        let e = backend
            .search_by_hierarchy(&q(1, start, end))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains(word), "{word:?} not in: {e}");
    }
    assert_eq!(data_calls(&server), calls, "nothing was sent");
}

/// A wrong or missing API key is a clear, permanent `PermissionDenied` (not retried), and the
/// keys appear in no message or `Debug` output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_mismatch_is_permission_denied_and_not_retried() {
    let server = grpc_server::start(Some("right-key-1234")).await;
    let before = server.state.calls("collection_exists");
    let mut c = config(&server.url).with_api_key("wrong-key-5678");
    c.max_retries = 5;
    let debug_config = format!("{c:?}");
    assert!(!debug_config.contains("wrong-key-5678"), "{debug_config}");
    let e = QdrantRemoteBackend::connect(c).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(e.operation(), "connect");
    assert_eq!(
        server.state.calls("collection_exists"),
        before + 1,
        "not retried"
    );
    let shown = format!("{e} | {e:?}");
    assert!(!shown.contains("wrong-key-5678"), "{shown}");
    assert!(!shown.contains("right-key-1234"), "{shown}");
    let lower = e.to_string().to_ascii_lowercase();
    assert!(
        lower.contains("api-key") || lower.contains("unauthenticated"),
        "the message should say why: {e}"
    );
    // An empty key is no key.
    let mut c = config(&server.url);
    c.api_key = Some(storage_core::config::Secret::new(""));
    let e = QdrantRemoteBackend::connect(c).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

/// Nobody listening: a retryable `Unavailable` (or `Timeout`) within the configured bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_fast_and_retryably() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = config(&format!("http://127.0.0.1:{port}"));
    c.max_retries = 2;
    c.connect_timeout = 1.0;
    c.timeout = 1.0;
    let started = Instant::now();
    let e = QdrantRemoteBackend::connect(c).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("after 2 retries"), "{e}");
    // 3 attempts of at most timeout + connect_timeout + 1 s each, plus tiny backoffs.
    assert!(took < Duration::from_secs(9), "{took:?}");
}

/// A server that accepts connections but never answers: a retryable `Timeout` within the
/// per-attempt bound, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out_within_the_configured_bound() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            keep.lock().await.push(s); // never read, never answered
        }
    });
    let mut c = config(&format!("http://127.0.0.1:{port}"));
    c.max_retries = 0;
    c.timeout = 0.5;
    c.connect_timeout = 0.5;
    let started = Instant::now();
    let e = QdrantRemoteBackend::connect(c).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Unavailable),
        "{e}"
    );
    assert!(e.is_retryable(), "{e}");
    // One attempt: at most timeout + connect_timeout + 1 s (+ scheduling slack).
    assert!(took < Duration::from_secs(4), "{took:?}");
    acceptor.abort();
}

/// A server that hangs on one method (the test server's stall hook): `connect`, `search`,
/// upserts and deletes each return a retryable `Timeout` within the per-attempt bound
/// (`timeout + connect_timeout + 1 s`) plus scheduling slack. Writes whose request was sent
/// report an unknown outcome (still retryable: they are idempotent); reads do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_calls_time_out_within_the_bound_and_writes_say_outcome_unknown() {
    use storage_core::WriteOutcome;
    let server = grpc_server::start(None).await;
    // Collections made with the default (generous) timeouts first.
    let setup = connect(&server.url).await;
    setup
        .upsert_processed_context(&ctx("kept", ContextType::Event, 0.1))
        .await
        .unwrap();
    let mut short = config(&server.url);
    short.timeout = 1.0;
    short.connect_timeout = 0.5;
    short.max_retries = 0;
    let bound = Duration::from_secs_f64(short.timeout + short.connect_timeout + 1.0);
    let slack = Duration::from_secs(3);
    let stall = Duration::from_secs(30);
    let within = |took: Duration, what: &str| {
        assert!(
            took < bound + slack,
            "{what} took {took:?}, bound {bound:?} + {slack:?}"
        );
    };

    // Opening.
    for method in ["collection_exists", "collection_info"] {
        server.state.stall_method(method, stall);
        let started = Instant::now();
        let e = QdrantRemoteBackend::connect(short.clone())
            .await
            .unwrap_err();
        within(started.elapsed(), method);
        assert_eq!(e.kind(), ErrorKind::Timeout, "{method}: {e}");
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.operation(), "connect");
        assert_eq!(e.outcome(), WriteOutcome::NotApplied, "{e}");
        server.state.stall_method(method, Duration::ZERO);
    }
    let b = QdrantRemoteBackend::connect(short.clone()).await.unwrap();

    // Search (a read: nothing to be unsure about).
    server.state.stall_method("query", stall);
    let started = Instant::now();
    let e = b
        .search(&SearchQuery::new(vec![1.0, 0.1, 0.5, -0.1]))
        .await
        .unwrap_err();
    within(started.elapsed(), "search");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    assert_eq!(e.outcome(), WriteOutcome::NotApplied, "{e}");
    server.state.stall_method("query", Duration::ZERO);

    // Upsert: the request reached the server, whose answer never came.
    server.state.stall_method("upsert", stall);
    let started = Instant::now();
    let e = b
        .upsert_processed_context(&ctx("late", ContextType::Event, 0.3))
        .await
        .unwrap_err();
    within(started.elapsed(), "upsert");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    assert!(e.is_retryable(), "an upsert by id is idempotent: {e}");
    assert!(
        e.to_string().contains("may or may not have been applied"),
        "{e}"
    );
    server.state.stall_method("upsert", Duration::ZERO);

    // With a retry, both attempts count; the outcome stays unknown.
    let mut one_retry = short.clone();
    one_retry.max_retries = 1;
    let b1 = QdrantRemoteBackend::connect(one_retry).await.unwrap();
    server.state.stall_method("upsert", stall);
    let sent = server.state.calls("upsert");
    let started = Instant::now();
    let e = b1
        .upsert_processed_context(&ctx("again", ContextType::Event, 0.4))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < 2 * bound + slack,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    assert!(e.to_string().contains("after 1 retries"), "{e}");
    assert!(server.state.calls("upsert") >= sent + 2);
    server.state.stall_method("upsert", Duration::ZERO);

    // Delete by id: the existence check is a read, the delete a write.
    server.state.stall_method("delete", stall);
    let started = Instant::now();
    let e = b
        .delete_contexts(&["kept".to_owned()], ContextType::Event)
        .await
        .unwrap_err();
    within(started.elapsed(), "delete");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    server.state.stall_method("delete", Duration::ZERO);

    // A write the server refused was not applied.
    server
        .state
        .fail_method_after("upsert", 0, vec![Status::invalid_argument("no")]);
    let e = b
        .upsert_processed_context(&ctx("refused", ContextType::Event, 0.5))
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), WriteOutcome::NotApplied, "{e}");
}

/// Retry and timeout settings are bounded: huge, NaN, negative and zero values are `Config`
/// errors naming the key and the bound (they used to reach `Duration::from_secs_f64`).
#[test]
fn duration_and_retry_settings_are_bounded() {
    let base = json!({"host": "a", "vector_size": 4});
    let cases = [
        ("timeout", json!(1e20), "at most 86400"),
        ("timeout", json!("NaN"), "at most 86400"),
        ("timeout", json!(-1), "more than 0"),
        ("timeout", json!(0), "more than 0"),
        ("connect_timeout", json!(1e20), "at most 86400"),
        ("connect_timeout", json!("NaN"), "at most 86400"),
        ("connect_timeout", json!(-0.5), "more than 0"),
        ("connect_timeout", json!(0), "more than 0"),
        ("max_retries", json!(11), "at most 10"),
        ("max_retries", json!(4_000_000_000u64), "at most 10"),
        ("retry_backoff_ms", json!(5001), "at most 5000"),
        ("retry_backoff_ms", json!(u64::MAX), "at most 5000"),
    ];
    for (key, value, bound) in cases {
        let mut v = base.clone();
        v[key] = value.clone();
        let c: QdrantRemoteConfig = serde_json::from_value(v).unwrap();
        let e = c.validate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{key}={value}: {e}");
        assert!(e.to_string().contains(&format!("'{key}'")), "{e}");
        assert!(e.to_string().contains(bound), "{bound:?} not in {e}");
    }
    for (key, value) in [
        ("timeout", json!(86_400)),
        ("max_retries", json!(10)),
        ("max_retries", json!(0)),
        ("retry_backoff_ms", json!(5000)),
        ("retry_backoff_ms", json!(0)),
    ] {
        let mut v = base.clone();
        v[key] = value;
        let c: QdrantRemoteConfig = serde_json::from_value(v).unwrap();
        c.validate().unwrap();
    }
}

/// Configuration mistakes are `Config` errors naming the key, before any connection; the
/// API key is never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mistakes_name_their_key() {
    let parse = |v: serde_json::Value| serde_json::from_value::<QdrantRemoteConfig>(v);
    // Bad ports are refused by the parser, naming nothing worse than the value.
    for bad in [
        json!({"host": "q", "grpc_port": 70000, "vector_size": 4}),
        json!({"host": "q", "grpc_port": -1, "vector_size": 4}),
        json!({"host": "q", "port": "abc", "vector_size": 4}),
    ] {
        assert!(parse(bad.clone()).is_err(), "{bad}");
    }
    let cases = [
        (json!({"vector_size": 4}), "'url' or 'host'"),
        (
            json!({"url": "http://a:6333", "host": "b", "vector_size": 4}),
            "not both",
        ),
        (json!({"url": "http://a:99999", "vector_size": 4}), "'url'"),
        (json!({"url": "grpc://a:6334", "vector_size": 4}), "scheme"),
        (json!({"url": "a:6334", "vector_size": 4}), "'url'"),
        (json!({"url": "http://a/x", "vector_size": 4}), "path"),
        (json!({"host": "http://a", "vector_size": 4}), "'host'"),
        (json!({"host": "a", "vector_size": 0}), "vector_size"),
        (
            json!({"host": "a", "vector_size": 4, "timeout": 0}),
            "timeout",
        ),
        (
            json!({"host": "a", "vector_size": 4, "timeout": -1}),
            "timeout",
        ),
        (
            json!({"host": "a", "vector_size": 4, "connect_timeout": 1e12}),
            "connect_timeout",
        ),
        (
            json!({"host": "a", "vector_size": 4, "upsert_batch_size": 0}),
            "upsert_batch_size",
        ),
        (
            json!({"host": "a", "vector_size": 4, "collection_prefix": "x/y"}),
            "collection_prefix",
        ),
        (
            json!({"host": "a", "vector_size": 4, "grpc_port": 0}),
            "grpc_port",
        ),
    ];
    for (v, word) in cases {
        let mut v = v;
        v["api_key"] = json!("hunter2-secret");
        let c = match parse(v.clone()) {
            Ok(c) => c,
            Err(e) => panic!("{v}: {e}"),
        };
        let started = Instant::now();
        let e = QdrantRemoteBackend::connect(c).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{v}: {e}");
        assert!(e.to_string().contains(word), "{word:?} not in: {e}");
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no connection tried"
        );
    }
}

/// Unknown context type names are refused where a name is parsed.
#[test]
fn unknown_context_types_are_refused() {
    let e = "nope".parse::<ContextType>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("nope"), "{e}");
    let loose: storage_core::model::JsonMap =
        serde_json::from_value(json!({"context_type": ["event", "nope"]})).unwrap();
    // A loose filter on context_type with an unknown name is still a well-formed filter (it
    // matches nothing) or a clear error; it must not panic.
    let _ = Filter::from_loose_map(&loose);
}

/// Two stores connecting at once to an empty server both succeed (one creates each
/// collection, the other finds it) and share the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connects_race_safely() {
    let server = grpc_server::start(None).await;
    let (a, b) = tokio::join!(
        QdrantRemoteBackend::connect(config(&server.url).with_todo_embeddings(true)),
        QdrantRemoteBackend::connect(config(&server.url).with_todo_embeddings(true)),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    a.upsert_processed_context(&ctx("shared", ContextType::Profile, 0.4))
        .await
        .unwrap();
    assert!(
        b.get_processed_context("shared", ContextType::Profile, false)
            .await
            .unwrap()
            .is_some()
    );
}

/// Extreme sizes: huge `top_k`, `limit`, `offset` and `batch_size` are bounded by what
/// exists; more than one request's worth of ids to delete or fetch is split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_sizes_are_bounded() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    let all: Vec<ProcessedContext> = (0..30)
        .map(|i| ctx(&format!("e{i}"), ContextType::Event, i as f32 / 30.0))
        .collect();
    backend.batch_upsert_processed_context(&all).await.unwrap();
    let hits = backend
        .search(&SearchQuery::new(vec![1.0; DIM]).top_k(usize::MAX))
        .await
        .unwrap();
    assert_eq!(hits.len(), 30);
    let listed = backend
        .get_all_processed_contexts(&ListQuery {
            limit: usize::MAX,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.values().flatten().count(), 30);
    let listed = backend
        .get_all_processed_contexts(&ListQuery {
            offset: usize::MAX,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert!(listed.is_empty());
    let scrolled: Vec<ProcessedContext> = backend
        .scroll_processed_contexts(ScrollQuery {
            batch_size: usize::MAX,
            ..ScrollQuery::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(scrolled.len(), 30);
    let e = backend
        .scroll_processed_contexts(ScrollQuery {
            batch_size: 0,
            ..ScrollQuery::default()
        })
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    // 3000 ids (with duplicates and missing ones) to fetch and delete: split requests.
    let mut ids: Vec<String> = (0..3000).map(|i| format!("e{i}")).collect();
    ids.push("e1".into());
    let got = backend
        .get_by_ids(&ids, Some(ContextType::Event))
        .await
        .unwrap();
    assert_eq!(got.len(), 31, "30 found, e1 asked twice");
    let before = server.state.calls("get");
    let deleted = backend
        .delete_contexts(&ids, ContextType::Event)
        .await
        .unwrap();
    assert_eq!(deleted, 30);
    assert!(server.state.calls("get") - before >= 3, "split by 1024 ids");
    assert_eq!(
        backend
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        0
    );
}

/// Todo embeddings: bad ids, vectors and metadata fail before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_todo_input_is_refused_before_any_request() {
    let server = grpc_server::start(None).await;
    let backend = QdrantRemoteBackend::connect(config(&server.url).with_todo_embeddings(true))
        .await
        .unwrap();
    backend
        .upsert_todo_embedding(7, "write report", &[1.0, 0.0, 0.0, 0.0], None)
        .await
        .unwrap();
    let calls = data_calls(&server);
    let shadow: storage_core::model::JsonMap =
        serde_json::from_value(json!({"content": "other"})).unwrap();
    let cases: Vec<(i64, Vec<f32>, Option<&storage_core::model::JsonMap>, &str)> = vec![
        (-1, vec![1.0; DIM], None, "todo_id"),
        (8, vec![1.0; DIM - 1], None, "expected 4"),
        (8, vec![f32::NAN, 0.0, 0.0, 1.0], None, "finite"),
        (8, vec![0.0; DIM], None, "zero"),
        (8, vec![1.0; DIM], Some(&shadow), "content"),
    ];
    for (id, v, meta, word) in cases {
        let e = backend
            .upsert_todo_embedding(id, "x", &v, meta)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains(word), "{word:?} not in: {e}");
    }
    let e = backend
        .search_similar_todos(&[f32::INFINITY, 0.0, 0.0, 0.0], 5, 0.5)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = backend
        .search_similar_todos(&[1.0; DIM], 5, f32::NAN)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = backend.delete_todo_embedding(-5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(data_calls(&server), calls, "nothing was sent");
    let found = backend
        .search_similar_todos(&[1.0, 0.0, 0.0, 0.0], 5, 0.9)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].todo_id, 7);
    assert_eq!(found[0].content, "write report");
}

/// An API key that cannot be a header value (a trailing newline from a key file, non-ASCII)
/// is a `Config` error that does not show the key, before any request. (qdrant-client itself
/// would fail every call with a message quoting the key.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_api_key_is_a_config_error_that_hides_the_key() {
    let server = grpc_server::start(Some("topsecret-value")).await;
    for key in ["topsecret-value\n", "topsecret-välue", "top\tsecret-value"] {
        let before = server.state.calls("collection_exists");
        let e = QdrantRemoteBackend::connect(config(&server.url).with_api_key(key))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("'api_key'"), "{e}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert_eq!(
            server.state.calls("collection_exists"),
            before,
            "no request"
        );
    }
}

/// Finite vectors whose norm overflows or underflows `f32` (components near `f32::MAX` or
/// subnormal): either refused as invalid input or stored so that reads and searches stay
/// finite; never a panic, a NaN score or a corrupted neighbour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_magnitude_vectors_never_give_nan() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    let normal = ctx("normal", ContextType::Event, 0.5);
    backend.upsert_processed_context(&normal).await.unwrap();
    for (id, v) in [
        ("huge", vec![3e38_f32, 3e38, 0.0, 0.0]),
        ("tiny", vec![1e-40_f32, 0.0, 1e-40, 0.0]),
    ] {
        let mut c = ctx(id, ContextType::Event, 0.0);
        c.vectorize.vector = Some(v);
        match backend.upsert_processed_context(&c).await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{id}: {e}");
                continue;
            }
        }
        let back = backend
            .get_processed_context(id, ContextType::Event, true)
            .await
            .unwrap()
            .unwrap();
        let stored = back.vectorize.vector.unwrap();
        assert!(stored.iter().all(|x| x.is_finite()), "{id}: {stored:?}");
    }
    // A query whose norm overflows f32 cannot be normalised: refused, never NaN scores.
    let e = backend
        .search(&SearchQuery::new(vec![3e38_f32, 3e38, 0.0, 0.0]).top_k(10))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    for q in [vec![1.0, 1.0, 0.0, 0.0], vec![3e17_f32, 3e17, 0.0, 0.0]] {
        let hits = backend
            .search(&SearchQuery::new(q.clone()).top_k(10))
            .await
            .unwrap();
        assert!(!hits.is_empty());
        for h in &hits {
            assert!(
                h.score.is_finite() && (-1.0..=1.0).contains(&h.score),
                "{q:?}: {} scored {}",
                h.context.id,
                h.score
            );
        }
    }
}
