//! [`DashVectorBackend`]: the [`VectorStorageBackend`] over DashVector's HTTP API.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::Method;
use serde_json::{Map, Value as Json, json};
use storage_core::{
    ContextType, ErrorKind, Filter, HierarchyQuery, JsonMap, ListQuery, ProcessedContext, Result,
    ResultExt, ScoredContext, ScrollQuery, SearchQuery, SimilarTodo, StorageBackend, StorageError,
    StorageType, VectorCapabilities, VectorStorageBackend, time_bucket, validate,
};

use crate::client::Client;
use crate::config::{DashVectorConfig, MAX_DOCS_PER_CALL};
use crate::filter::{self, Compiled};
use crate::mapping::{self, validate_doc_id};
use crate::schema::{FIELD_ORIGINAL_ID, FIELD_SCROLL_KEY, Names, Schema, todo_schema_json};
use crate::scroll::{Cursor, MultiCursor};

const NAME: &str = "dashvector";
const TODOS_OFF: &str = "todo embeddings are disabled (consumption.enabled is false)";

/// The DashVector vector backend (registered name `dashvector`).
///
/// One collection per context type (`<prefix><type>`) plus `<prefix>todo` when todo
/// embeddings are enabled, all with metric `cosine`, `dtype` `FLOAT` and the declared fields
/// of [`crate::schema`]. Scores are cosine similarities in `[-1, 1]`, higher is better:
/// DashVector's cosine `score` is the distance `1 - cos`, in `[0, 2]`, converted as
/// `1 - score`.
#[derive(Debug)]
pub struct DashVectorBackend {
    config: DashVectorConfig,
    client: Client,
    schema: Schema,
    names: Names,
    closed: AtomicBool,
}

impl DashVectorBackend {
    /// Connects, creates the missing collections (with their `fields_schema`) and waits until
    /// they serve; checks that existing ones have the configured dimension and the cosine
    /// metric.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for invalid settings or an existing collection of another
    /// dimension or metric; [`ErrorKind::PermissionDenied`] for a refused API key;
    /// [`ErrorKind::Unavailable`]/[`ErrorKind::Timeout`] when the cluster cannot be reached.
    pub async fn open(config: DashVectorConfig) -> Result<Self> {
        config.validate().context(NAME, "open")?;
        let backend = DashVectorBackend {
            client: Client::new(&config).context(NAME, "open")?,
            schema: Schema::new(&config.extra_fields),
            names: Names::new(&config.collection_prefix),
            closed: AtomicBool::new(false),
            config,
        };
        backend.ensure_collections().await.context(NAME, "open")?;
        Ok(backend)
    }

    /// The configuration this backend was opened with.
    pub fn config(&self) -> &DashVectorConfig {
        &self.config
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StorageError::new(
                ErrorKind::NotInitialized,
                "backend is closed",
            ))
        } else {
            Ok(())
        }
    }

    fn todo_enabled(&self) -> Result<()> {
        if self.config.todo_embeddings {
            Ok(())
        } else {
            Err(StorageError::unsupported(TODOS_OFF))
        }
    }

    fn wanted_collections(&self) -> Vec<(String, Json)> {
        let mut out: Vec<(String, Json)> = ContextType::ALL
            .iter()
            .map(|t| (self.names.context(*t), self.schema.to_json()))
            .collect();
        if self.config.todo_embeddings {
            out.push((self.names.todo(), todo_schema_json()));
        }
        out
    }

    async fn list_collections(&self) -> Result<Vec<String>> {
        let out = self
            .client
            .call(Method::GET, "collections", &[], None)
            .await?;
        match out {
            Json::Null => Ok(Vec::new()),
            Json::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Json::String(s) => Ok(s),
                    other => Err(StorageError::data_corrupted(format!(
                        "collection list holds a non-string: {other}"
                    ))),
                })
                .collect(),
            other => Err(StorageError::data_corrupted(format!(
                "collection list is not an array: {other}"
            ))),
        }
    }

    /// Checks every existing collection first (dimension, metric), and only then creates the
    /// missing ones, so a refused `open` leaves no new collections behind.
    async fn ensure_collections(&self) -> Result<()> {
        let existing = self.list_collections().await?;
        let wanted = self.wanted_collections();
        for (name, _) in &wanted {
            if existing.contains(name) {
                self.check_collection(name).await?;
            }
        }
        for (name, fields) in wanted {
            if existing.contains(&name) {
                continue;
            }
            let body = json!({
                "name": name,
                "dimension": self.config.vector_size,
                "metric": "cosine",
                "dtype": "FLOAT",
                "fields_schema": fields,
            });
            match self
                .client
                .call_write(Method::POST, "collections", &[], Some(&body))
                .await
            {
                Ok(_) => {}
                // Created meanwhile by another process.
                Err(e) if e.kind() == ErrorKind::Conflict => {}
                Err(e) => return Err(e),
            }
            self.wait_ready(&name).await?;
        }
        Ok(())
    }

    async fn check_collection(&self, name: &str) -> Result<()> {
        let out = self
            .client
            .call(Method::GET, &format!("collections/{name}"), &[], None)
            .await?;
        let dim = out.get("dimension").and_then(Json::as_u64);
        if let Some(d) = dim
            && d != self.config.vector_size as u64
        {
            return Err(StorageError::config(format!(
                "DashVector collection '{name}' has dimension {d}, config.vector_size is {}",
                self.config.vector_size
            )));
        }
        if let Some(m) = out.get("metric").and_then(Json::as_str)
            && !m.eq_ignore_ascii_case("cosine")
        {
            return Err(StorageError::config(format!(
                "DashVector collection '{name}' uses metric {m}; this backend needs cosine"
            )));
        }
        Ok(())
    }

    async fn wait_ready(&self, name: &str) -> Result<()> {
        let deadline =
            Instant::now() + Duration::from_secs_f64(self.config.collection_ready_timeout_secs);
        loop {
            match self.stats(name).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(StorageError::new(
                        ErrorKind::Timeout,
                        format!("collection '{name}' did not become ready: {e}"),
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    async fn stats(&self, collection: &str) -> Result<Json> {
        self.client
            .call(
                Method::GET,
                &format!("collections/{collection}/stats"),
                &[],
                None,
            )
            .await
    }

    /// `POST collections/{c}/query`: the docs of the answer.
    pub(crate) async fn query(&self, collection: &str, body: &Json) -> Result<Vec<Json>> {
        let out = self
            .client
            .call(
                Method::POST,
                &format!("collections/{collection}/query"),
                &[],
                Some(body),
            )
            .await?;
        match out {
            Json::Null => Ok(Vec::new()),
            Json::Array(docs) => Ok(docs),
            other => Err(StorageError::data_corrupted(format!(
                "query output is not an array: {other}"
            ))),
        }
    }

    /// `GET collections/{c}/docs?ids=...` in chunks: the docs that exist, by id.
    async fn fetch(&self, collection: &str, ids: &[&str]) -> Result<HashMap<String, Json>> {
        let mut found = HashMap::new();
        for chunk in ids.chunks(self.config.fetch_batch_size) {
            let out = self
                .client
                .call(
                    Method::GET,
                    &format!("collections/{collection}/docs"),
                    &[("ids", chunk.join(","))],
                    None,
                )
                .await?;
            let Json::Object(map) = out else {
                if out.is_null() {
                    continue;
                }
                return Err(StorageError::data_corrupted(format!(
                    "fetch output is not an object: {out}"
                )));
            };
            for (id, doc) in map {
                // A missing id comes back empty (null or `{}`).
                if doc.get("id").and_then(Json::as_str).is_some() {
                    found.insert(id, doc);
                }
            }
        }
        Ok(found)
    }

    /// `POST collections/{c}/docs/upsert` in chunks of `batch_size`. A failure after an
    /// earlier chunk was stored, or a refused doc among accepted ones, has an unknown
    /// outcome (part of the call was applied; retrying it is safe).
    async fn upsert(&self, collection: &str, docs: &[Json]) -> Result<()> {
        for (n, chunk) in docs.chunks(self.config.batch_size).enumerate() {
            let out = self
                .client
                .call_write(
                    Method::POST,
                    &format!("collections/{collection}/docs/upsert"),
                    &[],
                    Some(&json!({"docs": chunk})),
                )
                .await
                .map_err(|e| partial(e, n > 0))?;
            check_doc_ops(&out).map_err(|e| partial(e, true))?;
        }
        Ok(())
    }

    /// `DELETE collections/{c}/docs` in chunks of `batch_size`; outcomes as for
    /// [`Self::upsert`].
    async fn delete_docs(&self, collection: &str, ids: &[String]) -> Result<()> {
        for (n, chunk) in ids.chunks(self.config.batch_size).enumerate() {
            let out = self
                .client
                .call_write(
                    Method::DELETE,
                    &format!("collections/{collection}/docs"),
                    &[],
                    Some(&json!({"ids": chunk})),
                )
                .await
                .map_err(|e| partial(e, n > 0))?;
            check_doc_ops(&out).map_err(|e| partial(e, true))?;
        }
        Ok(())
    }

    fn types(types: &Option<Vec<ContextType>>) -> Vec<ContextType> {
        let mut v = types.clone().unwrap_or_else(|| ContextType::ALL.to_vec());
        let mut seen = Vec::new();
        v.retain(|t| {
            let new = !seen.contains(t);
            seen.push(*t);
            new
        });
        v
    }

    fn compile(&self, filter: Option<&Filter>) -> Result<Compiled> {
        filter::compile(filter, &self.schema)
    }

    fn cursor(&self, t: ContextType, filter: &Compiled, batch: usize, need_vector: bool) -> Cursor {
        Cursor::new(
            self.names.context(t),
            filter.clone(),
            batch,
            need_vector,
            None,
        )
    }

    async fn ids_matching(&self, t: ContextType, filter: &Compiled) -> Result<Vec<String>> {
        let cur = Cursor::new(
            self.names.context(t),
            filter.clone(),
            MAX_DOCS_PER_CALL,
            false,
            Some(vec![FIELD_ORIGINAL_ID, FIELD_SCROLL_KEY]),
        );
        self.drain(cur, usize::MAX)
            .await?
            .iter()
            .map(|d| mapping::doc_id(d).map(str::to_owned))
            .collect()
    }

    fn check_top_k(what: &str, top_k: usize) -> Result<()> {
        if top_k > MAX_DOCS_PER_CALL {
            return Err(StorageError::invalid_input(format!(
                "{what} is {top_k}; DashVector returns at most {MAX_DOCS_PER_CALL} results per query"
            )));
        }
        Ok(())
    }

    async fn batch_upsert(&self, contexts: &[ProcessedContext]) -> Result<Vec<String>> {
        self.check_open()?;
        validate::validate_contexts(contexts, self.config.vector_size)?;
        let mut grouped: BTreeMap<ContextType, Vec<Json>> = BTreeMap::new();
        for (i, c) in contexts.iter().enumerate() {
            validate_doc_id(&format!("contexts[{i}].id"), &c.id)?;
            let doc = mapping::to_doc(c)?;
            if let Some(fields) = doc.get("fields").and_then(Json::as_object) {
                self.schema.check_fields(&c.id, fields)?;
            }
            grouped.entry(c.context_type()).or_default().push(doc);
        }
        let mut applied_some = false;
        for (t, docs) in grouped {
            self.upsert(&self.names.context(t), &docs)
                .await
                .map_err(|e| partial(e, applied_some))?;
            applied_some = true;
        }
        Ok(contexts.iter().map(|c| c.id.clone()).collect())
    }

    async fn run_search(&self, q: &SearchQuery) -> Result<Vec<ScoredContext>> {
        self.check_open()?;
        validate::validate_vector("query vector", &q.vector, self.config.vector_size)?;
        Self::check_top_k("top_k", q.top_k)?;
        if let Some(th) = q.score_threshold
            && !th.is_finite()
        {
            return Err(StorageError::invalid_input(format!(
                "score_threshold must be finite, got {th}"
            )));
        }
        let filter = self.compile(q.scope.apply(q.filter.as_ref()).as_ref())?;
        if q.top_k == 0 || filter == Compiled::Nothing {
            return Ok(Vec::new());
        }
        let mut hits = Vec::new();
        for t in Self::types(&q.context_types) {
            let mut body = json!({
                "vector": q.vector,
                "topk": q.top_k,
                "include_vector": q.need_vector,
            });
            if let Compiled::Expr(e) = &filter {
                body["filter"] = json!(e);
            }
            for doc in self.query(&self.names.context(t), &body).await? {
                let score = similarity(&doc)?;
                if q.score_threshold.is_none_or(|th| score >= th) {
                    hits.push(ScoredContext {
                        context: mapping::from_doc(&doc, q.need_vector)?,
                        score,
                    });
                }
            }
        }
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.context.id.cmp(&b.context.id))
        });
        hits.truncate(q.top_k);
        Ok(hits)
    }

    async fn list(&self, q: &ListQuery) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>> {
        self.check_open()?;
        let filter = self.compile(q.scope.apply(q.filter.as_ref()).as_ref())?;
        let mut out = BTreeMap::new();
        if q.limit == 0 {
            return Ok(out);
        }
        let wanted = q.offset.saturating_add(q.limit);
        for t in Self::types(&q.context_types) {
            let cur = self.cursor(t, &filter, wanted.min(MAX_DOCS_PER_CALL), q.need_vector);
            let docs = self.drain(cur, wanted).await?;
            let page = docs
                .iter()
                .skip(q.offset)
                .map(|d| mapping::from_doc(d, q.need_vector))
                .collect::<Result<Vec<_>>>()?;
            if !page.is_empty() {
                out.insert(t, page);
            }
        }
        Ok(out)
    }

    async fn get_one(
        &self,
        id: &str,
        t: ContextType,
        need_vector: bool,
    ) -> Result<Option<ProcessedContext>> {
        self.check_open()?;
        validate_doc_id("id", id)?;
        let found = self.fetch(&self.names.context(t), &[id]).await?;
        found
            .get(id)
            .map(|d| mapping::from_doc(d, need_vector))
            .transpose()
    }

    async fn delete_ids(&self, ids: &[String], t: ContextType) -> Result<u64> {
        self.check_open()?;
        for (i, id) in ids.iter().enumerate() {
            validate_doc_id(&format!("ids[{i}]"), id)?;
        }
        if ids.is_empty() {
            return Ok(0);
        }
        let collection = self.names.context(t);
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let found = self.fetch(&collection, &refs).await?;
        let existing: Vec<String> = ids
            .iter()
            .filter(|id| found.contains_key(*id))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        self.delete_docs(&collection, &existing).await?;
        Ok(existing.len() as u64)
    }

    async fn count(&self, t: ContextType) -> Result<u64> {
        self.check_open()?;
        self.doc_count(&self.names.context(t)).await
    }

    /// `total_doc_count` of a collection's stats.
    pub(crate) async fn doc_count(&self, collection: &str) -> Result<u64> {
        let out = self.stats(collection).await?;
        let total = out.get("total_doc_count");
        total
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or_else(|| {
                StorageError::data_corrupted(format!(
                    "collection stats have no total_doc_count: {out}"
                ))
            })
    }

    async fn delete_source(&self, key: &str, user_id: Option<&str>) -> Result<u64> {
        self.check_open()?;
        let mut f = Filter::eq("source_file_key", key);
        if let Some(u) = user_id {
            f = f.and(Filter::eq("user_id", u));
        }
        let filter = self.compile(Some(&f))?;
        let mut n = 0;
        for t in ContextType::ALL {
            let ids = self
                .ids_matching(t, &filter)
                .await
                .map_err(|e| partial(e, n > 0))?;
            self.delete_docs(&self.names.context(t), &ids)
                .await
                .map_err(|e| partial(e, n > 0))?;
            n += ids.len() as u64;
        }
        Ok(n)
    }

    async fn hierarchy(&self, q: &HierarchyQuery) -> Result<Vec<ScoredContext>> {
        self.check_open()?;
        time_bucket::validate_range(q.time_bucket_start.as_deref(), q.time_bucket_end.as_deref())?;
        let mut f = Filter::eq("hierarchy_level", q.hierarchy_level);
        if let Some(u) = &q.user_id {
            f = f.and(Filter::eq("user_id", u));
        }
        // Level and user are filtered by DashVector; the time-bucket bounds (a string range,
        // which DashVector cannot compare) are applied to the matching docs here: exact, as
        // every doc of the level is examined.
        let filter = self.compile(Some(&f))?;
        let docs = self
            .drain(
                self.cursor(q.context_type, &filter, MAX_DOCS_PER_CALL, false),
                usize::MAX,
            )
            .await?;
        let mut hits = Vec::new();
        for d in &docs {
            let c = mapping::from_doc(d, false)?;
            let inside = c.properties.time_bucket.as_deref().is_some_and(|tb| {
                time_bucket::in_range(
                    tb,
                    q.time_bucket_start.as_deref(),
                    q.time_bucket_end.as_deref(),
                )
            });
            if inside {
                hits.push(ScoredContext {
                    context: c,
                    score: 1.0,
                });
            }
        }
        hits.sort_by(|a, b| {
            a.context
                .properties
                .time_bucket
                .cmp(&b.context.properties.time_bucket)
                .then_with(|| a.context.id.cmp(&b.context.id))
        });
        hits.truncate(q.top_k);
        Ok(hits)
    }

    async fn by_ids(
        &self,
        ids: &[String],
        t: Option<ContextType>,
    ) -> Result<Vec<ProcessedContext>> {
        self.check_open()?;
        for (i, id) in ids.iter().enumerate() {
            validate_doc_id(&format!("ids[{i}]"), id)?;
        }
        let types = t.map_or_else(|| ContextType::ALL.to_vec(), |t| vec![t]);
        let mut found: HashMap<String, Json> = HashMap::new();
        for t in types {
            let missing: Vec<&str> = ids
                .iter()
                .map(String::as_str)
                .filter(|id| !found.contains_key(*id))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if missing.is_empty() {
                break;
            }
            found.extend(self.fetch(&self.names.context(t), &missing).await?);
        }
        ids.iter()
            .filter_map(|id| found.get(id))
            .map(|d| mapping::from_doc(d, false))
            .collect()
    }

    async fn todo_upsert(
        &self,
        todo_id: i64,
        content: &str,
        embedding: &[f32],
        metadata: Option<&JsonMap>,
    ) -> Result<()> {
        self.check_open()?;
        self.todo_enabled()?;
        validate::validate_vector("todo embedding", embedding, self.config.vector_size)?;
        let now = chrono::Utc::now();
        let mut fields = Map::new();
        fields.insert("todo_id".into(), json!(todo_id));
        fields.insert("content".into(), json!(content));
        fields.insert("created_at".into(), json!(now.to_rfc3339()));
        fields.insert("created_at_ts".into(), json!(now.timestamp()));
        if let Some(m) = metadata {
            fields.insert(
                "metadata".into(),
                json!(Json::Object(m.clone()).to_string()),
            );
        }
        let size = serde_json::to_vec(&fields)?.len();
        if size > validate::MAX_PAYLOAD_BYTES {
            return Err(StorageError::invalid_input(format!(
                "todo {todo_id} content and metadata are {size} bytes, the limit is {}",
                validate::MAX_PAYLOAD_BYTES
            )));
        }
        let doc = json!({"id": todo_id.to_string(), "vector": embedding, "fields": fields});
        self.upsert(&self.names.todo(), &[doc]).await
    }

    async fn todo_search(
        &self,
        query: &[f32],
        top_k: usize,
        threshold: f32,
    ) -> Result<Vec<SimilarTodo>> {
        self.check_open()?;
        self.todo_enabled()?;
        validate::validate_vector("query embedding", query, self.config.vector_size)?;
        Self::check_top_k("top_k", top_k)?;
        if !threshold.is_finite() {
            return Err(StorageError::invalid_input(format!(
                "similarity_threshold must be finite, got {threshold}"
            )));
        }
        if top_k == 0 {
            return Ok(Vec::new());
        }
        let body = json!({"vector": query, "topk": top_k, "include_vector": false});
        let mut hits = Vec::new();
        for doc in self.query(&self.names.todo(), &body).await? {
            let score = similarity(&doc)?;
            if score < threshold {
                continue;
            }
            let fields = mapping::fields_of(&doc);
            let todo_id = match fields.get("todo_id").and_then(Json::as_i64) {
                Some(id) => id,
                None => mapping::doc_id(&doc)?.parse().map_err(|_| {
                    StorageError::data_corrupted("todo doc without a numeric todo_id")
                })?,
            };
            let content = fields
                .get("content")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned();
            hits.push(SimilarTodo {
                todo_id,
                content,
                score,
            });
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.todo_id.cmp(&b.todo_id)));
        hits.truncate(top_k);
        Ok(hits)
    }

    async fn todo_delete(&self, todo_id: i64) -> Result<bool> {
        self.check_open()?;
        self.todo_enabled()?;
        let id = todo_id.to_string();
        let collection = self.names.todo();
        let existed = self.fetch(&collection, &[&id]).await?.contains_key(&id);
        if existed {
            self.delete_docs(&collection, &[id]).await?;
        }
        Ok(existed)
    }

    async fn next_scrolled(
        &self,
        state: &mut MultiCursor,
        need_vector: bool,
    ) -> Result<Option<ProcessedContext>> {
        loop {
            if let Some(doc) = state.buffer.pop_front() {
                return mapping::from_doc(&doc, need_vector).map(Some);
            }
            let Some(cur) = state.cursors.front_mut() else {
                return Ok(None);
            };
            match self.next_page(cur).await? {
                Some(page) => state.buffer.extend(page),
                None => {
                    state.cursors.pop_front();
                }
            }
        }
    }
}

/// DashVector's cosine `score` is a distance, `1 - cos` in `[0, 2]`; the similarity is
/// `1 - score`, in `[-1, 1]`.
fn similarity(doc: &Json) -> Result<f32> {
    let distance = doc.get("score").and_then(Json::as_f64).ok_or_else(|| {
        StorageError::data_corrupted("DashVector returned a search hit without a score")
    })?;
    Ok((1.0 - distance) as f32)
}

/// `e`, with an unknown outcome when part of the same idempotent write call was applied.
fn partial(e: StorageError, applied_some: bool) -> StorageError {
    if applied_some {
        e.with_outcome_unknown(true)
    } else {
        e
    }
}

/// Fails when a per-doc result (`DocOpResult`) of an upsert or delete has a non-zero code.
fn check_doc_ops(out: &Json) -> Result<()> {
    let Some(items) = out.as_array() else {
        return Ok(());
    };
    for item in items {
        let code = item.get("code").and_then(Json::as_i64).unwrap_or(0);
        if code != 0 {
            let (kind, retryable) = crate::client::code_kind(code);
            return Err(StorageError::new(
                kind,
                format!(
                    "doc '{}' was refused: code {code}, message {:?}",
                    item.get("id").and_then(Json::as_str).unwrap_or("?"),
                    item.get("message").and_then(Json::as_str).unwrap_or("")
                ),
            )
            .set_retryable(retryable));
        }
    }
    Ok(())
}

#[async_trait]
impl StorageBackend for DashVectorBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn storage_type(&self) -> StorageType {
        StorageType::VectorDb
    }

    async fn health_check(&self) -> Result<()> {
        self.check_open().context(NAME, "health_check")?;
        self.list_collections()
            .await
            .map(|_| ())
            .context(NAME, "health_check")
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[async_trait]
impl VectorStorageBackend for DashVectorBackend {
    fn capabilities(&self) -> VectorCapabilities {
        let mut caps = VectorCapabilities::FULL.with_todo_embeddings(self.config.todo_embeddings);
        caps.filter_negation = false;
        caps.string_ranges = false;
        caps
    }

    fn dimension(&self) -> usize {
        self.config.vector_size
    }

    async fn get_collection_names(&self) -> Result<Vec<String>> {
        self.check_open().context(NAME, "get_collection_names")?;
        Ok(self
            .wanted_collections()
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    async fn delete_contexts(&self, ids: &[String], context_type: ContextType) -> Result<u64> {
        self.delete_ids(ids, context_type)
            .await
            .context(NAME, "delete_contexts")
    }

    async fn batch_upsert_processed_context(
        &self,
        contexts: &[ProcessedContext],
    ) -> Result<Vec<String>> {
        self.batch_upsert(contexts)
            .await
            .context(NAME, "batch_upsert_processed_context")
    }

    async fn get_all_processed_contexts(
        &self,
        query: &ListQuery,
    ) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>> {
        self.list(query)
            .await
            .context(NAME, "get_all_processed_contexts")
    }

    async fn get_processed_context(
        &self,
        id: &str,
        context_type: ContextType,
        need_vector: bool,
    ) -> Result<Option<ProcessedContext>> {
        self.get_one(id, context_type, need_vector)
            .await
            .context(NAME, "get_processed_context")
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<ScoredContext>> {
        self.run_search(query).await.context(NAME, "search")
    }

    async fn get_processed_context_count(&self, context_type: ContextType) -> Result<u64> {
        self.count(context_type)
            .await
            .context(NAME, "get_processed_context_count")
    }

    async fn delete_by_source_file(
        &self,
        source_file_key: &str,
        user_id: Option<&str>,
    ) -> Result<u64> {
        async {
            self.check_open()?;
            validate::validate_source_file_key(source_file_key, user_id)?;
            self.delete_source(source_file_key, user_id).await
        }
        .await
        .context(NAME, "delete_by_source_file")
    }

    async fn search_by_hierarchy(&self, query: &HierarchyQuery) -> Result<Vec<ScoredContext>> {
        self.hierarchy(query)
            .await
            .context(NAME, "search_by_hierarchy")
    }

    async fn get_by_ids(
        &self,
        ids: &[String],
        context_type: Option<ContextType>,
    ) -> Result<Vec<ProcessedContext>> {
        self.by_ids(ids, context_type)
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
        async {
            self.check_open()?;
            validate::validate_todo_id(todo_id)?;
            self.todo_upsert(todo_id, content, embedding, metadata)
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
        self.todo_search(query_embedding, top_k, similarity_threshold)
            .await
            .context(NAME, "search_similar_todos")
    }

    async fn delete_todo_embedding(&self, todo_id: i64) -> Result<bool> {
        async {
            self.check_open()?;
            validate::validate_todo_id(todo_id)?;
            self.todo_delete(todo_id).await
        }
        .await
        .context(NAME, "delete_todo_embedding")
    }

    fn scroll_processed_contexts(
        &self,
        query: ScrollQuery,
    ) -> BoxStream<'_, Result<ProcessedContext>> {
        let setup = self.check_open().and_then(|_| {
            let filter = self.compile(query.scope.apply(query.filter.as_ref()).as_ref())?;
            Ok(MultiCursor {
                cursors: Self::types(&query.context_types)
                    .into_iter()
                    .map(|t| self.cursor(t, &filter, query.batch_size, query.need_vector))
                    .collect::<VecDeque<_>>(),
                buffer: VecDeque::new(),
            })
        });
        let need_vector = query.need_vector;
        match setup {
            Ok(state) => stream::try_unfold(state, move |mut state| async move {
                let next = self
                    .next_scrolled(&mut state, need_vector)
                    .await
                    .context(NAME, "scroll_processed_contexts")?;
                Ok(next.map(|c| (c, state)))
            })
            .boxed(),
            Err(e) => {
                let e = e
                    .with_backend(NAME)
                    .with_operation("scroll_processed_contexts");
                stream::once(async move { Err(e) }).boxed()
            }
        }
    }
}
