//! The backends this build registers, one `cfg`-gated line each.

use std::sync::Arc;

#[allow(unused_imports)]
use storage_core::{
    BackendConfig, DocumentStorageBackend, FactoryContext, StorageBackendFactory,
    VectorStorageBackend,
};

/// A factory with every backend enabled by this build's Cargo features, in this order
/// (`backend: default` picks the first of a storage type):
///
/// | name         | storage type  | feature        |
/// |--------------|---------------|----------------|
/// | `qdrant`     | `vector_db`   | `qdrant-local` |
/// | `vikingdb`   | `vector_db`   | `vikingdb`     |
/// | `dashvector` | `vector_db`   | `dashvector`   |
/// | `chromadb`   | `vector_db`   | `chromadb`     |
/// | `memory`     | `vector_db`   | `testkit`      |
/// | `sqlite`     | `document_db` | `sqlite`       |
/// | `mysql`      | `document_db` | `mysql`        |
pub fn default_factory() -> StorageBackendFactory {
    #[allow(unused_mut)]
    let mut factory = StorageBackendFactory::new();

    #[cfg(feature = "qdrant-local")]
    factory.register_vector("qdrant", |config: BackendConfig, ctx: FactoryContext| {
        Box::pin(async move {
            let mut local: storage_qdrant::QdrantLocalConfig = config.parse()?;
            local.path = storage_core::config::resolve_path(
                "qdrant config.path",
                &local.path,
                ctx.base_dir.as_deref(),
            )?;
            local.todo_embeddings = ctx.consumption_enabled;
            let backend = storage_qdrant::QdrantLocalBackend::open(local).await?;
            Ok(Arc::new(backend) as Arc<dyn VectorStorageBackend>)
        })
    });

    #[cfg(feature = "vikingdb")]
    factory.register_vector("vikingdb", |config: BackendConfig, ctx: FactoryContext| {
        Box::pin(async move {
            let viking: storage_viking::VikingConfig = config.parse()?;
            let viking = viking.with_todo_embeddings(ctx.consumption_enabled);
            let backend = storage_viking::VikingBackend::open(viking).await?;
            Ok(Arc::new(backend) as Arc<dyn VectorStorageBackend>)
        })
    });
    #[cfg(feature = "dashvector")]
    factory.register_vector(
        "dashvector",
        |config: BackendConfig, ctx: FactoryContext| {
            Box::pin(async move {
                let mut dv: storage_dashvector::DashVectorConfig = config.parse()?;
                dv.todo_embeddings = ctx.consumption_enabled;
                let backend = storage_dashvector::DashVectorBackend::open(dv).await?;
                Ok(Arc::new(backend) as Arc<dyn VectorStorageBackend>)
            })
        },
    );
    #[cfg(feature = "chromadb")]
    factory.register_vector("chromadb", |config: BackendConfig, ctx: FactoryContext| {
        Box::pin(async move {
            let mut chroma: storage_chroma::ChromaConfig = config.parse()?;
            chroma.todo_embeddings = ctx.consumption_enabled;
            let backend = storage_chroma::ChromaBackend::open(chroma).await?;
            Ok(Arc::new(backend) as Arc<dyn VectorStorageBackend>)
        })
    });

    #[cfg(feature = "testkit")]
    factory.register_vector("memory", |config: BackendConfig, ctx: FactoryContext| {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct MemoryConfig {
                #[serde(deserialize_with = "storage_core::config::lenient")]
                vector_size: usize,
            }
            let c: MemoryConfig = config.parse()?;
            Ok(Arc::new(storage_core::testkit::MemoryVectorBackend::new(
                c.vector_size,
                ctx.consumption_enabled,
            )) as Arc<dyn VectorStorageBackend>)
        })
    });

    #[cfg(feature = "sqlite")]
    factory.register_document("sqlite", |config: BackendConfig, ctx: FactoryContext| {
        Box::pin(async move {
            let mut sqlite: storage_sqlite::SqliteConfig = config.parse()?;
            sqlite.path = storage_core::config::resolve_path(
                "sqlite config.path",
                &sqlite.path,
                ctx.base_dir.as_deref(),
            )?;
            let backend = storage_sqlite::SqliteBackend::open(sqlite).await?;
            Ok(Arc::new(backend) as Arc<dyn DocumentStorageBackend>)
        })
    });

    #[cfg(feature = "mysql")]
    factory.register_document("mysql", |config: BackendConfig, _ctx: FactoryContext| {
        Box::pin(async move {
            let mysql: storage_mysql::MysqlConfig = config.parse()?;
            let backend = storage_mysql::MysqlBackend::open(mysql).await?;
            Ok(Arc::new(backend) as Arc<dyn DocumentStorageBackend>)
        })
    });

    factory
}
