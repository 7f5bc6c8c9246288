//! Remote mode over real gRPC against the in-process test server (`grpc_server`): what the
//! conformance kit does not see (collections and payload indexes on the server, ids in the
//! original's layout, retries, API key, errors, batching, filter semantics).
#![cfg(feature = "remote")]

mod grpc_server;

use std::collections::BTreeMap;

use qdrant_client::Qdrant;
use qdrant_client::qdrant::{GetPointsBuilder, PointStruct, UpsertPointsBuilder};
use serde_json::json;
use storage_core::model::{ContextProperties, ContextType, ProcessedContext};
use storage_core::time::parse_timestamp;
use storage_core::{
    ErrorKind, Filter, ListQuery, Scope, SearchQuery, StorageBackend, VectorStorageBackend,
};
use storage_qdrant::{QdrantRemoteBackend, QdrantRemoteConfig};
use tonic::Status;

const DIM: usize = 4;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_are_created_with_their_payload_indexes() {
    let server = grpc_server::start(None).await;
    let backend = QdrantRemoteBackend::connect(config(&server.url).with_todo_embeddings(true))
        .await
        .unwrap();
    let mut expected_names: Vec<String> = ContextType::ALL
        .iter()
        .map(|t| t.as_str().to_owned())
        .chain(["todo".to_owned()])
        .collect();
    expected_names.sort();
    assert_eq!(server.state.collection_names(), expected_names);
    use qdrant_client::qdrant::PayloadSchemaType as P;
    let expected: BTreeMap<String, P> = [
        ("user_id", P::Keyword),
        ("device_id", P::Keyword),
        ("agent_id", P::Keyword),
        ("context_type", P::Keyword),
        ("hierarchy_level", P::Integer),
        ("time_bucket", P::Keyword),
        ("source_file_key", P::Keyword),
        ("create_time_ts", P::Integer),
        ("event_time_ts", P::Integer),
        ("update_time_ts", P::Integer),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for t in ContextType::ALL {
        assert_eq!(server.state.indexes(t.as_str()), expected, "{t:?}");
    }
    assert_eq!(
        server.state.indexes("todo").into_keys().collect::<Vec<_>>(),
        ["todo_id"]
    );
    // The backend reads them back from the server.
    let reported = backend.payload_indexes("event").await.unwrap();
    assert_eq!(reported.len(), expected.len());
    assert!(reported.contains(&("hierarchy_level".into(), "integer".into())));
    assert_eq!(
        backend.payload_indexes("nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Reconnecting finds everything in place: no create calls.
    let creates = server.state.calls("create_collection");
    let indexes = server.state.calls("create_field_index");
    connect(&server.url).await;
    assert_eq!(server.state.calls("create_collection"), creates);
    assert_eq!(server.state.calls("create_field_index"), indexes);

    // Another dimension on the same collections is a configuration error.
    let e = QdrantRemoteBackend::connect(QdrantRemoteConfig::new(&server.url, DIM + 1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("vector_size"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixed_stores_share_a_server_without_mixing() {
    let server = grpc_server::start(None).await;
    let a = QdrantRemoteBackend::connect(config(&server.url).with_collection_prefix("a_"))
        .await
        .unwrap();
    let b = QdrantRemoteBackend::connect(config(&server.url).with_collection_prefix("b_"))
        .await
        .unwrap();
    a.upsert_processed_context(&ctx("x", ContextType::Event, 0.1))
        .await
        .unwrap();
    assert_eq!(
        a.get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        0
    );
    assert!(
        a.get_collection_names()
            .await
            .unwrap()
            .contains(&"a_event".to_owned())
    );
}

/// Points are keyed by UUID v5 of the id (DNS namespace) with `original_id` in the payload,
/// so points written by the original (Python) read back, and ours read in the original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_payloads_follow_the_original_layout() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    backend
        .upsert_processed_context(&ctx("ctx-1", ContextType::Knowledge, 0.2))
        .await
        .unwrap();
    let raw = Qdrant::from_url(&server.url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    let uuid = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, b"ctx-1").to_string();
    let got = raw
        .get_points(
            GetPointsBuilder::new("knowledge", vec![uuid.clone().into()]).with_payload(true),
        )
        .await
        .unwrap();
    assert_eq!(got.result.len(), 1);
    let payload = &got.result[0].payload;
    assert_eq!(
        payload["original_id"].as_str().map(String::as_str),
        Some("ctx-1")
    );
    assert_eq!(payload["user_id"].as_str().map(String::as_str), Some("u1"));
    assert!(payload["create_time_ts"].as_integer().is_some());

    // A point as the original writes it: uuid5 id, flattened payload, `original_id`.
    let mut theirs = ctx("py-7", ContextType::Event, 0.3);
    theirs.metadata.insert("project".into(), json!("alpha"));
    let mut p = storage_core::payload::to_payload(&theirs).unwrap();
    p.insert("original_id".into(), json!("py-7"));
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, b"py-7").to_string();
    raw.upsert_points(
        UpsertPointsBuilder::new(
            "event",
            vec![PointStruct::new(
                id,
                vec![1.0, 0.3, 0.5, -0.3],
                qdrant_client::Payload::from(p),
            )],
        )
        .wait(true),
    )
    .await
    .unwrap();
    let back = backend
        .get_processed_context("py-7", ContextType::Event, false)
        .await
        .unwrap()
        .expect("written by the original");
    // Vectors come back normalised (cosine); everything else as written.
    theirs.vectorize.vector = None;
    assert_eq!(back, theirs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_permanent_ones_are_not() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    // qdrant-client itself re-sends a call once on a fresh connection after UNAVAILABLE
    // (and INTERNAL, CANCELLED, UNKNOWN); DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED are
    // retried by us only, so they make the count of our attempts exact.
    let before = server.state.calls("count");
    server.state.fail_next(vec![
        Status::deadline_exceeded("slow"),
        Status::resource_exhausted("busy"),
    ]);
    assert_eq!(
        backend
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        0
    );
    assert_eq!(server.state.calls("count"), before + 3, "two retries");
    server.state.fail_next(vec![
        Status::unavailable("restarting"),
        Status::unavailable("restarting"),
        Status::unavailable("restarting"),
    ]);
    assert_eq!(
        backend
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        0
    );

    let before = server.state.calls("count");
    server
        .state
        .fail_next(vec![Status::invalid_argument("Wrong input: nope")]);
    let e = backend
        .get_processed_context_count(ContextType::Event)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!e.is_retryable());
    assert_eq!(e.backend_name(), "qdrant-remote");
    assert_eq!(e.operation(), "get_processed_context_count");
    assert_eq!(server.state.calls("count"), before + 1, "not retried");

    // Retries run out: the last error is returned, still marked retryable.
    let mut c = config(&server.url);
    c.max_retries = 1;
    let few = QdrantRemoteBackend::connect(c).await.unwrap();
    let before = server.state.calls("count");
    server.state.fail_next(vec![
        Status::deadline_exceeded("down"),
        Status::deadline_exceeded("down"),
        Status::deadline_exceeded("down"),
    ]);
    let e = few
        .get_processed_context_count(ContextType::Event)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.is_retryable());
    assert!(e.to_string().contains("after 1 retries"), "{e}");
    assert_eq!(server.state.calls("count"), before + 2);
    server.state.fail_next(vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_is_sent_and_never_printed() {
    let server = grpc_server::start(Some("s3cr3t-key")).await;
    let e = QdrantRemoteBackend::connect(config(&server.url))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let e = QdrantRemoteBackend::connect(config(&server.url).with_api_key("wrong"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(!e.to_string().contains("wrong"), "{e}");
    let backend = QdrantRemoteBackend::connect(config(&server.url).with_api_key("s3cr3t-key"))
        .await
        .unwrap();
    backend.health_check().await.unwrap();
    let debug = format!("{backend:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("***"), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_and_retryable() {
    // A port nobody listens on: bind, note it, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = config(&format!("http://127.0.0.1:{port}"));
    c.max_retries = 1;
    c.connect_timeout = 1.0;
    let e = QdrantRemoteBackend::connect(c).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.operation(), "connect");
}

/// Invalid input fails before any request; oversized batches are split, not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_never_reaches_the_server_and_big_batches_are_split() {
    let server = grpc_server::start(None).await;
    let mut c = config(&server.url);
    c.upsert_batch_size = 100;
    let backend = QdrantRemoteBackend::connect(c).await.unwrap();
    let calls = |s: &grpc_server::TestServer| {
        ["upsert", "query", "scroll", "get", "count", "delete"]
            .iter()
            .map(|m| s.state.calls(m))
            .sum::<u64>()
    };
    let before = calls(&server);
    let mut short = ctx("a", ContextType::Event, 0.1);
    short.vectorize.vector = Some(vec![1.0]);
    let mut nan = ctx("b", ContextType::Event, 0.1);
    nan.vectorize.vector = Some(vec![1.0, f32::NAN, 0.0, 0.0]);
    for bad in [short, nan, ctx("", ContextType::Event, 0.1)] {
        let e = backend
            .batch_upsert_processed_context(&[ctx("ok", ContextType::Event, 0.1), bad])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    let e = backend
        .search(&SearchQuery::new(vec![1.0; DIM + 1]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("dimension") || e.to_string().contains(&DIM.to_string()),
        "{e}"
    );
    let e = backend
        .delete_contexts(&["x".into(), String::new()], ContextType::Event)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ids[1]"), "{e}");
    assert_eq!(calls(&server), before, "nothing was sent");

    let many: Vec<ProcessedContext> = (0..250)
        .map(|i| ctx(&format!("c{i}"), ContextType::Document, i as f32 / 250.0))
        .collect();
    let before = server.state.calls("upsert");
    let ids = backend.batch_upsert_processed_context(&many).await.unwrap();
    assert_eq!(ids.len(), 250);
    assert_eq!(server.state.calls("upsert"), before + 3, "100 + 100 + 50");
    assert_eq!(
        backend
            .get_processed_context_count(ContextType::Document)
            .await
            .unwrap(),
        250
    );
}

/// Every translated filter selects, on the server, exactly the contexts whose payload
/// `Filter::matches` (the reference semantics), through list, count-free scroll and search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_filters_agree_with_the_reference_semantics() {
    use futures::TryStreamExt;
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    let meta = [
        json!({"s": "a", "n": 1, "f": 0.5, "b": true, "a.b": "dot"}),
        json!({"s": "b", "n": 2, "f": 1.5, "b": false}),
        json!({"s": "c", "n": 3, "b": true}),
        json!({"n": 10, "f": -2.0}),
        json!({"s": "a", "n": -4, "f": 3.0, "b": false}),
    ];
    let buckets = [
        Some("2026-02-21"),
        Some("2026-02-22"),
        None,
        Some("2026-03-01"),
        Some("2026-02-01"),
    ];
    let mut contexts = Vec::new();
    for (i, m) in meta.iter().enumerate() {
        let mut c = ctx(&format!("r{i}"), ContextType::Event, i as f32);
        for (k, v) in m.as_object().unwrap() {
            c.metadata.insert(k.clone(), v.clone());
        }
        c.properties.time_bucket = buckets[i].map(str::to_owned);
        contexts.push(c);
    }
    backend
        .batch_upsert_processed_context(&contexts)
        .await
        .unwrap();
    let payloads: Vec<_> = contexts
        .iter()
        .map(|c| storage_core::payload::to_payload(c).unwrap())
        .collect();
    let filters = vec![
        Filter::eq("s", "a"),
        Filter::eq("n", 2),
        Filter::eq("f", 1.5),
        Filter::eq("b", true),
        Filter::eq("a.b", "dot"),
        Filter::eq("missing", 1),
        Filter::ne("s", "a"),
        Filter::ne("b", false),
        Filter::is_in("s", ["a", "c"]),
        Filter::is_in("n", [1, 10]),
        Filter::In("n".into(), vec![3.into(), 1.0.into()]),
        Filter::is_in("s", Vec::<String>::new()),
        Filter::not_in("s", ["a"]),
        Filter::not_in("n", [1, 2, 3]),
        Filter::gte("n", 2),
        Filter::lt("f", 1.0),
        Filter::between("n", -4, 2),
        Filter::gt("n", 1.5),
        Filter::eq("n", 2.0),
        Filter::eq("s", 1),
        Filter::eq("s", "a").and(Filter::eq("b", true)),
        Filter::eq("s", "a").or(Filter::eq("n", 10)),
        Filter::Or(vec![]),
        Filter::And(vec![]),
        Filter::eq("s", "a").not(),
        Filter::eq("s", "a")
            .or(Filter::gte("n", 3))
            .not()
            .and(Filter::ne("b", true)),
        // String ranges: checked in process, exactly.
        Filter::between("time_bucket", "2026-02-01", "2026-02-21"),
        Filter::gt("time_bucket", "2026-02-21").and(Filter::ne("s", "zz")),
        Filter::lt("time_bucket", "2026-03").or(Filter::eq("n", 3)),
    ];
    for f in filters {
        let mut expected: Vec<String> = (0..payloads.len())
            .filter(|i| f.matches(&payloads[*i]))
            .map(|i| format!("r{i}"))
            .collect();
        expected.sort();
        let listed = backend
            .get_all_processed_contexts(&ListQuery {
                filter: Some(f.clone()),
                ..ListQuery::default()
            })
            .await
            .unwrap();
        let mut got: Vec<String> = listed.values().flatten().map(|c| c.id.clone()).collect();
        got.sort();
        assert_eq!(got, expected, "list with {f:?}");
        let scrolled: Vec<ProcessedContext> = backend
            .scroll_processed_contexts(storage_core::ScrollQuery {
                filter: Some(f.clone()),
                batch_size: 2,
                ..storage_core::ScrollQuery::default()
            })
            .try_collect()
            .await
            .unwrap();
        let mut got: Vec<String> = scrolled.into_iter().map(|c| c.id).collect();
        got.sort();
        assert_eq!(got, expected, "scroll with {f:?}");
        let hits = backend
            .search(
                &SearchQuery::new(vec![1.0, 0.0, 0.0, 0.0])
                    .top_k(10)
                    .filter(f.clone())
                    .scope(Scope::user("u1")),
            )
            .await
            .unwrap();
        let mut got: Vec<String> = hits.into_iter().map(|h| h.context.id).collect();
        got.sort();
        assert_eq!(got, expected, "search with {f:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_local_and_final() {
    let server = grpc_server::start(None).await;
    let backend = connect(&server.url).await;
    backend.close().await.unwrap();
    assert_eq!(
        backend.health_check().await.unwrap_err().kind(),
        ErrorKind::NotInitialized
    );
}

/// A collection that does not fit (here `event` under Dot distance, another size for
/// `knowledge`) is found before anything is created: the `Config` error leaves the server
/// exactly as it was, with no half-made `profile`, `entity` or `document` collections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misfit_collection_is_refused_before_any_collection_is_created() {
    use qdrant_client::qdrant::{CreateCollectionBuilder, Distance, VectorParamsBuilder};
    let server = grpc_server::start(None).await;
    let raw = Qdrant::from_url(&server.url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    for (name, size, distance, word) in [
        (
            "p_event",
            DIM as u64,
            Distance::Dot,
            "uses distance Dot, this backend needs Cosine",
        ),
        (
            "q_knowledge",
            DIM as u64 + 1,
            Distance::Cosine,
            "holds 5-dimensional vectors",
        ),
    ] {
        raw.create_collection(
            CreateCollectionBuilder::new(name)
                .vectors_config(VectorParamsBuilder::new(size, distance)),
        )
        .await
        .unwrap();
        let before = server.state.collection_names();
        let created = server.state.calls("create_collection");
        let prefix = &name[..2];
        for todo in [false, true] {
            let e = QdrantRemoteBackend::connect(
                config(&server.url)
                    .with_collection_prefix(prefix)
                    .with_todo_embeddings(todo),
            )
            .await
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert!(e.to_string().contains(word), "{e}");
            assert!(e.to_string().contains(name), "{e}");
            assert_eq!(server.state.collection_names(), before);
            assert_eq!(server.state.calls("create_collection"), created);
            assert_eq!(server.state.calls("create_field_index"), 0);
        }
    }
}
