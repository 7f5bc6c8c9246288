//! Client behaviour against the fake: retries, authentication failures, batch splitting,
//! input validation before any request, and error-envelope mapping.

mod fake;

use std::time::Duration;

use fake::{FakeViking, Fault};
use storage_core::testkit::vector::cases::{context, unit_vector};
use storage_core::{
    ContextType, ErrorKind, Filter, ProcessedContext, SearchQuery, StorageBackend,
    VectorStorageBackend,
};
use storage_viking::{VikingBackend, VikingConfig};

const DIM: usize = 8;
const UPSERT: &str = "/api/vikingdb/data/upsert";
const FETCH: &str = "/api/vikingdb/data/fetch_in_collection";

async fn setup() -> (FakeViking, VikingBackend) {
    let server = FakeViking::start().await;
    let backend = VikingBackend::open(server.config(DIM)).await.expect("open");
    (server, backend)
}

async fn setup_with(edit: impl FnOnce(&mut VikingConfig)) -> (FakeViking, VikingBackend) {
    let server = FakeViking::start().await;
    let mut config = server.config(DIM);
    edit(&mut config);
    let backend = VikingBackend::open(config).await.expect("open");
    (server, backend)
}

fn batch(n: usize) -> Vec<ProcessedContext> {
    (0..n)
        .map(|i| context(&format!("c{i:04}"), ContextType::Knowledge, i as u64))
        .collect()
}

#[tokio::test]
async fn open_creates_collection_and_index_once() {
    let server = FakeViking::start().await;
    VikingBackend::open(server.config(DIM))
        .await
        .expect("first open");
    assert_eq!(server.requests("CreateVikingdbCollection"), 1);
    assert_eq!(server.requests("CreateVikingdbIndex"), 1);
    VikingBackend::open(server.config(DIM))
        .await
        .expect("second open");
    assert_eq!(
        server.requests("CreateVikingdbCollection"),
        1,
        "exists: not created again"
    );
    assert_eq!(server.requests("CreateVikingdbIndex"), 1);
    let e = VikingBackend::open(server.config(DIM + 4))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("dimension 8"), "{e}");
    let mut no_create = server.config(DIM);
    no_create.collection_name = "missing".into();
    no_create.create_if_missing = false;
    let e = VikingBackend::open(no_create).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn wrong_secret_is_a_clear_permission_error_and_not_retried() {
    let server = FakeViking::start().await;
    let mut config = server.config(DIM);
    config.secret_access_key = storage_core::config::Secret::new("not-the-secret");
    let e = VikingBackend::open(config).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.is_retryable());
    let text = e.to_string();
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(!text.contains("not-the-secret"), "secret leaked: {text}");
    assert_eq!(
        server.total_requests(),
        1,
        "authentication errors are not retried"
    );
}

#[tokio::test]
async fn batches_are_split_at_100_items() {
    let (server, b) = setup().await;
    let items = batch(250);
    let ids = b
        .batch_upsert_processed_context(&items)
        .await
        .expect("upsert");
    assert_eq!(ids.len(), 250);
    assert_eq!(server.requests(UPSERT), 3, "250 items -> 100 + 100 + 50");
    assert_eq!(server.row_count("opencontext"), 250);
    let all: Vec<String> = items.iter().map(|c| c.id.clone()).collect();
    let got = b.get_by_ids(&all, None).await.expect("get");
    assert_eq!(got.len(), 250);
    assert_eq!(server.requests(FETCH), 3, "fetches are split too");
    assert_eq!(
        b.delete_contexts(&all, ContextType::Knowledge)
            .await
            .expect("delete"),
        250
    );
    assert_eq!(server.requests("/api/vikingdb/data/delete"), 3);
    assert_eq!(server.row_count("opencontext"), 0);
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    let (server, b) = setup().await;
    let before = server.total_requests();
    let mut wrong_dim = context("d", ContextType::Event, 1);
    wrong_dim.vectorize.vector = Some(vec![1.0; DIM + 2]);
    let mut nan = context("n", ContextType::Event, 1);
    nan.vectorize.vector.as_mut().unwrap()[3] = f32::NAN;
    let mut inf = context("i", ContextType::Event, 1);
    inf.vectorize.vector.as_mut().unwrap()[0] = f32::NEG_INFINITY;
    let empty_id = context("", ContextType::Event, 1);
    for (what, bad) in [
        ("dimension", wrong_dim),
        ("NaN", nan),
        ("infinity", inf),
        ("empty id", empty_id),
    ] {
        // A large batch with one bad item at the end: nothing may be sent.
        let mut items = batch(150);
        items.push(bad);
        let e = b.batch_upsert_processed_context(&items).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
    }
    let e = b.search(&SearchQuery::new(vec![1.0; 3])).await.unwrap_err();
    assert!(e.to_string().contains("3 components, expected 8"), "{e}");
    let e = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).filter(Filter::eq("keywords", "x")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).filter(Filter::eq("user_id", 3)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(b.get_by_ids(&["".into()], None).await.is_err());
    assert!(
        b.delete_contexts(&["".into()], ContextType::Event)
            .await
            .is_err()
    );
    assert!(b.delete_by_source_file("", None).await.is_err());
    assert_eq!(
        b.upsert_todo_embedding(1, "x", &[1.0; DIM], None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        server.total_requests(),
        before,
        "no request reached the server"
    );
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_with_backoff() {
    let (server, b) = setup().await;
    server.fail_next(Fault::Status(429));
    server.fail_next(Fault::Status(500));
    b.upsert_processed_context(&context("x", ContextType::Event, 1))
        .await
        .expect("succeeds on the third attempt");
    assert_eq!(server.requests(UPSERT), 3);
    assert!(
        b.get_processed_context("x", ContextType::Event, false)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn retries_are_bounded_and_the_error_says_so() {
    let (server, b) = setup_with(|c| c.max_retries = 1).await;
    for _ in 0..3 {
        server.fail_next(Fault::Status(503));
    }
    let e = b
        .upsert_processed_context(&context("x", ContextType::Event, 1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("after 2 attempts"), "{e}");
    assert_eq!(server.requests(UPSERT), 2);
}

#[tokio::test]
async fn client_errors_are_surfaced_without_retry() {
    let (server, b) = setup().await;
    server.fail_next(Fault::Status(400));
    let e = b
        .upsert_processed_context(&context("x", ContextType::Event, 1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("InvalidParameter"), "{e}");
    assert_eq!(server.requests(UPSERT), 1);
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let (server, b) = setup_with(|c| {
        c.timeout_secs = 0.3;
        c.max_retries = 1;
    })
    .await;
    server.fail_next(Fault::Delay(Duration::from_secs(2)));
    b.upsert_processed_context(&context("x", ContextType::Event, 1))
        .await
        .expect("second attempt is fast");
    assert_eq!(server.requests(UPSERT), 2);
    server.fail_next(Fault::Delay(Duration::from_secs(2)));
    server.fail_next(Fault::Delay(Duration::from_secs(2)));
    let e = b
        .get_processed_context("x", ContextType::Event, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn error_envelope_code_maps_to_kind() {
    let (server, b) = setup().await;
    server.drop_collection("opencontext");
    let e = b
        .upsert_processed_context(&context("x", ContextType::Event, 1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("NotFound.VikingdbCollection"), "{e}");
    assert_eq!(e.backend_name(), "vikingdb");
    assert_eq!(e.operation(), "batch_upsert_processed_context");
    assert_eq!(server.requests(UPSERT), 1, "not retried");
    let e = b.health_check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn debug_output_never_shows_the_secret() {
    let (_server, b) = setup().await;
    let text = format!("{b:?}");
    assert!(!text.contains(fake::SK), "{text}");
}

/// Every filter operator end to end (translation, the wire DSL, the fake's evaluation),
/// compared with the reference semantics of `Filter::matches` on the flat payload.
#[tokio::test]
async fn filters_agree_with_the_reference_semantics() {
    use futures::TryStreamExt;
    use storage_core::ScrollQuery;
    let (_server, b) = setup().await;
    let items: Vec<ProcessedContext> = (0..30u64)
        .map(|i| {
            let mut c = context(&format!("f{i:02}"), ContextType::Event, i + 1);
            c.extracted_data.importance = (i % 11) as u8;
            c.properties.hierarchy_level = (i % 4) as u8;
            c.properties.user_id = Some(format!("u{}", i % 3));
            c.properties.is_processed = i % 2 == 0;
            c.properties.call_count = i as i64;
            c
        })
        .collect();
    b.batch_upsert_processed_context(&items)
        .await
        .expect("upsert");
    let filters = [
        Filter::between("importance", 3, 5).not(),
        Filter::ne("hierarchy_level", 2),
        Filter::not_in("hierarchy_level", [1, 3]),
        Filter::is_in("hierarchy_level", [1, 3]),
        Filter::gt("importance", 4)
            .or(Filter::eq("user_id", "u1"))
            .not(),
        Filter::eq("is_processed", true).and(Filter::lt("call_count", 20)),
        Filter::Or(vec![
            Filter::And(vec![
                Filter::gte("hierarchy_level", 2),
                Filter::eq("user_id", "u0"),
            ]),
            Filter::lte("importance", 1),
        ]),
        Filter::gt("hierarchy_level", 0.5).and(Filter::lt("hierarchy_level", 2.5)),
        Filter::eq("importance", 2.5),
        Filter::not_in("user_id", ["u0", "u2"]).not(),
    ];
    for f in filters {
        let mut expected: Vec<String> = items
            .iter()
            .filter(|c| f.matches(&storage_core::payload::to_payload(c).unwrap()))
            .map(|c| c.id.clone())
            .collect();
        expected.sort();
        let got: Vec<ProcessedContext> = b
            .scroll_processed_contexts(ScrollQuery {
                filter: Some(f.clone()),
                batch_size: 7,
                ..ScrollQuery::default()
            })
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("{f:?}: {e}"));
        let mut got: Vec<String> = got.into_iter().map(|c| c.id).collect();
        got.sort();
        assert_eq!(got, expected, "{f:?}");
    }
}

#[tokio::test]
async fn unreachable_server_is_unavailable_and_retried() {
    let server = FakeViking::start().await;
    let mut config = server.config(DIM);
    // A port nobody listens on: connection refused on every attempt.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap().to_string();
    drop(listener);
    config = config.with_endpoint("http", &dead);
    config.max_retries = 2;
    let e = VikingBackend::open(config).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("after 3 attempts"), "{e}");
}
