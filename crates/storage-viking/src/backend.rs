//! [`VikingBackend`]: the [`VectorStorageBackend`] over VikingDB's data-plane API.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value as Json, json};
use storage_core::model::JsonMap;
use storage_core::validate::{validate_contexts, validate_id, validate_vector};
use storage_core::{
    ContextType, ErrorKind, Filter, HierarchyQuery, ListQuery, ProcessedContext, Result, ResultExt,
    ScoredContext, ScrollQuery, SearchQuery, SimilarTodo, StorageBackend, StorageError,
    StorageType, VectorCapabilities, VectorStorageBackend, WriteOutcome, time_bucket,
};
use tracing::{debug, info};

use crate::client::Client;
use crate::config::VikingConfig;
use crate::filter::{Cond, translate};
use crate::mapping::{from_fields, to_item};
use crate::schema::{
    DATA_TYPE_CONTEXT, DATA_TYPE_TODO, FIELD_CONTENT, FIELD_DATA_TYPE, FIELD_METADATA_JSON,
    FIELD_SCROLL_KEY, FIELD_TODO_ID, Schema,
};

const NAME: &str = "vikingdb";

/// Items per data-plane write, fetch or delete call (the documented limit).
pub const MAX_BATCH: usize = 100;
/// Largest `limit` of one search call (the documented limit is 5000).
pub const MAX_SEARCH_LIMIT: usize = 5000;
/// Largest page fetched by one scroll or list call.
const MAX_PAGE: usize = 1000;

const PATH_UPSERT: &str = "/api/vikingdb/data/upsert";
const PATH_FETCH: &str = "/api/vikingdb/data/fetch_in_collection";
const PATH_DELETE: &str = "/api/vikingdb/data/delete";
const PATH_SEARCH_VECTOR: &str = "/api/vikingdb/data/search/vector";
const PATH_SEARCH_SCALAR: &str = "/api/vikingdb/data/search/scalar";

/// A VikingDB vector backend: one collection for every context type (field filtering on
/// `context_type`, as the original), one index with cosine distance.
///
/// Scores are cosine similarities in `[-1, 1]`. See the crate's `docs.md` for the layout and
/// the limits.
#[derive(Clone, Debug)]
pub struct VikingBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    config: VikingConfig,
    schema: Schema,
    closed: AtomicBool,
}

/// One returned data item.
struct Item {
    id: String,
    fields: JsonMap,
    score: f32,
}

fn parse_items(list: Option<&Json>) -> Result<Vec<Item>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let arr = list.as_array().ok_or_else(|| {
        StorageError::data_corrupted("VikingDB returned a result list that is not an array")
    })?;
    arr.iter()
        .map(|it| {
            let id = match it.get("id") {
                Some(Json::String(s)) => s.clone(),
                Some(Json::Number(n)) => n.to_string(),
                _ => {
                    return Err(StorageError::data_corrupted(
                        "VikingDB returned an item without an id",
                    ));
                }
            };
            let fields = match it.get("fields") {
                Some(Json::Object(m)) => m.clone(),
                _ => JsonMap::new(),
            };
            let score = it.get("score").and_then(Json::as_f64).unwrap_or(0.0) as f32;
            Ok(Item { id, fields, score })
        })
        .collect()
}

impl VikingBackend {
    /// Connects, and creates the collection and index when missing (`create_if_missing`).
    ///
    /// Control-plane calls: `GetVikingdbCollection`, `CreateVikingdbCollection`,
    /// `GetVikingdbIndex`, `CreateVikingdbIndex`
    /// (<https://www.volcengine.com/docs/84313/1791110>).
    ///
    /// # Errors
    /// `Config` for bad settings or an existing collection of another dimension,
    /// `PermissionDenied` for rejected credentials, `NotFound` when the collection is missing
    /// and `create_if_missing` is false, `Unavailable`/`Timeout` when unreachable.
    pub async fn open(mut config: VikingConfig) -> Result<Self> {
        config.validate().context(NAME, "open")?;
        let client = Client::new(&config).context(NAME, "open")?;
        let schema = Schema::new(config.dimension, &config.metadata_fields);
        let inner = Inner {
            client,
            config,
            schema,
            closed: AtomicBool::new(false),
        };
        inner.ensure_collection().await.context(NAME, "open")?;
        Ok(VikingBackend {
            inner: Arc::new(inner),
        })
    }
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::new(
                ErrorKind::NotInitialized,
                "backend is closed",
            ));
        }
        Ok(())
    }

    fn coll(&self) -> &str {
        &self.config.collection_name
    }

    /// The existing collection's vector dimension must be the configured one.
    fn check_dimension(&self, result: &Json) -> Result<()> {
        let c = &self.config;
        let dim = result
            .get("Fields")
            .and_then(Json::as_array)
            .and_then(|fs| {
                fs.iter()
                    .find(|f| f.get("FieldType").and_then(Json::as_str) == Some("vector"))
            })
            .and_then(|f| f.get("Dim"))
            .and_then(Json::as_u64);
        if let Some(dim) = dim
            && dim as usize != c.dimension
        {
            return Err(StorageError::config(format!(
                "VikingDB collection '{}' has vectors of dimension {dim}, the configuration says {}",
                c.collection_name, c.dimension
            )));
        }
        Ok(())
    }

    async fn ensure_collection(&self) -> Result<()> {
        let c = &self.config;
        let ident = json!({"ProjectName": c.project_name, "CollectionName": c.collection_name});
        match self.client.console("GetVikingdbCollection", &ident).await {
            Ok(result) => self.check_dimension(&result)?,
            Err(e) if e.kind() == ErrorKind::NotFound && c.create_if_missing => {
                info!(collection = %c.collection_name, "creating VikingDB collection");
                let body = json!({
                    "ProjectName": c.project_name,
                    "CollectionName": c.collection_name,
                    "Description": "OpenContext contexts of every type and todos (field data_type)",
                    "Fields": self.schema.create_fields(),
                });
                match self
                    .client
                    .console_write("CreateVikingdbCollection", &body)
                    .await
                {
                    Ok(_) => {}
                    // Created meanwhile (another process, or our own retried request whose
                    // first answer was lost): check it like an existing one.
                    Err(e) if e.kind() == ErrorKind::Conflict => {
                        let result = self.client.console("GetVikingdbCollection", &ident).await?;
                        self.check_dimension(&result)?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        let ident = json!({
            "ProjectName": c.project_name,
            "CollectionName": c.collection_name,
            "IndexName": c.index_name,
        });
        match self.client.console("GetVikingdbIndex", &ident).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound && c.create_if_missing => {
                info!(index = %c.index_name, "creating VikingDB index");
                let body = json!({
                    "ProjectName": c.project_name,
                    "CollectionName": c.collection_name,
                    "IndexName": c.index_name,
                    "Description": "OpenContext index: cosine distance, scalar index on filterable fields",
                    "VectorIndex": {"IndexType": c.index_type, "Distance": "cosine", "Quant": "float"},
                    "ScalarIndex": self.schema.scalar_index(),
                });
                match self
                    .client
                    .console_write("CreateVikingdbIndex", &body)
                    .await
                {
                    // Created meanwhile, as above.
                    Err(e) if e.kind() != ErrorKind::Conflict => Err(e),
                    _ => Ok(()),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The condition for contexts of `types` (all when `None`) matching filter and scope.
    fn context_cond(
        &self,
        types: Option<&[ContextType]>,
        filter: Option<&Filter>,
        scope: &storage_core::Scope,
    ) -> Result<Cond> {
        let mut parts = vec![Cond::must_str(FIELD_DATA_TYPE, &[DATA_TYPE_CONTEXT])];
        if let Some(types) = types {
            let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            parts.push(if names.is_empty() {
                Cond::Nothing
            } else {
                Cond::must_str("context_type", &names)
            });
        }
        if let Some(f) = scope.apply(filter) {
            f.validate()?;
            parts.push(translate(&f, &self.schema)?);
        }
        Ok(Cond::and(parts))
    }

    fn output_fields(&self, need_vector: bool) -> Option<Json> {
        need_vector.then(|| json!(self.schema.all_output_fields()))
    }

    async fn fetch(&self, ids: &[String], need_vector: bool) -> Result<HashMap<String, JsonMap>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH) {
            let mut body = json!({"collection_name": self.coll(), "ids": chunk});
            if let Some(of) = self.output_fields(need_vector) {
                body["output_fields"] = of;
            }
            let result = self.client.data(PATH_FETCH, &body).await?;
            for item in parse_items(result.get("items"))? {
                out.insert(item.id, item.fields);
            }
        }
        Ok(out)
    }

    async fn delete_ids(&self, ids: &[String]) -> Result<()> {
        for (n, chunk) in ids.chunks(MAX_BATCH).enumerate() {
            let body = json!({"collection_name": self.coll(), "ids": chunk});
            self.client
                .data_write(PATH_DELETE, &body)
                .await
                // Earlier chunks are deleted: the call changed part of what it was asked to.
                .map_err(|e| {
                    if n > 0 {
                        e.with_outcome_unknown(true)
                    } else {
                        e
                    }
                })?;
        }
        Ok(())
    }

    /// One page of `search/scalar` ordered by `scroll_key` ascending.
    async fn scalar_page(
        &self,
        cond: &Cond,
        limit: usize,
        offset: usize,
        need_vector: bool,
    ) -> Result<(Vec<Item>, Option<u64>)> {
        let mut body = json!({
            "collection_name": self.coll(),
            "index_name": self.config.index_name,
            "field": FIELD_SCROLL_KEY,
            "order": "asc",
            "limit": limit,
        });
        if offset > 0 {
            body["offset"] = json!(offset);
        }
        match cond {
            Cond::Nothing => return Ok((Vec::new(), Some(0))),
            Cond::All => {}
            Cond::Expr(e) => body["filter"] = e.clone(),
        }
        if let Some(of) = self.output_fields(need_vector) {
            body["output_fields"] = of;
        }
        let result = self.client.data(PATH_SEARCH_SCALAR, &body).await?;
        let matched = result.get("filter_matched_count").and_then(Json::as_u64);
        Ok((parse_items(result.get("data"))?, matched))
    }

    /// Every item matching `cond`, walked with the `scroll_key` cursor.
    async fn collect_all(&self, cond: &Cond, need_vector: bool) -> Result<Vec<Item>> {
        let mut cursor = Cursor::new(cond.clone(), MAX_PAGE);
        let mut out = Vec::new();
        while let Some(page) = cursor.next_page(self, need_vector).await? {
            out.extend(page);
        }
        Ok(out)
    }

    async fn vector_search(
        &self,
        vector: &[f32],
        cond: &Cond,
        limit: usize,
        need_vector: bool,
    ) -> Result<Vec<Item>> {
        if *cond == Cond::Nothing || limit == 0 {
            return Ok(Vec::new());
        }
        let mut body = json!({
            "collection_name": self.coll(),
            "index_name": self.config.index_name,
            "dense_vector": vector,
            "limit": limit.min(MAX_SEARCH_LIMIT),
        });
        if let Cond::Expr(e) = cond {
            body["filter"] = e.clone();
        }
        if let Some(of) = self.output_fields(need_vector) {
            body["output_fields"] = of;
        }
        let result = self.client.data(PATH_SEARCH_VECTOR, &body).await?;
        parse_items(result.get("data"))
    }

    fn todo_enabled(&self) -> Result<()> {
        if !self.config.todo_embeddings {
            return Err(StorageError::unsupported(
                "todo embeddings are disabled (consumption.enabled is false)",
            ));
        }
        Ok(())
    }
}

/// A native cursor over `search/scalar`: pages ordered by `scroll_key` ascending, each page
/// asking for `scroll_key >= last key seen`. Ids already returned at the boundary key are
/// skipped, so keys shared by several ids (a 63-bit hash collision) lose nothing.
struct Cursor {
    cond: Cond,
    page: usize,
    last_key: Option<i64>,
    at_last: HashSet<String>,
    done: bool,
}

impl Cursor {
    fn new(cond: Cond, page: usize) -> Self {
        Cursor {
            done: cond == Cond::Nothing,
            cond,
            page: page.clamp(1, MAX_PAGE),
            last_key: None,
            at_last: HashSet::new(),
        }
    }

    async fn next_page(&mut self, inner: &Inner, need_vector: bool) -> Result<Option<Vec<Item>>> {
        if self.done {
            return Ok(None);
        }
        let cond = match self.last_key {
            None => self.cond.clone(),
            Some(k) => Cond::and(vec![
                self.cond.clone(),
                Cond::Expr(json!({"op": "range", "field": FIELD_SCROLL_KEY, "gte": k})),
            ]),
        };
        // Ask for enough rows to get past the ids already seen at the boundary key.
        let limit = self.page + self.at_last.len();
        let (items, _) = inner.scalar_page(&cond, limit, 0, need_vector).await?;
        if items.len() < limit {
            self.done = true;
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let key = item
                .fields
                .get(FIELD_SCROLL_KEY)
                .and_then(Json::as_i64)
                .ok_or_else(|| {
                    StorageError::data_corrupted(format!(
                        "VikingDB item '{}' lacks its scroll_key",
                        item.id
                    ))
                })?;
            if Some(key) == self.last_key && self.at_last.contains(&item.id) {
                continue;
            }
            if Some(key) != self.last_key {
                self.last_key = Some(key);
                self.at_last.clear();
            }
            self.at_last.insert(item.id.clone());
            out.push(item);
        }
        if out.is_empty() {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(out))
    }
}

#[async_trait]
impl StorageBackend for VikingBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn storage_type(&self) -> StorageType {
        StorageType::VectorDb
    }

    async fn health_check(&self) -> Result<()> {
        let i = &self.inner;
        i.check_open().context(NAME, "health_check")?;
        let ident = json!({"ProjectName": i.config.project_name, "CollectionName": i.config.collection_name});
        i.client
            .console("GetVikingdbCollection", &ident)
            .await
            .map(|_| ())
            .context(NAME, "health_check")
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[async_trait]
impl VectorStorageBackend for VikingBackend {
    fn capabilities(&self) -> VectorCapabilities {
        // Ranges are numeric only in VikingDB; everything else is native.
        let mut caps = VectorCapabilities::FULL;
        caps.string_ranges = false;
        caps.with_todo_embeddings(self.inner.config.todo_embeddings)
    }

    fn dimension(&self) -> usize {
        self.inner.config.dimension
    }

    async fn get_collection_names(&self) -> Result<Vec<String>> {
        let i = &self.inner;
        i.check_open().context(NAME, "get_collection_names")?;
        // One physical collection; the logical collections are its `context_type` partitions.
        let mut names: Vec<String> = ContextType::ALL
            .iter()
            .map(|t| format!("{}:{t}", i.coll()))
            .collect();
        if i.config.todo_embeddings {
            names.push(format!("{}:{DATA_TYPE_TODO}", i.coll()));
        }
        Ok(names)
    }

    async fn delete_contexts(&self, ids: &[String], context_type: ContextType) -> Result<u64> {
        let i = &self.inner;
        let op = "delete_contexts";
        i.check_open().context(NAME, op)?;
        for (n, id) in ids.iter().enumerate() {
            validate_id(&format!("ids[{n}]"), id).context(NAME, op)?;
        }
        let found = i.fetch(ids, false).await.context(NAME, op)?;
        let doomed: Vec<String> = found
            .into_iter()
            .filter(|(_, f)| {
                f.get(FIELD_DATA_TYPE).and_then(Json::as_str) == Some(DATA_TYPE_CONTEXT)
                    && f.get("context_type").and_then(Json::as_str) == Some(context_type.as_str())
            })
            .map(|(id, _)| id)
            .collect();
        i.delete_ids(&doomed).await.context(NAME, op)?;
        Ok(doomed.len() as u64)
    }

    async fn batch_upsert_processed_context(
        &self,
        contexts: &[ProcessedContext],
    ) -> Result<Vec<String>> {
        let i = &self.inner;
        let op = "batch_upsert_processed_context";
        i.check_open().context(NAME, op)?;
        validate_contexts(contexts, i.config.dimension).context(NAME, op)?;
        let items = contexts
            .iter()
            .map(|c| to_item(c, &i.schema).map(Json::Object))
            .collect::<Result<Vec<_>>>()
            .context(NAME, op)?;
        let total = items.len();
        for (n, chunk) in items.chunks(MAX_BATCH).enumerate() {
            let body = json!({"collection_name": i.coll(), "data": chunk});
            if let Err(e) = i.client.data_write(PATH_UPSERT, &body).await {
                // Say how far the batch got: earlier chunks are stored, this and later ones
                // are not (upsert is idempotent, so retrying the whole call is safe).
                let done = n * MAX_BATCH;
                let this = if e.outcome() == WriteOutcome::Unknown {
                    "these may or may not be stored (no answer came), the rest are not"
                } else {
                    "these and the rest are not"
                };
                let msg = format!(
                    "{} (items {done} to {} of {total} failed; the {done} before them are stored, {this})",
                    e.message(),
                    done + chunk.len() - 1,
                );
                let retryable = e.is_retryable();
                // The message carries the cause's text; no source, so it is not printed twice.
                let mut out = StorageError::new(e.kind(), msg).set_retryable(retryable);
                // Unknown when this chunk's answer was lost, or earlier chunks are stored.
                if n > 0 || e.outcome() == WriteOutcome::Unknown {
                    out = out.with_outcome_unknown(true);
                }
                return Err(out).context(NAME, op);
            }
        }
        debug!(count = contexts.len(), "vikingdb upserted contexts");
        Ok(contexts.iter().map(|c| c.id.clone()).collect())
    }

    async fn get_all_processed_contexts(
        &self,
        query: &ListQuery,
    ) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>> {
        let i = &self.inner;
        let op = "get_all_processed_contexts";
        i.check_open().context(NAME, op)?;
        let types = query
            .context_types
            .clone()
            .unwrap_or_else(|| ContextType::ALL.to_vec());
        let mut out = BTreeMap::new();
        for t in types {
            let cond = i
                .context_cond(Some(&[t]), query.filter.as_ref(), &query.scope)
                .context(NAME, op)?;
            let mut got = Vec::new();
            let mut offset = query.offset;
            while got.len() < query.limit {
                let want = (query.limit - got.len()).min(MAX_PAGE);
                let (items, _) = i
                    .scalar_page(&cond, want, offset, query.need_vector)
                    .await
                    .context(NAME, op)?;
                let n = items.len();
                for item in items {
                    got.push(
                        from_fields(&item.id, item.fields, &i.schema, query.need_vector)
                            .context(NAME, op)?,
                    );
                }
                if n < want {
                    break;
                }
                offset += n;
            }
            if !got.is_empty() {
                out.insert(t, got);
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
        let i = &self.inner;
        let op = "get_processed_context";
        i.check_open().context(NAME, op)?;
        validate_id("id", id).context(NAME, op)?;
        let mut found = i
            .fetch(&[id.to_owned()], need_vector)
            .await
            .context(NAME, op)?;
        let Some(fields) = found.remove(id) else {
            return Ok(None);
        };
        if fields.get(FIELD_DATA_TYPE).and_then(Json::as_str) != Some(DATA_TYPE_CONTEXT)
            || fields.get("context_type").and_then(Json::as_str) != Some(context_type.as_str())
        {
            return Ok(None);
        }
        from_fields(id, fields, &i.schema, need_vector)
            .map(Some)
            .context(NAME, op)
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<ScoredContext>> {
        let i = &self.inner;
        let op = "search";
        i.check_open().context(NAME, op)?;
        validate_vector("query vector", &query.vector, i.config.dimension).context(NAME, op)?;
        if let Some(t) = query.score_threshold
            && !t.is_finite()
        {
            return Err(StorageError::invalid_input(format!(
                "score_threshold is {t}; it must be a finite number (cosine similarity, -1 to 1)"
            )))
            .context(NAME, op);
        }
        let cond = i
            .context_cond(
                query.context_types.as_deref(),
                query.filter.as_ref(),
                &query.scope,
            )
            .context(NAME, op)?;
        let items = i
            .vector_search(&query.vector, &cond, query.top_k, query.need_vector)
            .await
            .context(NAME, op)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if query.score_threshold.is_some_and(|t| item.score < t) {
                continue;
            }
            let context = from_fields(&item.id, item.fields, &i.schema, query.need_vector)
                .context(NAME, op)?;
            out.push(ScoredContext {
                context,
                score: item.score,
            });
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.truncate(query.top_k);
        Ok(out)
    }

    async fn get_processed_context_count(&self, context_type: ContextType) -> Result<u64> {
        let i = &self.inner;
        let op = "get_processed_context_count";
        i.check_open().context(NAME, op)?;
        let cond = i
            .context_cond(Some(&[context_type]), None, &storage_core::Scope::default())
            .context(NAME, op)?;
        let (_, matched) = i.scalar_page(&cond, 1, 0, false).await.context(NAME, op)?;
        match matched {
            Some(n) => Ok(n),
            // Without `filter_matched_count` in the answer, count by walking the cursor.
            None => Ok(i.collect_all(&cond, false).await.context(NAME, op)?.len() as u64),
        }
    }

    async fn delete_by_source_file(
        &self,
        source_file_key: &str,
        user_id: Option<&str>,
    ) -> Result<u64> {
        let i = &self.inner;
        let op = "delete_by_source_file";
        i.check_open().context(NAME, op)?;
        storage_core::validate::validate_source_file_key(source_file_key, user_id)
            .context(NAME, op)?;
        let mut filter = Filter::eq("source_file_key", source_file_key);
        if let Some(u) = user_id {
            filter = filter.and(Filter::eq("user_id", u));
        }
        let cond = i
            .context_cond(None, Some(&filter), &storage_core::Scope::default())
            .context(NAME, op)?;
        let ids: Vec<String> = i
            .collect_all(&cond, false)
            .await
            .context(NAME, op)?
            .into_iter()
            .map(|it| it.id)
            .collect();
        i.delete_ids(&ids).await.context(NAME, op)?;
        Ok(ids.len() as u64)
    }

    async fn search_by_hierarchy(&self, query: &HierarchyQuery) -> Result<Vec<ScoredContext>> {
        let i = &self.inner;
        let op = "search_by_hierarchy";
        i.check_open().context(NAME, op)?;
        let (start, end) = (
            query.time_bucket_start.as_deref(),
            query.time_bucket_end.as_deref(),
        );
        time_bucket::validate_range(start, end).context(NAME, op)?;
        // hierarchy_level is float32: equality as a range with equal bounds (translate does it).
        let mut filter = Filter::eq("hierarchy_level", query.hierarchy_level);
        if let Some(u) = &query.user_id {
            filter = filter.and(Filter::eq("user_id", u));
        }
        let cond = i
            .context_cond(
                Some(&[query.context_type]),
                Some(&filter),
                &storage_core::Scope::default(),
            )
            .context(NAME, op)?;
        // VikingDB ranges are numeric only: time buckets are compared as strings here.
        let mut hits: Vec<(String, Item)> = i
            .collect_all(&cond, false)
            .await
            .context(NAME, op)?
            .into_iter()
            .filter_map(|it| {
                let tb = it
                    .fields
                    .get("time_bucket")
                    .and_then(Json::as_str)?
                    .to_owned();
                (!tb.is_empty() && time_bucket::in_range(&tb, start, end)).then_some((tb, it))
            })
            .collect();
        hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        hits.truncate(query.top_k);
        hits.into_iter()
            .map(|(_, it)| {
                Ok(ScoredContext {
                    context: from_fields(&it.id, it.fields, &i.schema, false)?,
                    score: 1.0,
                })
            })
            .collect::<Result<Vec<_>>>()
            .context(NAME, op)
    }

    async fn get_by_ids(
        &self,
        ids: &[String],
        context_type: Option<ContextType>,
    ) -> Result<Vec<ProcessedContext>> {
        let i = &self.inner;
        let op = "get_by_ids";
        i.check_open().context(NAME, op)?;
        for (n, id) in ids.iter().enumerate() {
            validate_id(&format!("ids[{n}]"), id).context(NAME, op)?;
        }
        let found = i.fetch(ids, false).await.context(NAME, op)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(fields) = found.get(id) else {
                continue;
            };
            if fields.get(FIELD_DATA_TYPE).and_then(Json::as_str) != Some(DATA_TYPE_CONTEXT) {
                continue;
            }
            if let Some(t) = context_type
                && fields.get("context_type").and_then(Json::as_str) != Some(t.as_str())
            {
                continue;
            }
            out.push(from_fields(id, fields.clone(), &i.schema, false).context(NAME, op)?);
        }
        Ok(out)
    }

    async fn upsert_todo_embedding(
        &self,
        todo_id: i64,
        content: &str,
        embedding: &[f32],
        metadata: Option<&JsonMap>,
    ) -> Result<()> {
        let i = &self.inner;
        let op = "upsert_todo_embedding";
        i.check_open().context(NAME, op)?;
        i.todo_enabled().context(NAME, op)?;
        storage_core::validate::validate_todo_id(todo_id).context(NAME, op)?;
        validate_vector("embedding", embedding, i.config.dimension).context(NAME, op)?;
        let id = format!("todo_{todo_id}");
        let mut item = json!({
            "id": id,
            "vector": embedding,
            FIELD_DATA_TYPE: DATA_TYPE_TODO,
            FIELD_TODO_ID: todo_id.to_string(),
            FIELD_CONTENT: content,
            FIELD_SCROLL_KEY: crate::mapping::scroll_key(&id),
        });
        if let Some(m) = metadata.filter(|m| !m.is_empty()) {
            item[FIELD_METADATA_JSON] = Json::String(Json::Object(m.clone()).to_string());
        }
        // The same payload bound as contexts (content and metadata), before any request.
        let encoded_len = serde_json::to_string(&item)?.len();
        storage_core::validate::validate_payload_size(&id, encoded_len).context(NAME, op)?;
        let body = json!({"collection_name": i.coll(), "data": [item]});
        i.client
            .data_write(PATH_UPSERT, &body)
            .await
            .context(NAME, op)?;
        Ok(())
    }

    async fn search_similar_todos(
        &self,
        query_embedding: &[f32],
        top_k: usize,
        similarity_threshold: f32,
    ) -> Result<Vec<SimilarTodo>> {
        let i = &self.inner;
        let op = "search_similar_todos";
        i.check_open().context(NAME, op)?;
        i.todo_enabled().context(NAME, op)?;
        validate_vector("query_embedding", query_embedding, i.config.dimension)
            .context(NAME, op)?;
        if !similarity_threshold.is_finite() {
            return Err(StorageError::invalid_input(format!(
                "similarity_threshold is {similarity_threshold}; it must be a finite number (cosine similarity, -1 to 1)"
            )))
            .context(NAME, op);
        }
        let cond = Cond::must_str(FIELD_DATA_TYPE, &[DATA_TYPE_TODO]);
        let items = i
            .vector_search(query_embedding, &cond, top_k, false)
            .await
            .context(NAME, op)?;
        let mut out = Vec::new();
        for it in items {
            if it.score < similarity_threshold {
                continue;
            }
            let todo_id = it
                .fields
                .get(FIELD_TODO_ID)
                .and_then(Json::as_str)
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| it.id.strip_prefix("todo_").and_then(|s| s.parse().ok()))
                .ok_or_else(|| {
                    StorageError::data_corrupted(format!(
                        "todo item '{}' has no numeric todo_id",
                        it.id
                    ))
                })
                .context(NAME, op)?;
            let content = it
                .fields
                .get(FIELD_CONTENT)
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned();
            out.push(SimilarTodo {
                todo_id,
                content,
                score: it.score,
            });
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.truncate(top_k);
        Ok(out)
    }

    async fn delete_todo_embedding(&self, todo_id: i64) -> Result<bool> {
        let i = &self.inner;
        let op = "delete_todo_embedding";
        i.check_open().context(NAME, op)?;
        i.todo_enabled().context(NAME, op)?;
        storage_core::validate::validate_todo_id(todo_id).context(NAME, op)?;
        let id = format!("todo_{todo_id}");
        let found = i
            .fetch(std::slice::from_ref(&id), false)
            .await
            .context(NAME, op)?;
        let exists = found
            .get(&id)
            .is_some_and(|f| f.get(FIELD_DATA_TYPE).and_then(Json::as_str) == Some(DATA_TYPE_TODO));
        if exists {
            i.delete_ids(&[id]).await.context(NAME, op)?;
        }
        Ok(exists)
    }

    fn scroll_processed_contexts(
        &self,
        query: ScrollQuery,
    ) -> BoxStream<'_, Result<ProcessedContext>> {
        let inner = self.inner.clone();
        let op = "scroll_processed_contexts";
        let types: VecDeque<ContextType> = query
            .context_types
            .clone()
            .unwrap_or_else(|| ContextType::ALL.to_vec())
            .into();
        let batch = if query.batch_size == 0 {
            storage_core::DEFAULT_SCROLL_BATCH
        } else {
            query.batch_size
        };
        struct State {
            inner: Arc<Inner>,
            query: ScrollQuery,
            types: VecDeque<ContextType>,
            cursor: Option<Cursor>,
            batch: usize,
            failed: bool,
        }
        let state = State {
            inner,
            query,
            types,
            cursor: None,
            batch,
            failed: false,
        };
        stream::unfold(state, move |mut s| async move {
            if s.failed {
                return None;
            }
            loop {
                if let Err(e) = s.inner.check_open() {
                    s.failed = true;
                    return Some((Err(e.with_backend(NAME).with_operation(op)), s));
                }
                if s.cursor.is_none() {
                    let t = s.types.pop_front()?;
                    match s
                        .inner
                        .context_cond(Some(&[t]), s.query.filter.as_ref(), &s.query.scope)
                    {
                        Ok(cond) => s.cursor = Some(Cursor::new(cond, s.batch)),
                        Err(e) => {
                            s.failed = true;
                            return Some((Err(e.with_backend(NAME).with_operation(op)), s));
                        }
                    }
                }
                let need_vector = s.query.need_vector;
                let inner = s.inner.clone();
                let cursor = s.cursor.as_mut().expect("cursor set above");
                match cursor.next_page(&inner, need_vector).await {
                    Ok(Some(items)) => {
                        let decoded: Vec<Result<ProcessedContext>> = items
                            .into_iter()
                            .map(|it| {
                                from_fields(&it.id, it.fields, &inner.schema, need_vector)
                                    .map_err(|e| e.with_backend(NAME).with_operation(op))
                            })
                            .collect();
                        return Some((Ok(decoded), s));
                    }
                    Ok(None) => s.cursor = None,
                    Err(e) => {
                        s.failed = true;
                        return Some((Err(e.with_backend(NAME).with_operation(op)), s));
                    }
                }
            }
        })
        .flat_map(|page: Result<Vec<Result<ProcessedContext>>>| match page {
            Ok(items) => stream::iter(items).left_stream(),
            Err(e) => stream::iter(vec![Err(e)]).right_stream(),
        })
        .boxed()
    }
}
