//! [`UnifiedStorage`]: one facade over one vector backend and one document backend.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use storage_core::config::AppConfig;
use storage_core::{
    BackendConfig, ContextType, DocumentStorageBackend, Embedder, ErrorKind, FactoryContext,
    HierarchyQuery, JsonMap, ListQuery, ProcessedContext, Result, ScoredContext, ScrollQuery,
    SearchQuery, SimilarTodo, StorageBackendFactory, StorageError, StorageType,
    VectorStorageBackend, Vectorize, embed_missing,
};

use crate::trace::traced;

/// Routes vector operations (contexts, search, hierarchy, todo embeddings) to the vector
/// backend and record operations (profiles, entities, vaults, todos, tips, conversations,
/// messages, monitoring) to the document backend, as the original's `UnifiedStorage` does.
///
/// Contexts without a vector are embedded with the configured [`Embedder`] before they reach
/// the vector backend (the original's auto-vectorize). Every call runs in a `tracing` span
/// named `storage` with the backend, the operation and the item count.
///
/// Calls that need a backend that is not configured fail with
/// [`ErrorKind::NotInitialized`].
#[derive(Clone)]
pub struct UnifiedStorage {
    vector: Option<Arc<dyn VectorStorageBackend>>,
    document: Option<Arc<dyn DocumentStorageBackend>>,
    embedder: Option<Arc<dyn Embedder>>,
}

impl fmt::Debug for UnifiedStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnifiedStorage")
            .field("vector", &self.vector.as_ref().map(|b| b.name()))
            .field("document", &self.document.as_ref().map(|b| b.name()))
            .field("embedder", &self.embedder)
            .finish()
    }
}

/// Builds a [`UnifiedStorage`] from backends created by hand.
#[derive(Default)]
pub struct UnifiedStorageBuilder {
    vector: Option<Arc<dyn VectorStorageBackend>>,
    document: Option<Arc<dyn DocumentStorageBackend>>,
    embedder: Option<Arc<dyn Embedder>>,
}

impl UnifiedStorageBuilder {
    /// Sets the vector backend.
    pub fn vector(mut self, backend: Arc<dyn VectorStorageBackend>) -> Self {
        self.vector = Some(backend);
        self
    }

    /// Sets the document backend.
    pub fn document(mut self, backend: Arc<dyn DocumentStorageBackend>) -> Self {
        self.document = Some(backend);
        self
    }

    /// Sets the embedder used for contexts and queries without a vector.
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Builds the facade.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the embedder's dimension differs from the vector backend's.
    pub fn build(self) -> Result<UnifiedStorage> {
        if let (Some(v), Some(e)) = (&self.vector, &self.embedder)
            && v.dimension() != e.dimension()
        {
            return Err(StorageError::config(format!(
                "embedder dimension {} differs from the vector backend's {} ({})",
                e.dimension(),
                v.dimension(),
                v.name()
            )));
        }
        Ok(UnifiedStorage {
            vector: self.vector,
            document: self.document,
            embedder: self.embedder,
        })
    }
}

/// Picks the backend entry of one storage type: the first marked `default: true`, else the
/// first of that type.
fn select(config: &AppConfig, storage_type: StorageType) -> Option<&BackendConfig> {
    let of_type = || {
        config
            .storage
            .backends
            .iter()
            .filter(|b| b.storage_type == storage_type)
    };
    of_type().find(|b| b.default).or_else(|| of_type().next())
}

impl UnifiedStorage {
    /// A builder for hand-made backends.
    pub fn builder() -> UnifiedStorageBuilder {
        UnifiedStorageBuilder::default()
    }

    /// Creates the configured backends with the [`crate::default_factory`].
    ///
    /// # Errors
    /// See [`UnifiedStorage::from_config_with`].
    pub async fn from_config(config: &AppConfig) -> Result<UnifiedStorage> {
        Self::from_config_with(config, &crate::default_factory(), None).await
    }

    /// Creates the configured backends with `factory`: for each storage type the entry marked
    /// `default: true` (else the first). Relative paths in backend configs are resolved
    /// against `base_dir` (the current directory when `None`, as in the original).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when storage is disabled, `storage.naive_timezone` is not a known
    /// zone (it is applied to the whole process before any backend opens; see
    /// [`crate::time::NaiveZone`]), no backend is configured, a backend
    /// name is not registered, or an embedder is configured whose settings are out of range or
    /// whose dimension differs from the vector backend's; any error a backend's constructor
    /// returns (opening files, connecting). Without the `openai` feature a configured
    /// `embedding_model` is not used (a warning says so; contexts must then carry vectors),
    /// because the original's files always carry that section.
    pub async fn from_config_with(
        config: &AppConfig,
        factory: &StorageBackendFactory,
        base_dir: Option<std::path::PathBuf>,
    ) -> Result<UnifiedStorage> {
        if !config.storage.enabled {
            return Err(StorageError::config("storage.enabled is false"));
        }
        config.storage.apply_naive_timezone()?;
        let ctx = FactoryContext {
            consumption_enabled: config.consumption.enabled,
            base_dir,
        };
        let vector_cfg = select(config, StorageType::VectorDb);
        let document_cfg = select(config, StorageType::DocumentDb);
        if vector_cfg.is_none() && document_cfg.is_none() {
            return Err(StorageError::config(
                "storage.backends lists no vector_db and no document_db backend",
            ));
        }
        let mut builder = UnifiedStorage::builder();
        if let Some(c) = vector_cfg {
            builder = builder.vector(factory.create_vector(c, &ctx).await?);
        }
        if let Some(c) = document_cfg {
            match factory.create_document(c, &ctx).await {
                Ok(d) => builder = builder.document(d),
                Err(e) => {
                    // Do not leave the vector store's lock held behind a failed start.
                    if let Some(v) = &builder.vector {
                        let _ = v.close().await;
                    }
                    return Err(e);
                }
            }
        }
        if let Some(e) = &config.embedding_model {
            builder = with_embedder(builder, e)?;
        }
        builder.build()
    }

    /// The vector backend.
    ///
    /// # Errors
    /// [`ErrorKind::NotInitialized`] when none is configured.
    pub fn vector(&self) -> Result<&Arc<dyn VectorStorageBackend>> {
        self.vector.as_ref().ok_or_else(|| {
            StorageError::new(
                ErrorKind::NotInitialized,
                "no vector_db backend is configured",
            )
        })
    }

    /// The document backend.
    ///
    /// # Errors
    /// [`ErrorKind::NotInitialized`] when none is configured.
    pub fn document(&self) -> Result<&Arc<dyn DocumentStorageBackend>> {
        self.document.as_ref().ok_or_else(|| {
            StorageError::new(
                ErrorKind::NotInitialized,
                "no document_db backend is configured",
            )
        })
    }

    /// The embedder, if one is configured.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    /// Checks every configured backend.
    pub async fn health_check(&self) -> Result<()> {
        if let Some(v) = &self.vector {
            traced(v.name(), "health_check", 0, v.health_check()).await?;
        }
        if let Some(d) = &self.document {
            traced(d.name(), "health_check", 0, d.health_check()).await?;
        }
        Ok(())
    }

    /// Flushes and closes both backends (both are attempted; the first error is returned).
    pub async fn close(&self) -> Result<()> {
        let v = match &self.vector {
            Some(v) => traced(v.name(), "close", 0, v.close()).await,
            None => Ok(()),
        };
        let d = match &self.document {
            Some(d) => traced(d.name(), "close", 0, d.close()).await,
            None => Ok(()),
        };
        v.and(d)
    }

    // ----- vector operations ------------------------------------------------------------------

    /// See [`VectorStorageBackend::get_collection_names`].
    pub async fn get_collection_names(&self) -> Result<Vec<String>> {
        let v = self.vector()?;
        traced(
            v.name(),
            "get_collection_names",
            0,
            v.get_collection_names(),
        )
        .await
    }

    /// Inserts or replaces one context, embedding it first when it has no vector. Returns its id.
    pub async fn upsert_processed_context(&self, context: &ProcessedContext) -> Result<String> {
        let mut ids = self
            .batch_upsert_processed_context(std::slice::from_ref(context))
            .await?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// Inserts or replaces contexts, embedding those without a vector in one batch first.
    /// Returns the ids in input order; see [`VectorStorageBackend::batch_upsert_processed_context`].
    pub async fn batch_upsert_processed_context(
        &self,
        contexts: &[ProcessedContext],
    ) -> Result<Vec<String>> {
        let v = self.vector()?;
        let op = "batch_upsert_processed_context";
        if contexts.iter().all(|c| c.vectorize.vector.is_some()) {
            return traced(
                v.name(),
                op,
                contexts.len(),
                v.batch_upsert_processed_context(contexts),
            )
            .await;
        }
        let mut owned = contexts.to_vec();
        traced(
            v.name(),
            "embed",
            owned.len(),
            embed_missing(&mut owned, self.embedder.as_deref()),
        )
        .await?;
        traced(
            v.name(),
            op,
            owned.len(),
            v.batch_upsert_processed_context(&owned),
        )
        .await
    }

    /// See [`VectorStorageBackend::get_all_processed_contexts`].
    pub async fn get_all_processed_contexts(
        &self,
        query: &ListQuery,
    ) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>> {
        let v = self.vector()?;
        traced(
            v.name(),
            "get_all_processed_contexts",
            query.limit,
            v.get_all_processed_contexts(query),
        )
        .await
    }

    /// See [`VectorStorageBackend::get_processed_context`].
    pub async fn get_processed_context(
        &self,
        id: &str,
        context_type: ContextType,
        need_vector: bool,
    ) -> Result<Option<ProcessedContext>> {
        let v = self.vector()?;
        traced(
            v.name(),
            "get_processed_context",
            1,
            v.get_processed_context(id, context_type, need_vector),
        )
        .await
    }

    /// See [`VectorStorageBackend::delete_processed_context`].
    pub async fn delete_processed_context(
        &self,
        id: &str,
        context_type: ContextType,
    ) -> Result<bool> {
        let v = self.vector()?;
        traced(
            v.name(),
            "delete_processed_context",
            1,
            v.delete_processed_context(id, context_type),
        )
        .await
    }

    /// See [`VectorStorageBackend::delete_contexts`].
    pub async fn delete_contexts(&self, ids: &[String], context_type: ContextType) -> Result<u64> {
        let v = self.vector()?;
        traced(
            v.name(),
            "delete_contexts",
            ids.len(),
            v.delete_contexts(ids, context_type),
        )
        .await
    }

    /// Similarity search with a query vector; see [`VectorStorageBackend::search`].
    pub async fn search(&self, query: &SearchQuery) -> Result<Vec<ScoredContext>> {
        let v = self.vector()?;
        traced(v.name(), "search", query.top_k, v.search(query)).await
    }

    /// Similarity search with the original's `Vectorize` query: its vector when set, else the
    /// embedding of its text. `options` supplies top-k, types, filter and scope; its `vector`
    /// is replaced.
    pub async fn search_vectorize(
        &self,
        query: &Vectorize,
        mut options: SearchQuery,
    ) -> Result<Vec<ScoredContext>> {
        options.vector = match &query.vector {
            Some(v) => v.clone(),
            None => self.embed_query(query).await?,
        };
        self.search(&options).await
    }

    async fn embed_query(&self, query: &Vectorize) -> Result<Vec<f32>> {
        let embedder = self.embedder.as_ref().ok_or_else(|| {
            StorageError::invalid_input(
                "the query has no vector and no embedder is configured (set embedding_model)",
            )
        })?;
        let text = query
            .vectorize_content()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                StorageError::invalid_input("the query has neither a vector nor text to embed")
            })?;
        let mut vectors =
            traced("embedder", "embed", 1, embedder.embed(&[text.to_owned()])).await?;
        vectors
            .pop()
            .ok_or_else(|| StorageError::backend("the embedder returned no vector"))
    }

    /// See [`VectorStorageBackend::get_processed_context_count`].
    pub async fn get_processed_context_count(&self, context_type: ContextType) -> Result<u64> {
        let v = self.vector()?;
        traced(
            v.name(),
            "get_processed_context_count",
            0,
            v.get_processed_context_count(context_type),
        )
        .await
    }

    /// See [`VectorStorageBackend::get_all_processed_context_counts`].
    pub async fn get_all_processed_context_counts(&self) -> Result<BTreeMap<ContextType, u64>> {
        let v = self.vector()?;
        traced(
            v.name(),
            "get_all_processed_context_counts",
            0,
            v.get_all_processed_context_counts(),
        )
        .await
    }

    /// See [`VectorStorageBackend::delete_by_source_file`].
    pub async fn delete_by_source_file(
        &self,
        source_file_key: &str,
        user_id: Option<&str>,
    ) -> Result<u64> {
        let v = self.vector()?;
        traced(
            v.name(),
            "delete_by_source_file",
            0,
            v.delete_by_source_file(source_file_key, user_id),
        )
        .await
    }

    /// See [`VectorStorageBackend::search_by_hierarchy`].
    pub async fn search_by_hierarchy(&self, query: &HierarchyQuery) -> Result<Vec<ScoredContext>> {
        let v = self.vector()?;
        traced(
            v.name(),
            "search_by_hierarchy",
            query.top_k,
            v.search_by_hierarchy(query),
        )
        .await
    }

    /// See [`VectorStorageBackend::get_by_ids`].
    pub async fn get_by_ids(
        &self,
        ids: &[String],
        context_type: Option<ContextType>,
    ) -> Result<Vec<ProcessedContext>> {
        let v = self.vector()?;
        traced(
            v.name(),
            "get_by_ids",
            ids.len(),
            v.get_by_ids(ids, context_type),
        )
        .await
    }

    /// See [`VectorStorageBackend::upsert_todo_embedding`].
    pub async fn upsert_todo_embedding(
        &self,
        todo_id: i64,
        content: &str,
        embedding: &[f32],
        metadata: Option<&JsonMap>,
    ) -> Result<()> {
        let v = self.vector()?;
        traced(
            v.name(),
            "upsert_todo_embedding",
            1,
            v.upsert_todo_embedding(todo_id, content, embedding, metadata),
        )
        .await
    }

    /// See [`VectorStorageBackend::search_similar_todos`].
    pub async fn search_similar_todos(
        &self,
        query_embedding: &[f32],
        top_k: usize,
        similarity_threshold: f32,
    ) -> Result<Vec<SimilarTodo>> {
        let v = self.vector()?;
        traced(
            v.name(),
            "search_similar_todos",
            top_k,
            v.search_similar_todos(query_embedding, top_k, similarity_threshold),
        )
        .await
    }

    /// See [`VectorStorageBackend::delete_todo_embedding`].
    pub async fn delete_todo_embedding(&self, todo_id: i64) -> Result<bool> {
        let v = self.vector()?;
        traced(
            v.name(),
            "delete_todo_embedding",
            1,
            v.delete_todo_embedding(todo_id),
        )
        .await
    }

    /// See [`VectorStorageBackend::scroll_processed_contexts`].
    pub fn scroll_processed_contexts(
        &self,
        query: ScrollQuery,
    ) -> BoxStream<'_, Result<ProcessedContext>> {
        match self.vector() {
            Ok(v) => v.scroll_processed_contexts(query),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }
}

#[cfg(feature = "openai")]
fn with_embedder(
    builder: UnifiedStorageBuilder,
    config: &storage_core::config::EmbeddingConfig,
) -> Result<UnifiedStorageBuilder> {
    Ok(builder.embedder(Arc::new(storage_core::OpenAiEmbedder::new(config)?)))
}

#[cfg(not(feature = "openai"))]
fn with_embedder(
    builder: UnifiedStorageBuilder,
    config: &storage_core::config::EmbeddingConfig,
) -> Result<UnifiedStorageBuilder> {
    tracing::warn!(
        model = %config.model,
        "embedding_model is configured but this build lacks the `openai` feature; contexts must carry vectors"
    );
    Ok(builder)
}
