//! The backend traits: what every storage backend, vector backend and document backend does.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::filter::{Filter, Scope};
use crate::model::{ContextType, JsonMap, ProcessedContext, ScoredContext};

/// Which kind of store a backend is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageType {
    /// Stores embedded contexts and answers similarity searches (`vector_db` in configs).
    VectorDb,
    /// Stores relational records (`document_db` in configs).
    DocumentDb,
}

impl fmt::Display for StorageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageType::VectorDb => "vector_db",
            StorageType::DocumentDb => "document_db",
        })
    }
}

/// What every backend does.
#[async_trait]
pub trait StorageBackend: Send + Sync + fmt::Debug {
    /// The backend's registered name (`"sqlite"`, `"qdrant"`, ...).
    fn name(&self) -> &'static str;

    /// Whether this is a vector or a document store.
    fn storage_type(&self) -> StorageType;

    /// Checks that the backend can serve requests (a `SELECT 1`, a ping, a directory check).
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unavailable`] (retryable) when it cannot.
    async fn health_check(&self) -> Result<()>;

    /// Flushes pending writes and releases connections, files and locks. Calls after `close`
    /// fail with [`crate::ErrorKind::NotInitialized`]. Closing twice is harmless.
    async fn close(&self) -> Result<()>;
}

/// What a vector backend can do beyond the common operations; the conformance kit skips what
/// a backend does not claim, and calls outside it return [`crate::ErrorKind::Unsupported`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VectorCapabilities {
    /// `Filter::Or` is supported.
    pub filter_or: bool,
    /// `Filter::Not`, `Filter::Ne` and `Filter::NotIn` are supported.
    pub filter_negation: bool,
    /// Range bounds on string fields are supported.
    pub string_ranges: bool,
    /// Todo embeddings (`upsert_todo_embedding` and friends) are enabled.
    pub todo_embeddings: bool,
    /// Data survives a reopen.
    pub persistent: bool,
}

impl VectorCapabilities {
    /// Everything supported.
    pub const FULL: VectorCapabilities = VectorCapabilities {
        filter_or: true,
        filter_negation: true,
        string_ranges: true,
        todo_embeddings: true,
        persistent: true,
    };

    /// A copy with `todo_embeddings` set to `enabled`.
    pub const fn with_todo_embeddings(mut self, enabled: bool) -> Self {
        self.todo_embeddings = enabled;
        self
    }
}

/// Default page size of [`VectorStorageBackend::scroll_processed_contexts`].
pub const DEFAULT_SCROLL_BATCH: usize = 100;

/// Arguments of [`VectorStorageBackend::get_all_processed_contexts`].
#[derive(Clone, Debug, PartialEq)]
pub struct ListQuery {
    /// Types to list; `None` means every context type.
    pub context_types: Option<Vec<ContextType>>,
    /// Maximum number of contexts per type (the original's default is 100).
    pub limit: usize,
    /// Contexts to skip per type, in the backend's stable order.
    pub offset: usize,
    /// Extra condition on payload fields.
    pub filter: Option<Filter>,
    /// Tenant restriction.
    pub scope: Scope,
    /// Whether to return vectors.
    pub need_vector: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            context_types: None,
            limit: 100,
            offset: 0,
            filter: None,
            scope: Scope::default(),
            need_vector: false,
        }
    }
}

/// Arguments of [`VectorStorageBackend::scroll_processed_contexts`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScrollQuery {
    /// Types to scroll; `None` means every context type.
    pub context_types: Option<Vec<ContextType>>,
    /// Page size fetched per round trip (default [`DEFAULT_SCROLL_BATCH`]).
    pub batch_size: usize,
    /// Extra condition on payload fields.
    pub filter: Option<Filter>,
    /// Tenant restriction.
    pub scope: Scope,
    /// Whether to return vectors.
    pub need_vector: bool,
}

impl Default for ScrollQuery {
    fn default() -> Self {
        ScrollQuery {
            context_types: None,
            batch_size: DEFAULT_SCROLL_BATCH,
            filter: None,
            scope: Scope::default(),
            need_vector: false,
        }
    }
}

/// Arguments of [`VectorStorageBackend::search`].
#[derive(Clone, Debug, PartialEq)]
pub struct SearchQuery {
    /// The query embedding; its dimension must equal the backend's.
    pub vector: Vec<f32>,
    /// How many results to return across all searched types (default 10).
    pub top_k: usize,
    /// Types to search; `None` means every context type.
    pub context_types: Option<Vec<ContextType>>,
    /// Extra condition on payload fields.
    pub filter: Option<Filter>,
    /// Tenant restriction.
    pub scope: Scope,
    /// Whether to return vectors.
    pub need_vector: bool,
    /// Drop results with a similarity below this value.
    pub score_threshold: Option<f32>,
}

impl SearchQuery {
    /// A query for the 10 nearest contexts of any type.
    pub fn new(vector: Vec<f32>) -> Self {
        SearchQuery {
            vector,
            top_k: 10,
            context_types: None,
            filter: None,
            scope: Scope::default(),
            need_vector: false,
            score_threshold: None,
        }
    }

    /// Sets `top_k`.
    pub fn top_k(mut self, top_k: usize) -> Self {
        self.top_k = top_k;
        self
    }

    /// Restricts to the given types.
    pub fn context_types(mut self, types: impl IntoIterator<Item = ContextType>) -> Self {
        self.context_types = Some(types.into_iter().collect());
        self
    }

    /// Sets the filter.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Sets the tenant scope.
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }
}

/// Arguments of [`VectorStorageBackend::search_by_hierarchy`].
#[derive(Clone, Debug, PartialEq)]
pub struct HierarchyQuery {
    /// The context type to search (the collection).
    pub context_type: ContextType,
    /// 0 = original, 1 = daily, 2 = weekly, 3 = monthly summaries.
    pub hierarchy_level: u8,
    /// Inclusive lower bound on `time_bucket`, compared as a string.
    pub time_bucket_start: Option<String>,
    /// Inclusive upper bound on `time_bucket`, compared as a string.
    pub time_bucket_end: Option<String>,
    /// Restrict to one user.
    pub user_id: Option<String>,
    /// Maximum number of results (the original's default is 20).
    pub top_k: usize,
}

/// A todo found by [`VectorStorageBackend::search_similar_todos`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarTodo {
    /// The todo's id in the document store.
    pub todo_id: i64,
    /// The todo's text.
    pub content: String,
    /// Cosine similarity to the query, in `[-1, 1]`.
    pub score: f32,
}

/// A vector store of [`ProcessedContext`]s, one collection (or partition) per context type.
///
/// Ids are caller-chosen strings. Scores are similarities: higher is better; each backend
/// documents its metric (cosine similarity, in `[-1, 1]`, unless it says otherwise).
/// Every context passed in must carry a vector of the backend's dimension; the
/// `UnifiedStorage` facade embeds contexts that lack one before they reach a backend.
#[async_trait]
pub trait VectorStorageBackend: StorageBackend {
    /// What this backend supports.
    fn capabilities(&self) -> VectorCapabilities;

    /// The vector dimension every stored vector has.
    fn dimension(&self) -> usize;

    /// Names of all collections (one per context type, plus `todo` when todo embeddings are
    /// enabled).
    async fn get_collection_names(&self) -> Result<Vec<String>>;

    /// Deletes contexts by id. Missing ids are ignored. Returns how many existed.
    async fn delete_contexts(&self, ids: &[String], context_type: ContextType) -> Result<u64>;

    /// Inserts or replaces one context. Returns its id.
    async fn upsert_processed_context(&self, context: &ProcessedContext) -> Result<String> {
        let mut ids = self
            .batch_upsert_processed_context(std::slice::from_ref(context))
            .await?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// Inserts or replaces contexts. The whole batch is validated first (ids, vectors,
    /// metadata): on a validation error nothing is written. Returns the ids in input order.
    /// When this returns `Ok`, the data is durable.
    async fn batch_upsert_processed_context(
        &self,
        contexts: &[ProcessedContext],
    ) -> Result<Vec<String>>;

    /// Lists contexts per type with limit/offset paging (prefer
    /// [`VectorStorageBackend::scroll_processed_contexts`] to walk everything).
    async fn get_all_processed_contexts(
        &self,
        query: &ListQuery,
    ) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>>;

    /// One context by id, `None` when absent.
    async fn get_processed_context(
        &self,
        id: &str,
        context_type: ContextType,
        need_vector: bool,
    ) -> Result<Option<ProcessedContext>>;

    /// Deletes one context. Returns whether it existed.
    async fn delete_processed_context(&self, id: &str, context_type: ContextType) -> Result<bool> {
        Ok(self.delete_contexts(&[id.to_owned()], context_type).await? > 0)
    }

    /// The `top_k` most similar contexts across the requested types, best first.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<ScoredContext>>;

    /// Number of contexts of one type.
    async fn get_processed_context_count(&self, context_type: ContextType) -> Result<u64>;

    /// Number of contexts of every type (types without data count 0).
    async fn get_all_processed_context_counts(&self) -> Result<BTreeMap<ContextType, u64>> {
        let mut out = BTreeMap::new();
        for t in ContextType::ALL {
            out.insert(t, self.get_processed_context_count(t).await?);
        }
        Ok(out)
    }

    /// Deletes every context (of any type) whose `source_file_key` equals the key, restricted
    /// to `user_id` when given. Returns how many were deleted.
    async fn delete_by_source_file(
        &self,
        source_file_key: &str,
        user_id: Option<&str>,
    ) -> Result<u64>;

    /// Contexts of one hierarchy level whose `time_bucket` lies within the inclusive bounds
    /// (string comparison), ordered by `time_bucket` then id, at most `top_k`. Scores are 1.0.
    async fn search_by_hierarchy(&self, query: &HierarchyQuery) -> Result<Vec<ScoredContext>>;

    /// Contexts by id, in input order, skipping missing ones. `context_type` `None` searches
    /// every type.
    async fn get_by_ids(
        &self,
        ids: &[String],
        context_type: Option<ContextType>,
    ) -> Result<Vec<ProcessedContext>>;

    /// Stores the embedding of a todo (the `todo` collection).
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unsupported`] when todo embeddings are disabled
    /// (`consumption.enabled` is false).
    async fn upsert_todo_embedding(
        &self,
        todo_id: i64,
        content: &str,
        embedding: &[f32],
        metadata: Option<&JsonMap>,
    ) -> Result<()>;

    /// Todos whose cosine similarity to the query is at least `similarity_threshold`, best
    /// first, at most `top_k`.
    async fn search_similar_todos(
        &self,
        query_embedding: &[f32],
        top_k: usize,
        similarity_threshold: f32,
    ) -> Result<Vec<SimilarTodo>>;

    /// Deletes a todo embedding. Returns whether it existed.
    async fn delete_todo_embedding(&self, todo_id: i64) -> Result<bool>;

    /// Every matching context, type by type, fetched in pages of `batch_size` with the
    /// backend's native cursor (never offset paging). Each context is yielded exactly once
    /// provided no writes happen meanwhile.
    fn scroll_processed_contexts(
        &self,
        query: ScrollQuery,
    ) -> BoxStream<'_, Result<ProcessedContext>>;
}
