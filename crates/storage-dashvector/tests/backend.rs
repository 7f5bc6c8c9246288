//! DashVector-specific behaviour against the fake server: filter escaping and injection,
//! declared-field checks, retries, authentication, batch splitting, validation before any
//! request, the scroll cursor and the schema.

mod common;

use std::time::Duration;

use common::fake::{FakeDashVector, Fault};
use common::filter_lang::{Lit, comparisons};
use futures::TryStreamExt;
use serde_json::json;
use storage_core::testkit::vector::cases::{context, unit_vector};
use storage_core::{
    ContextType, ErrorKind, Filter, Scope, ScrollQuery, SearchQuery, StorageBackend,
    VectorStorageBackend,
};
use storage_dashvector::{DashVectorBackend, DashVectorConfig};

const DIM: usize = 8;

fn with_user(id: &str, user: &str, seed: u64) -> storage_core::ProcessedContext {
    let mut c = context(id, ContextType::Knowledge, seed);
    c.properties.user_id = Some(user.to_owned());
    c.properties.source_file_key = Some(user.to_owned());
    c
}

/// Values that would change a naively built filter's meaning.
const HOSTILE: &[&str] = &[
    "o'brien",
    "x' or 1=1 or user_id='y",
    "x' or '1'='1",
    "ends with backslash\\",
    "\\' or 1=1 or user_id=\\'",
    "a\\b\\\\c",
    "') or (user_id != '",
    "line\nbreak' or 1=1",
    "中文 🦀 ünïcödé",
    "",
    "y",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_are_quoted_and_never_change_the_filter() {
    let (fake, b) = common::open(DIM, false).await;
    let mut batch: Vec<_> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, u)| with_user(&format!("h{i}"), u, i as u64))
        .collect();
    batch.push(with_user("victim", "victim", 99));
    b.batch_upsert_processed_context(&batch).await.unwrap();

    for (i, hostile) in HOSTILE.iter().enumerate() {
        let expected = vec![format!("h{i}")];
        fake.clear_log();
        let hits = b
            .search(
                &SearchQuery::new(unit_vector(1, DIM))
                    .top_k(100)
                    .context_types([ContextType::Knowledge])
                    .scope(Scope::user(*hostile)),
            )
            .await
            .unwrap();
        let ids: Vec<String> = hits.into_iter().map(|h| h.context.id).collect();
        assert_eq!(ids, expected, "search with user_id {hostile:?}");
        // The fake's independent parser recovered exactly one comparison with the exact value.
        let log = fake.log();
        let query = log.iter().find(|l| l.path.ends_with("/query")).unwrap();
        let parsed = query.parsed_filter.as_ref().expect("filter parses");
        assert_eq!(
            comparisons(parsed),
            vec![("user_id".into(), "=".into(), Lit::Str((*hostile).into()))],
            "filter sent: {:?}",
            query.body["filter"]
        );

        let scrolled: Vec<_> = b
            .scroll_processed_contexts(ScrollQuery {
                scope: Scope::user(*hostile),
                context_types: Some(vec![ContextType::Knowledge]),
                ..ScrollQuery::default()
            })
            .try_collect()
            .await
            .unwrap();
        let ids: Vec<String> = scrolled.into_iter().map(|c| c.id).collect();
        assert_eq!(ids, expected, "scroll with user_id {hostile:?}");
    }
    // Deleting by a hostile key deletes exactly that doc.
    let n = b.delete_by_source_file("x' or '1'='1", None).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        b.get_processed_context_count(ContextType::Knowledge)
            .await
            .unwrap(),
        HOSTILE.len() as u64
    );
    assert!(
        b.get_processed_context("victim", ContextType::Knowledge, false)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_or_mistyped_filter_keys_are_refused_before_any_request() {
    let (fake, b) = common::open(DIM, false).await;
    let before = fake.requests();
    let cases = [
        (Filter::eq("undeclared_meta", "x"), ErrorKind::InvalidInput),
        (Filter::eq("user_id", 5), ErrorKind::InvalidInput),
        (Filter::eq("hierarchy_level", "1"), ErrorKind::InvalidInput),
        (Filter::eq("is_processed", "true"), ErrorKind::InvalidInput),
        (
            Filter::eq("importance", 1i64 << 33),
            ErrorKind::InvalidInput,
        ),
        (Filter::eq("user_id or 1", "x"), ErrorKind::InvalidInput),
        (Filter::ne("user_id", "x"), ErrorKind::Unsupported),
        (
            Filter::between("time_bucket", "2026-01", "2026-02"),
            ErrorKind::Unsupported,
        ),
        (Filter::eq("keywords", "x"), ErrorKind::Unsupported),
    ];
    for (f, kind) in cases {
        let what = format!("{f:?}");
        let e = b
            .search(&SearchQuery::new(unit_vector(1, DIM)).filter(f.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "search {what}: {e}");
        let e = b
            .scroll_processed_contexts(ScrollQuery {
                filter: Some(f),
                ..ScrollQuery::default()
            })
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "scroll {what}: {e}");
    }
    let e = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).filter(Filter::eq("undeclared_meta", "x")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("'undeclared_meta'"), "{e}");
    assert_eq!(fake.requests(), before, "no request was sent");
    // A declared metadata field works.
    let mut c = context("p1", ContextType::Event, 1);
    c.metadata.insert("project".into(), json!("alpha"));
    b.upsert_processed_context(&c).await.unwrap();
    let hits = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).filter(Filter::eq("project", "alpha")))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_request() {
    let (fake, b) = common::open(DIM, true).await;
    let before = fake.requests();
    let mut bad = Vec::new();
    let mut c = context("dim", ContextType::Event, 1);
    c.vectorize.vector = Some(vec![1.0; DIM + 1]);
    bad.push(("dimension", c));
    let mut c = context("nan", ContextType::Event, 1);
    c.vectorize.vector.as_mut().unwrap()[0] = f32::NAN;
    bad.push(("nan", c));
    bad.push(("empty id", context("", ContextType::Event, 1)));
    bad.push(("comma in id", context("a,b", ContextType::Event, 1)));
    bad.push(("space in id", context("a b", ContextType::Event, 1)));
    bad.push(("long id", context(&"x".repeat(65), ContextType::Event, 1)));
    for (what, c) in bad {
        let good = context("good", ContextType::Event, 2);
        let e = b
            .batch_upsert_processed_context(&[good, c])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
    }
    let e = b
        .search(&SearchQuery::new(vec![1.0; DIM - 1]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("expected 8"), "{e}");
    let e = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).top_k(1025))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("1024"), "{e}");
    for r in [
        b.get_by_ids(&["ok".into(), "".into()], None)
            .await
            .map(|_| ()),
        b.get_processed_context("a,b", ContextType::Event, false)
            .await
            .map(|_| ()),
        b.delete_contexts(&["a b".into()], ContextType::Event)
            .await
            .map(|_| ()),
        b.upsert_todo_embedding(1, "x", &[f32::INFINITY; DIM], None)
            .await,
        b.search_similar_todos(&[1.0; 3], 5, 0.0).await.map(|_| ()),
    ] {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    assert_eq!(fake.requests(), before, "nothing was sent");
    assert_eq!(fake.doc_count("event"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_with_backoff() {
    let (fake, b) = common::open(DIM, false).await;
    let before = fake.requests();
    fake.fail_next([Fault::Status(429), Fault::Status(500), Fault::Code(-2034)]);
    b.upsert_processed_context(&context("r1", ContextType::Event, 1))
        .await
        .expect("succeeds on the 4th attempt");
    assert_eq!(fake.requests() - before, 4);
    assert_eq!(fake.doc_count("event"), 1);

    // Out of retries (3 by default): the last error, retryable.
    let before = fake.requests();
    fake.fail_next([
        Fault::Status(503),
        Fault::Status(503),
        Fault::Status(503),
        Fault::Status(503),
    ]);
    let e = b
        .get_processed_context_count(ContextType::Event)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
    assert_eq!(e.operation(), "get_processed_context_count");
    assert_eq!(fake.requests() - before, 4);

    // Not retryable: one request, mapped kind.
    let before = fake.requests();
    fake.fail_next([Fault::Code(-2015)]);
    let e = b
        .search(&SearchQuery::new(unit_vector(1, DIM)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(fake.requests() - before, 1);
    fake.fail_next([Fault::Code(-2021)]);
    let e = b
        .get_processed_context_count(ContextType::Event)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retried_and_configurable() {
    let fake = FakeDashVector::start(common::TOKEN).await;
    let mut config = common::config(&fake, DIM);
    config.timeout_secs = 0.3;
    let b = DashVectorBackend::open(config.clone()).await.unwrap();
    fake.fail_next([Fault::Delay(Duration::from_secs(2))]);
    b.get_processed_context_count(ContextType::Event)
        .await
        .expect("the retry succeeds");

    config.max_retries = 0;
    let b = DashVectorBackend::open(config).await.unwrap();
    fake.fail_next([Fault::Delay(Duration::from_secs(2))]);
    let e = b
        .get_processed_context_count(ContextType::Event)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_a_permission_error_and_secrets_stay_hidden() {
    let fake = FakeDashVector::start(common::TOKEN).await;
    let mut config = common::config(&fake, DIM);
    config.api_key = storage_core::config::Secret::new("wrong-secret-123");
    let debug = format!("{config:?}");
    assert!(!debug.contains("wrong-secret-123"), "{debug}");
    let e = DashVectorBackend::open(config).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(fake.requests(), 1, "auth failures are not retried");
    assert!(!format!("{e} {e:?}").contains("wrong-secret-123"));

    let (_fake, b) = common::open(DIM, false).await;
    assert!(!format!("{b:?}").contains(common::TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_batches_are_split_at_the_documented_limit() {
    let (fake, b) = common::open(4, false).await;
    let batch: Vec<_> = (0..2500u64)
        .map(|i| {
            let mut c = context(&format!("b{i:04}"), ContextType::Document, i);
            c.vectorize.vector = Some(unit_vector(i, 4));
            c.properties.source_file_key = Some("big.md".into());
            c
        })
        .collect();
    fake.clear_log();
    let ids = b.batch_upsert_processed_context(&batch).await.unwrap();
    assert_eq!(ids.len(), 2500);
    let sizes: Vec<usize> = fake
        .log()
        .iter()
        .filter(|l| l.path.ends_with("/docs/upsert"))
        .map(|l| l.body["docs"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![1024, 1024, 452]);
    assert_eq!(fake.doc_count("document"), 2500);

    // Fetches go by 100 ids (ids travel in the URL).
    fake.clear_log();
    let some: Vec<String> = (0..250).map(|i| format!("b{i:04}")).collect();
    let got = b
        .get_by_ids(&some, Some(ContextType::Document))
        .await
        .unwrap();
    assert_eq!(got.len(), 250);
    let fetches = fake
        .log()
        .iter()
        .filter(|l| l.method == "GET" && l.path.ends_with("/docs"))
        .count();
    assert_eq!(fetches, 3);

    // Deletes by 1024 ids.
    fake.clear_log();
    assert_eq!(b.delete_by_source_file("big.md", None).await.unwrap(), 2500);
    let sizes: Vec<usize> = fake
        .log()
        .iter()
        .filter(|l| l.method == "DELETE")
        .map(|l| l.body["ids"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![1024, 1024, 452]);
    assert_eq!(fake.doc_count("document"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_walks_disjoint_key_ranges_without_offsets() {
    let (fake, b) = common::open(DIM, false).await;
    let batch: Vec<_> = (0..300u64)
        .map(|i| context(&format!("s{i}"), ContextType::Event, i))
        .collect();
    b.batch_upsert_processed_context(&batch).await.unwrap();
    fake.clear_log();
    let got: Vec<_> = b
        .scroll_processed_contexts(ScrollQuery {
            batch_size: 25,
            context_types: Some(vec![ContextType::Event]),
            ..ScrollQuery::default()
        })
        .try_collect()
        .await
        .unwrap();
    let mut ids: Vec<String> = got.into_iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 300);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300, "each context once");
    let queries: Vec<_> = fake
        .log()
        .into_iter()
        .filter(|l| l.path.ends_with("/query"))
        .collect();
    for q in &queries {
        assert_eq!(q.body["topk"], 26, "page + 1");
        assert!(q.body.get("vector").is_none(), "filter-only match query");
        let cmps = comparisons(q.parsed_filter.as_ref().unwrap());
        assert!(
            cmps.iter().all(|(f, _, _)| f == "dv_scroll_key"),
            "{cmps:?}"
        );
    }
    // Each doc travels in at most one complete page plus the truncated pages above it.
    assert!(queries.len() < 300 / 25 * 4, "{} queries", queries.len());

    // Colliding keys: 40 docs on one key value still come out once each (the one-key range
    // is fetched with topk 1024).
    for i in 0..40 {
        fake.set_field("event", &format!("s{i}"), "dv_scroll_key", json!(5));
    }
    let got: Vec<_> = b
        .scroll_processed_contexts(ScrollQuery {
            batch_size: 10,
            ..ScrollQuery::default()
        })
        .try_collect()
        .await
        .unwrap();
    let mut ids: Vec<String> = got.into_iter().map(|c| c.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300);

    // Docs written without the scroll key (by the original) are not reached: documented.
    fake.put_doc(
        "event",
        "legacy",
        unit_vector(1, DIM),
        json!({"original_id": "legacy"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let n = b
        .scroll_processed_contexts(ScrollQuery::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len();
    assert_eq!(n, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_are_created_with_the_declared_schema_and_checked_on_reopen() {
    let (fake, b) = common::open(DIM, true).await;
    let schema = fake.schema_of("event").expect("event collection");
    assert_eq!(schema["original_id"], "STRING");
    assert_eq!(schema["create_time_ts"], "LONG");
    assert_eq!(schema["hierarchy_level"], "INT");
    assert_eq!(schema["is_processed"], "BOOL");
    assert_eq!(schema["dv_scroll_key"], "INT");
    assert_eq!(schema["project"], "STRING");
    assert_eq!(fake.schema_of("todo").unwrap()["todo_id"], "LONG");
    let create = fake
        .log()
        .into_iter()
        .find(|l| l.method == "POST" && l.path == "/v1/collections")
        .unwrap();
    assert_eq!(create.body["metric"], "cosine");
    assert_eq!(create.body["dimension"], DIM);
    b.close().await.unwrap();

    // Reopening reuses them; another dimension is a configuration error.
    DashVectorBackend::open(common::config(&fake, DIM))
        .await
        .expect("reopen");
    let e = DashVectorBackend::open(common::config(&fake, DIM * 2))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("dimension 8"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_are_similarities_converted_from_cosine_distance() {
    let (_fake, b) = common::open(DIM, false).await;
    let mut same = context("same", ContextType::Event, 0);
    same.vectorize.vector = Some(unit_vector(5, DIM));
    let mut opposite = context("opposite", ContextType::Event, 0);
    opposite.vectorize.vector = Some(unit_vector(5, DIM).iter().map(|x| -x).collect());
    b.batch_upsert_processed_context(&[same, opposite])
        .await
        .unwrap();
    let hits = b
        .search(&SearchQuery::new(unit_vector(5, DIM)))
        .await
        .unwrap();
    assert_eq!(hits[0].context.id, "same");
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert_eq!(hits[1].context.id, "opposite");
    assert!((hits[1].score + 1.0).abs() < 1e-5);
}

#[test]
fn config_parses_from_the_original_yaml_shape() {
    let v = json!({
        "endpoint": "vrs-cn-abc.dashvector.cn-hangzhou.aliyuncs.com",
        "api_key": "sk-123",
        "vector_size": "1024",
        "extra_fields": {"project": "STRING", "score": "FLOAT"},
        "max_retries": 5
    });
    let c: DashVectorConfig = serde_json::from_value(v).unwrap();
    assert_eq!(c.vector_size, 1024);
    assert_eq!(c.max_retries, 5);
    assert!(c.validate().is_ok());
    assert!(!format!("{c:?}").contains("sk-123"));
    let mut bad = c.clone();
    bad.collection_prefix = "bad prefix!".into();
    assert_eq!(bad.validate().unwrap_err().kind(), ErrorKind::Config);
    let mut bad = c.clone();
    bad.extra_fields
        .insert("user_id".into(), storage_dashvector::FieldKind::String);
    assert_eq!(bad.validate().unwrap_err().kind(), ErrorKind::Config);
    let mut bad = c;
    bad.batch_size = 5000;
    assert_eq!(bad.validate().unwrap_err().kind(), ErrorKind::Config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_url_special_characters_round_trip() {
    let (_fake, b) = common::open(DIM, false).await;
    let ids = ["a+b", "c=d", "e#f", "g%h", "i@j!$", "k.l-m_n"];
    let batch: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| context(id, ContextType::Entity, i as u64))
        .collect();
    b.batch_upsert_processed_context(&batch).await.unwrap();
    let wanted: Vec<String> = ids.iter().rev().map(|s| s.to_string()).collect();
    let got = b.get_by_ids(&wanted, None).await.unwrap();
    assert_eq!(got.into_iter().map(|c| c.id).collect::<Vec<_>>(), wanted);
    assert_eq!(
        b.delete_contexts(
            &["a+b".into(), "a+b".into(), "zz".into()],
            ContextType::Entity
        )
        .await
        .unwrap(),
        1
    );
    assert!(
        b.get_processed_context("a+b", ContextType::Entity, false)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.get_processed_context("c=d", ContextType::Entity, true)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_from_the_original_yaml_shape_with_env_substitution() {
    let fake = FakeDashVector::start(common::TOKEN).await;
    let yaml = r#"
storage:
  enabled: true
  backends:
    - name: vectors
      storage_type: vector_db
      backend: dashvector
      config:
        endpoint: ${DV_ENDPOINT}
        api_key: ${DV_KEY}
        vector_size: ${DV_DIM:8}
        collection_prefix: yaml_
        extra_fields: {project: STRING}
        max_retries: "2"
"#;
    let endpoint = fake.endpoint();
    let app = storage_core::config::parse_config(yaml, |k| match k {
        "DV_ENDPOINT" => Some(endpoint.clone()),
        "DV_KEY" => Some(common::TOKEN.to_owned()),
        _ => None,
    })
    .expect("config");
    let backend = &app.storage.backends[0];
    assert!(!format!("{backend:?}").contains(common::TOKEN));
    let config: DashVectorConfig = backend.parse().expect("dashvector config");
    assert_eq!(config.vector_size, 8);
    assert_eq!(config.max_retries, 2);
    let b = DashVectorBackend::open(config).await.expect("open");
    assert!(fake.schema_of("yaml_knowledge").is_some());
    b.upsert_processed_context(&context("y1", ContextType::Knowledge, 1))
        .await
        .unwrap();
    assert_eq!(fake.doc_count("yaml_knowledge"), 1);
    b.health_check().await.unwrap();
}
