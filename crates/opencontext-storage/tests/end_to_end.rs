//! The embedded defaults end to end: a YAML config in the original's shape (with `${VAR}`
//! substitution) opens SQLite and the local Qdrant engine; contexts, records, search, scroll
//! and hierarchy search work through the facade; everything survives a reopen.
#![cfg(all(feature = "sqlite", feature = "qdrant-local"))]

use futures::TryStreamExt;
use opencontext_storage::config::parse_config;
use opencontext_storage::{
    AppConfig, ContextType, EntityUpsert, ErrorKind, Filter, HierarchyQuery, ProcessedContext,
    ProfileUpsert, Scope, ScrollQuery, SearchQuery, TenantKey, UnifiedStorage,
};

fn config(dir: &std::path::Path) -> AppConfig {
    let yaml = r#"
storage:
  enabled: true
  backends:
    - name: default_vector
      storage_type: vector_db
      backend: qdrant
      default: true
      config:
        path: "${BASE}/persist/qdrant"
        vector_size: "${DIM:4}"
    - name: document_store
      storage_type: document_db
      backend: sqlite
      default: true
      config:
        path: "${BASE}/persist/sqlite/app.db"
consumption:
  enabled: "${CONSUMPTION_ENABLED:true}"
"#;
    let base = dir.to_str().unwrap().to_owned();
    parse_config(yaml, move |name| (name == "BASE").then(|| base.clone())).unwrap()
}

fn ctx(id: &str, t: ContextType, v: [f32; 4], user: &str) -> ProcessedContext {
    let mut c = ProcessedContext::new(t, format!("text {id}"));
    c.id = id.into();
    c.vectorize.vector = Some(v.to_vec());
    c.properties.user_id = Some(user.into());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_defaults_work_end_to_end_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let storage = UnifiedStorage::from_config(&cfg).await.unwrap();
    assert_eq!(storage.vector().unwrap().name(), "qdrant");
    assert_eq!(storage.document().unwrap().name(), "sqlite");

    let mut summary = ctx("day-1", ContextType::Event, [0.0, 1.0, 0.0, 0.0], "u1");
    summary.properties.hierarchy_level = 1;
    summary.properties.time_bucket = Some("2026-02-21".into());
    let mut doc = ctx("doc-1", ContextType::Document, [0.0, 0.0, 1.0, 0.0], "u1");
    doc.properties.source_file_key = Some("u1:a.md".into());
    storage
        .batch_upsert_processed_context(&[
            ctx("k1", ContextType::Knowledge, [1.0, 0.0, 0.0, 0.0], "u1"),
            ctx("k2", ContextType::Knowledge, [0.9, 0.1, 0.0, 0.0], "u2"),
            summary,
            doc,
        ])
        .await
        .unwrap();
    let key = TenantKey::new("u1", "default", "default");
    storage
        .upsert_profile(&ProfileUpsert::new(key.clone(), "likes Rust"))
        .await
        .unwrap();
    let entity_id = storage
        .upsert_entity(&EntityUpsert::new(key.clone(), "Alice", "a colleague"))
        .await
        .unwrap();
    storage
        .upsert_todo_embedding(7, "write tests", &[1.0, 0.0, 0.0, 0.0], None)
        .await
        .unwrap();

    let hits = storage
        .search(
            &SearchQuery::new(vec![1.0, 0.0, 0.0, 0.0])
                .top_k(5)
                .scope(Scope::user("u1")),
        )
        .await
        .unwrap();
    assert_eq!(hits[0].context.id, "k1");
    assert!(
        hits.iter()
            .all(|h| h.context.properties.user_id.as_deref() == Some("u1"))
    );
    let filtered = storage
        .search(&SearchQuery::new(vec![1.0, 0.0, 0.0, 0.0]).filter(Filter::eq("user_id", "u2")))
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].context.id, "k2");
    let days = storage
        .search_by_hierarchy(&HierarchyQuery {
            context_type: ContextType::Event,
            hierarchy_level: 1,
            time_bucket_start: Some("2026-02-01".into()),
            time_bucket_end: Some("2026-02-28".into()),
            user_id: Some("u1".into()),
            top_k: 10,
        })
        .await
        .unwrap();
    assert_eq!(days.len(), 1);
    storage.close().await.unwrap();

    // Reopen: everything is still there; the stores were closed cleanly, so the lock is free.
    let storage = UnifiedStorage::from_config(&cfg).await.unwrap();
    let all: Vec<ProcessedContext> = storage
        .scroll_processed_contexts(ScrollQuery {
            batch_size: 2,
            ..ScrollQuery::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        storage.get_profile(&key).await.unwrap().unwrap().content,
        "likes Rust"
    );
    assert_eq!(
        storage.get_entity(&key, "Alice").await.unwrap().unwrap().id,
        entity_id
    );
    let todos = storage
        .search_similar_todos(&[1.0, 0.0, 0.0, 0.0], 5, 0.5)
        .await
        .unwrap();
    assert_eq!(todos[0].todo_id, 7);
    assert_eq!(
        storage
            .delete_by_source_file("u1:a.md", Some("u1"))
            .await
            .unwrap(),
        1
    );

    // While it is open, a second instance on the same directory is refused cleanly.
    let e = UnifiedStorage::from_config(&cfg).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    storage.close().await.unwrap();
}
