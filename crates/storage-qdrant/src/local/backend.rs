//! [`QdrantLocalBackend`]: the [`VectorStorageBackend`] over one embedded shard per collection.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use async_trait::async_trait;
use futures::stream::BoxStream;
use qdrant_edge::{
    CountRequest, NamedQuery, PointId, QueryEnum, SearchRequest, WithPayloadInterface, WithVector,
};
use serde_json::Value as Json;
use storage_core::model::{ContextType, JsonMap, ProcessedContext, ScoredContext};
use storage_core::{
    ErrorKind, HierarchyQuery, ListQuery, ScrollQuery, SearchQuery, SimilarTodo, StorageBackend,
    StorageError, StorageType, VectorCapabilities, VectorStorageBackend, validate,
};
use storage_core::{Result, ResultExt};

use super::foreign::refuse_python_local_store;
use super::lock::DirLock;
use super::records::{
    INTERNAL_PAGE, native_filter, retrieve, scroll_page, to_context, walk, with_ids,
};
use super::redo::{Entry, LoggedPoint, Op, REDO_FILE, RedoLog, encode_record};
use super::scroll;
use super::shard::{Shard, engine_err, source_filter};
use crate::config::QdrantLocalConfig;
use crate::filter::{FilterPlan, plan};
use crate::ids::point_uuid;
use crate::points::{ContextPoint, decode_todo, encode_contexts};
use crate::query::{
    self, bucket_selected, check_hierarchy, check_search, check_todo_search, clamp_score,
    merge_hits, order_hierarchy, todo_point, types_or_all, unique_point_uuids,
};
use crate::schema::{TODO_COLLECTION, TODO_INDEXES, context_indexes, type_index};

/// Backend name in error messages.
pub(crate) const BACKEND: &str = "qdrant-local";

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
    /// The redo log. Lock order: shard writers (in store order), then the log.
    log: Mutex<RedoLog>,
    closed: AtomicBool,
    lock: Mutex<Option<DirLock>>,
    /// This store, for the background optimiser thread (set right after construction).
    me: OnceLock<Weak<Inner>>,
    /// Whether the background optimiser thread is running (at most one per store).
    optimizer_running: AtomicBool,
    /// Optimiser runs the background thread completed (test and benchmark support).
    optimizer_runs: AtomicU64,
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

    /// Every shard, in store (lock) order.
    fn all_shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter().chain(self.todo.as_ref())
    }

    fn redo(&self) -> MutexGuard<'_, RedoLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A durable write on `targets` (distinct shards, in store order): locks their writers,
    /// lets `prepare` (which may read them) decide the operations, appends them to the redo
    /// log as one synced record, then applies them to the engine without flushing. Returns
    /// `prepare`'s value and, per entry, the number of points it deleted.
    fn logged_write<T>(
        &self,
        targets: &[&Shard],
        prepare: impl FnOnce() -> Result<(Vec<Entry>, T)>,
    ) -> Result<(T, Vec<u64>)> {
        let mut writers: Vec<_> = targets.iter().map(|s| s.lock_writer()).collect();
        for shard in targets {
            shard.check_usable()?;
        }
        let (entries, out) = prepare()?;
        if entries.is_empty() {
            return Ok((out, Vec::new()));
        }
        let record = encode_record(&entries);
        let log_full = {
            let mut log = self.redo();
            log.append(&record)?;
            log.is_full()
        };
        // From here on the record is durable: a crash replays it at the next open.
        let mut deleted = Vec::with_capacity(entries.len());
        let mut failure = None;
        for entry in entries {
            let Some(i) = targets.iter().position(|s| s.name() == entry.collection) else {
                failure = Some(StorageError::backend(format!(
                    "internal error: entry for collection '{}' outside the locked shards",
                    entry.collection
                )));
                break;
            };
            match targets[i].apply(&mut writers[i], entry.op) {
                Ok(n) => deleted.push(n),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut optimize = false;
        if failure.is_none() {
            for (shard, w) in targets.iter().zip(writers.iter_mut()) {
                match shard.maintain(w) {
                    Ok(wanted) => optimize |= wanted,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        drop(writers);
        if optimize {
            self.start_optimizer();
        }
        if let Some(e) = failure {
            // The engine refused a logged record (part of it may be applied). Checkpoint so
            // that it is not replayed at the next open, where it could fail again: what was
            // applied is flushed, as before the redo log.
            if let Err(c) = self.checkpoint() {
                tracing::warn!(error = %c, "checkpoint after a failed write failed");
            }
            return Err(e);
        }
        if log_full {
            self.checkpoint()?;
        }
        Ok((out, deleted))
    }

    /// Flushes every shard updated since the last checkpoint, then empties the redo log.
    /// While the background optimiser runs on a shard its flush is put off, and so is the
    /// emptying of the log (it still covers that shard's writes): the log may then grow past
    /// `redo_log_max_kb` until a later write's checkpoint completes.
    fn checkpoint(&self) -> Result<()> {
        let mut writers: Vec<_> = self.all_shards().map(|s| (s, s.lock_writer())).collect();
        let mut log = self.redo();
        let mut all_flushed = true;
        for (shard, w) in &mut writers {
            all_flushed &= shard.flush_if_dirty(w)?;
        }
        if all_flushed { log.reset() } else { Ok(()) }
    }

    /// Starts the background optimiser thread unless it runs already. It runs the engine's
    /// optimisers on every shard that asked for them ([`Shard::maintain`]) until none asks,
    /// then ends. It holds the store only while it works, never a shard's writer lock.
    fn start_optimizer(&self) {
        if self.optimizer_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(weak) = self.me.get().cloned() else {
            self.optimizer_running.store(false, Ordering::Release);
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("qdrant-optimizer".into())
            .spawn(move || optimizer_loop(&weak));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the background optimiser thread");
            self.optimizer_running.store(false, Ordering::Release);
        }
    }

    /// Closes (and so flushes) every shard, then empties the redo log.
    fn close_all(&self) -> Result<()> {
        let mut writers: Vec<_> = self.all_shards().map(|s| (s, s.lock_writer())).collect();
        let mut log = self.redo();
        let mut first_err = None;
        for (shard, w) in &mut writers {
            if let Err(e) = shard.close(w) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            // Keep the log: the next open replays it.
            Some(e) => Err(e),
            None => log.reset(),
        }
    }

    /// Replays the records of the redo log found at open, in order, then checkpoints.
    fn replay(&self, records: Vec<Vec<Entry>>, root: &Path) -> Result<()> {
        let n = records.len();
        // Todo records while todos are disabled now: replay them into the todo collection
        // anyway (opened for the replay only), so no acknowledged write is lost.
        let mut extra_todo: Option<Shard> = None;
        for record in records {
            for entry in record {
                if let Op::Upsert(points) = &entry.op
                    && let Some(p) = points
                        .iter()
                        .find(|p| p.vector.len() != self.config.vector_size)
                {
                    return Err(StorageError::config(format!(
                        "the redo log holds a {}-dimensional vector for collection '{}', but \
                         'vector_size' is {}",
                        p.vector.len(),
                        entry.collection,
                        self.config.vector_size
                    )));
                }
                let shard = match self.all_shards().find(|s| s.name() == entry.collection) {
                    Some(s) => s,
                    None if entry.collection == TODO_COLLECTION => {
                        if extra_todo.is_none() {
                            extra_todo = Some(Shard::open(
                                root,
                                TODO_COLLECTION,
                                &self.config,
                                TODO_INDEXES,
                            )?);
                        }
                        extra_todo.as_ref().expect("just opened")
                    }
                    None => {
                        return Err(StorageError::data_corrupted(format!(
                            "the redo log names an unknown collection '{}'",
                            entry.collection
                        )));
                    }
                };
                let mut w = shard.lock_writer();
                shard.apply(&mut w, entry.op)?;
            }
        }
        let mut optimize = false;
        for shard in self.all_shards().chain(extra_todo.as_ref()) {
            let mut w = shard.lock_writer();
            optimize |= shard.maintain(&mut w)?;
        }
        if let Some(todo) = &extra_todo
            && todo.wants_optimize()
        {
            todo.optimize()?;
        }
        if let Some(todo) = &extra_todo {
            todo.close(&mut todo.lock_writer())?;
        }
        if n > 0 {
            tracing::info!(records = n, "replayed the redo log");
        }
        self.checkpoint()?;
        if optimize {
            self.start_optimizer();
        }
        Ok(())
    }
}

/// The background optimiser thread's body (see [`Inner::start_optimizer`]).
fn optimizer_loop(weak: &Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        if inner.closed.load(Ordering::Acquire) {
            inner.optimizer_running.store(false, Ordering::Release);
            return;
        }
        let mut ran = false;
        for shard in inner.all_shards() {
            match shard.background_optimize() {
                Ok(true) => {
                    ran = true;
                    inner.optimizer_runs.fetch_add(1, Ordering::AcqRel);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(collection = shard.name(), error = %e, "background optimisation failed")
                }
            }
        }
        if !ran {
            inner.optimizer_running.store(false, Ordering::Release);
            // A request that came in after this pass looked at its shard: take it, unless a
            // new thread was started for it meanwhile.
            if !inner.all_shards().any(Shard::wants_optimize)
                || inner.optimizer_running.swap(true, Ordering::AcqRel)
            {
                return;
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped without `close`: checkpoint, so the next open has nothing to replay.
        if !self.closed.swap(true, Ordering::AcqRel)
            && let Err(e) = self.close_all()
        {
            tracing::warn!(error = %e, "closing the qdrant store on drop failed; the next open replays its redo log");
        }
    }
}

impl QdrantLocalBackend {
    /// Opens (creating if needed) the store at `config.path`.
    ///
    /// Takes an exclusive lock on the directory first, then trims each collection's
    /// write-ahead log, loads its shard and makes sure it has its payload indexes, and
    /// finally replays the redo log left by a crash (then empties it). Collections without
    /// data are created on their first write.
    ///
    /// # Errors
    /// * [`ErrorKind::Config`] for invalid settings, a collection created with another
    ///   vector size, or a directory written by qdrant-client's Python local mode
    ///   (`meta.json`, `collection/<name>/storage.sqlite`: the original's default store),
    ///   refused before anything is written into it;
    /// * [`ErrorKind::Conflict`] when the directory is already open (in this process or another);
    /// * [`ErrorKind::DataCorrupted`] when the redo log is corrupt before its last record;
    /// * [`ErrorKind::Backend`] / [`ErrorKind::Unavailable`] when the files cannot be read.
    pub async fn open(config: QdrantLocalConfig) -> Result<Self> {
        config.validate().context(BACKEND, "open")?;
        blocking("open", move || {
            let root = config.path.clone();
            // Before anything is created or locked: never write into another program's store.
            refuse_python_local_store(&root)?;
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
                .map(|t| Shard::open(&root, t.as_str(), &config, &context_indexes(false)))
                .collect::<Result<Vec<_>>>()?;
            let todo = if config.todo_embeddings {
                Some(Shard::open(&root, TODO_COLLECTION, &config, TODO_INDEXES)?)
            } else {
                None
            };
            let (log, parsed) = RedoLog::open(&root, config.redo_log_max_kb as u64 * 1024)?;
            let inner = Arc::new(Inner {
                config,
                shards,
                todo,
                log: Mutex::new(log),
                closed: AtomicBool::new(false),
                lock: Mutex::new(Some(lock)),
                me: OnceLock::new(),
                optimizer_running: AtomicBool::new(false),
                optimizer_runs: AtomicU64::new(0),
            });
            let _ = inner.me.set(Arc::downgrade(&inner));
            if (!parsed.records.is_empty() || parsed.dropped > 0)
                && let Err(e) = inner.replay(parsed.records, &root)
            {
                // Leave the log as it is for the next attempt.
                inner.closed.store(true, Ordering::Release);
                return Err(e);
            }
            tracing::debug!(path = %root.display(), "qdrant local store opened");
            Ok(QdrantLocalBackend { inner })
        })
        .await
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// Test support, not part of the API: cuts the redo log to the bytes that were synced,
    /// as a power loss would. The kill test calls it before aborting, so that it fails if a
    /// write returns before its record is synced.
    ///
    /// # Errors
    /// When the file cannot be truncated.
    #[doc(hidden)]
    pub fn discard_unsynced_redo_log(&self) -> Result<()> {
        self.inner.redo().discard_unsynced()
    }

    /// Runs the engine's optimisers on every collection until they have nothing left to do:
    /// merges small segments, vacuums deleted points and builds the HNSW index of segments
    /// above `indexing_threshold_kb`, in the foreground (writes to a collection wait while it
    /// is optimised). Useful after a bulk load. Writes start the same work on a background
    /// thread after `vacuum_after_changes` deletions or overwrites, without waiting for it.
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

    /// Test and benchmark support, not part of the API: how many optimiser runs the
    /// background thread has completed, and whether it is running.
    #[doc(hidden)]
    pub fn background_optimizer_state(&self) -> (u64, bool) {
        (
            self.inner.optimizer_runs.load(Ordering::Acquire),
            self.inner.optimizer_running.load(Ordering::Acquire),
        )
    }

    /// Bytes allocated on disk by the store: its collections (segments, write-ahead logs,
    /// configuration) and its redo log. The engine's files are sparse, so apparent sizes are
    /// much larger.
    pub fn disk_usage(&self) -> u64 {
        let redo = super::shard::allocated_size_of(&self.inner.config.path.join(REDO_FILE));
        self.inner
            .shards
            .iter()
            .chain(self.inner.todo.as_ref())
            .map(Shard::disk_bytes)
            .sum::<u64>()
            + redo
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
            let result = inner.close_all();
            inner
                .lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            result
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
        let points: Vec<PointId> = unique_point_uuids(ids)
            .context(BACKEND, OP)?
            .into_iter()
            .map(PointId::Uuid)
            .collect();
        if points.is_empty() {
            return Ok(0);
        }
        let inner = self.inner.clone();
        blocking(OP, move || {
            delete_points(&inner, inner.shard(context_type), points)
        })
        .await
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
            // One record for the whole batch: one fsync, and all types replay together.
            let targets: Vec<&Shard> = by_type.keys().map(|t| inner.shard(*t)).collect();
            let entries = by_type
                .into_iter()
                .map(|(t, points)| Entry {
                    collection: t.as_str().to_owned(),
                    op: Op::Upsert(
                        points
                            .into_iter()
                            .map(|p| LoggedPoint {
                                id: PointId::Uuid(p.uuid),
                                vector: p.vector,
                                payload: p.payload,
                            })
                            .collect(),
                    ),
                })
                .collect();
            inner.logged_write(&targets, || Ok((entries, ())))?;
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
        let plan = check_search(query, self.dimension()).context(BACKEND, OP)?;
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
                    .read(|edge| {
                        let ef = inner.config.hnsw_ef;
                        search_type(edge, &plan, &q.vector, q.top_k, q.need_vector, ef)
                    })?
                    .unwrap_or_default();
                hits.extend(found);
            }
            let hits = merge_hits(hits, q.score_threshold, q.top_k);
            // Only the survivors of the merge are decoded (with all types searched, up to
            // five times `top_k` hits come back).
            hits.into_iter()
                .map(|h| {
                    Ok(ScoredContext {
                        context: to_context(h.point.id, h.point.payload, h.point.vector)?,
                        score: h.score,
                    })
                })
                .collect()
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
        let edge_filter = source_filter(source_file_key, user_id).context(BACKEND, OP)?;
        let (key, user_id) = (source_file_key.to_owned(), user_id.map(str::to_owned));
        let inner = self.inner.clone();
        blocking(OP, move || {
            let targets: Vec<&Shard> = inner.shards.iter().collect();
            let (_, deleted) = inner.logged_write(&targets, || {
                // Log a deletion only for the collections holding matches.
                let mut entries = Vec::new();
                for shard in &inner.shards {
                    let n = shard
                        .read(|edge| {
                            edge.count(CountRequest {
                                filter: Some(edge_filter.clone()),
                                exact: true,
                            })
                            .map_err(engine_err)
                        })?
                        .unwrap_or(0);
                    if n > 0 {
                        entries.push(Entry {
                            collection: shard.name().to_owned(),
                            op: Op::DeleteBySource {
                                key: key.clone(),
                                user_id: user_id.clone(),
                            },
                        });
                    }
                }
                Ok((entries, ()))
            })?;
            Ok(deleted.iter().sum())
        })
        .await
    }

    async fn search_by_hierarchy(&self, query: &HierarchyQuery) -> Result<Vec<ScoredContext>> {
        const OP: &str = "search_by_hierarchy";
        self.inner.ensure_open().context(BACKEND, OP)?;
        // Native: level (+ user). The time bucket range is a string range, checked in process.
        let plan = check_hierarchy(query).context(BACKEND, OP)?;
        if query.top_k == 0 {
            return Ok(Vec::new());
        }
        let q = query.clone();
        let inner = self.inner.clone();
        blocking(OP, move || {
            let mut found: Vec<(String, String, ProcessedContext)> = Vec::new();
            inner.shard(q.context_type).read(|edge| {
                walk(edge, &plan, false, |r| {
                    let bucket = r
                        .payload
                        .as_ref()
                        .and_then(|p| p.0.get("time_bucket"))
                        .and_then(Json::as_str)
                        .map(str::to_owned);
                    if bucket_selected(bucket.as_deref(), &q) {
                        let context = to_context(r.id, r.payload, None)?;
                        found.push((bucket.unwrap_or_default(), context.id.clone(), context));
                    }
                    Ok(true)
                })
            })?;
            Ok(order_hierarchy(found, q.top_k)
                .into_iter()
                .map(|context| ScoredContext {
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
        let (num, payload) = todo_point(todo_id, content, embedding, metadata, self.dimension())
            .context(BACKEND, OP)?;
        let vector = embedding.to_vec();
        let inner = self.inner.clone();
        blocking(OP, move || {
            let shard = inner.todo_shard()?;
            let entry = Entry {
                collection: TODO_COLLECTION.to_owned(),
                op: Op::Upsert(vec![LoggedPoint {
                    id: PointId::NumId(num),
                    vector,
                    payload,
                }]),
            };
            inner.logged_write(&[shard], || Ok((vec![entry], ())))?;
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
        check_todo_search(query_embedding, self.dimension(), similarity_threshold)
            .context(BACKEND, OP)?;
        if top_k == 0 {
            return Ok(Vec::new());
        }
        let vector = query_embedding.to_vec();
        let inner = self.inner.clone();
        blocking(OP, move || {
            let hits = inner
                .todo_shard()?
                .read(|edge| {
                    let ef = inner.config.hnsw_ef;
                    edge.search(search_request(vector, None, top_k, false, ef))
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
        let num = crate::ids::todo_point_num(todo_id).context(BACKEND, OP)?;
        let inner = self.inner.clone();
        blocking(OP, move || {
            Ok(delete_points(&inner, inner.todo_shard()?, vec![PointId::NumId(num)])? > 0)
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

/// Deletes the points that exist among `points`; returns how many did. Nothing is logged
/// when none exists.
fn delete_points(inner: &Inner, shard: &Shard, points: Vec<PointId>) -> Result<u64> {
    let (_, deleted) = inner.logged_write(&[shard], || {
        let existing: Vec<PointId> = shard
            .read(|edge| retrieve(edge, &points, false, false))?
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let entries = if existing.is_empty() {
            Vec::new()
        } else {
            vec![Entry {
                collection: shard.name().to_owned(),
                op: Op::Delete(existing),
            }]
        };
        Ok((entries, ()))
    })?;
    Ok(deleted.iter().sum())
}

/// A nearest-neighbour request. `hnsw_ef` is the beam width on segments that have an HNSW
/// index (at least `limit`); segments without one (the default, see
/// `QdrantLocalConfig::indexing_threshold_kb`) are scanned exactly.
fn search_request(
    vector: Vec<f32>,
    filter: Option<qdrant_edge::Filter>,
    limit: usize,
    with_vector: bool,
    hnsw_ef: usize,
) -> SearchRequest {
    SearchRequest {
        query: QueryEnum::Nearest(NamedQuery::default_dense(vector)),
        filter,
        params: Some(qdrant_edge::SearchParams {
            hnsw_ef: Some(hnsw_ef.max(limit)),
            ..qdrant_edge::SearchParams::default()
        }),
        limit,
        offset: 0,
        with_payload: Some(WithPayloadInterface::Bool(true)),
        with_vector: Some(WithVector::Bool(with_vector)),
        score_threshold: None,
    }
}

/// A search hit of the engine before decoding.
type Hit = query::Hit<qdrant_edge::ScoredPoint>;

/// Native top-k in one collection. With a string range in the filter, the matching ids are
/// collected first (cursor + in-process check) and the search is restricted to them, so the
/// result is exact.
fn search_type(
    edge: &qdrant_edge::EdgeShard,
    plan: &FilterPlan,
    vector: &[f32],
    top_k: usize,
    need_vector: bool,
    hnsw_ef: usize,
) -> Result<Vec<Hit>> {
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
        .search(search_request(
            vector.to_vec(),
            filter,
            top_k,
            need_vector,
            hnsw_ef,
        ))
        .map_err(engine_err)?;
    Ok(hits
        .into_iter()
        .map(|h| Hit {
            score: clamp_score(h.score),
            id: query::context_id(h.payload.as_ref().map(|p| &p.0), &h.id),
            point: h,
        })
        .collect())
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
