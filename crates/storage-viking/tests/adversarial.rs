//! Adversarial tests (review): hostile values and keys, sizes at and over the documented
//! bounds, invalid vectors, filters on non-fields and type mismatches, batch splitting,
//! server failures in the middle of a batch, timeouts, concurrent upserts of one id, and the
//! YAML configuration shape of the README read the way the umbrella's registry reads it.
//!
//! Every bad input must give a clear error naming the field or the bound, before any request,
//! and must never lose or corrupt what is stored.

mod fake;

use std::time::Duration;

use fake::{FakeViking, Fault};
use futures::StreamExt;
use serde_json::json;
use storage_core::testkit::vector::cases::{context, unit_vector};
use storage_core::validate::{MAX_ID_LEN, MAX_PAYLOAD_BYTES};
use storage_core::{
    ContextType, ErrorKind, Filter, ListQuery, ProcessedContext, Scope, ScrollQuery, SearchQuery,
    StorageError, VectorStorageBackend,
};
use storage_viking::{VikingBackend, VikingConfig};

const DIM: usize = 8;
const UPSERT: &str = "/api/vikingdb/data/upsert";

async fn setup_with(edit: impl FnOnce(&mut VikingConfig)) -> (FakeViking, VikingBackend) {
    let server = FakeViking::start().await;
    let mut config = server.config(DIM);
    edit(&mut config);
    let backend = VikingBackend::open(config).await.expect("open");
    (server, backend)
}

async fn setup() -> (FakeViking, VikingBackend) {
    setup_with(|_| {}).await
}

fn ctx(id: &str, seed: u64) -> ProcessedContext {
    context(id, ContextType::Knowledge, seed)
}

fn assert_invalid(e: &StorageError, needles: &[&str]) {
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let text = e.to_string();
    for n in needles {
        assert!(text.contains(n), "error should name {n:?}: {text}");
    }
}

async fn get(b: &VikingBackend, id: &str) -> Option<ProcessedContext> {
    b.get_processed_context(id, ContextType::Knowledge, true)
        .await
        .expect("get")
}

/// Ids and values that look like SQL or JSON injection, quotes, backslashes, NUL (in values,
/// where it is legal), non-BMP characters: stored and read back byte for byte, and a filter
/// on such a value matches exactly that record, not its neighbours.
#[tokio::test]
async fn hostile_ids_and_values_round_trip_and_filter_exactly() {
    let (_server, b) = setup().await;
    let hostile = [
        "' OR '1'='1' --",
        r#"x"},{"op":"must","field":"data_type","conds":["todo"]}"#,
        r"back\slash\\",
        "😀𝄞 non-BMP 𠀋",
        "Robert'); DROP TABLE contexts;--",
        "%_*?[]{}",
    ];
    let mut batch = Vec::new();
    for (i, v) in hostile.iter().enumerate() {
        let mut c = ctx(v, i as u64 + 1);
        c.properties.user_id = Some((*v).to_owned());
        c.extracted_data.title = Some(format!("{v}\u{0}with NUL"));
        c.vectorize.text = Some(format!("text \u{0} {v}"));
        c.metadata.insert("note".into(), json!(format!("{v}\u{0}")));
        batch.push(c);
    }
    b.batch_upsert_processed_context(&batch).await.unwrap();
    for c in &batch {
        let back = get(&b, &c.id).await.expect("stored");
        assert_eq!(back.id, c.id);
        assert_eq!(back.extracted_data.title, c.extracted_data.title);
        assert_eq!(back.vectorize.text, c.vectorize.text);
        assert_eq!(back.metadata, c.metadata);
        assert_eq!(back.properties.user_id, c.properties.user_id);
        // Exactly one hit for a filter on the hostile user id, and a scoped search agrees.
        let q = SearchQuery::new(c.vectorize.vector.clone().unwrap())
            .top_k(10)
            .scope(Scope::user(c.properties.user_id.clone().unwrap()));
        let hits = b.search(&q).await.unwrap();
        assert_eq!(hits.len(), 1, "{}: {hits:?}", c.id);
        assert_eq!(hits[0].context.id, c.id);
    }
    // A value that is a prefix or differs by a quote matches nothing.
    let q = SearchQuery::new(unit_vector(1, DIM))
        .filter(Filter::eq("user_id", "' OR '1'='1'"))
        .top_k(10);
    assert!(b.search(&q).await.unwrap().is_empty());
    // delete_by_source_file with a hostile key deletes nothing else.
    let mut c = ctx("src-1", 42);
    c.properties.source_file_key = Some(r#"a"b\c' OR 1=1"#.into());
    b.upsert_processed_context(&c).await.unwrap();
    assert_eq!(b.delete_by_source_file(r#"a"b"#, None).await.unwrap(), 0);
    assert_eq!(
        b.delete_by_source_file(r#"a"b\c' OR 1=1"#, None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.get_processed_context_count(ContextType::Knowledge)
            .await
            .unwrap(),
        hostile.len() as u64
    );
}

/// Empty, oversized and control-character ids, and a duplicate id in one batch: refused with
/// an error naming the id field and the bound, before any request.
#[tokio::test]
async fn bad_ids_are_refused_before_any_request() {
    let (server, b) = setup().await;
    let before = server.total_requests();
    let e = b.upsert_processed_context(&ctx("", 1)).await.unwrap_err();
    assert_invalid(&e, &["id", "empty"]);
    let long = "x".repeat(MAX_ID_LEN + 1);
    let e = b
        .upsert_processed_context(&ctx(&long, 1))
        .await
        .unwrap_err();
    assert_invalid(&e, &["id", &MAX_ID_LEN.to_string()]);
    let e = b
        .upsert_processed_context(&ctx("nul\u{0}id", 1))
        .await
        .unwrap_err();
    assert_invalid(&e, &["id", "control character"]);
    let e = b
        .batch_upsert_processed_context(&[ctx("dup", 1), ctx("ok", 2), ctx("dup", 3)])
        .await
        .unwrap_err();
    assert_invalid(&e, &["dup", "twice"]);
    let e = b
        .get_by_ids(&["fine".into(), String::new()], None)
        .await
        .unwrap_err();
    assert_invalid(&e, &["ids[1]"]);
    let e = b
        .delete_contexts(std::slice::from_ref(&long), ContextType::Knowledge)
        .await
        .unwrap_err();
    assert_invalid(&e, &["ids[0]", &MAX_ID_LEN.to_string()]);
    let e = b
        .get_processed_context("", ContextType::Knowledge, false)
        .await
        .unwrap_err();
    assert_invalid(&e, &["id"]);
    let e = b.delete_by_source_file("", None).await.unwrap_err();
    assert_invalid(&e, &["source_file_key"]);
    assert_eq!(server.total_requests(), before, "no request for bad input");
    // The longest accepted id (multi-byte, exactly MAX_ID_LEN bytes) is stored.
    let max_id = "é".repeat(MAX_ID_LEN / 2);
    assert_eq!(max_id.len(), MAX_ID_LEN);
    b.upsert_processed_context(&ctx(&max_id, 1)).await.unwrap();
    assert!(get(&b, &max_id).await.is_some());
}

/// NaN, infinities, the zero vector and wrong dimensions, in contexts, queries and todos:
/// `InvalidInput` naming the field and the bound, no request, nothing of the batch stored.
#[tokio::test]
async fn invalid_vectors_are_refused_and_nothing_of_the_batch_is_stored() {
    let (server, b) = setup_with(|c| c.todo_embeddings = true).await;
    let before = server.total_requests();
    for (bad, needles) in [
        (vec![f32::NAN; DIM], vec!["[0]", "finite"]),
        (
            {
                let mut v = unit_vector(1, DIM);
                v[5] = f32::INFINITY;
                v
            },
            vec!["[5]", "inf"],
        ),
        (vec![0.0; DIM], vec!["zero vector"]),
        (unit_vector(1, DIM - 1), vec!["7 components", "expected 8"]),
        (unit_vector(1, DIM + 1), vec!["9 components", "expected 8"]),
        (Vec::new(), vec!["0 components"]),
    ] {
        // A valid context first: the whole batch must be refused, not the bad one only.
        let mut c = ctx("bad-vector", 2);
        c.vectorize.vector = Some(bad.clone());
        let e = b
            .batch_upsert_processed_context(&[ctx("good-first", 1), c])
            .await
            .unwrap_err();
        assert_invalid(&e, &["bad-vector"]);
        for n in &needles {
            assert!(e.to_string().contains(n), "{n}: {e}");
        }
        let e = b.search(&SearchQuery::new(bad.clone())).await.unwrap_err();
        assert_invalid(&e, &["query vector"]);
        let e = b
            .upsert_todo_embedding(1, "todo", &bad, None)
            .await
            .unwrap_err();
        assert_invalid(&e, &["embedding"]);
        let e = b.search_similar_todos(&bad, 5, 0.0).await.unwrap_err();
        assert_invalid(&e, &["query_embedding"]);
    }
    let mut no_vector = ctx("no-vector", 1);
    no_vector.vectorize.vector = None;
    let e = b.upsert_processed_context(&no_vector).await.unwrap_err();
    assert_invalid(&e, &["no-vector", "no vector"]);
    assert_eq!(server.total_requests(), before, "no request for bad input");
    assert!(
        get(&b, "good-first").await.is_none(),
        "batch refused as a whole"
    );
}

/// Payload size: just under the 1 MiB bound is stored, over it is refused naming the bound,
/// before any request.
#[tokio::test]
async fn payload_size_bound_is_enforced_at_the_documented_limit() {
    let (server, b) = setup().await;
    let mut big = ctx("big", 1);
    big.vectorize.text = Some("a".repeat(MAX_PAYLOAD_BYTES));
    let before = server.total_requests();
    let e = b.upsert_processed_context(&big).await.unwrap_err();
    assert_invalid(&e, &["big", "payload", &MAX_PAYLOAD_BYTES.to_string()]);
    assert_eq!(server.total_requests(), before);
    // Non-BMP text well under the bound (4 bytes per char) is stored intact.
    let mut fits = ctx("fits", 2);
    fits.vectorize.text = Some("😀".repeat((MAX_PAYLOAD_BYTES - 8 * 1024) / 4));
    b.upsert_processed_context(&fits).await.unwrap();
    assert_eq!(
        get(&b, "fits").await.unwrap().vectorize.text,
        fits.vectorize.text
    );
}

/// Metadata keys that shadow context fields or are not field names are refused; keys named
/// like the backend's internal fields (`data_type`, `scroll_key`, `metadata_json`, ...) are
/// ordinary metadata: they round-trip and do not change how the item is classified.
#[tokio::test]
async fn metadata_keys_colliding_with_internal_fields_round_trip() {
    let (_server, b) = setup_with(|c| c.todo_embeddings = true).await;
    let mut c = ctx("meta", 1);
    for key in [
        "data_type",
        "scroll_key",
        "metadata_json",
        "metadata_keys",
        "todo_id",
        "content",
    ] {
        c.metadata
            .insert(key.into(), json!(format!("user value of {key}")));
    }
    c.metadata.insert("data_type".into(), json!("todo"));
    b.upsert_processed_context(&c).await.unwrap();
    let back = get(&b, "meta").await.expect("still a context");
    assert_eq!(back.metadata, c.metadata);
    assert_eq!(back.vectorize.vector, c.vectorize.vector);
    let todos = b
        .search_similar_todos(c.vectorize.vector.as_ref().unwrap(), 10, -1.0)
        .await
        .unwrap();
    assert!(todos.is_empty(), "a context is not a todo: {todos:?}");
    let all: Vec<_> = b
        .scroll_processed_contexts(ScrollQuery::default())
        .collect()
        .await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].as_ref().unwrap().id, "meta");

    let mut shadow = ctx("shadow", 2);
    shadow
        .metadata
        .insert("user_id".into(), json!("someone-else"));
    let e = b.upsert_processed_context(&shadow).await.unwrap_err();
    assert_invalid(&e, &["user_id", "collides"]);
    let mut vector_key = ctx("vector-key", 4);
    vector_key.metadata.insert("vector".into(), json!([1, 2]));
    let e = b.upsert_processed_context(&vector_key).await.unwrap_err();
    assert_invalid(&e, &["vector", "collides"]);
    let mut bad_key = ctx("bad-key", 3);
    bad_key.metadata.insert(r#"x"},{"op":"or"#.into(), json!(1));
    let e = b.upsert_processed_context(&bad_key).await.unwrap_err();
    assert_invalid(&e, &["metadata key", "field name"]);
}

/// Filters on keys that are not fields, on fields without an index, with values of the wrong
/// type, non-finite numbers or string ranges: a clear error naming the field, no request.
#[tokio::test]
async fn bad_filters_are_refused_naming_the_field() {
    let (server, b) = setup().await;
    b.upsert_processed_context(&ctx("a", 1)).await.unwrap();
    let before = server.total_requests();
    let q = |f: Filter| SearchQuery::new(unit_vector(1, DIM)).filter(f);
    let cases: Vec<(Filter, ErrorKind, &str)> = vec![
        (
            Filter::eq("no_such_field", "x"),
            ErrorKind::Unsupported,
            "no_such_field",
        ),
        (Filter::eq("title", "x"), ErrorKind::Unsupported, "title"),
        (
            Filter::eq("keywords", "x"),
            ErrorKind::Unsupported,
            "keywords",
        ),
        (Filter::eq("user_id", 3), ErrorKind::InvalidInput, "user_id"),
        (
            Filter::gte("user_id", "m"),
            ErrorKind::Unsupported,
            "user_id",
        ),
        (
            Filter::gte("create_time_ts", f64::NAN),
            ErrorKind::InvalidInput,
            "create_time_ts",
        ),
        (
            Filter::eq("hierarchy_level", f64::INFINITY),
            ErrorKind::InvalidInput,
            "hierarchy_level",
        ),
        (
            Filter::eq(r#"user_id"},{"op":"or"#, "x"),
            ErrorKind::InvalidInput,
            "not a field name",
        ),
        (
            Filter::eq("", "x"),
            ErrorKind::InvalidInput,
            "not a field name",
        ),
        (
            Filter::eq("is_processed", "yes"),
            ErrorKind::InvalidInput,
            "is_processed",
        ),
    ];
    for (f, kind, needle) in cases {
        let e = b.search(&q(f.clone())).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{f:?}: {e}");
        assert!(e.to_string().contains(needle), "{f:?}: {e}");
        // The same filter through the other entry points.
        let list = ListQuery {
            filter: Some(f.clone()),
            ..ListQuery::default()
        };
        let e = b.get_all_processed_contexts(&list).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{f:?}: {e}");
        let first = b
            .scroll_processed_contexts(ScrollQuery {
                filter: Some(f.clone()),
                ..ScrollQuery::default()
            })
            .next()
            .await
            .expect("an error item");
        assert_eq!(first.unwrap_err().kind(), kind, "{f:?}");
    }
    assert_eq!(
        server.total_requests(),
        before,
        "no request for bad filters"
    );
    // Loose maps from the original's API: an unknown `$` operator is refused by the parser.
    let loose = json!({"user_id": {"$regex": ".*"}});
    assert!(Filter::from_loose_json(&loose).is_err());
}

/// Unknown context types cannot be named: parsing (the loose, string-typed entry point)
/// refuses them with an error naming the value.
#[tokio::test]
async fn unknown_context_type_is_refused_when_parsed() {
    let e = "no_such_type".parse::<ContextType>().unwrap_err();
    assert!(e.to_string().contains("no_such_type"), "{e}");
}

/// 1,050 contexts: split into 11 upsert calls of at most 100, every one stored, and fetched
/// back in 11 calls.
#[tokio::test]
async fn huge_batches_are_split_not_refused() {
    let (server, b) = setup().await;
    let batch: Vec<_> = (0..1050).map(|i| ctx(&format!("h{i:05}"), i)).collect();
    b.batch_upsert_processed_context(&batch).await.unwrap();
    assert_eq!(server.requests(UPSERT), 11);
    assert_eq!(server.row_count("opencontext"), 1050);
    let ids: Vec<String> = batch.iter().map(|c| c.id.clone()).collect();
    let got = b.get_by_ids(&ids, None).await.unwrap();
    assert_eq!(got.len(), 1050);
    assert_eq!(
        b.delete_contexts(&ids, ContextType::Knowledge)
            .await
            .unwrap(),
        1050
    );
    assert_eq!(server.row_count("opencontext"), 0);
}

/// A server failure in the middle of a batch: the error is returned (never swallowed), says
/// which items were and were not stored, chunks before it are stored whole, later chunks
/// keep their previous version whole, and retrying the call completes it.
#[tokio::test]
async fn server_error_mid_batch_reports_progress_and_corrupts_nothing() {
    let (server, b) = setup_with(|c| c.max_retries = 0).await;
    let v1: Vec<_> = (0..250)
        .map(|i| {
            let mut c = ctx(&format!("m{i:03}"), i);
            c.vectorize.text = Some("v1".into());
            c
        })
        .collect();
    b.batch_upsert_processed_context(&v1).await.unwrap();
    let v2: Vec<_> = (0..250)
        .map(|i| {
            let mut c = ctx(&format!("m{i:03}"), 1000 + i);
            c.vectorize.text = Some("v2".into());
            c
        })
        .collect();
    // First chunk passes, second fails with a 500.
    server.fail_next(Fault::Delay(Duration::ZERO));
    server.fail_next(Fault::Status(500));
    let e = b.batch_upsert_processed_context(&v2).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    let text = e.to_string();
    assert!(
        text.contains("100") && text.contains("250"),
        "the error should say how far the batch got: {text}"
    );
    for (i, (old, new)) in v1.iter().zip(&v2).enumerate() {
        let back = get(&b, &old.id).await.expect("never lost");
        let want = if i < 100 { new } else { old };
        assert_eq!(back.vectorize.text, want.vectorize.text, "{}", old.id);
        assert_eq!(back.vectorize.vector, want.vectorize.vector, "{}", old.id);
    }
    b.batch_upsert_processed_context(&v2).await.unwrap();
    for c in &v2 {
        assert_eq!(
            get(&b, &c.id).await.unwrap().vectorize.text,
            c.vectorize.text
        );
    }
    assert_eq!(server.row_count("opencontext"), 250);
}

/// Timeouts: a server slower than `timeout_secs` gives a retryable `Timeout` after the
/// configured attempts; with retries, one slow answer is absorbed.
#[tokio::test]
async fn slow_server_gives_a_retryable_timeout() {
    let (server, b) = setup_with(|c| {
        c.timeout_secs = 0.3;
        c.max_retries = 0;
    })
    .await;
    server.fail_next(Fault::Delay(Duration::from_secs(2)));
    let e = b
        .upsert_processed_context(&ctx("slow", 1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    let (server, b) = setup_with(|c| {
        c.timeout_secs = 0.3;
        c.max_retries = 2;
    })
    .await;
    server.fail_next(Fault::Delay(Duration::from_secs(2)));
    b.upsert_processed_context(&ctx("slow", 1)).await.unwrap();
    assert!(get(&b, "slow").await.is_some());
}

/// 24 concurrent upserts of the same id: exactly one item remains, and it is one writer's
/// version as a whole (text and vector belong together).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_upserts_of_one_id_leave_one_whole_version() {
    let (server, b) = setup().await;
    let tasks: Vec<_> = (0..24u64)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                let mut c = ctx("same", 100 + i);
                c.vectorize.text = Some(format!("writer {i}"));
                b.upsert_processed_context(&c).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(server.row_count("opencontext"), 1);
    let back = get(&b, "same").await.unwrap();
    let writer: u64 = back
        .vectorize
        .text
        .as_deref()
        .and_then(|t| t.strip_prefix("writer "))
        .and_then(|n| n.parse().ok())
        .expect("one writer's text");
    assert_eq!(back.vectorize.vector, Some(unit_vector(100 + writer, DIM)));
}

/// Search bounds: `top_k` 0 answers nothing without a request, a huge `top_k` is capped, and
/// a non-finite `score_threshold` is refused rather than silently ignored.
#[tokio::test]
async fn search_bounds() {
    let (server, b) = setup().await;
    b.upsert_processed_context(&ctx("a", 1)).await.unwrap();
    let before = server.total_requests();
    let none = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).top_k(0))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(server.total_requests(), before);
    let all = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).top_k(usize::MAX))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    let mut q = SearchQuery::new(unit_vector(1, DIM));
    q.score_threshold = Some(f32::NAN);
    let e = b.search(&q).await.unwrap_err();
    assert_invalid(&e, &["score_threshold"]);
    q.score_threshold = Some(f32::NEG_INFINITY);
    assert_invalid(&b.search(&q).await.unwrap_err(), &["score_threshold"]);
    let (_server, b) = setup_with(|c| c.todo_embeddings = true).await;
    let e = b
        .search_similar_todos(&unit_vector(1, DIM), 5, f32::NAN)
        .await
        .unwrap_err();
    assert_invalid(&e, &["similarity_threshold"]);
}

/// The README's YAML shape, with `${VAR:default}` values, read the way the umbrella's
/// registry reads it (`BackendConfig::parse` into `VikingConfig`), then opened.
#[tokio::test]
async fn readme_yaml_shape_configures_the_backend() {
    let server = FakeViking::start().await;
    let yaml = format!(
        r#"
storage:
  backends:
    - name: default_vector
      storage_type: vector_db
      backend: vikingdb
      default: true
      config:
        access_key_id: "${{VIKING_AK:{ak}}}"
        secret_access_key: "${{VIKING_SK:{sk}}}"
        vector_size: "${{DIM:8}}"
        scheme: http
        data_host: "{host}"
        console_host: "{host}"
        max_retries: "1"
        timeout_secs: "5"
        metadata_fields:
          - {{name: project, type: string}}
consumption:
  enabled: true
"#,
        ak = fake::AK,
        sk = fake::SK,
        host = server.host
    );
    let app = storage_core::config::parse_config(&yaml, |_| None).unwrap();
    let entry = &app.storage.backends[0];
    let config: VikingConfig = entry.parse().unwrap();
    assert_eq!(config.dimension, 8);
    let dbg = format!("{config:?}");
    assert!(!dbg.contains(fake::SK), "secret in Debug: {dbg}");
    let config = config.with_todo_embeddings(app.consumption.enabled);
    let b = VikingBackend::open(config).await.unwrap();
    let mut c = ctx("yaml", 1);
    c.metadata.insert("project".into(), json!("alpha"));
    b.upsert_processed_context(&c).await.unwrap();
    let hits = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).filter(Filter::eq("project", "alpha")))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);

    // Mistakes in that shape: each a Config error naming the key.
    for (config, needle) in [
        (
            json!({"access_key_id": "a", "secret_access_key": "s"}),
            "dimension",
        ),
        (
            json!({"access_key_id": "a", "secret_access_key": "s", "vector_size": "many"}),
            "many",
        ),
        (
            json!({"access_key_id": "a", "secret_access_key": "s", "vector_size": 8,
                   "metadata_fields": [{"name": "p", "type": "text"}]}),
            "text",
        ),
    ] {
        let entry = storage_core::BackendConfig {
            name: "v".into(),
            storage_type: storage_core::StorageType::VectorDb,
            backend: "vikingdb".into(),
            default: true,
            config: config.as_object().unwrap().clone(),
        };
        let e = entry.parse::<VikingConfig>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
    for (edit, needle) in [
        (
            Box::new(|c: &mut VikingConfig| c.dimension = 0) as Box<dyn Fn(&mut VikingConfig)>,
            "dimension",
        ),
        (Box::new(|c: &mut VikingConfig| c.dimension = 4100), "4096"),
        (
            Box::new(|c: &mut VikingConfig| c.dimension = 6),
            "multiple of 4",
        ),
        (
            Box::new(|c: &mut VikingConfig| c.dimension = 1),
            "multiple of 4",
        ),
        (
            Box::new(|c: &mut VikingConfig| c.scheme = "ftp".into()),
            "scheme",
        ),
        // A region or host that would point the signed requests elsewhere.
        (
            Box::new(|c: &mut VikingConfig| {
                c.data_host = None;
                c.region = "evil.example#".into();
            }),
            "region",
        ),
        (
            Box::new(|c: &mut VikingConfig| c.data_host = Some("evil.example/x?".into())),
            "data_host",
        ),
        (
            Box::new(|c: &mut VikingConfig| c.console_host = Some("user@evil.example".into())),
            "console_host",
        ),
        (
            Box::new(|c: &mut VikingConfig| c.data_host = Some(String::new())),
            "data_host",
        ),
        (
            Box::new(|c: &mut VikingConfig| c.collection_name = "a-b; drop".into()),
            "collection_name",
        ),
        (
            Box::new(|c: &mut VikingConfig| c.timeout_secs = 0.0),
            "timeout_secs",
        ),
        (
            Box::new(|c: &mut VikingConfig| c.timeout_secs = f64::NAN),
            "timeout_secs",
        ),
    ] {
        let mut config = server.config(DIM);
        edit(&mut config);
        let e = VikingBackend::open(config).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
}

/// Declared metadata fields with values their VikingDB type cannot hold (`int64` above
/// `i64::MAX`, `float32` beyond its range): refused before the first request, so a batch is
/// never half-written because the server refuses a later chunk.
#[tokio::test]
async fn declared_metadata_out_of_the_field_range_is_refused_before_any_request() {
    use storage_viking::{MetadataField, MetadataFieldType};
    let (server, b) = setup_with(|c| {
        c.metadata_fields = vec![
            MetadataField {
                name: "n".into(),
                field_type: MetadataFieldType::Int64,
            },
            MetadataField {
                name: "x".into(),
                field_type: MetadataFieldType::Float32,
            },
        ];
    })
    .await;
    for (key, value) in [
        ("n", json!(u64::MAX)),
        ("x", json!(1e300)),
        ("n", json!(1.5)),
    ] {
        let mut batch: Vec<_> = (0..150).map(|i| ctx(&format!("r{i:03}"), i)).collect();
        batch[120].metadata.insert(key.into(), value.clone());
        let before = server.total_requests();
        let e = b.batch_upsert_processed_context(&batch).await.unwrap_err();
        assert_invalid(&e, &["r120", key]);
        assert_eq!(server.total_requests(), before, "{key}={value}: no request");
        assert_eq!(server.row_count("opencontext"), 0, "{key}={value}");
    }
    let mut ok = ctx("ok", 1);
    ok.metadata.insert("n".into(), json!(i64::MAX));
    ok.metadata.insert("x".into(), json!(-3.25));
    b.upsert_processed_context(&ok).await.unwrap();
    assert_eq!(get(&b, "ok").await.unwrap().metadata, ok.metadata);
}

/// Todo embeddings: content over the payload bound is refused before any request; other
/// edge cases (negative ids, duplicate ids in deletes, invalid time buckets) behave.
#[tokio::test]
async fn todo_payload_bound_and_other_edges() {
    let (server, b) = setup_with(|c| c.todo_embeddings = true).await;
    let before = server.total_requests();
    let e = b
        .upsert_todo_embedding(
            7,
            &"t".repeat(MAX_PAYLOAD_BYTES),
            &unit_vector(1, DIM),
            None,
        )
        .await
        .unwrap_err();
    assert_invalid(&e, &["todo_7", &MAX_PAYLOAD_BYTES.to_string()]);
    assert_eq!(server.total_requests(), before, "no request");
    // Todo ids are document-store row ids: negative ones are refused on every backend.
    let e = b
        .upsert_todo_embedding(-5, "negative", &unit_vector(2, DIM), None)
        .await
        .unwrap_err();
    assert_invalid(&e, &["todo_id", "-5"]);
    assert_eq!(server.total_requests(), before, "no request");
    b.upsert_todo_embedding(5, "odd 😀\u{0}", &unit_vector(2, DIM), None)
        .await
        .unwrap();
    let hits = b
        .search_similar_todos(&unit_vector(2, DIM), 3, 0.5)
        .await
        .unwrap();
    assert_eq!(hits[0].todo_id, 5);
    assert_eq!(hits[0].content, "odd 😀\u{0}");
    assert!(b.delete_todo_embedding(5).await.unwrap());
    assert!(!b.delete_todo_embedding(5).await.unwrap());

    b.upsert_processed_context(&ctx("dup", 1)).await.unwrap();
    assert_eq!(
        b.delete_contexts(&["dup".into(), "dup".into()], ContextType::Knowledge)
            .await
            .unwrap(),
        1
    );
    let q = storage_core::HierarchyQuery {
        context_type: ContextType::Knowledge,
        hierarchy_level: 1,
        time_bucket_start: Some("2026-13-45".into()),
        time_bucket_end: None,
        user_id: None,
        top_k: 10,
    };
    let e = b.search_by_hierarchy(&q).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("2026-13-45"), "{e}");
}

/// Every duration and retry setting is bounded: huge (`1e20` used to panic in
/// `Duration::from_secs_f64` when the backend opened), NaN, negative and zero timeouts, too
/// many retries and huge backoffs are `Config` errors naming the key and the bound, before
/// any request.
#[tokio::test]
async fn duration_and_retry_settings_are_bounded() {
    let server = FakeViking::start().await;
    type Edit = Box<dyn Fn(&mut VikingConfig)>;
    let mut cases: Vec<(Edit, &str, &str)> = Vec::new();
    for v in [1e20, f64::NAN, f64::INFINITY, -1.0, 0.0] {
        cases.push((
            Box::new(move |c: &mut VikingConfig| c.timeout_secs = v),
            "timeout_secs",
            "at most 86400",
        ));
        cases.push((
            Box::new(move |c: &mut VikingConfig| c.connect_timeout_secs = v),
            "connect_timeout_secs",
            "more than 0",
        ));
    }
    cases.push((
        Box::new(|c: &mut VikingConfig| c.max_retries = 11),
        "max_retries",
        "at most 10",
    ));
    cases.push((
        Box::new(|c: &mut VikingConfig| c.max_retries = u32::MAX),
        "max_retries",
        "at most 10",
    ));
    cases.push((
        Box::new(|c: &mut VikingConfig| c.retry_base_delay_ms = u64::MAX),
        "retry_base_delay_ms",
        "at most 60000",
    ));
    cases.push((
        Box::new(|c: &mut VikingConfig| c.retry_max_delay_ms = 60_001),
        "retry_max_delay_ms",
        "at most 60000",
    ));
    for (edit, key, bound) in cases {
        let mut config = server.config(DIM);
        edit(&mut config);
        let shown = format!("{config:?}");
        let e = VikingBackend::open(config).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{shown}: {e}");
        assert!(e.to_string().contains(key), "{key}: {e}");
        assert!(e.to_string().contains(bound), "{bound}: {e}");
    }
    assert_eq!(server.total_requests(), 0);
    // The bounds themselves are accepted.
    let mut config = server.config(DIM);
    config.timeout_secs = 86_400.0;
    config.max_retries = 10;
    config.retry_max_delay_ms = 60_000;
    VikingBackend::open(config).await.unwrap();
}

/// A server that hangs (the fake's stall hook): `open`, `search` and upserts each return a
/// retryable `Timeout` within `timeout_secs` plus slack. An upsert or delete whose request
/// was sent has an unknown outcome (still retryable: both are idempotent); a read has not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_time_out_within_the_bound() {
    use std::time::Instant;
    use storage_core::WriteOutcome;
    let server = FakeViking::start().await;
    let setup = VikingBackend::open(server.config(DIM)).await.unwrap();
    setup
        .upsert_processed_context(&ctx("kept", 1))
        .await
        .unwrap();
    let mut short = server.config(DIM);
    short.timeout_secs = 0.5;
    short.connect_timeout_secs = 0.5;
    short.max_retries = 0;
    let bound = Duration::from_secs_f64(short.timeout_secs) + Duration::from_secs(3);
    let stall = Duration::from_secs(30);

    server.stall("GetVikingdbCollection", stall);
    let started = Instant::now();
    let e = VikingBackend::open(short.clone()).await.unwrap_err();
    assert!(
        started.elapsed() < bound,
        "open took {:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    assert_eq!(e.outcome(), WriteOutcome::NotApplied);
    server.stall("GetVikingdbCollection", Duration::ZERO);
    let b = VikingBackend::open(short.clone()).await.unwrap();

    server.stall("/api/vikingdb/data/search/vector", stall);
    let started = Instant::now();
    let e = b
        .search(&SearchQuery::new(unit_vector(1, DIM)))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < bound,
        "search took {:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.outcome(), WriteOutcome::NotApplied);
    server.stall("/api/vikingdb/data/search/vector", Duration::ZERO);

    server.stall(UPSERT, stall);
    let started = Instant::now();
    let e = b
        .upsert_processed_context(&ctx("late", 2))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < bound,
        "upsert took {:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    assert!(e.is_retryable(), "an upsert by id is idempotent: {e}");
    assert!(
        e.to_string().contains("may or may not have been applied"),
        "{e}"
    );
    server.stall(UPSERT, Duration::ZERO);

    server.stall("/api/vikingdb/data/delete", stall);
    let e = b
        .delete_contexts(&["kept".to_owned()], ContextType::Knowledge)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    server.stall("/api/vikingdb/data/delete", Duration::ZERO);

    // An answered failure was not applied.
    server.fail_next(Fault::Status(400));
    let e = b
        .upsert_processed_context(&ctx("refused", 3))
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), WriteOutcome::NotApplied, "{e}");
}
