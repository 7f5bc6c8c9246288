//! Behaviour of every operation: CRUD, search (metric, merge, filters), validation,
//! deletion by source file, todo embeddings, close.
#![cfg(feature = "local")]

mod common;

use common::{ctx, normalised, open, vector};
use serde_json::json;
use storage_core::model::ContextType;
use storage_core::{
    ErrorKind, Filter, ListQuery, Scope, SearchQuery, StorageBackend, StorageType,
    VectorStorageBackend, validate,
};
use storage_qdrant::{QdrantLocalBackend, QdrantLocalConfig};

const DIM: usize = 4;

#[tokio::test]
async fn crud_round_trip_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), DIM).await;
    assert_eq!(store.name(), "qdrant");
    assert_eq!(store.storage_type(), StorageType::VectorDb);
    assert_eq!(store.dimension(), DIM);
    assert_eq!(
        store.get_collection_names().await.unwrap(),
        ["profile", "entity", "document", "event", "knowledge"]
    );
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        0
    );

    let mut a = ctx("a", ContextType::Event, vec![3.0, 4.0, 0.0, 0.0]);
    a.extracted_data.keywords = vec!["k1".into(), "k2".into()];
    a.metadata.insert("project".into(), json!("alpha"));
    let b = ctx("b", ContextType::Knowledge, vector(DIM, 2));
    let ids = store
        .batch_upsert_processed_context(&[a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(ids, ["a", "b"]);

    let got = store
        .get_processed_context("a", ContextType::Event, false)
        .await
        .unwrap()
        .unwrap();
    let mut want = a.clone();
    want.vectorize.vector = None;
    assert_eq!(got, want);
    // Cosine: the engine stores unit vectors.
    let got = store
        .get_processed_context("a", ContextType::Event, true)
        .await
        .unwrap()
        .unwrap();
    let v = got.vectorize.vector.unwrap();
    assert!(
        v.iter()
            .zip(normalised(&[3.0, 4.0, 0.0, 0.0]))
            .all(|(x, y)| (x - y).abs() < 1e-6),
        "{v:?}"
    );
    assert!(
        store
            .get_processed_context("a", ContextType::Knowledge, false)
            .await
            .unwrap()
            .is_none()
    );

    let counts = store.get_all_processed_context_counts().await.unwrap();
    assert_eq!(counts[&ContextType::Event], 1);
    assert_eq!(counts[&ContextType::Knowledge], 1);
    assert_eq!(counts[&ContextType::Profile], 0);

    let by_ids = store
        .get_by_ids(&["b".into(), "zz".into(), "a".into()], None)
        .await
        .unwrap();
    assert_eq!(
        by_ids.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert!(
        store
            .get_by_ids(&["b".into()], Some(ContextType::Event))
            .await
            .unwrap()
            .is_empty()
    );

    // Overwrite.
    let mut a2 = a.clone();
    a2.extracted_data.title = Some("new".into());
    store.upsert_processed_context(&a2).await.unwrap();
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        1
    );
    let got = store
        .get_processed_context("a", ContextType::Event, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.extracted_data.title.as_deref(), Some("new"));

    assert_eq!(
        store
            .delete_contexts(
                &["a".into(), "a".into(), "missing".into()],
                ContextType::Event
            )
            .await
            .unwrap(),
        1
    );
    assert!(
        !store
            .delete_processed_context("a", ContextType::Event)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        0
    );
    let listed = store
        .get_all_processed_contexts(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(
        listed.keys().copied().collect::<Vec<_>>(),
        [ContextType::Knowledge]
    );
}

#[tokio::test]
async fn invalid_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), DIM).await;
    let good = ctx("good", ContextType::Event, vector(DIM, 1));
    let mut cases = vec![
        ctx("short", ContextType::Event, vec![1.0, 2.0]),
        ctx("nan", ContextType::Event, vec![1.0, f32::NAN, 0.0, 0.0]),
        ctx(
            "inf",
            ContextType::Event,
            vec![1.0, f32::INFINITY, 0.0, 0.0],
        ),
        ctx("zero", ContextType::Event, vec![0.0; DIM]),
        ctx("", ContextType::Event, vector(DIM, 1)),
    ];
    let mut shadow = ctx("shadow", ContextType::Event, vector(DIM, 1));
    shadow.metadata.insert("user_id".into(), json!("x"));
    cases.push(shadow);
    let mut big = ctx("big", ContextType::Event, vector(DIM, 1));
    big.metadata.insert(
        "blob".into(),
        json!("x".repeat(validate::MAX_PAYLOAD_BYTES)),
    );
    cases.push(big);
    let mut no_vec = ctx("novec", ContextType::Event, vector(DIM, 1));
    no_vec.vectorize.vector = None;
    cases.push(no_vec);
    for bad in cases {
        let err = store
            .batch_upsert_processed_context(&[good.clone(), bad.clone()])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}: {err}", bad.id);
    }
    let err = store
        .batch_upsert_processed_context(&[good.clone(), good.clone()])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        0,
        "nothing half-written"
    );

    let err = store
        .search(&SearchQuery::new(vec![1.0; DIM + 1]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = store
        .search(&SearchQuery::new(vec![1.0; DIM]).filter(Filter::eq("bad key", 1)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = store
        .search(&SearchQuery::new(vec![1.0; DIM]).filter(Filter::eq("entities", "x")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = store
        .get_processed_context("", ContextType::Event, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = QdrantLocalBackend::open(QdrantLocalConfig::new(dir.path().join("x"), 0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn search_ranks_by_cosine_across_types_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), DIM).await;
    let mut items = Vec::new();
    let specs = [
        (
            "e1",
            ContextType::Event,
            [1.0, 0.0, 0.0, 0.0],
            "u1",
            "2026-02-01",
        ),
        (
            "e2",
            ContextType::Event,
            [1.0, 1.0, 0.0, 0.0],
            "u2",
            "2026-02-15",
        ),
        (
            "k1",
            ContextType::Knowledge,
            [2.0, 0.1, 0.0, 0.0],
            "u1",
            "2026-03-01",
        ),
        (
            "k2",
            ContextType::Knowledge,
            [-1.0, 0.0, 0.0, 0.0],
            "u1",
            "2026-02-10",
        ),
        (
            "d1",
            ContextType::Document,
            [0.0, 0.0, 1.0, 0.0],
            "u1",
            "2026-02-11",
        ),
    ];
    for (id, t, v, user, bucket) in specs {
        let mut c = ctx(id, t, v.to_vec());
        c.properties.user_id = Some(user.into());
        c.properties.time_bucket = Some(bucket.into());
        c.extracted_data.importance = id.len() as u8 + if id.starts_with('k') { 3 } else { 0 };
        items.push(c);
    }
    store.batch_upsert_processed_context(&items).await.unwrap();

    let q = vec![1.0, 0.0, 0.0, 0.0];
    let hits = store
        .search(&SearchQuery::new(q.clone()).top_k(10))
        .await
        .unwrap();
    let ids: Vec<_> = hits.iter().map(|h| h.context.id.as_str()).collect();
    assert_eq!(ids, ["e1", "k1", "e2", "d1", "k2"]);
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert!((hits[2].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-5);
    assert!(hits[3].score.abs() < 1e-5);
    assert!((hits[4].score + 1.0).abs() < 1e-5);
    assert!(hits.iter().all(|h| (-1.0..=1.0).contains(&h.score)));
    assert!(hits.iter().all(|h| h.context.vectorize.vector.is_none()));

    let hits = store
        .search(&SearchQuery::new(q.clone()).top_k(2))
        .await
        .unwrap();
    assert_eq!(
        hits.iter()
            .map(|h| h.context.id.as_str())
            .collect::<Vec<_>>(),
        ["e1", "k1"]
    );

    let hits = store
        .search(
            &SearchQuery::new(q.clone())
                .context_types([ContextType::Knowledge])
                .scope(Scope::user("u1")),
        )
        .await
        .unwrap();
    assert_eq!(
        hits.iter()
            .map(|h| h.context.id.as_str())
            .collect::<Vec<_>>(),
        ["k1", "k2"]
    );

    let mut sq = SearchQuery::new(q.clone());
    sq.score_threshold = Some(0.5);
    sq.need_vector = true;
    let hits = store.search(&sq).await.unwrap();
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|h| h.context.vectorize.vector.is_some()));

    // A string range is evaluated exactly (not sent to the engine as a numeric range).
    let hits = store
        .search(&SearchQuery::new(q.clone()).filter(Filter::between(
            "time_bucket",
            "2026-02-10",
            "2026-02-28",
        )))
        .await
        .unwrap();
    assert_eq!(
        hits.iter()
            .map(|h| h.context.id.as_str())
            .collect::<Vec<_>>(),
        ["e2", "d1", "k2"]
    );
    let hits = store
        .search(
            &SearchQuery::new(q.clone())
                .filter(Filter::gte("time_bucket", "2026-02-10").and(Filter::gte("importance", 5)))
                .scope(Scope::user("u1")),
        )
        .await
        .unwrap();
    assert_eq!(
        hits.iter()
            .map(|h| h.context.id.as_str())
            .collect::<Vec<_>>(),
        ["k1", "k2"]
    );

    // Or / not / not-in natively.
    let f = Filter::eq("user_id", "u2").or(Filter::is_in("time_bucket", ["2026-02-11"]));
    let hits = store
        .search(&SearchQuery::new(q.clone()).filter(f))
        .await
        .unwrap();
    assert_eq!(
        hits.iter()
            .map(|h| h.context.id.as_str())
            .collect::<Vec<_>>(),
        ["e2", "d1"]
    );
    let f = Filter::not_in("user_id", ["u1"]).not();
    assert_eq!(
        store
            .search(&SearchQuery::new(q.clone()).filter(f))
            .await
            .unwrap()
            .len(),
        4
    );
    let caps = store.capabilities();
    assert!(caps.filter_or && caps.filter_negation && caps.string_ranges && caps.persistent);
    assert!(!caps.todo_embeddings);
    assert!(
        store
            .search(&SearchQuery::new(q).top_k(0))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn delete_by_source_file_counts_and_respects_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), DIM).await;
    let mut items = Vec::new();
    for (i, (t, user, key)) in [
        (ContextType::Document, "u1", "u1:a.md"),
        (ContextType::Document, "u1", "u1:a.md"),
        (ContextType::Knowledge, "u1", "u1:a.md"),
        (ContextType::Document, "u2", "u1:a.md"),
        (ContextType::Document, "u1", "u1:b.md"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = ctx(&format!("c{i}"), t, vector(DIM, i as u64));
        c.properties.user_id = Some(user.into());
        c.properties.source_file_key = Some(key.into());
        items.push(c);
    }
    store.batch_upsert_processed_context(&items).await.unwrap();
    assert_eq!(
        store
            .delete_by_source_file("u1:a.md", Some("u1"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .delete_by_source_file("u1:a.md", Some("u1"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.delete_by_source_file("u1:a.md", None).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Document)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_by_source_file("", None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn todo_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let off = open(dir.path(), DIM).await;
    let e = off
        .upsert_todo_embedding(1, "x", &[1.0; DIM], None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(
        off.search_similar_todos(&[1.0; DIM], 5, 0.0)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        off.delete_todo_embedding(1).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    off.close().await.unwrap();

    let store = QdrantLocalBackend::open(
        QdrantLocalConfig::new(dir.path(), DIM).with_todo_embeddings(true),
    )
    .await
    .unwrap();
    assert!(store.capabilities().todo_embeddings);
    assert_eq!(
        store.get_collection_names().await.unwrap().last().unwrap(),
        "todo"
    );
    let meta = json!({"urgency": 3}).as_object().unwrap().clone();
    store
        .upsert_todo_embedding(1, "buy milk", &[1.0, 0.0, 0.0, 0.0], Some(&meta))
        .await
        .unwrap();
    store
        .upsert_todo_embedding(2, "call bob", &[0.0, 1.0, 0.0, 0.0], None)
        .await
        .unwrap();
    store
        .upsert_todo_embedding(3, "buy bread", &[1.0, 0.2, 0.0, 0.0], None)
        .await
        .unwrap();
    store
        .upsert_todo_embedding(3, "buy bread and eggs", &[1.0, 0.2, 0.0, 0.0], None)
        .await
        .unwrap();

    let hits = store
        .search_similar_todos(&[1.0, 0.0, 0.0, 0.0], 10, 0.5)
        .await
        .unwrap();
    assert_eq!(hits.iter().map(|h| h.todo_id).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(hits[1].content, "buy bread and eggs");
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert_eq!(
        store
            .search_similar_todos(&[1.0, 0.0, 0.0, 0.0], 1, -1.0)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.delete_todo_embedding(1).await.unwrap());
    assert!(!store.delete_todo_embedding(1).await.unwrap());
    assert_eq!(
        store
            .upsert_todo_embedding(-1, "x", &[1.0; DIM], None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        store
            .upsert_todo_embedding(4, "x", &[1.0; 2], None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let shadow = json!({"content": "y"}).as_object().unwrap().clone();
    let e = store
        .upsert_todo_embedding(4, "x", &[1.0; DIM], Some(&shadow))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn optimize_builds_an_index_and_the_store_stays_writable() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = QdrantLocalConfig::new(dir.path(), DIM);
    cfg.indexing_threshold_kb = Some(1);
    let store = QdrantLocalBackend::open(cfg).await.unwrap();
    let batch: Vec<_> = (0..300)
        .map(|i| ctx(&format!("p{i}"), ContextType::Event, vector(DIM, i)))
        .collect();
    store.batch_upsert_processed_context(&batch).await.unwrap();
    store.optimize().await.unwrap();
    store
        .upsert_processed_context(&ctx("after", ContextType::Event, vector(DIM, 1000)))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        301
    );
    let hits = store
        .search(&SearchQuery::new(vector(DIM, 1000)).top_k(1))
        .await
        .unwrap();
    assert_eq!(hits[0].context.id, "after");
    store.close().await.unwrap();
    let store = common::open(dir.path(), DIM).await;
    assert_eq!(
        store
            .get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        301
    );
}
