//! `StorageBackendFactory`: a registry from backend names to constructors.
//!
//! Registration is explicit: the umbrella crate registers each backend its Cargo features
//! enable, in a fixed order (no link-time magic). `backend: default` in a configuration picks
//! the first registered backend of the requested storage type.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::backend::{StorageType, VectorStorageBackend};
use crate::config::BackendConfig;
use crate::document::DocumentStorageBackend;
use crate::error::{Result, StorageError};

/// Settings outside a backend's own `config` that constructors may need.
#[derive(Clone, Debug, Default)]
pub struct FactoryContext {
    /// The original's `consumption.enabled`: whether vector backends create the `todo`
    /// collection.
    pub consumption_enabled: bool,
    /// Directory that relative paths in backend configs are resolved against (the config
    /// file's directory); `None` means the current directory.
    pub base_dir: Option<PathBuf>,
}

/// Builds a vector backend from its configuration.
pub type VectorConstructor = Arc<
    dyn Fn(
            BackendConfig,
            FactoryContext,
        ) -> BoxFuture<'static, Result<Arc<dyn VectorStorageBackend>>>
        + Send
        + Sync,
>;

/// Builds a document backend from its configuration.
pub type DocumentConstructor = Arc<
    dyn Fn(
            BackendConfig,
            FactoryContext,
        ) -> BoxFuture<'static, Result<Arc<dyn DocumentStorageBackend>>>
        + Send
        + Sync,
>;

/// Name → constructor registry for both storage types, in registration order.
#[derive(Clone, Default)]
pub struct StorageBackendFactory {
    vector: Vec<(&'static str, VectorConstructor)>,
    document: Vec<(&'static str, DocumentConstructor)>,
}

impl fmt::Debug for StorageBackendFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageBackendFactory")
            .field("vector", &self.vector_backend_names())
            .field("document", &self.document_backend_names())
            .finish()
    }
}

impl StorageBackendFactory {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) a vector backend constructor under `name`.
    pub fn register_vector<F>(&mut self, name: &'static str, constructor: F)
    where
        F: Fn(
                BackendConfig,
                FactoryContext,
            ) -> BoxFuture<'static, Result<Arc<dyn VectorStorageBackend>>>
            + Send
            + Sync
            + 'static,
    {
        let c: VectorConstructor = Arc::new(constructor);
        match self.vector.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = c,
            None => self.vector.push((name, c)),
        }
    }

    /// Registers (or replaces) a document backend constructor under `name`.
    pub fn register_document<F>(&mut self, name: &'static str, constructor: F)
    where
        F: Fn(
                BackendConfig,
                FactoryContext,
            ) -> BoxFuture<'static, Result<Arc<dyn DocumentStorageBackend>>>
            + Send
            + Sync
            + 'static,
    {
        let c: DocumentConstructor = Arc::new(constructor);
        match self.document.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = c,
            None => self.document.push((name, c)),
        }
    }

    /// Registered vector backend names, in order.
    pub fn vector_backend_names(&self) -> Vec<&'static str> {
        self.vector.iter().map(|(n, _)| *n).collect()
    }

    /// Registered document backend names, in order.
    pub fn document_backend_names(&self) -> Vec<&'static str> {
        self.document.iter().map(|(n, _)| *n).collect()
    }

    fn unknown(&self, config: &BackendConfig) -> StorageError {
        let names = match config.storage_type {
            StorageType::VectorDb => self.vector_backend_names(),
            StorageType::DocumentDb => self.document_backend_names(),
        };
        StorageError::config(format!(
            "backend '{}' of storage type {} is not registered (registered: {}); enable its Cargo feature",
            config.backend,
            config.storage_type,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    }

    /// Creates the vector backend `config` names.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] when the storage type is not `vector_db` or the name is not
    /// registered; otherwise whatever the constructor returns.
    pub async fn create_vector(
        &self,
        config: &BackendConfig,
        ctx: &FactoryContext,
    ) -> Result<Arc<dyn VectorStorageBackend>> {
        if config.storage_type != StorageType::VectorDb {
            return Err(StorageError::config(format!(
                "backend '{}' has storage_type {}, expected vector_db",
                config.name, config.storage_type
            )));
        }
        let ctor = if config.backend == "default" {
            self.vector.first()
        } else {
            self.vector.iter().find(|(n, _)| *n == config.backend)
        }
        .ok_or_else(|| self.unknown(config))?
        .1
        .clone();
        ctor(config.clone(), ctx.clone()).await
    }

    /// Creates the document backend `config` names (see [`Self::create_vector`]).
    pub async fn create_document(
        &self,
        config: &BackendConfig,
        ctx: &FactoryContext,
    ) -> Result<Arc<dyn DocumentStorageBackend>> {
        if config.storage_type != StorageType::DocumentDb {
            return Err(StorageError::config(format!(
                "backend '{}' has storage_type {}, expected document_db",
                config.name, config.storage_type
            )));
        }
        let ctor = if config.backend == "default" {
            self.document.first()
        } else {
            self.document.iter().find(|(n, _)| *n == config.backend)
        }
        .ok_or_else(|| self.unknown(config))?
        .1
        .clone();
        ctor(config.clone(), ctx.clone()).await
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use crate::testkit::MemoryVectorBackend;

    fn factory() -> StorageBackendFactory {
        let mut f = StorageBackendFactory::new();
        for (name, dim) in [("first", 2usize), ("second", 3)] {
            f.register_vector(name, move |_c, ctx| {
                Box::pin(async move {
                    Ok(
                        Arc::new(MemoryVectorBackend::new(dim, ctx.consumption_enabled))
                            as Arc<dyn VectorStorageBackend>,
                    )
                })
            });
        }
        f
    }

    fn entry(yaml: &str) -> BackendConfig {
        parse_config(yaml, |_| None)
            .unwrap()
            .storage
            .backends
            .remove(0)
    }

    #[tokio::test]
    async fn default_picks_the_first_registered_and_names_select() {
        let f = factory();
        assert_eq!(f.vector_backend_names(), vec!["first", "second"]);
        let ctx = FactoryContext::default();
        let d = entry("storage: {backends: [{storage_type: vector_db, backend: default}]}");
        assert_eq!(f.create_vector(&d, &ctx).await.unwrap().dimension(), 2);
        let s = entry("storage: {backends: [{storage_type: vector_db, backend: second}]}");
        assert_eq!(f.create_vector(&s, &ctx).await.unwrap().dimension(), 3);
    }

    #[tokio::test]
    async fn wrong_type_and_unknown_names_are_config_errors() {
        let f = factory();
        let ctx = FactoryContext::default();
        let doc = entry("storage: {backends: [{storage_type: document_db, backend: first}]}");
        let e = f.create_vector(&doc, &ctx).await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        let e = f.create_document(&doc, &ctx).await.unwrap_err();
        assert!(e.to_string().contains("registered: none"), "{e}");
        let unknown = entry("storage: {backends: [{storage_type: vector_db, backend: chromadb}]}");
        let e = f.create_vector(&unknown, &ctx).await.unwrap_err();
        assert!(e.to_string().contains("first, second"), "{e}");
    }
}
