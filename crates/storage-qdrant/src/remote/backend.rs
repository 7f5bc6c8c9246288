//! [`QdrantRemoteBackend`]: the [`VectorStorageBackend`] over a Qdrant server (gRPC).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::{
    CollectionInfo, CreateCollection, CreateFieldIndexCollection, Distance, FieldType,
    GetCollectionInfoRequest, PointId, PointStruct, QueryPoints, ScoredPoint, VectorParams,
    VectorsConfig,
};
use storage_core::model::{ContextType, JsonMap, ProcessedContext, ScoredContext};
use storage_core::payload::FieldType as OurFieldType;
use storage_core::{
    ErrorKind, HierarchyQuery, ListQuery, ScrollQuery, SearchQuery, SimilarTodo, StorageBackend,
    StorageError, StorageType, VectorCapabilities, VectorStorageBackend, validate,
};
use storage_core::{Result, ResultExt};

use super::client::Client;
use super::condition::{key_path, to_grpc_filter, with_ids};
use super::config::QdrantRemoteConfig;
use super::records::{
    Collection, INTERNAL_PAGE, PayloadWanted, Record, id_key, id_string, native_filter, num_id,
    payload_json, point, protocol_error, uuid_id, vectors_selector,
};
use super::scroll;
use crate::filter::FilterPlan;
use crate::ids::point_uuid;
use crate::points::{ContextPoint, decode_todo, encode_contexts};
use crate::query::{
    self, bucket_selected, check_hierarchy, check_search, check_todo_search, clamp_score,
    merge_hits, order_hierarchy, source_file_filter, todo_point, types_or_all, unique_point_uuids,
};
use crate::schema::{TODO_COLLECTION, TODO_INDEXES, context_indexes, type_index};

/// Backend name in error messages.
pub(crate) const BACKEND: &str = "qdrant-remote";
/// Upper bound of the estimated encoded size of one upsert request.
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// The Qdrant vector backend in remote mode: a Qdrant server reached over gRPC with
/// [`qdrant-client`](https://docs.rs/qdrant-client), one collection per context type (and
/// `todo`), cosine distance.
///
/// Cheap to clone (the clones share the connection). See the crate documentation for the
/// configuration, the metric and what differs from local mode.
#[derive(Clone)]
pub struct QdrantRemoteBackend {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) config: QdrantRemoteConfig,
    /// Collection names, one per [`ContextType::ALL`], in that order.
    names: Vec<String>,
    todo: Option<String>,
    closed: AtomicBool,
}

impl std::fmt::Debug for QdrantRemoteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config's Debug redacts the API key.
        f.debug_struct("QdrantRemoteBackend")
            .field("config", &self.inner.config)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Inner {
    pub(crate) fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StorageError::new(
                ErrorKind::NotInitialized,
                "the store is closed",
            ))
        } else {
            Ok(())
        }
    }

    /// The collection of a context type.
    pub(crate) fn collection(&self, t: ContextType) -> Collection<'_> {
        Collection {
            client: &self.client,
            name: &self.names[type_index(t)],
        }
    }

    fn todo_collection(&self) -> Result<Collection<'_>> {
        let name = self.todo.as_deref().ok_or_else(|| {
            StorageError::unsupported(
                "todo embeddings are disabled (todo_embeddings / consumption.enabled is false)",
            )
        })?;
        Ok(Collection {
            client: &self.client,
            name,
        })
    }

    /// The collection's info when it exists, after checking its vector parameters; `None`
    /// when it does not exist. Only reads.
    async fn inspect_collection(&self, name: &str) -> Result<Option<CollectionInfo>> {
        let client = &self.client;
        let exists = client
            .call("collection_exists", || {
                client.qdrant.collection_exists(name)
            })
            .await?;
        if !exists {
            return Ok(None);
        }
        let info = self.collection_info(name).await?;
        self.check_vectors(name, &info)?;
        Ok(Some(info))
    }

    /// Creates a missing collection (cosine, `vector_size`). If another process created it
    /// meanwhile, that one is checked and used. Returns its info.
    async fn create_collection(&self, name: &str) -> Result<CollectionInfo> {
        let client = &self.client;
        let request = CreateCollection {
            collection_name: name.to_owned(),
            vectors_config: Some(VectorsConfig {
                config: Some(VectorsConfigKind::Params(VectorParams {
                    size: self.config.vector_size as u64,
                    distance: Distance::Cosine.into(),
                    ..VectorParams::default()
                })),
            }),
            ..CreateCollection::default()
        };
        match client
            .call_write("create_collection", || {
                client.qdrant.create_collection(request.clone())
            })
            .await
        {
            Ok(_) => tracing::info!(collection = name, "created qdrant collection"),
            Err(e) => {
                // Created meanwhile by another process (the server then answers "already
                // exists" as invalid input): use it, checked like any other.
                if let Some(info) = self.inspect_collection(name).await? {
                    return Ok(info);
                }
                return Err(e);
            }
        }
        let info = self.collection_info(name).await?;
        self.check_vectors(name, &info)?;
        Ok(info)
    }

    /// Adds the payload indexes the collection lacks (an index of another type is left
    /// alone).
    async fn add_missing_indexes(
        &self,
        name: &str,
        info: &CollectionInfo,
        indexes: &[(&'static str, OurFieldType)],
    ) -> Result<()> {
        let client = &self.client;
        for (field, kind) in indexes {
            if info.payload_schema.contains_key(*field) {
                continue;
            }
            let request = CreateFieldIndexCollection {
                collection_name: name.to_owned(),
                wait: Some(true),
                field_name: key_path(field),
                field_type: Some(field_type(*kind).into()),
                ..CreateFieldIndexCollection::default()
            };
            client
                .call_write("create_field_index", || {
                    client.qdrant.create_field_index(request.clone())
                })
                .await?;
        }
        Ok(())
    }

    /// Makes sure every collection of the store exists with its indexes. Every existing
    /// collection is checked **before** anything is created, so a store whose collections
    /// do not fit (another size or distance) is refused without leaving new, half-made
    /// collections on the server.
    async fn ensure_collections(&self) -> Result<()> {
        let context = context_indexes(true);
        let wanted: Vec<(&str, &[(&'static str, OurFieldType)])> = self
            .names
            .iter()
            .map(|n| (n.as_str(), context.as_slice()))
            .chain(self.todo.as_deref().map(|t| (t, TODO_INDEXES)))
            .collect();
        let mut found = Vec::with_capacity(wanted.len());
        for (name, _) in &wanted {
            found.push(self.inspect_collection(name).await?);
        }
        for ((name, indexes), info) in wanted.into_iter().zip(found) {
            let info = match info {
                Some(info) => info,
                None => self.create_collection(name).await?,
            };
            self.add_missing_indexes(name, &info, indexes).await?;
        }
        Ok(())
    }

    async fn collection_info(&self, name: &str) -> Result<CollectionInfo> {
        let client = &self.client;
        let request = GetCollectionInfoRequest {
            collection_name: name.to_owned(),
        };
        client
            .call("collection_info", || {
                client.qdrant.collection_info(request.clone())
            })
            .await?
            .result
            .ok_or_else(|| protocol_error(format!("no info for collection '{name}'")))
    }

    /// The collection must hold one unnamed dense cosine vector of `vector_size`.
    fn check_vectors(&self, name: &str, info: &CollectionInfo) -> Result<()> {
        let params = info
            .config
            .as_ref()
            .and_then(|c| c.params.as_ref())
            .and_then(|p| p.vectors_config.as_ref())
            .and_then(|v| v.config.as_ref());
        let Some(VectorsConfigKind::Params(params)) = params else {
            return Err(StorageError::config(format!(
                "collection '{name}' exists without a single unnamed vector; this backend \
                 needs one dense vector per point"
            )));
        };
        if params.size != self.config.vector_size as u64 {
            return Err(StorageError::config(format!(
                "collection '{name}' holds {}-dimensional vectors, but 'vector_size' is {}",
                params.size, self.config.vector_size
            )));
        }
        if params.distance != i32::from(Distance::Cosine) {
            return Err(StorageError::config(format!(
                "collection '{name}' uses distance {:?}, this backend needs Cosine",
                Distance::try_from(params.distance).unwrap_or(Distance::UnknownDistance)
            )));
        }
        Ok(())
    }
}

fn field_type(kind: OurFieldType) -> FieldType {
    match kind {
        OurFieldType::Keyword => FieldType::Keyword,
        OurFieldType::Integer => FieldType::Integer,
        OurFieldType::Bool => FieldType::Bool,
    }
}

impl QdrantRemoteBackend {
    /// Connects to the server and makes sure every collection exists with its payload
    /// indexes: `<prefix><type>` for each context type, `<prefix>todo` when todo embeddings
    /// are enabled. Every existing collection is checked first (vector size, cosine
    /// distance); only when all fit are the missing ones created (cosine, `vector_size`) and
    /// missing indexes added, so a refused connect leaves nothing new on the server. Every
    /// call is bounded by `timeout` (see [`QdrantRemoteConfig`]).
    ///
    /// # Errors
    /// * [`ErrorKind::Config`] for invalid settings, or a collection with another vector
    ///   size or distance;
    /// * [`ErrorKind::Unavailable`] / [`ErrorKind::Timeout`] (retryable) when the server
    ///   cannot be reached (after the configured retries);
    /// * [`ErrorKind::PermissionDenied`] for a missing or wrong API key.
    pub async fn connect(config: QdrantRemoteConfig) -> Result<Self> {
        const OP: &str = "connect";
        config.validate().context(BACKEND, OP)?;
        let client = Client::new(&config).context(BACKEND, OP)?;
        let prefix = &config.collection_prefix;
        let names = ContextType::ALL
            .iter()
            .map(|t| format!("{prefix}{}", t.as_str()))
            .collect();
        let todo = config
            .todo_embeddings
            .then(|| format!("{prefix}{TODO_COLLECTION}"));
        let inner = Inner {
            client,
            config,
            names,
            todo,
            closed: AtomicBool::new(false),
        };
        inner.ensure_collections().await.context(BACKEND, OP)?;
        tracing::debug!(endpoint = %inner.config.endpoint().unwrap_or_default(), "qdrant remote store connected");
        Ok(QdrantRemoteBackend {
            inner: Arc::new(inner),
        })
    }

    /// The payload indexes of a collection of this store, as the server reports them: field
    /// name and type (`"keyword"`, `"integer"`, ...), sorted by name.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for a name that is not one of
    /// [`VectorStorageBackend::get_collection_names`]; server errors as every call.
    pub async fn payload_indexes(&self, collection: &str) -> Result<Vec<(String, String)>> {
        const OP: &str = "payload_indexes";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let known = self.inner.names.iter().chain(self.inner.todo.as_ref());
        if !known.into_iter().any(|n| n == collection) {
            return Err(StorageError::not_found(format!(
                "'{collection}' is not a collection of this store"
            )))
            .context(BACKEND, OP);
        }
        let info = self
            .inner
            .collection_info(collection)
            .await
            .context(BACKEND, OP)?;
        let mut out: Vec<(String, String)> = info
            .payload_schema
            .into_iter()
            .map(|(field, schema)| {
                let kind = qdrant_client::qdrant::PayloadSchemaType::try_from(schema.data_type)
                    .map_or_else(
                        |_| format!("unknown({})", schema.data_type),
                        |t| t.as_str_name().to_ascii_lowercase(),
                    );
                (field, kind)
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

/// Groups points into requests of at most `max_points` points and about
/// [`MAX_REQUEST_BYTES`] bytes.
fn upsert_batches(points: Vec<ContextPoint>, max_points: usize) -> Vec<Vec<ContextPoint>> {
    let mut out: Vec<Vec<ContextPoint>> = Vec::new();
    let mut bytes = 0usize;
    for p in points {
        // Payload JSON plus 4 bytes per component plus framing: an estimate that errs high.
        let size =
            serde_json::to_vec(&p.payload).map_or(0, |v| v.len()) * 2 + p.vector.len() * 5 + 64;
        let start_new = match out.last() {
            None => true,
            Some(last) => last.len() >= max_points || bytes + size > MAX_REQUEST_BYTES,
        };
        if start_new {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("pushed above").push(p);
    }
    out
}

#[async_trait]
impl StorageBackend for QdrantRemoteBackend {
    fn name(&self) -> &'static str {
        "qdrant"
    }

    fn storage_type(&self) -> StorageType {
        StorageType::VectorDb
    }

    async fn health_check(&self) -> Result<()> {
        const OP: &str = "health_check";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let client = &self.inner.client;
        client
            .call("health_check", || client.qdrant.health_check())
            .await
            .context(BACKEND, OP)?;
        Ok(())
    }

    /// Marks the store closed; the connection is released when the last clone is dropped.
    /// Every write was acknowledged by the server when it returned, so nothing is pending.
    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[async_trait]
impl VectorStorageBackend for QdrantRemoteBackend {
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
        Ok(self
            .inner
            .names
            .iter()
            .chain(self.inner.todo.as_ref())
            .cloned()
            .collect())
    }

    async fn delete_contexts(&self, ids: &[String], context_type: ContextType) -> Result<u64> {
        const OP: &str = "delete_contexts";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let points: Vec<PointId> = unique_point_uuids(ids)
            .context(BACKEND, OP)?
            .into_iter()
            .map(uuid_id)
            .collect();
        if points.is_empty() {
            return Ok(0);
        }
        delete_existing(&self.inner.collection(context_type), &points)
            .await
            .context(BACKEND, OP)
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
        // Once one request was applied, a later failure leaves the call half done: its
        // outcome is unknown (retrying the whole call is safe, upserts are idempotent).
        let mut applied_some = false;
        for (t, points) in by_type {
            let collection = self.inner.collection(t);
            for batch in upsert_batches(points, self.inner.config.upsert_batch_size) {
                let batch: Vec<PointStruct> = batch
                    .into_iter()
                    .map(|p| point(uuid_id(p.uuid), p.vector, p.payload))
                    .collect();
                collection
                    .upsert(batch)
                    .await
                    .map_err(|e| partial(e, applied_some))
                    .context(BACKEND, OP)?;
                applied_some = true;
            }
        }
        tracing::debug!(count = ids.len(), "upserted contexts");
        Ok(ids)
    }

    async fn get_all_processed_contexts(
        &self,
        query: &ListQuery,
    ) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>> {
        const OP: &str = "get_all_processed_contexts";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let plan = crate::filter::plan(query.filter.as_ref(), &query.scope).context(BACKEND, OP)?;
        let mut out = BTreeMap::new();
        if query.limit == 0 {
            return Ok(out);
        }
        for t in types_or_all(query.context_types.as_ref()) {
            let found = list_type(
                &self.inner.collection(t),
                &plan,
                query.offset,
                query.limit,
                query.need_vector,
            )
            .await
            .context(BACKEND, OP)?;
            if !found.is_empty() {
                out.insert(t, found);
            }
        }
        Ok(out)
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
        let found = self
            .inner
            .collection(context_type)
            .get(&[uuid_id(point_uuid(id))], &PayloadWanted::All, need_vector)
            .await
            .context(BACKEND, OP)?;
        found
            .into_iter()
            .next()
            .map(Record::into_context)
            .transpose()
            .context(BACKEND, OP)
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<ScoredContext>> {
        const OP: &str = "search";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let plan = check_search(query, self.dimension()).context(BACKEND, OP)?;
        if query.top_k == 0 {
            return Ok(Vec::new());
        }
        let mut hits = Vec::new();
        for t in types_or_all(query.context_types.as_ref()) {
            let found = search_type(
                &self.inner.collection(t),
                &plan,
                &query.vector,
                query.top_k,
                query.need_vector,
            )
            .await
            .context(BACKEND, OP)?;
            hits.extend(found);
        }
        // Only the survivors of the merge are decoded.
        merge_hits(hits, query.score_threshold, query.top_k)
            .into_iter()
            .map(|h| {
                Ok(ScoredContext {
                    context: h.point.into_context()?,
                    score: h.score,
                })
            })
            .collect::<Result<_>>()
            .context(BACKEND, OP)
    }

    async fn get_processed_context_count(&self, context_type: ContextType) -> Result<u64> {
        const OP: &str = "get_processed_context_count";
        self.inner.ensure_open().context(BACKEND, OP)?;
        self.inner
            .collection(context_type)
            .count(None)
            .await
            .context(BACKEND, OP)
    }

    /// Counts the matches of each collection, then deletes them with a server-side
    /// delete-by-filter. The count is exact unless another writer changes matching points
    /// between the two calls.
    async fn delete_by_source_file(
        &self,
        source_file_key: &str,
        user_id: Option<&str>,
    ) -> Result<u64> {
        const OP: &str = "delete_by_source_file";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let filter = source_file_filter(source_file_key, user_id)
            .and_then(|f| to_grpc_filter(&f))
            .context(BACKEND, OP)?;
        let mut deleted = 0;
        for t in ContextType::ALL {
            let collection = self.inner.collection(t);
            let n = collection
                .count(Some(filter.clone()))
                .await
                .map_err(|e| partial(e, deleted > 0))
                .context(BACKEND, OP)?;
            if n > 0 {
                collection
                    .delete_matching(filter.clone())
                    .await
                    .map_err(|e| partial(e, deleted > 0))
                    .context(BACKEND, OP)?;
                deleted += n;
            }
        }
        Ok(deleted)
    }

    async fn search_by_hierarchy(&self, query: &HierarchyQuery) -> Result<Vec<ScoredContext>> {
        const OP: &str = "search_by_hierarchy";
        self.inner.ensure_open().context(BACKEND, OP)?;
        // Native: level (+ user). The time bucket range is a string range, checked here on
        // the `time_bucket` of each candidate, read without the rest of the payload.
        let plan = check_hierarchy(query).context(BACKEND, OP)?;
        if query.top_k == 0 {
            return Ok(Vec::new());
        }
        let collection = self.inner.collection(query.context_type);
        let wanted = PayloadWanted::for_plan(&plan, &["time_bucket"]);
        let mut found: Vec<(String, String, PointId)> = Vec::new();
        collection
            .walk(&plan, &wanted, false, |r| {
                let bucket = r.str_field("time_bucket").map(str::to_owned);
                if bucket_selected(bucket.as_deref(), query) {
                    let id = query::context_id(Some(&r.payload), &id_string(&r.id));
                    found.push((bucket.unwrap_or_default(), id, r.id));
                }
                Ok(true)
            })
            .await
            .context(BACKEND, OP)?;
        let chosen = order_hierarchy(found, query.top_k);
        let contexts = fetch_in_order(&collection, &chosen, false)
            .await
            .context(BACKEND, OP)?;
        Ok(contexts
            .into_iter()
            .map(|context| ScoredContext {
                context,
                score: 1.0,
            })
            .collect())
    }

    async fn get_by_ids(
        &self,
        ids: &[String],
        context_type: Option<ContextType>,
    ) -> Result<Vec<ProcessedContext>> {
        const OP: &str = "get_by_ids";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let unique = unique_point_uuids(ids).context(BACKEND, OP)?;
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let types = match context_type {
            Some(t) => vec![t],
            None => ContextType::ALL.to_vec(),
        };
        let mut by_point: HashMap<String, ProcessedContext> = HashMap::new();
        for t in types {
            let wanted: Vec<PointId> = unique
                .iter()
                .filter(|u| !by_point.contains_key(&u.to_string()))
                .map(|u| uuid_id(*u))
                .collect();
            if wanted.is_empty() {
                break;
            }
            let records = self
                .inner
                .collection(t)
                .get(&wanted, &PayloadWanted::All, false)
                .await
                .context(BACKEND, OP)?;
            for r in records {
                let key = id_key(&r.id);
                by_point.insert(key, r.into_context().context(BACKEND, OP)?);
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| by_point.get(&point_uuid(id).to_string()).cloned())
            .collect())
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
        let collection = self.inner.todo_collection().context(BACKEND, OP)?;
        let (num, payload) = todo_point(todo_id, content, embedding, metadata, self.dimension())
            .context(BACKEND, OP)?;
        collection
            .upsert(vec![point(num_id(num), embedding.to_vec(), payload)])
            .await
            .context(BACKEND, OP)
    }

    async fn search_similar_todos(
        &self,
        query_embedding: &[f32],
        top_k: usize,
        similarity_threshold: f32,
    ) -> Result<Vec<SimilarTodo>> {
        const OP: &str = "search_similar_todos";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let collection = self.inner.todo_collection().context(BACKEND, OP)?;
        check_todo_search(query_embedding, self.dimension(), similarity_threshold)
            .context(BACKEND, OP)?;
        if top_k == 0 {
            return Ok(Vec::new());
        }
        let hits = nearest(&collection, query_embedding, None, top_k, false)
            .await
            .context(BACKEND, OP)?;
        let mut out = Vec::new();
        for h in hits {
            let score = clamp_score(h.score);
            if score < similarity_threshold {
                continue;
            }
            let Some(num) =
                h.id.as_ref()
                    .and_then(|id| id_string(id).parse::<u64>().ok())
            else {
                continue;
            };
            let (todo_id, content) =
                decode_todo(&payload_json(h.payload), num).context(BACKEND, OP)?;
            out.push(SimilarTodo {
                todo_id,
                content,
                score,
            });
        }
        Ok(out)
    }

    async fn delete_todo_embedding(&self, todo_id: i64) -> Result<bool> {
        const OP: &str = "delete_todo_embedding";
        self.inner.ensure_open().context(BACKEND, OP)?;
        let collection = self.inner.todo_collection().context(BACKEND, OP)?;
        let num = crate::ids::todo_point_num(todo_id).context(BACKEND, OP)?;
        Ok(delete_existing(&collection, &[num_id(num)])
            .await
            .context(BACKEND, OP)?
            > 0)
    }

    fn scroll_processed_contexts(
        &self,
        query: ScrollQuery,
    ) -> BoxStream<'_, Result<ProcessedContext>> {
        scroll::scroll(self.inner.clone(), query)
    }
}

/// `e`, with an unknown outcome when an earlier request of the same (idempotent) call was
/// applied: the call changed some of what it was asked to.
fn partial(e: StorageError, applied_some: bool) -> StorageError {
    if applied_some {
        e.with_outcome_unknown(true)
    } else {
        e
    }
}

/// Deletes those of `ids` that exist; returns how many did. (Two calls: not atomic with
/// respect to other writers.)
async fn delete_existing(collection: &Collection<'_>, ids: &[PointId]) -> Result<u64> {
    let existing: Vec<PointId> = collection
        .get(ids, &PayloadWanted::None, false)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    if existing.is_empty() {
        return Ok(0);
    }
    collection.delete_ids(&existing).await?;
    Ok(existing.len() as u64)
}

/// The points of `ids` as contexts, in the order of `ids` (missing ones left out).
async fn fetch_in_order(
    collection: &Collection<'_>,
    ids: &[PointId],
    need_vector: bool,
) -> Result<Vec<ProcessedContext>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_id: HashMap<String, Record> = collection
        .get(ids, &PayloadWanted::All, need_vector)
        .await?
        .into_iter()
        .map(|r| (id_key(&r.id), r))
        .collect();
    ids.iter()
        .filter_map(|id| by_id.remove(&id_key(id)))
        .map(Record::into_context)
        .collect()
}

/// The server's nearest neighbours of `vector` in one collection.
async fn nearest(
    collection: &Collection<'_>,
    vector: &[f32],
    filter: Option<qdrant_client::qdrant::Filter>,
    limit: usize,
    with_vector: bool,
) -> Result<Vec<ScoredPoint>> {
    let request = QueryPoints {
        collection_name: collection.name.to_owned(),
        query: Some(vector.to_vec().into()),
        filter,
        limit: Some(limit as u64),
        with_payload: Some(true.into()),
        with_vectors: Some(vectors_selector(with_vector)),
        ..QueryPoints::default()
    };
    let client = collection.client;
    Ok(client
        .call("query", || client.qdrant.query(request.clone()))
        .await?
        .result)
}

/// A search hit of the server before decoding.
type Hit = query::Hit<Record>;

/// Top-k in one collection. With a string range in the filter, the matching ids are collected
/// first (cursor + in-process check, reading only the fields the check needs) and the search
/// is restricted to them, so the result is exact.
async fn search_type(
    collection: &Collection<'_>,
    plan: &FilterPlan,
    vector: &[f32],
    top_k: usize,
    need_vector: bool,
) -> Result<Vec<Hit>> {
    let native = native_filter(plan)?;
    let filter = if plan.post.is_some() {
        let mut ids = Vec::new();
        collection
            .walk(plan, &PayloadWanted::for_plan(plan, &[]), false, |r| {
                ids.push(r.id);
                Ok(true)
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Some(with_ids(native, ids))
    } else {
        native
    };
    let hits = nearest(collection, vector, filter, top_k, need_vector).await?;
    Ok(hits
        .into_iter()
        .map(|h| {
            let record = Record {
                id: h.id.unwrap_or_default(),
                payload: payload_json(h.payload),
                vector: super::records::dense_vector(h.vectors),
            };
            Hit {
                score: clamp_score(h.score),
                id: query::context_id(Some(&record.payload), &id_string(&record.id)),
                point: record,
            }
        })
        .collect())
}

/// `limit` contexts after skipping `offset`, in point id order, walking the native cursor.
async fn list_type(
    collection: &Collection<'_>,
    plan: &FilterPlan,
    offset: usize,
    limit: usize,
    need_vector: bool,
) -> Result<Vec<ProcessedContext>> {
    if plan.post.is_some() {
        // Select with the fields the check needs, then fetch the chosen points whole.
        let (mut skip, mut chosen) = (offset, Vec::new());
        collection
            .walk(plan, &PayloadWanted::for_plan(plan, &[]), false, |r| {
                if skip > 0 {
                    skip -= 1;
                    return Ok(true);
                }
                chosen.push(r.id);
                Ok(chosen.len() < limit)
            })
            .await?;
        return fetch_in_order(collection, &chosen, need_vector).await;
    }
    let filter = native_filter(plan)?;
    // Skip with id-only pages: the cursor moves without reading payloads.
    let (mut cursor, mut skip) = (None, offset);
    while skip > 0 {
        let (records, next) = collection
            .scroll_page(
                filter.as_ref(),
                cursor,
                skip.min(10 * INTERNAL_PAGE),
                &PayloadWanted::None,
                false,
            )
            .await?;
        skip -= records.len().min(skip);
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(Vec::new()),
        }
    }
    let mut out = Vec::new();
    while out.len() < limit {
        let (records, next) = collection
            .scroll_page(
                filter.as_ref(),
                cursor,
                (limit - out.len()).min(10 * INTERNAL_PAGE),
                &PayloadWanted::All,
                need_vector,
            )
            .await?;
        for r in records {
            out.push(r.into_context()?);
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_core::model::ContextType;

    fn points(n: usize, payload_bytes: usize) -> Vec<ContextPoint> {
        (0..n)
            .map(|i| {
                let mut payload = JsonMap::new();
                payload.insert("blob".into(), "x".repeat(payload_bytes).into());
                ContextPoint {
                    uuid: point_uuid(&i.to_string()),
                    context_type: ContextType::Event,
                    payload,
                    vector: vec![0.0; 8],
                }
            })
            .collect()
    }

    #[test]
    fn batches_are_split_by_count_and_size_never_dropped() {
        let b = upsert_batches(points(10, 10), 4);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        // ~2 MiB estimated each: 8 fit in 16 MiB.
        let b = upsert_batches(points(20, 1 << 20), 256);
        assert!(b.len() >= 3, "{}", b.len());
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 20);
        assert!(b.iter().all(|x| !x.is_empty()));
    }
}
