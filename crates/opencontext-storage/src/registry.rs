//! The backends this build registers, one `cfg`-gated line each.

#[allow(unused_imports)]
use std::sync::Arc;

#[allow(unused_imports)]
use storage_core::{
    BackendConfig, DocumentStorageBackend, FactoryContext, StorageBackendFactory,
    VectorStorageBackend,
};

/// A factory with every backend enabled by this build's Cargo features, in this order
/// (`backend: default` picks the first of a storage type):
///
/// | name         | storage type  | feature                                                     |
/// |--------------|---------------|-------------------------------------------------------------|
/// | `qdrant`     | `vector_db`   | `qdrant-local` (`path` set), `qdrant-remote` (`url`/`host`) |
/// | `vikingdb`   | `vector_db`   | `vikingdb`                                                  |
/// | `dashvector` | `vector_db`   | `dashvector`                                                |
/// | `chromadb`   | `vector_db`   | `chromadb`                                                  |
/// | `memory`     | `vector_db`   | `testkit`                                                   |
/// | `sqlite`     | `document_db` | `sqlite`                                                    |
/// | `mysql`      | `document_db` | `mysql`                                                     |
pub fn default_factory() -> StorageBackendFactory {
    #[allow(unused_mut)]
    let mut factory = StorageBackendFactory::new();

    #[cfg(any(feature = "qdrant-local", feature = "qdrant-remote"))]
    factory.register_vector("qdrant", |config: BackendConfig, ctx: FactoryContext| {
        Box::pin(qdrant::open(config, ctx))
    });

    #[cfg(feature = "vikingdb")]
    factory.register_vector("vikingdb", |config: BackendConfig, ctx: FactoryContext| {
        Box::pin(async move {
            let viking: storage_viking::VikingConfig =
                config.parse_ignoring(storage_viking::VikingConfig::ORIGINAL_KEYS_NOT_USED)?;
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
                let mut dv: storage_dashvector::DashVectorConfig = config
                    .parse_ignoring(storage_dashvector::DashVectorConfig::ORIGINAL_KEYS_NOT_USED)?;
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

/// The `qdrant` backend: one name, two modes, chosen by the config keys as the original's
/// `QdrantClient` does: `path` opens the embedded engine (local mode), `url` or `host` a
/// server (remote mode). Each mode is behind its own feature.
#[cfg(any(feature = "qdrant-local", feature = "qdrant-remote"))]
mod qdrant {
    use std::sync::Arc;

    use storage_core::{BackendConfig, FactoryContext, Result, StorageError, VectorStorageBackend};

    /// Which mode a config asks for.
    #[derive(Debug, PartialEq, Eq)]
    pub(super) enum Mode {
        Local,
        Remote,
    }

    /// `path` means local mode (as before remote mode existed, even when `host` is also
    /// set); otherwise `url` or `host` means remote mode.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] when none of them is set.
    pub(super) fn mode(config: &BackendConfig) -> Result<Mode> {
        let set = |key: &str| {
            config
                .config
                .get(key)
                .is_some_and(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()))
        };
        if set("path") {
            if set("url") || set("host") {
                tracing::warn!(
                    backend = %config.name,
                    "qdrant config sets both 'path' and 'url'/'host'; using the embedded store at 'path'"
                );
            }
            Ok(Mode::Local)
        } else if set("url") || set("host") {
            Ok(Mode::Remote)
        } else {
            Err(StorageError::config(format!(
                "backend '{}' (qdrant): set 'path' for the embedded store or 'url'/'host' for a \
                 Qdrant server",
                config.name
            )))
        }
    }

    #[cfg_attr(
        not(all(feature = "qdrant-local", feature = "qdrant-remote")),
        allow(unused_variables)
    )]
    pub(super) async fn open(
        config: BackendConfig,
        ctx: FactoryContext,
    ) -> Result<Arc<dyn VectorStorageBackend>> {
        match mode(&config)? {
            Mode::Local => local(config, ctx).await,
            Mode::Remote => remote(config, ctx).await,
        }
    }

    #[cfg(feature = "qdrant-local")]
    async fn local(
        config: BackendConfig,
        ctx: FactoryContext,
    ) -> Result<Arc<dyn VectorStorageBackend>> {
        // The server keys may sit next to `path` (then `mode` has warned that they are unused).
        let mut local: storage_qdrant::QdrantLocalConfig =
            config.parse_ignoring(&["url", "host", "port", "grpc_port", "https", "api_key"])?;
        local.path = storage_core::config::resolve_path(
            "qdrant config.path",
            &local.path,
            ctx.base_dir.as_deref(),
        )?;
        local.todo_embeddings = ctx.consumption_enabled;
        let backend = storage_qdrant::QdrantLocalBackend::open(local).await?;
        Ok(Arc::new(backend) as Arc<dyn VectorStorageBackend>)
    }

    #[cfg(not(feature = "qdrant-local"))]
    async fn local(
        config: BackendConfig,
        _: FactoryContext,
    ) -> Result<Arc<dyn VectorStorageBackend>> {
        Err(missing_feature(&config, "path", "embedded", "qdrant-local"))
    }

    #[cfg(feature = "qdrant-remote")]
    async fn remote(
        config: BackendConfig,
        ctx: FactoryContext,
    ) -> Result<Arc<dyn VectorStorageBackend>> {
        // An empty `path` (the original's template with local mode commented out) is not read.
        let mut remote: storage_qdrant::QdrantRemoteConfig = config.parse_ignoring(&["path"])?;
        remote.todo_embeddings = ctx.consumption_enabled;
        let backend = storage_qdrant::QdrantRemoteBackend::connect(remote).await?;
        Ok(Arc::new(backend) as Arc<dyn VectorStorageBackend>)
    }

    #[cfg(not(feature = "qdrant-remote"))]
    async fn remote(
        config: BackendConfig,
        _: FactoryContext,
    ) -> Result<Arc<dyn VectorStorageBackend>> {
        Err(missing_feature(
            &config,
            "url'/'host",
            "server",
            "qdrant-remote",
        ))
    }

    #[cfg(not(all(feature = "qdrant-local", feature = "qdrant-remote")))]
    fn missing_feature(
        config: &BackendConfig,
        key: &str,
        mode: &str,
        feature: &str,
    ) -> StorageError {
        StorageError::config(format!(
            "backend '{}' (qdrant) sets '{key}', which selects the {mode} mode, but this build \
             of opencontext-storage lacks its Cargo feature `{feature}`",
            config.name
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use storage_core::{ErrorKind, StorageType};

        fn config(json: serde_json::Value) -> BackendConfig {
            BackendConfig {
                name: "vec".into(),
                storage_type: StorageType::VectorDb,
                backend: "qdrant".into(),
                default: true,
                config: json.as_object().unwrap().clone(),
            }
        }

        #[test]
        fn keys_select_the_mode() {
            use serde_json::json;
            assert_eq!(
                mode(&config(json!({"path": "./q", "vector_size": 8}))).unwrap(),
                Mode::Local
            );
            assert_eq!(
                mode(&config(
                    json!({"path": "./q", "host": "x", "vector_size": 8})
                ))
                .unwrap(),
                Mode::Local
            );
            assert_eq!(
                mode(&config(json!({"url": "http://q:6333", "vector_size": 8}))).unwrap(),
                Mode::Remote
            );
            assert_eq!(
                mode(&config(json!({"path": "", "host": "q", "vector_size": 8}))).unwrap(),
                Mode::Remote
            );
            let e = mode(&config(json!({"vector_size": 8}))).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("'url'/'host'"), "{e}");
        }

        /// A mode whose feature is off is a clear configuration error, not a silent fallback.
        #[cfg(not(feature = "qdrant-remote"))]
        #[tokio::test]
        async fn remote_mode_without_its_feature_is_a_config_error() {
            let c = config(serde_json::json!({"url": "http://127.0.0.1:9", "vector_size": 8}));
            let e = open(c, FactoryContext::default()).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("`qdrant-remote`"), "{e}");
        }

        #[cfg(not(feature = "qdrant-local"))]
        #[tokio::test]
        async fn local_mode_without_its_feature_is_a_config_error() {
            let c = config(serde_json::json!({"path": "/nonexistent/q", "vector_size": 8}));
            let e = open(c, FactoryContext::default()).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("`qdrant-local`"), "{e}");
        }

        /// With the feature on, `url` reaches the remote backend: against a port nobody
        /// listens on, the connection fails as unavailable (retryable), not as a config error.
        #[cfg(feature = "qdrant-remote")]
        #[tokio::test]
        async fn url_selects_the_remote_backend() {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let c = config(serde_json::json!({
                "url": format!("http://127.0.0.1:{port}"), "vector_size": "8",
                "max_retries": 0, "connect_timeout": 1
            }));
            let e = open(c, FactoryContext::default()).await.unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                "{e}"
            );
            assert_eq!(e.backend_name(), "qdrant-remote");
        }
    }
}
