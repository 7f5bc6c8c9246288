//! [`QdrantLocalBackend`]: the [`VectorStorageBackend`] over one embedded shard per collection.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::stream::BoxStream;
use qdrant_edge::{
    CountRequest, NamedQuery, PointId, PointInsertOperations, PointOperations, PointStruct,
    QueryEnum, SearchRequest, UpdateOperation, WithPayloadInterface, WithVector,
};
use serde_json::Value as Json;
use storage_core::model::{ContextType, JsonMap, ProcessedContext, ScoredContext};
use storage_core::{
    ErrorKind, Filter, HierarchyQuery, ListQuery, Scope, ScrollQuery, SearchQuery, SimilarTodo,
    StorageBackend, StorageError, StorageType, VectorCapabilities, VectorStorageBackend,
    time_bucket, validate,
};
use storage_core::{Result, ResultExt};

use super::condition::to_edge_filter;
use super::lock::DirLock;
use super::records::{
    INTERNAL_PAGE, native_filter, retrieve, scroll_page, to_context, walk, with_ids,
};
use super::scroll;
use super::shard::{Shard, engine_err};
use crate::config::QdrantLocalConfig;
use crate::filter::{FilterPlan, plan};
use crate::ids::{point_uuid, todo_point_num};
use crate::points::{ContextPoint, decode_todo, encode_contexts, todo_payload};

/// Backend name in error messages.
pub(crate) const BACKEND: &str = "qdrant-local";
/// Name of the todo collection.
const TODO_COLLECTION: &str = "todo";

/// The Qdrant vector backend in local (embedded) mode: the in-process engine of `qdrant-edge`,
/// one on-disk shard per context type (and `todo`) under [`QdrantLocalConfig::path`].
///
/// Cheap to clone (the clones share the store). See the crate documentation for the metric,
/// durability, disk use and what is unsupported.
#[derive(Clone)]
pub struct QdrantLocalBackend {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: QdrantLocalConfig,
    /// One per [`ContextType::ALL`], in that order. Declared before `lock` so that the shards
    /// are flushed and closed before the lock is released on drop.
    shards: Vec<Shard>,
    todo: Option<Shard>,
    closed: AtomicBool,
    lock: Mutex<Option<DirLock>>,
}

impl std::fmt::Debug for QdrantLocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantLocalBackend")
            .field("path", &self.inner.config.path)
            .field("vector_size", &self.inner.config.vector_size)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

fn type_index(t: ContextType) -> usize {
    ContextType::ALL
        .iter()
        .position(|x| *x == t)
        .expect("every type is in ALL")
}

fn not_initialized() -> StorageError {
    StorageError::new(ErrorKind::NotInitialized, "the store is closed")
}

/// Runs engine work off the async runtime.
async fn blocking<T: Send + 'static>(
    operation: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StorageError::backend(format!("engine task failed: {e}"))))
        .context(BACKEND, operation)
}

impl Inner {
    pub(crate) fn shard(&self, t: ContextType) -> &Shard {
        &self.shards[type_index(t)]
    }

    pub(crate) fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(not_initialized())
        } else {
            Ok(())
        }
    }

    fn todo_shard(&self) -> Result<&Shard> {
        self.todo.as_ref().ok_or_else(|| {
            StorageError::unsupported(
                "todo embeddings are disabled (todo_embeddings / consumption.enabled is false)",
            )
        })
    }
}

fn types_or_all(types: Option<&Vec<ContextType>>) -> Vec<ContextType> {
    match types {
        Some(ts) => {
            let mut seen = HashSet::new();
            ts.iter().copied().filter(|t| seen.insert(*t)).collect()
        }
        None => ContextType::ALL.to_vec(),
    }
}

fn clamp_score(score: f32) -> f32 {
    score.clamp(-1.0, 1.0)
}

impl QdrantLocalBackend {
    /// Opens (creating if needed) the store at `config.path`.
    ///
    /// Takes an exclusive lock on the directory first, then trims each collection's
    /// write-ahead log and loads its shard. Collections without data are created on their
    /// first write.
    ///
    /// # Errors
    /// * [`ErrorKind::Config`] for invalid settings, or a collection created with another
    ///   vector size;
    /// * [`ErrorKind::Conflict`] when the directory is already open (in this process or another);
    /// * [`ErrorKind::Backend`] / [`ErrorKind::Unavailable`] when the files cannot be read.
    pub async fn open(config: QdrantLocalConfig) -> Result<Self> {
        config.validate().context(BACKEND, "open")?;
        blocking("open", move || {
            let root = config.path.clone();
            std::fs::create_dir_all(&root).map_err(|e| {
                StorageError::new(
                    ErrorKind::Unavailable,
                    format!("cannot create {}: {e}", root.display()),
                )
                .with_source(e)
            })?;
            let lock = DirLock::acquire(&root)?;
            let shards = ContextType::ALL
                .into_iter()
                .map(|t| Shard::open(&root, t.as_str(), &config))
                .collect::<Result<Vec<_>>>()?;
            let todo = if config.todo_embeddings {
                Some(Shard::open(&root, TODO_COLLECTION, &config)?)
            } else {
                None
            };
            tracing::debug!(path = %root.display(), "qdrant local store opened");
            Ok(QdrantLocalBackend {
                inner: Arc::new(Inner {
                    config,
                    shards,
                    todo,
                    closed: AtomicBool::new(false),
                    lock: Mutex::new(Some(lock)),
                }),
            })
        })
        .await
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// Runs the engine's optimisers on every collection until they have nothing left to do:
    /// merges small segments, vacuums deleted points and builds the HNSW index of segments
    /// above `indexing_threshold_kb`. Useful after a bulk load; writes also trigger it after
    /// `vacuum_after_changes` deletions or overwrites.
    ///
    /// # Errors
    /// [`ErrorKind::NotInitialized`] after [`StorageBackend::close`]; engine failures.
    pub async fn optimize(&self) -> Result<()> {
        self.inner.ensure_open().context(BACKEND, "optimize")?;
        let inner = self.inner.clone();
        blocking("optimize", move || {
            for shard in inner.shards.iter().chain(inner.todo.as_ref()) {
                shard.optimize()?;
            }
            Ok(())
        })
        .await
    }

    /// Bytes allocated on disk by the store's collections (segments, write-ahead logs,
    /// configuration). The engine's files are sparse, so apparent sizes are much larger.
    pub fn disk_usage(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .chain(self.inner.todo.as_ref())
            .map(Shard::disk_bytes)
            .sum()
    }
}

#[async_trait]
impl StorageBackend for QdrantLocalBackend {
    fn name(&self) -> &'static str {
        "qdrant"
    }

    fn storage_type(&self) -> StorageType {
        StorageType::VectorDb
    }

    async fn health_check(&self) -> Result<()> {
        self.inner.ensure_open().context(BACKEND, "health_check")?;
        let inner = self.inner.clone();
        blocking("health_check", move || {
            let guard = inner.lock.lock().unwrap_or_else(PoisonError::into_inner);
            let lock = guard.as_ref().ok_or_else(not_initialized)?;
            let root = &inner.config.path;
            if !root.is_dir() {
                return Err(StorageError::new(
                    ErrorKind::Unavailable,
                    format!("store directory {} is missing", root.display()),
                ));
            }
            if !lock.path().is_file() {
                return Err(StorageError::new(
                    ErrorKind::Unavailable,
                    format!("lock file {} was removed", lock.path().display()),
                ));
            }
            Ok(())
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let inner = self.inner.clone();
        blocking("close", move || {
            let mut first_err = None;
            for shard in inner.shards.iter().chain(inner.todo.as_ref()) {
                if let Err(e) = shard.close() {
                    first_err.get_or_insert(e);
                }
            }
            inner
                .lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            first_err.map_or(Ok(()), Err)
        })
        .await
    }
}

#[async_trait]
impl VectorStorageBackend for QdrantLocalBackend {
    fn capabilities(&self) -> VectorCapabilities {
        VectorCapabilities::FULL.with_todo_embeddings(self.inner.config.todo_embeddings)
    }

    fn dimension(&self) -> usize {
        self.inner.config.vector_size
    }

    async fn get_collection_names(&self) -> Result<Vec<String>> {
        self.inner
            .ensure_open()
            .context(BACKEND, "get_collection_names")?;
        let mut names: Vec<String> = ContextType::ALL
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        if self.inner.todo.is_some() {
            names.push(TODO_COLLECTION.to_owned());
        }
        Ok(names)
    }

    async fn delete_contexts(&self, ids: &[String], context_type: ContextType) -> Result<u64> {
        const OP: &str = "delete_contexts";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let mut seen = HashSet::new();
        let mut points = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            validate::validate_id(&format!("ids[{i}]"), id).context(BACKEND, OP)?;
            let p = PointId::Uuid(point_uuid(id));
            if seen.insert(p) {
                points.push(p);
            }
        }
        if points.is_empty() {
            return Ok(0);
        }
        let inner = self.inner.clone();
        blocking(OP, move || delete_points(inner.shard(context_type), points)).await
    }

    async fn batch_upsert_processed_context(
        &self,
        contexts: &[ProcessedContext],
    ) -> Result<Vec<String>> {
        const OP: &str = "batch_upsert_processed_context";
        self.inner.ensure_open().context(BACKEND, OP)?;
        if contexts.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = contexts.iter().map(|c| c.id.clone()).collect();
        let points = encode_contexts(contexts, self.dimension()).context(BACKEND, OP)?;
        let mut by_type: BTreeMap<ContextType, Vec<ContextPoint>> = BTreeMap::new();
        for p in points {
            by_type.entry(p.context_type).or_default().push(p);
        }
        let inner = self.inner.clone();
        let n = ids.len();
        blocking(OP, move || {
            for (t, points) in by_type {
                let ids: Vec<PointId> = points.iter().map(|p| PointId::Uuid(p.uuid)).collect();
                let structs = points
                    .into_iter()
                    .map(|p| {
                        PointStruct::new(PointId::Uuid(p.uuid), p.vector, Json::Object(p.payload))
                            .into()
                    })
                    .collect();
                inner.shard(t).write(true, |edge| {
                    let existing = retrieve(edge, &ids, false, false)?.len();
                    edge.update(UpdateOperation::PointOperation(
                        PointOperations::UpsertPoints(PointInsertOperations::PointsList(structs)),
                    ))
                    .map_err(engine_err)?;
                    Ok(((), existing))
                })?;
            }
            tracing::debug!(count = n, "upserted contexts");
            Ok(())
        })
        .await?;
        Ok(ids)
    }

    async fn get_all_processed_contexts(
        &self,
        query: &ListQuery,
    ) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>> {
        const OP: &str = "get_all_processed_contexts";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let plan = plan(query.filter.as_ref(), &query.scope).context(BACKEND, OP)?;
        let types = types_or_all(query.context_types.as_ref());
        let (limit, offset, need_vector) = (query.limit, query.offset, query.need_vector);
        let inner = self.inner.clone();
        blocking(OP, move || {
            let mut out = BTreeMap::new();
            if limit == 0 {
                return Ok(out);
            }
            for t in types {
                let found = inner
                    .shard(t)
                    .read(|edge| list_type(edge, &plan, offset, limit, need_vector))?
                    .unwrap_or_default();
                if !found.is_empty() {
                    out.insert(t, found);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn get_processed_context(
        &self,
        id: &str,
        context_type: ContextType,
        need_vector: bool,
    ) -> Result<Option<ProcessedContext>> {
        const OP: &str = "get_processed_context";
        self.inner.ensure_open().context(BACKEND, OP)?;
        validate::validate_id("id", id).context(BACKEND, OP)?;
        let point = PointId::Uuid(point_uuid(id));
        let inner = self.inner.clone();
        blocking(OP, move || {
            let found = inner
                .shard(context_type)
                .read(|edge| retrieve(edge, &[point], true, need_vector))?;
            match found.and_then(|mut v| v.pop()) {
                Some(r) => to_context(r.id, r.payload, r.vector).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<ScoredContext>> {
        const OP: &str = "search";
        self.inner.ensure_open().context(BACKEND, OP)?;
        validate::validate_vector("query vector", &query.vector, self.dimension())
            .context(BACKEND, OP)?;
        if let Some(t) = query.score_threshold.filter(|t| !t.is_finite()) {
            return Err(StorageError::invalid_input(format!(
                "score_threshold is {t}; it must be finite"
            )))
            .context(BACKEND, OP);
        }
        let plan = plan(query.filter.as_ref(), &query.scope).context(BACKEND, OP)?;
        if query.top_k == 0 {
            return Ok(Vec::new());
        }
        let types = types_or_all(query.context_types.as_ref());
        let q = query.clone();
        let inner = self.inner.clone();
        blocking(OP, move || {
            let mut hits = Vec::new();
            for t in types {
                let found = inner
                    .shard(t)
                    .read(|edge| search_type(edge, &plan, &q.vector, q.top_k, q.need_vector))?
                    .unwrap_or_default();
                hits.extend(found);
            }
            if let Some(threshold) = q.score_threshold {
                hits.retain(|h: &ScoredContext| h.score >= threshold);
            }
            hits.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then_with(|| a.context.id.cmp(&b.context.id))
            });
            hits.truncate(q.top_k);
            Ok(hits)
        })
        .await
    }

    async fn get_processed_context_count(&self, context_type: ContextType) -> Result<u64> {
        const OP: &str = "get_processed_context_count";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let inner = self.inner.clone();
        blocking(OP, move || {
            let n = inner.shard(context_type).read(|edge| {
                edge.count(CountRequest {
                    filter: None,
                    exact: true,
                })
                .map_err(engine_err)
            })?;
            Ok(n.unwrap_or(0) as u64)
        })
        .await
    }

    async fn delete_by_source_file(
        &self,
        source_file_key: &str,
        user_id: Option<&str>,
    ) -> Result<u64> {
        const OP: &str = "delete_by_source_file";
        self.inner.ensure_open().context(BACKEND, OP)?;
        validate::validate_id("source_file_key", source_file_key).context(BACKEND, OP)?;
        let mut filter = Filter::eq("source_file_key", source_file_key);
        if let Some(u) = user_id {
            validate::validate_id("user_id", u).context(BACKEND, OP)?;
            filter = filter.and(Filter::eq("user_id", u));
        }
        let edge_filter = to_edge_filter(&filter).context(BACKEND, OP)?;
        let inner = self.inner.clone();
        blocking(OP, move || {
            let mut deleted = 0u64;
            for shard in &inner.shards {
                let n = shard.write(false, |edge| {
                    let n = edge
                        .count(CountRequest {
                            filter: Some(edge_filter.clone()),
                            exact: true,
                        })
                        .map_err(engine_err)?;
                    if n > 0 {
                        edge.update(UpdateOperation::PointOperation(
                            PointOperations::DeletePointsByFilter(edge_filter.clone()),
                        ))
                        .map_err(engine_err)?;
                    }
                    Ok((n as u64, n))
                })?;
                deleted += n.unwrap_or(0);
            }
            Ok(deleted)
        })
        .await
    }

    async fn search_by_hierarchy(&self, query: &HierarchyQuery) -> Result<Vec<ScoredContext>> {
        const OP: &str = "search_by_hierarchy";
        self.inner.ensure_open().context(BACKEND, OP)?;
        time_bucket::validate_range(
            query.time_bucket_start.as_deref(),
            query.time_bucket_end.as_deref(),
        )
        .context(BACKEND, OP)?;
        let scope = match &query.user_id {
            Some(u) => {
                validate::validate_id("user_id", u).context(BACKEND, OP)?;
                Scope::user(u.clone())
            }
            None => Scope::any(),
        };
        // Native: level (+ user). The time bucket range is a string range, checked in process.
        let plan = plan(
            Some(&Filter::eq("hierarchy_level", query.hierarchy_level)),
            &scope,
        )
        .context(BACKEND, OP)?;
        if query.top_k == 0 {
            return Ok(Vec::new());
        }
        let q = query.clone();
        let inner = self.inner.clone();
        blocking(OP, move || {
            let (start, end) = (q.time_bucket_start.as_deref(), q.time_bucket_end.as_deref());
            let bounded = start.is_some() || end.is_some();
            let mut found: Vec<(String, ProcessedContext)> = Vec::new();
            inner.shard(q.context_type).read(|edge| {
                walk(edge, &plan, false, |r| {
                    let bucket = r
                        .payload
                        .as_ref()
                        .and_then(|p| p.0.get("time_bucket"))
                        .and_then(Json::as_str)
                        .map(str::to_owned);
                    let keep = match &bucket {
                        Some(b) => time_bucket::in_range(b, start, end),
                        None => !bounded,
                    };
                    if keep {
                        found.push((
                            bucket.unwrap_or_default(),
                            to_context(r.id, r.payload, None)?,
                        ));
                    }
                    Ok(true)
                })
            })?;
            found.sort_by(|(ba, a), (bb, b)| ba.cmp(bb).then_with(|| a.id.cmp(&b.id)));
            Ok(found
                .into_iter()
                .take(q.top_k)
                .map(|(_, context)| ScoredContext {
                    context,
                    score: 1.0,
                })
                .collect())
        })
        .await
    }

    async fn get_by_ids(
        &self,
        ids: &[String],
        context_type: Option<ContextType>,
    ) -> Result<Vec<ProcessedContext>> {
        const OP: &str = "get_by_ids";
        self.inner.ensure_open().context(BACKEND, OP)?;
        for (i, id) in ids.iter().enumerate() {
            validate::validate_id(&format!("ids[{i}]"), id).context(BACKEND, OP)?;
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        let types = match context_type {
            Some(t) => vec![t],
            None => ContextType::ALL.to_vec(),
        };
        let inner = self.inner.clone();
        blocking(OP, move || {
            let mut unique: Vec<PointId> = Vec::new();
            let mut seen = HashSet::new();
            for id in &ids {
                let p = PointId::Uuid(point_uuid(id));
                if seen.insert(p) {
                    unique.push(p);
                }
            }
            let mut by_point: HashMap<PointId, ProcessedContext> = HashMap::new();
            for t in types {
                let wanted: Vec<PointId> = unique
                    .iter()
                    .filter(|p| !by_point.contains_key(p))
                    .copied()
                    .collect();
                if wanted.is_empty() {
                    break;
                }
                let records = inner
                    .shard(t)
                    .read(|edge| retrieve(edge, &wanted, true, false))?
                    .unwrap_or_default();
                for r in records {
                    let id = r.id;
                    by_point.insert(id, to_context(id, r.payload, r.vector)?);
                }
            }
            Ok(ids
                .iter()
                .filter_map(|id| by_point.get(&PointId::Uuid(point_uuid(id))).cloned())
                .collect())
        })
        .await
    }

    async fn upsert_todo_embedding(
        &self,
        todo_id: i64,
        content: &str,
        embedding: &[f32],
        metadata: Option<&JsonMap>,
    ) -> Result<()> {
        const OP: &str = "upsert_todo_embedding";
        self.inner.ensure_open().context(BACKEND, OP)?;
        self.inner.todo_shard().context(BACKEND, OP)?;
        let num = todo_point_num(todo_id).context(BACKEND, OP)?;
        validate::validate_vector("embedding", embedding, self.dimension()).context(BACKEND, OP)?;
        if let Some(m) = metadata {
            for key in m.keys() {
                storage_core::filter::validate_field_name(key).context(BACKEND, OP)?;
            }
        }
        let payload = todo_payload(todo_id, content, metadata).context(BACKEND, OP)?;
        let vector = embedding.to_vec();
        let inner = self.inner.clone();
        blocking(OP, move || {
            let point = PointId::NumId(num);
            inner.todo_shard()?.write(true, |edge| {
                let existing = retrieve(edge, &[point], false, false)?.len();
                let s = PointStruct::new(point, vector, Json::Object(payload)).into();
                edge.update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(vec![s])),
                ))
                .map_err(engine_err)?;
                Ok(((), existing))
            })?;
            Ok(())
        })
        .await
    }

    async fn search_similar_todos(
        &self,
        query_embedding: &[f32],
        top_k: usize,
        similarity_threshold: f32,
    ) -> Result<Vec<SimilarTodo>> {
        const OP: &str = "search_similar_todos";
        self.inner.ensure_open().context(BACKEND, OP)?;
        self.inner.todo_shard().context(BACKEND, OP)?;
        validate::validate_vector("query_embedding", query_embedding, self.dimension())
            .context(BACKEND, OP)?;
        if !similarity_threshold.is_finite() {
            return Err(StorageError::invalid_input(format!(
                "similarity_threshold is {similarity_threshold}; it must be finite"
            )))
            .context(BACKEND, OP);
        }
        if top_k == 0 {
            return Ok(Vec::new());
        }
        let vector = query_embedding.to_vec();
        let inner = self.inner.clone();
        blocking(OP, move || {
            let hits = inner
                .todo_shard()?
                .read(|edge| {
                    edge.search(search_request(vector, None, top_k, false))
                        .map_err(engine_err)
                })?
                .unwrap_or_default();
            let mut out = Vec::new();
            for h in hits {
                let score = clamp_score(h.score);
                if score < similarity_threshold {
                    continue;
                }
                let num = match h.id {
                    PointId::NumId(n) => n,
                    PointId::Uuid(_) => continue,
                };
                let (todo_id, content) =
                    decode_todo(&h.payload.map(|p| p.0).unwrap_or_default(), num)?;
                out.push(SimilarTodo {
                    todo_id,
                    content,
                    score,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn delete_todo_embedding(&self, todo_id: i64) -> Result<bool> {
        const OP: &str = "delete_todo_embedding";
        self.inner.ensure_open().context(BACKEND, OP)?;
        self.inner.todo_shard().context(BACKEND, OP)?;
        let num = todo_point_num(todo_id).context(BACKEND, OP)?;
        let inner = self.inner.clone();
        blocking(OP, move || {
            Ok(delete_points(inner.todo_shard()?, vec![PointId::NumId(num)])? > 0)
        })
        .await
    }

    fn scroll_processed_contexts(
        &self,
        query: ScrollQuery,
    ) -> BoxStream<'_, Result<ProcessedContext>> {
        scroll::scroll(self.inner.clone(), query)
    }
}

/// Deletes the points that exist among `points`; returns how many did.
fn delete_points(shard: &Shard, points: Vec<PointId>) -> Result<u64> {
    let n = shard.write(false, |edge| {
        let existing: Vec<PointId> = retrieve(edge, &points, false, false)?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let n = existing.len();
        if n > 0 {
            edge.update(UpdateOperation::PointOperation(
                PointOperations::DeletePoints { ids: existing },
            ))
            .map_err(engine_err)?;
        }
        Ok((n as u64, n))
    })?;
    Ok(n.unwrap_or(0))
}

fn search_request(
    vector: Vec<f32>,
    filter: Option<qdrant_edge::Filter>,
    limit: usize,
    with_vector: bool,
) -> SearchRequest {
    SearchRequest {
        query: QueryEnum::Nearest(NamedQuery::default_dense(vector)),
        filter,
        params: None,
        limit,
        offset: 0,
        with_payload: Some(WithPayloadInterface::Bool(true)),
        with_vector: Some(WithVector::Bool(with_vector)),
        score_threshold: None,
    }
}

/// Native top-k in one collection. With a string range in the filter, the matching ids are
/// collected first (cursor + in-process check) and the search is restricted to them, so the
/// result is exact.
fn search_type(
    edge: &qdrant_edge::EdgeShard,
    plan: &FilterPlan,
    vector: &[f32],
    top_k: usize,
    need_vector: bool,
) -> Result<Vec<ScoredContext>> {
    let native = native_filter(plan)?;
    let filter = if plan.post.is_some() {
        let mut ids = Vec::new();
        walk(edge, plan, false, |r| {
            ids.push(r.id);
            Ok(true)
        })?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Some(with_ids(native, ids))
    } else {
        native
    };
    let hits = edge
        .search(search_request(vector.to_vec(), filter, top_k, need_vector))
        .map_err(engine_err)?;
    hits.into_iter()
        .map(|h| {
            Ok(ScoredContext {
                context: to_context(h.id, h.payload, h.vector)?,
                score: clamp_score(h.score),
            })
        })
        .collect()
}

/// `limit` contexts after skipping `offset`, in point id order, walking the native cursor.
fn list_type(
    edge: &qdrant_edge::EdgeShard,
    plan: &FilterPlan,
    offset: usize,
    limit: usize,
    need_vector: bool,
) -> Result<Vec<ProcessedContext>> {
    if plan.post.is_some() {
        let (mut skip, mut out) = (offset, Vec::new());
        walk(edge, plan, need_vector, |r| {
            if skip > 0 {
                skip -= 1;
                return Ok(true);
            }
            out.push(to_context(r.id, r.payload, r.vector)?);
            Ok(out.len() < limit)
        })?;
        return Ok(out);
    }
    let filter = native_filter(plan)?;
    // Skip with id-only pages: the cursor moves without reading payloads.
    let (mut cursor, mut skip) = (None, offset);
    while skip > 0 {
        let (records, next) = scroll_page(
            edge,
            filter.as_ref(),
            cursor,
            skip.min(10 * INTERNAL_PAGE),
            false,
            false,
        )?;
        skip -= records.len().min(skip);
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(Vec::new()),
        }
    }
    let mut out = Vec::new();
    while out.len() < limit {
        let (records, next) = scroll_page(
            edge,
            filter.as_ref(),
            cursor,
            (limit - out.len()).min(10 * INTERNAL_PAGE),
            true,
            need_vector,
        )?;
        for r in records {
            out.push(to_context(r.id, r.payload, r.vector)?);
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    Ok(out)
}
