//! [`ChromaBackend`]: the `VectorStorageBackend` over Chroma's HTTP API v2.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use serde_json::{Value as Json, json};
use storage_core::model::{ContextType, JsonMap, ProcessedContext, ScoredContext};
use storage_core::{
    ErrorKind, Filter, HierarchyQuery, ListQuery, Result, ResultExt, ScrollQuery, SearchQuery,
    SimilarTodo, StorageBackend, StorageError, StorageType, VectorCapabilities,
    VectorStorageBackend, time_bucket, validate,
};
use tokio::sync::{Mutex, Notify};

use crate::config::ChromaConfig;
use crate::core::{Client, CollectionInfo, QueryResponse};
use crate::filter::{self, Plan, Where};
use crate::records::{self, Row};

const NAME: &str = "chromadb";
/// Upper bound of records per upsert request when the server does not say.
const DEFAULT_BATCH: usize = 1000;
/// Ids per `get`/`delete` request.
const ID_CHUNK: usize = 1000;
/// Base name of the todo collection.
const TODO: &str = "todo";
/// Todo metadata keys written by the backend.
const TODO_KEYS: [&str; 3] = ["todo_id", "content", "created_at"];

/// A Chroma collection: its name and server id.
#[derive(Clone, Debug)]
struct Collection {
    name: String,
    id: String,
}

/// An upsert request kept for (re)sending.
#[derive(Debug)]
struct Write {
    collection: String,
    body: Json,
    records: usize,
}

/// The `chromadb` vector backend: one Chroma collection per context type (`<prefix><type>`)
/// and `<prefix>todo`, cosine space, in a configurable tenant and database.
///
/// Writes that fail because the server is unreachable are kept in memory, in order, and
/// retried in the background with exponential backoff; every later write first sends them,
/// and [`StorageBackend::close`] flushes them. See the crate docs.
#[derive(Clone)]
pub struct ChromaBackend {
    inner: Arc<Inner>,
}

struct Inner {
    config: ChromaConfig,
    client: Client,
    collections: BTreeMap<ContextType, Collection>,
    todo: Option<Collection>,
    batch: usize,
    closed: AtomicBool,
    /// Writes not yet accepted by the server, oldest first. Holding the lock serialises writes.
    writes: Mutex<VecDeque<Write>>,
    /// Records in `writes`.
    pending: AtomicUsize,
    wake: Notify,
}

impl fmt::Debug for ChromaBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChromaBackend")
            .field("config", &self.inner.config)
            .field("batch", &self.inner.batch)
            .field("pending_records", &self.pending_records())
            .field("closed", &self.inner.closed.load(Ordering::Acquire))
            .finish()
    }
}

impl ChromaBackend {
    /// Connects: checks the server (`/heartbeat`), creates the tenant and database when
    /// missing, and gets or creates the collections (cosine space, the configured HNSW
    /// parameters, the original's collection metadata `hnsw:space` and `context_type`).
    ///
    /// # Errors
    /// `Config` for invalid settings or an existing collection with another space or
    /// dimension; `Unavailable`/`Timeout` when the server cannot be reached (after retries);
    /// `PermissionDenied` when authentication fails.
    pub async fn open(config: ChromaConfig) -> Result<ChromaBackend> {
        Self::open_inner(config).await.context(NAME, "open")
    }

    async fn open_inner(mut config: ChromaConfig) -> Result<ChromaBackend> {
        config.validate()?;
        let client = Client::new(&config)?;
        client.heartbeat().await?;
        client
            .ensure_database(&config.tenant, &config.database)
            .await?;
        let server_max = client.max_batch_size().await?;
        let batch = config
            .max_batch_size
            .unwrap_or(DEFAULT_BATCH)
            .min(server_max.unwrap_or(usize::MAX))
            .max(1);
        // Before creating anything: the prefix must not hide data stored beside it, and an
        // unset vector_size comes from the existing collections.
        let existing: HashMap<String, CollectionInfo> = client
            .list_collections()
            .await?
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        check_neighbours(&client, &config, &existing).await?;
        if config.vector_size == 0 {
            config.vector_size = dimension_from(&config, &existing)?;
        }
        let hnsw = json!({
            "hnsw": {
                "space": "cosine",
                "ef_search": config.hnsw_ef_search,
                "ef_construction": config.hnsw_ef_construction,
                "max_neighbors": config.hnsw_max_neighbors,
            }
        });
        let mut collections = BTreeMap::new();
        for t in ContextType::ALL {
            let name = config.collection_name(t.as_str());
            let meta = json!({ "hnsw:space": "cosine", "context_type": t.as_str() });
            let info = client
                .get_or_create_collection(&name, meta, hnsw.clone())
                .await?;
            collections.insert(t, check_collection(info, &config)?);
        }
        let todo = if config.todo_embeddings {
            let name = config.collection_name(TODO);
            let meta = json!({
                "hnsw:space": "cosine",
                "description": "Todo embeddings for deduplication",
            });
            let info = client.get_or_create_collection(&name, meta, hnsw).await?;
            Some(check_collection(info, &config)?)
        } else {
            None
        };
        let inner = Arc::new(Inner {
            config,
            client,
            collections,
            todo,
            batch,
            closed: AtomicBool::new(false),
            writes: Mutex::new(VecDeque::new()),
            pending: AtomicUsize::new(0),
            wake: Notify::new(),
        });
        spawn_retry_task(Arc::downgrade(&inner));
        Ok(ChromaBackend { inner })
    }

    /// Records whose write failed because the server was unreachable and that are waiting to
    /// be sent again (by the background retry, the next write, or `close`).
    pub fn pending_records(&self) -> usize {
        self.inner.pending.load(Ordering::Acquire)
    }

    /// Records per upsert request (the configured or server's `max_batch_size`).
    pub fn batch_size(&self) -> usize {
        self.inner.batch
    }
}

/// The bases of the collection names: the context types, then `todo`.
fn bases() -> impl Iterator<Item = &'static str> {
    ContextType::ALL.iter().map(|t| t.as_str()).chain([TODO])
}

/// Refuses to open a prefixed store whose collections are all missing or empty while other
/// collections of this database hold data under the names the store would have had: the
/// original's (it ignores `collection_prefix` and always uses the bare type names) or the
/// glued `<prefix><type>` of earlier versions of this backend. Opening would show an empty
/// store next to the user's data.
async fn check_neighbours(
    client: &Client,
    config: &ChromaConfig,
    existing: &HashMap<String, CollectionInfo>,
) -> Result<()> {
    let prefix = &config.collection_prefix;
    if prefix.is_empty() {
        return Ok(());
    }
    let ours: Vec<String> = bases().map(|b| config.collection_name(b)).collect();
    for name in &ours {
        if let Some(c) = existing.get(name)
            && client.count(&c.id).await? > 0
        {
            return Ok(());
        }
    }
    let mut found = Vec::new();
    for (why, glued) in [
        (
            "written by the original, which ignores collection_prefix",
            false,
        ),
        (
            "named by earlier versions of this backend, which put no separator after the prefix",
            true,
        ),
    ] {
        let mut names = Vec::new();
        for base in bases() {
            let name = if glued {
                format!("{prefix}{base}")
            } else {
                base.to_owned()
            };
            if ours.contains(&name) {
                continue;
            }
            if let Some(c) = existing.get(&name) {
                let n = client.count(&c.id).await?;
                if n > 0 {
                    names.push(format!("'{name}' ({n} records)"));
                }
            }
        }
        if !names.is_empty() {
            found.push((why, glued, names));
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "collection_prefix {prefix:?} selects the collections {} in tenant '{}', database '{}', \
         which are missing or empty, but collections beside them hold data:",
        ours.join(", "),
        config.tenant,
        config.database
    );
    for (why, glued, names) in &found {
        msg.push_str(&format!(" {} ({why});", names.join(", ")));
        if *glued {
            msg.push_str(&format!(
                " rename each '{prefix}<type>' to '{}' (Chroma: collection.modify(name=...)) to use them;",
                config.collection_name("<type>")
            ));
        } else {
            msg.push_str(" set `collection_prefix: \"\"` in this entry to use them;");
        }
    }
    msg.push_str(" or, to start a separate empty store, set another `database`");
    Err(StorageError::config(msg))
}

/// The dimension of the existing collections of this store, for an unset `vector_size`.
fn dimension_from(
    config: &ChromaConfig,
    existing: &HashMap<String, CollectionInfo>,
) -> Result<usize> {
    let mut dims: Vec<(String, i64)> = bases()
        .map(|b| config.collection_name(b))
        .filter_map(|n| existing.get(&n).and_then(|c| c.dimension.map(|d| (n, d))))
        .collect();
    dims.sort_by_key(|(_, d)| *d);
    dims.dedup_by_key(|(_, d)| *d);
    match dims.as_slice() {
        [(_, d)] if *d > 0 && *d as usize <= crate::MAX_VECTOR_SIZE => Ok(*d as usize),
        [] => Err(StorageError::config(
            "'vector_size' is not set and none of this store's collections holds a vector yet: \
             set vector_size to the embedding dimension (the embedding model's output_dim)",
        )),
        _ => Err(StorageError::config(format!(
            "'vector_size' is not set and the collections disagree on the dimension ({}): set vector_size",
            dims.iter()
                .map(|(n, d)| format!("'{n}': {d}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Checks that an existing collection is usable: cosine space, the configured dimension.
fn check_collection(info: CollectionInfo, config: &ChromaConfig) -> Result<Collection> {
    let conf = info.configuration_json.as_ref();
    let space = conf
        .and_then(|c| {
            c.pointer("/hnsw/space")
                .or_else(|| c.pointer("/spann/space"))
        })
        .and_then(Json::as_str)
        .or_else(|| {
            info.metadata
                .as_ref()
                .and_then(|m| m.get("hnsw:space"))
                .and_then(Json::as_str)
        })
        .unwrap_or("cosine");
    if space != "cosine" {
        return Err(StorageError::config(format!(
            "collection '{}' exists with space '{space}'; this backend needs 'cosine' (scores would be wrong)",
            info.name
        )));
    }
    if let Some(d) = info.dimension
        && d != config.vector_size as i64
    {
        return Err(StorageError::config(format!(
            "collection '{}' holds vectors of dimension {d}, but vector_size is {}",
            info.name, config.vector_size
        )));
    }
    Ok(Collection {
        name: info.name,
        id: info.id,
    })
}

/// Retries pending writes in the background with exponential backoff, until the backend is
/// closed or dropped.
fn spawn_retry_task(weak: Weak<Inner>) {
    tokio::spawn(async move {
        let mut attempt = 0u32;
        loop {
            let Some(inner) = weak.upgrade() else { return };
            if inner.closed.load(Ordering::Acquire) {
                return;
            }
            if inner.pending.load(Ordering::Acquire) == 0 {
                attempt = 0;
                // Wake on a new pending write, or re-check every second (so a dropped backend
                // ends this task).
                let _ = tokio::time::timeout(Duration::from_secs(1), inner.wake.notified()).await;
                continue;
            }
            let result = {
                let mut q = inner.writes.lock().await;
                inner.drain(&mut q).await
            };
            let delay = match result {
                Ok(()) => continue,
                Err(e) => {
                    tracing::warn!(
                        backend = NAME,
                        pending_records = inner.pending.load(Ordering::Acquire),
                        error = %e,
                        "pending Chroma writes still failing; retrying"
                    );
                    inner.client.delay(attempt)
                }
            };
            attempt = attempt.saturating_add(1);
            drop(inner);
            tokio::time::sleep(delay).await;
        }
    });
}

fn include(documents: bool, metadatas: bool, embeddings: bool) -> Json {
    let mut v = Vec::new();
    if documents {
        v.push("documents");
    }
    if metadatas {
        v.push("metadatas");
    }
    if embeddings {
        v.push("embeddings");
    }
    json!(v)
}

fn dedup(ids: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.iter()
        .filter(|id| seen.insert(id.as_str()))
        .cloned()
        .collect()
}

/// One search hit before decoding.
struct Hit {
    score: f32,
    row: Row,
}

/// The first (only) query's column of a query response, checked against `n` ids.
fn column<T>(
    v: Option<Vec<Vec<Option<T>>>>,
    n: usize,
    what: &str,
) -> Result<Option<Vec<Option<T>>>> {
    match v.and_then(|v| v.into_iter().next()) {
        Some(col) if col.len() != n => Err(StorageError::backend(format!(
            "malformed query response: {} {what} for {n} ids",
            col.len()
        ))),
        other => Ok(other),
    }
}

fn query_rows(resp: QueryResponse) -> Result<Vec<(Row, Option<f32>)>> {
    let ids = resp.ids.into_iter().next().unwrap_or_default();
    let n = ids.len();
    let mut docs = column(resp.documents, n, "documents")?.map(Vec::into_iter);
    let mut metas = column(resp.metadatas, n, "metadatas")?.map(Vec::into_iter);
    let mut embs = column(resp.embeddings, n, "embeddings")?.map(Vec::into_iter);
    let mut dists = column(resp.distances, n, "distances")?.map(Vec::into_iter);
    Ok(ids
        .into_iter()
        .map(|id| {
            let row = Row {
                id,
                document: docs.as_mut().and_then(|d| d.next().flatten()),
                metadata: metas.as_mut().and_then(|m| m.next().flatten()),
                embedding: embs.as_mut().and_then(|e| e.next().flatten()),
            };
            (row, dists.as_mut().and_then(|d| d.next().flatten()))
        })
        .collect())
}

/// Cosine similarity from Chroma's cosine distance (`1 - cos`), clamped to `[-1, 1]`.
/// Chroma's `n_results` is a `u32` (a larger value is refused with HTTP 422); no collection
/// holds more records, so a larger `top_k` asks for `u32::MAX`, with the same answer.
fn n_results(top_k: usize) -> u32 {
    u32::try_from(top_k).unwrap_or(u32::MAX)
}

fn similarity(distance: f32) -> f32 {
    (1.0 - distance).clamp(-1.0, 1.0)
}

impl Inner {
    fn open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StorageError::new(
                ErrorKind::NotInitialized,
                "backend is closed",
            ))
        } else {
            Ok(())
        }
    }

    fn coll(&self, t: ContextType) -> &Collection {
        &self.collections[&t]
    }

    fn todo(&self) -> Result<&Collection> {
        self.todo.as_ref().ok_or_else(|| {
            StorageError::unsupported("todo embeddings are disabled (consumption.enabled is false)")
        })
    }

    fn types(types: &Option<Vec<ContextType>>) -> Vec<ContextType> {
        match types {
            Some(ts) => {
                let mut seen = HashSet::new();
                ts.iter().copied().filter(|t| seen.insert(*t)).collect()
            }
            None => ContextType::ALL.to_vec(),
        }
    }

    // ----- writes -----

    /// Sends the pending writes in order; stops at the first failure, which stays queued
    /// when retryable. A write the server refuses for good (a 4xx) is removed and reported.
    /// Sends one upsert so that it *replaces* the records it names. Chroma's upsert merges
    /// the given metadata into an existing record and keeps its document when none is given,
    /// so an overwrite that leaves a field unset would keep the old value (and an old
    /// `user_id` or `source_file_key` would still match filters). Before each send, the
    /// stored records of the ids are read: keys the new version lacks are sent as `null`
    /// (which deletes them), and a record whose old document the new version drops is
    /// deleted first (Chroma cannot clear a document).
    async fn upsert_replacing(&self, w: &mut Write) -> Result<()> {
        let ids: Vec<String> = w.body["ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let old = self
                .client
                .get(
                    &w.collection,
                    &json!({ "ids": ids, "include": ["metadatas", "documents"] }),
                )
                .await?;
            let docs = old.documents.unwrap_or_default();
            let metas = old.metadatas.unwrap_or_default();
            let mut clear = Vec::new();
            for (k, id) in old.ids.iter().enumerate() {
                let Some(pos) = ids.iter().position(|x| x == id) else {
                    continue;
                };
                let had_doc = docs.get(k).is_some_and(Option::is_some);
                let drops_doc = w.body["documents"][pos].is_null();
                let Some(new_meta) = w.body["metadatas"][pos].as_object_mut() else {
                    continue;
                };
                if had_doc && drops_doc {
                    new_meta.retain(|_, v| !v.is_null());
                    clear.push(id.clone());
                    continue;
                }
                if let Some(Some(old_meta)) = metas.get(k) {
                    for key in old_meta.keys() {
                        if !new_meta.contains_key(key) {
                            new_meta.insert(key.clone(), Json::Null);
                        }
                    }
                }
            }
            if !clear.is_empty() {
                self.client.delete_ids(&w.collection, &clear).await?;
            }
        }
        self.client.upsert(&w.collection, &w.body).await
    }

    async fn drain(&self, q: &mut VecDeque<Write>) -> Result<()> {
        while let Some(w) = q.front_mut() {
            match self.upsert_replacing(w).await {
                Ok(()) => {}
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => {
                    let w = q.pop_front().expect("front");
                    self.pending.fetch_sub(w.records, Ordering::AcqRel);
                    return Err(StorageError::backend(format!(
                        "a kept write of {} records (from an earlier failed call) was refused by the server and dropped",
                        w.records
                    ))
                    .with_source(e));
                }
            }
            let w = q.pop_front().expect("front");
            self.pending.fetch_sub(w.records, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Queues `writes` after the pending ones and wakes the retry task. The error is
    /// `Timeout` when `cause` is one (the server stalled), else `Unavailable`; retryable.
    /// Its outcome is always [`storage_core::WriteOutcome::Unknown`]: the kept records will be written by
    /// the background retry or `close()` (and a timed-out request may have been applied
    /// already), so the call's records may or may not be stored at any later moment.
    /// Repeating the call is safe: upserts by id are idempotent and the repeat is sent after
    /// the kept writes.
    fn keep(
        &self,
        q: &mut VecDeque<Write>,
        writes: VecDeque<Write>,
        cause: StorageError,
    ) -> StorageError {
        let n: usize = writes.iter().map(|w| w.records).sum();
        self.pending.fetch_add(n, Ordering::AcqRel);
        q.extend(writes);
        self.wake.notify_one();
        let total = self.pending.load(Ordering::Acquire);
        let kind = if cause.kind() == ErrorKind::Timeout {
            ErrorKind::Timeout
        } else {
            ErrorKind::Unavailable
        };
        StorageError::new(
            kind,
            format!(
                "the Chroma server did not accept the write: {n} records kept pending ({total} in total), retried in the background and flushed by close()"
            ),
        )
        .set_retryable(true)
        .with_source(cause)
        .with_outcome_unknown(true)
    }

    /// Sends upserts after the pending ones; on a retryable failure they are kept.
    async fn write(&self, writes: Vec<Write>) -> Result<()> {
        let mut writes = VecDeque::from(writes);
        let mut q = self.writes.lock().await;
        if let Err(e) = self.drain(&mut q).await {
            if e.is_retryable() {
                return Err(self.keep(&mut q, writes, e));
            }
            return Err(e);
        }
        while let Some(mut w) = writes.pop_front() {
            match self.upsert_replacing(&mut w).await {
                Ok(()) => {}
                Err(e) if e.is_retryable() => {
                    writes.push_front(w);
                    return Err(self.keep(&mut q, writes, e));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Runs a delete after the pending writes (so a kept upsert cannot resurrect what is
    /// deleted); fails with `Unavailable` while they cannot be sent. Deletes are not kept.
    async fn delete_ids(&self, collection: &str, ids: &[String]) -> Result<()> {
        let mut q = self.writes.lock().await;
        if let Err(e) = self.drain(&mut q).await {
            // The failure is an older kept write's: this delete was not sent.
            return Err(StorageError::new(
                e.kind(),
                "writes kept from earlier failed calls could not be sent first, so nothing was deleted",
            )
            .set_retryable(e.is_retryable())
            .with_source(e));
        }
        for (n, chunk) in ids.chunks(ID_CHUNK).enumerate() {
            if let Err(e) = self.client.delete_ids(collection, chunk).await {
                // Earlier chunks are deleted: the call is partly applied. Deleting by id is
                // idempotent, so repeating it is safe.
                return Err(if n > 0 {
                    e.with_outcome_unknown(true)
                } else {
                    e
                });
            }
        }
        Ok(())
    }

    /// The ids among `ids` that exist in `collection`.
    async fn existing(&self, collection: &str, ids: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(ID_CHUNK) {
            let body = json!({ "ids": chunk, "include": [] });
            out.extend(self.client.get(collection, &body).await?.ids);
        }
        Ok(out)
    }

    // ----- reads -----

    /// `get` with an optional `where`, ids, limit/offset.
    async fn fetch(
        &self,
        collection: &str,
        native: &Where,
        ids: Option<&[String]>,
        page: Option<(usize, usize)>,
        include: Json,
    ) -> Result<Vec<Row>> {
        let mut body = json!({ "include": include });
        if let Some(w) = native.clause() {
            body["where"] = w.clone();
        }
        if let Some(ids) = ids {
            body["ids"] = json!(ids);
        }
        if let Some((limit, offset)) = page {
            body["limit"] = json!(limit);
            body["offset"] = json!(offset);
        }
        records::rows(self.client.get(collection, &body).await?)
    }

    /// Every record of `t` matching the plan (residual applied), with documents and
    /// metadata when the residual needs them or `full` is set.
    async fn matching(
        &self,
        t: ContextType,
        plan: &Plan,
        full: bool,
        need_vector: bool,
    ) -> Result<Vec<Row>> {
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let payload = full || plan.residual.is_some();
        let rows = self
            .fetch(
                &self.coll(t).id,
                &plan.native,
                None,
                None,
                include(payload, payload, need_vector),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter(|r| plan.accepts(&r.payload()))
            .collect())
    }

    async fn search(&self, q: &SearchQuery) -> Result<Vec<ScoredContext>> {
        self.open()?;
        validate::validate_vector("query vector", &q.vector, self.config.vector_size)?;
        if let Some(th) = q.score_threshold
            && !th.is_finite()
        {
            return Err(StorageError::invalid_input(format!(
                "score_threshold must be finite, got {th}"
            )));
        }
        let plan = filter::plan(q.scope.apply(q.filter.as_ref()).as_ref())?;
        if q.top_k == 0 || plan.is_empty() {
            return Ok(Vec::new());
        }
        let mut hits = Vec::new();
        for t in Self::types(&q.context_types) {
            let coll = self.coll(t);
            let mut body = json!({
                "query_embeddings": [q.vector],
                "n_results": n_results(q.top_k),
                "include": ["documents", "metadatas", "distances"],
            });
            if q.need_vector {
                body["include"] = json!(["documents", "metadatas", "distances", "embeddings"]);
            }
            if let Some(w) = plan.native.clause() {
                body["where"] = w.clone();
            }
            if plan.residual.is_some() {
                let ids: Vec<String> = self
                    .matching(t, &plan, false, false)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                body["ids"] = json!(ids);
            }
            for (row, distance) in query_rows(self.client.query(&coll.id, &body).await?)? {
                let distance = distance.ok_or_else(|| {
                    StorageError::backend(format!("query returned no distance for '{}'", row.id))
                })?;
                let score = similarity(distance);
                if q.score_threshold.is_none_or(|th| score >= th) {
                    hits.push(Hit { score, row });
                }
            }
        }
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.row.id.cmp(&b.row.id))
        });
        hits.truncate(q.top_k);
        hits.into_iter()
            .map(|h| {
                Ok(ScoredContext {
                    context: h.row.into_context(q.need_vector)?,
                    score: h.score,
                })
            })
            .collect()
    }

    async fn list(&self, q: &ListQuery) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>> {
        self.open()?;
        let plan = filter::plan(q.scope.apply(q.filter.as_ref()).as_ref())?;
        let mut out = BTreeMap::new();
        if q.limit == 0 || plan.is_empty() {
            return Ok(out);
        }
        for t in Self::types(&q.context_types) {
            let rows = if plan.residual.is_none() {
                self.fetch(
                    &self.coll(t).id,
                    &plan.native,
                    None,
                    Some((q.limit, q.offset)),
                    include(true, true, q.need_vector),
                )
                .await?
            } else {
                self.matching(t, &plan, true, q.need_vector)
                    .await?
                    .into_iter()
                    .skip(q.offset)
                    .take(q.limit)
                    .collect()
            };
            let contexts = rows
                .into_iter()
                .map(|r| r.into_context(q.need_vector))
                .collect::<Result<Vec<_>>>()?;
            if !contexts.is_empty() {
                out.insert(t, contexts);
            }
        }
        Ok(out)
    }

    /// The ids of `t` matching the plan: the scroll's snapshot.
    async fn scroll_ids(&self, t: ContextType, plan: &Plan) -> Result<Vec<String>> {
        Ok(self
            .matching(t, plan, false, false)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    /// One scroll page: the records with these ids that still match.
    async fn scroll_page(
        &self,
        t: ContextType,
        ids: &[String],
        plan: &Plan,
        need_vector: bool,
    ) -> Result<Vec<ProcessedContext>> {
        let rows = self
            .fetch(
                &self.coll(t).id,
                &plan.native,
                Some(ids),
                None,
                include(true, true, need_vector),
            )
            .await?;
        rows.into_iter()
            .filter(|r| plan.accepts(&r.payload()))
            .map(|r| r.into_context(need_vector))
            .collect()
    }
}

/// State of a scroll: types left, and id pages left of the current type.
struct ScrollState {
    plan: Plan,
    types: VecDeque<ContextType>,
    current: Option<ContextType>,
    pages: VecDeque<Vec<String>>,
}

#[async_trait]
impl StorageBackend for ChromaBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn storage_type(&self) -> StorageType {
        StorageType::VectorDb
    }

    async fn health_check(&self) -> Result<()> {
        let i = &self.inner;
        i.open()?;
        i.client.heartbeat().await.context(NAME, "health_check")
    }

    async fn close(&self) -> Result<()> {
        let i = &self.inner;
        if i.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let deadline = Instant::now() + i.config.close_timeout();
        let mut q = i.writes.lock().await;
        let mut attempt = 0;
        // A kept write the server refuses for good is dropped by `drain`; the first such error
        // is returned after the rest is flushed.
        let mut refused: Option<StorageError> = None;
        loop {
            match i.drain(&mut q).await {
                Ok(()) => break,
                Err(e) if !e.is_retryable() => {
                    refused.get_or_insert(e);
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(i.client.delay(attempt).min(deadline - Instant::now()))
                        .await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(StorageError::new(
                        ErrorKind::Unavailable,
                        format!(
                            "{} records are still pending after {} s of retries; the backend stays open (call close() again to retry)",
                            i.pending.load(Ordering::Acquire),
                            i.config.close_timeout_secs
                        ),
                    )
                    .set_retryable(true)
                    .with_source(e)
                    .with_backend(NAME)
                    .with_operation("close"));
                }
            }
        }
        i.closed.store(true, Ordering::Release);
        i.wake.notify_one();
        match refused {
            Some(e) => Err(e.with_backend(NAME).with_operation("close")),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl VectorStorageBackend for ChromaBackend {
    fn capabilities(&self) -> VectorCapabilities {
        VectorCapabilities::FULL.with_todo_embeddings(self.inner.todo.is_some())
    }

    fn dimension(&self) -> usize {
        self.inner.config.vector_size
    }

    async fn get_collection_names(&self) -> Result<Vec<String>> {
        let i = &self.inner;
        i.open().context(NAME, "get_collection_names")?;
        Ok(i.collections
            .values()
            .chain(i.todo.as_ref())
            .map(|c| c.name.clone())
            .collect())
    }

    async fn delete_contexts(&self, ids: &[String], context_type: ContextType) -> Result<u64> {
        let i = &self.inner;
        async {
            i.open()?;
            ids.iter()
                .try_for_each(|id| validate::validate_id("id", id))?;
            let ids = dedup(ids);
            if ids.is_empty() {
                return Ok(0);
            }
            let coll = &i.coll(context_type).id;
            let existing = i.existing(coll, &ids).await?;
            if !existing.is_empty() {
                i.delete_ids(coll, &existing).await?;
            }
            Ok(existing.len() as u64)
        }
        .await
        .context(NAME, "delete_contexts")
    }

    async fn batch_upsert_processed_context(
        &self,
        contexts: &[ProcessedContext],
    ) -> Result<Vec<String>> {
        let i = &self.inner;
        async {
            i.open()?;
            validate::validate_contexts(contexts, i.config.vector_size)?;
            let mut by_type: BTreeMap<ContextType, Vec<records::Record>> = BTreeMap::new();
            for c in contexts {
                let r = records::to_record(c)?;
                let size = serde_json::to_vec(&r.metadata)?.len()
                    + r.document.as_ref().map_or(0, String::len);
                validate::validate_payload_size(&c.id, size)?;
                by_type.entry(c.context_type()).or_default().push(r);
            }
            let mut writes = Vec::new();
            for (t, recs) in &by_type {
                for chunk in recs.chunks(i.batch) {
                    writes.push(Write {
                        collection: i.coll(*t).id.clone(),
                        body: records::upsert_body(chunk),
                        records: chunk.len(),
                    });
                }
            }
            if !writes.is_empty() {
                i.write(writes).await?;
            }
            Ok(contexts.iter().map(|c| c.id.clone()).collect())
        }
        .await
        .context(NAME, "batch_upsert_processed_context")
    }

    async fn get_all_processed_contexts(
        &self,
        query: &ListQuery,
    ) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>> {
        self.inner
            .list(query)
            .await
            .context(NAME, "get_all_processed_contexts")
    }

    async fn get_processed_context(
        &self,
        id: &str,
        context_type: ContextType,
        need_vector: bool,
    ) -> Result<Option<ProcessedContext>> {
        let i = &self.inner;
        async {
            i.open()?;
            validate::validate_id("id", id)?;
            let rows = i
                .fetch(
                    &i.coll(context_type).id,
                    &Where::All,
                    Some(&[id.to_owned()]),
                    None,
                    include(true, true, need_vector),
                )
                .await?;
            rows.into_iter()
                .next()
                .map(|r| r.into_context(need_vector))
                .transpose()
        }
        .await
        .context(NAME, "get_processed_context")
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<ScoredContext>> {
        self.inner.search(query).await.context(NAME, "search")
    }

    async fn get_processed_context_count(&self, context_type: ContextType) -> Result<u64> {
        let i = &self.inner;
        async {
            i.open()?;
            i.client.count(&i.coll(context_type).id).await
        }
        .await
        .context(NAME, "get_processed_context_count")
    }

    async fn delete_by_source_file(
        &self,
        source_file_key: &str,
        user_id: Option<&str>,
    ) -> Result<u64> {
        let i = &self.inner;
        async {
            i.open()?;
            validate::validate_source_file_key(source_file_key, user_id)?;
            let mut f = Filter::eq("source_file_key", source_file_key);
            if let Some(u) = user_id {
                f = f.and(Filter::eq("user_id", u));
            }
            let plan = filter::plan(Some(&f))?;
            let mut n = 0;
            for t in ContextType::ALL {
                let step = async {
                    let ids: Vec<String> = i
                        .matching(t, &plan, false, false)
                        .await?
                        .into_iter()
                        .map(|r| r.id)
                        .collect();
                    if !ids.is_empty() {
                        i.delete_ids(&i.coll(t).id, &ids).await?;
                    }
                    Ok::<_, StorageError>(ids.len() as u64)
                };
                match step.await {
                    Ok(k) => n += k,
                    // The types before are deleted: partly applied (repeating is safe).
                    Err(e) if n > 0 => return Err(e.with_outcome_unknown(true)),
                    Err(e) => return Err(e),
                }
            }
            Ok(n)
        }
        .await
        .context(NAME, "delete_by_source_file")
    }

    async fn search_by_hierarchy(&self, q: &HierarchyQuery) -> Result<Vec<ScoredContext>> {
        let i = &self.inner;
        async {
            i.open()?;
            time_bucket::validate_range(
                q.time_bucket_start.as_deref(),
                q.time_bucket_end.as_deref(),
            )?;
            if let Some(u) = &q.user_id {
                validate::validate_id("user_id", u)?;
            }
            if q.top_k == 0 {
                return Ok(Vec::new());
            }
            // Level and user natively; the bucket range (strings, which `where` cannot
            // compare) in process.
            let mut f = Filter::eq("hierarchy_level", q.hierarchy_level);
            if let Some(u) = &q.user_id {
                f = f.and(Filter::eq("user_id", u));
            }
            let plan = filter::plan(Some(&f))?;
            let mut hits: Vec<ProcessedContext> = i
                .matching(q.context_type, &plan, true, false)
                .await?
                .into_iter()
                .map(|r| r.into_context(false))
                .filter(|c| match c {
                    // Without bounds every record of the level matches, with or without a
                    // bucket (the original asks only for the level then); a bound excludes
                    // records without one, as Chroma's `$gte`/`$lte` do.
                    Ok(c) => match c.properties.time_bucket.as_deref() {
                        Some(tb) => time_bucket::in_range(
                            tb,
                            q.time_bucket_start.as_deref(),
                            q.time_bucket_end.as_deref(),
                        ),
                        None => q.time_bucket_start.is_none() && q.time_bucket_end.is_none(),
                    },
                    Err(_) => true,
                })
                .collect::<Result<_>>()?;
            hits.sort_by(|a, b| {
                a.properties
                    .time_bucket
                    .cmp(&b.properties.time_bucket)
                    .then_with(|| a.id.cmp(&b.id))
            });
            hits.truncate(q.top_k);
            Ok(hits
                .into_iter()
                .map(|context| ScoredContext {
                    context,
                    score: 1.0,
                })
                .collect())
        }
        .await
        .context(NAME, "search_by_hierarchy")
    }

    async fn get_by_ids(
        &self,
        ids: &[String],
        context_type: Option<ContextType>,
    ) -> Result<Vec<ProcessedContext>> {
        let i = &self.inner;
        async {
            i.open()?;
            ids.iter()
                .try_for_each(|id| validate::validate_id("id", id))?;
            let types = context_type.map_or_else(|| ContextType::ALL.to_vec(), |t| vec![t]);
            let mut found: HashMap<String, ProcessedContext> = HashMap::new();
            let mut remaining = dedup(ids);
            for t in types {
                if remaining.is_empty() {
                    break;
                }
                for chunk in remaining.chunks(ID_CHUNK) {
                    let rows = i
                        .fetch(
                            &i.coll(t).id,
                            &Where::All,
                            Some(chunk),
                            None,
                            include(true, true, false),
                        )
                        .await?;
                    for r in rows {
                        let c = r.into_context(false)?;
                        found.insert(c.id.clone(), c);
                    }
                }
                remaining.retain(|id| !found.contains_key(id));
            }
            Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
        }
        .await
        .context(NAME, "get_by_ids")
    }

    async fn upsert_todo_embedding(
        &self,
        todo_id: i64,
        content: &str,
        embedding: &[f32],
        metadata: Option<&JsonMap>,
    ) -> Result<()> {
        let i = &self.inner;
        async {
            i.open()?;
            let coll = i.todo()?;
            validate::validate_todo_id(todo_id)?;
            validate::validate_vector("todo embedding", embedding, i.config.vector_size)?;
            let mut meta = JsonMap::new();
            if let Some(m) = metadata {
                if let Some(k) = m.keys().find(|k| TODO_KEYS.contains(&k.as_str())) {
                    return Err(StorageError::invalid_input(format!(
                        "todo metadata key '{k}' collides with a field the backend writes (todo_id, content, created_at)"
                    )));
                }
                for k in m.keys() {
                    storage_core::filter::validate_field_name(k)?;
                }
                meta = records::flatten_metadata(m);
                records::check_integers("todo", &meta)?;
            }
            meta.insert("todo_id".into(), json!(todo_id));
            meta.insert("content".into(), json!(content));
            meta.insert(
                "created_at".into(),
                json!(storage_core::time::format_timestamp(&storage_core::time::now())),
            );
            let size = serde_json::to_vec(&meta)?.len();
            if size > validate::MAX_PAYLOAD_BYTES {
                return Err(StorageError::invalid_input(format!(
                    "todo {todo_id} content and metadata are {size} bytes, the limit is {}",
                    validate::MAX_PAYLOAD_BYTES
                )));
            }
            let body = json!({
                "ids": [format!("todo_{todo_id}")],
                "embeddings": [embedding],
                "metadatas": [meta],
            });
            i.write(vec![Write {
                collection: coll.id.clone(),
                body,
                records: 1,
            }])
            .await
        }
        .await
        .context(NAME, "upsert_todo_embedding")
    }

    async fn search_similar_todos(
        &self,
        query_embedding: &[f32],
        top_k: usize,
        similarity_threshold: f32,
    ) -> Result<Vec<SimilarTodo>> {
        let i = &self.inner;
        async {
            i.open()?;
            let coll = i.todo()?;
            validate::validate_vector("query embedding", query_embedding, i.config.vector_size)?;
            if !similarity_threshold.is_finite() {
                return Err(StorageError::invalid_input(format!(
                    "similarity_threshold must be finite, got {similarity_threshold}"
                )));
            }
            if top_k == 0 {
                return Ok(Vec::new());
            }
            let body = json!({
                "query_embeddings": [query_embedding],
                "n_results": n_results(top_k),
                "include": ["metadatas", "distances"],
            });
            let mut out = Vec::new();
            for (row, distance) in query_rows(i.client.query(&coll.id, &body).await?)? {
                let d = distance.ok_or_else(|| {
                    StorageError::backend(format!("query returned no distance for '{}'", row.id))
                })?;
                let score = similarity(d);
                if score < similarity_threshold {
                    continue;
                }
                let meta = row.metadata.unwrap_or_default();
                let todo_id = meta
                    .get("todo_id")
                    .and_then(Json::as_i64)
                    .or_else(|| row.id.strip_prefix("todo_").and_then(|s| s.parse().ok()))
                    .ok_or_else(|| {
                        StorageError::data_corrupted(format!(
                            "todo record '{}' has no todo_id",
                            row.id
                        ))
                    })?;
                let content = meta
                    .get("content")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned();
                out.push(SimilarTodo {
                    todo_id,
                    content,
                    score,
                });
            }
            out.sort_by(|a, b| b.score.total_cmp(&a.score));
            Ok(out)
        }
        .await
        .context(NAME, "search_similar_todos")
    }

    async fn delete_todo_embedding(&self, todo_id: i64) -> Result<bool> {
        let i = &self.inner;
        async {
            i.open()?;
            let coll = i.todo()?;
            validate::validate_todo_id(todo_id)?;
            let id = vec![format!("todo_{todo_id}")];
            let existing = i.existing(&coll.id, &id).await?;
            if existing.is_empty() {
                return Ok(false);
            }
            i.delete_ids(&coll.id, &existing).await?;
            Ok(true)
        }
        .await
        .context(NAME, "delete_todo_embedding")
    }

    fn scroll_processed_contexts(&self, q: ScrollQuery) -> BoxStream<'_, Result<ProcessedContext>> {
        let i: &Inner = &self.inner;
        let setup = i.open().and_then(|_| {
            let plan = filter::plan(q.scope.apply(q.filter.as_ref()).as_ref())?;
            Ok(ScrollState {
                plan,
                types: Inner::types(&q.context_types).into(),
                current: None,
                pages: VecDeque::new(),
            })
        });
        let state = match setup {
            Ok(s) => s,
            Err(e) => {
                return stream::once(async move {
                    Err(e
                        .with_backend(NAME)
                        .with_operation("scroll_processed_contexts"))
                })
                .boxed();
            }
        };
        let batch = q.batch_size.max(1);
        let need_vector = q.need_vector;
        stream::try_unfold(state, move |mut s| async move {
            loop {
                if let (Some(t), Some(ids)) = (s.current, s.pages.pop_front()) {
                    let page = i.scroll_page(t, &ids, &s.plan, need_vector).await?;
                    return Ok::<_, StorageError>(Some((page, s)));
                }
                let Some(t) = s.types.pop_front() else {
                    return Ok(None);
                };
                let ids = i.scroll_ids(t, &s.plan).await?;
                s.current = Some(t);
                s.pages = ids.chunks(batch).map(<[String]>::to_vec).collect();
            }
        })
        .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
        .try_flatten()
        .map_err(|e: StorageError| {
            e.with_backend(NAME)
                .with_operation("scroll_processed_contexts")
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_is_one_minus_distance_clamped() {
        assert_eq!(similarity(0.0), 1.0);
        assert!((similarity(0.4) - 0.6).abs() < 1e-6);
        assert_eq!(similarity(2.0000002), -1.0);
    }
}
