//! The facade's routing, auto-embedding and global accessor, on the in-memory reference
//! vector backend (no files, no servers).

use std::sync::Arc;

use async_trait::async_trait;
use opencontext_storage::config::parse_config;
use opencontext_storage::testkit::MemoryVectorBackend;
use opencontext_storage::{
    BackendConfig, ContextType, Embedder, ErrorKind, FactoryContext, ProcessedContext, Result,
    SearchQuery, StorageBackendFactory, UnifiedStorage, VectorStorageBackend, Vectorize,
    default_factory, get_storage, init_storage_with, reset_storage,
};

/// The default factory plus the in-memory reference backend under `memory`.
fn factory() -> StorageBackendFactory {
    let mut f = default_factory();
    f.register_vector("memory", |config: BackendConfig, ctx: FactoryContext| {
        Box::pin(async move {
            let dim: usize = config.config["vector_size"]
                .to_string()
                .trim_matches('"')
                .parse()
                .expect("vector_size");
            Ok(
                Arc::new(MemoryVectorBackend::new(dim, ctx.consumption_enabled))
                    as Arc<dyn VectorStorageBackend>,
            )
        })
    });
    f
}

#[derive(Debug)]
struct LengthEmbedder;

#[async_trait]
impl Embedder for LengthEmbedder {
    fn dimension(&self) -> usize {
        3
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| vec![t.len() as f32, 1.0, 0.0])
            .collect())
    }
}

#[tokio::test]
async fn contexts_without_vectors_are_embedded_once_and_found() {
    let storage = UnifiedStorage::builder()
        .vector(Arc::new(MemoryVectorBackend::new(3, false)))
        .embedder(Arc::new(LengthEmbedder))
        .build()
        .unwrap();
    let a = ProcessedContext::new(ContextType::Knowledge, "abc");
    let mut b = ProcessedContext::new(ContextType::Knowledge, "x");
    b.vectorize.vector = Some(vec![0.0, 0.0, 1.0]);
    storage
        .batch_upsert_processed_context(&[a.clone(), b.clone()])
        .await
        .unwrap();
    let got = storage
        .get_processed_context(&a.id, ContextType::Knowledge, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.vectorize.vector, Some(vec![3.0, 1.0, 0.0]));
    let got = storage
        .get_processed_context(&b.id, ContextType::Knowledge, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.vectorize.vector,
        Some(vec![0.0, 0.0, 1.0]),
        "a given vector is kept"
    );

    let hits = storage
        .search_vectorize(&Vectorize::text("abc"), SearchQuery::new(vec![]).top_k(1))
        .await
        .unwrap();
    assert_eq!(hits[0].context.id, a.id);
}

#[tokio::test]
async fn missing_backends_and_embedders_are_clear_errors() {
    let storage = UnifiedStorage::builder()
        .vector(Arc::new(MemoryVectorBackend::new(3, false)))
        .build()
        .unwrap();
    let e = storage
        .upsert_processed_context(&ProcessedContext::new(ContextType::Event, "t"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("no embedder"), "{e}");
    assert_eq!(e.backend_name(), "memory");
    let e = storage.document().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotInitialized);
    let e = UnifiedStorage::builder()
        .vector(Arc::new(MemoryVectorBackend::new(4, false)))
        .embedder(Arc::new(LengthEmbedder))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn factory_selection_and_unknown_backends() {
    let cfg = parse_config(
        r#"
storage:
  backends:
    - {name: a, storage_type: vector_db, backend: nonexistent}
    - {name: b, storage_type: vector_db, backend: memory, default: true, config: {vector_size: "3"}}
"#,
        |_| None,
    )
    .unwrap();
    let storage = UnifiedStorage::from_config_with(&cfg, &factory(), None)
        .await
        .unwrap();
    assert_eq!(storage.vector().unwrap().name(), "memory");
    assert_eq!(storage.vector().unwrap().dimension(), 3);

    let cfg = parse_config(
        "storage:\n  backends:\n    - {name: a, storage_type: vector_db, backend: nonexistent}\n",
        |_| None,
    )
    .unwrap();
    let e = UnifiedStorage::from_config_with(&cfg, &factory(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("nonexistent"), "{e}");
    assert!(
        e.to_string().contains("memory"),
        "the error lists what is registered: {e}"
    );
}

#[tokio::test]
async fn global_accessor_initialises_once_under_concurrency() {
    let cfg = parse_config(
        "storage:\n  backends:\n    - {storage_type: vector_db, backend: memory, config: {vector_size: 3}}\n",
        |_| None,
    )
    .unwrap();
    reset_storage().await.unwrap();
    assert_eq!(get_storage().unwrap_err().kind(), ErrorKind::NotInitialized);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cfg = cfg.clone();
            tokio::spawn(async move { init_storage_with(&cfg, &factory()).await.map(|_| ()) })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict),
        }
    }
    assert_eq!(ok, 1, "exactly one initialisation wins");
    let s1 = get_storage().unwrap();
    let s2 = get_storage().unwrap();
    assert!(Arc::ptr_eq(&s1, &s2));
    reset_storage().await.unwrap();
    assert!(get_storage().is_err());
    assert_eq!(
        s1.get_processed_context_count(ContextType::Event)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotInitialized,
        "reset closes the backends"
    );
}
