//! An in-memory reference [`VectorStorageBackend`]: exact brute-force search over flattened
//! payloads, used to check the conformance kit itself and to test code above the backends
//! (the facade, the CLI) without a database. Not persistent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use crate::backend::*;
use crate::error::{ErrorKind, Result, StorageError};
use crate::filter::Filter;
use crate::model::{ContextType, JsonMap, ProcessedContext, ScoredContext};
use crate::{payload, time_bucket, validate};

type Collection = BTreeMap<String, (JsonMap, Vec<f32>)>;

/// The in-memory reference backend (registered name `memory`).
#[derive(Debug)]
pub struct MemoryVectorBackend {
    dimension: usize,
    todo_enabled: bool,
    closed: AtomicBool,
    data: Mutex<HashMap<ContextType, Collection>>,
    todos: Mutex<BTreeMap<i64, (String, Vec<f32>)>>,
}

impl MemoryVectorBackend {
    /// An empty store of `dimension`-sized vectors.
    pub fn new(dimension: usize, todo_embeddings: bool) -> Self {
        MemoryVectorBackend {
            dimension,
            todo_enabled: todo_embeddings,
            closed: AtomicBool::new(false),
            data: Mutex::new(HashMap::new()),
            todos: Mutex::new(BTreeMap::new()),
        }
    }

    fn open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(
                StorageError::new(ErrorKind::NotInitialized, "backend is closed")
                    .with_backend("memory"),
            )
        } else {
            Ok(())
        }
    }

    fn check_filter(filter: Option<&Filter>) -> Result<()> {
        if let Some(f) = filter {
            f.validate()?;
            if let Some(field) = f
                .fields()
                .into_iter()
                .find(|k| payload::JSON_ENCODED_FIELDS.contains(k))
            {
                return Err(StorageError::unsupported(format!(
                    "'{field}' is stored JSON-encoded and cannot be filtered element-wise"
                )));
            }
        }
        Ok(())
    }

    fn types(types: &Option<Vec<ContextType>>) -> Vec<ContextType> {
        types.clone().unwrap_or_else(|| ContextType::ALL.to_vec())
    }

    fn decode(id: &str, p: &JsonMap, v: &[f32], need_vector: bool) -> Result<ProcessedContext> {
        payload::from_payload(p.clone(), id, need_vector.then(|| v.to_vec()))
    }

    fn matching(
        &self,
        t: ContextType,
        filter: Option<&Filter>,
        need_vector: bool,
    ) -> Result<Vec<ProcessedContext>> {
        let data = self.data.lock().expect("lock");
        let Some(col) = data.get(&t) else {
            return Ok(Vec::new());
        };
        col.iter()
            .filter(|(_, (p, _))| filter.is_none_or(|f| f.matches(p)))
            .map(|(id, (p, v))| Self::decode(id, p, v, need_vector))
            .collect()
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (dot / (na * nb)) as f32
}

#[async_trait]
impl StorageBackend for MemoryVectorBackend {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn storage_type(&self) -> StorageType {
        StorageType::VectorDb
    }
    async fn health_check(&self) -> Result<()> {
        self.open()
    }
    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[async_trait]
impl VectorStorageBackend for MemoryVectorBackend {
    fn capabilities(&self) -> VectorCapabilities {
        VectorCapabilities {
            persistent: false,
            ..VectorCapabilities::FULL
        }
        .with_todo_embeddings(self.todo_enabled)
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn get_collection_names(&self) -> Result<Vec<String>> {
        self.open()?;
        let mut names: Vec<String> = ContextType::ALL.iter().map(|t| t.to_string()).collect();
        if self.todo_enabled {
            names.push("todo".into());
        }
        Ok(names)
    }

    async fn delete_contexts(&self, ids: &[String], context_type: ContextType) -> Result<u64> {
        self.open()?;
        validate::validate_ids(ids)?;
        let mut data = self.data.lock().expect("lock");
        let col = data.entry(context_type).or_default();
        Ok(ids.iter().filter(|id| col.remove(*id).is_some()).count() as u64)
    }

    async fn batch_upsert_processed_context(
        &self,
        contexts: &[ProcessedContext],
    ) -> Result<Vec<String>> {
        self.open()?;
        validate::validate_contexts(contexts, self.dimension)?;
        let mut encoded = Vec::with_capacity(contexts.len());
        for c in contexts {
            let p = payload::to_payload(c)?;
            validate::validate_payload_size(&c.id, serde_json::to_vec(&p)?.len())?;
            encoded.push((
                c.context_type(),
                c.id.clone(),
                p,
                c.vectorize.vector.clone().unwrap_or_default(),
            ));
        }
        let mut data = self.data.lock().expect("lock");
        Ok(encoded
            .into_iter()
            .map(|(t, id, p, v)| {
                data.entry(t).or_default().insert(id.clone(), (p, v));
                id
            })
            .collect())
    }

    async fn get_all_processed_contexts(
        &self,
        q: &ListQuery,
    ) -> Result<BTreeMap<ContextType, Vec<ProcessedContext>>> {
        self.open()?;
        let filter = q.scope.apply(q.filter.as_ref());
        Self::check_filter(filter.as_ref())?;
        let mut out = BTreeMap::new();
        for t in Self::types(&q.context_types) {
            let page: Vec<_> = self
                .matching(t, filter.as_ref(), q.need_vector)?
                .into_iter()
                .skip(q.offset)
                .take(q.limit)
                .collect();
            if !page.is_empty() {
                out.insert(t, page);
            }
        }
        Ok(out)
    }

    async fn get_processed_context(
        &self,
        id: &str,
        t: ContextType,
        need_vector: bool,
    ) -> Result<Option<ProcessedContext>> {
        self.open()?;
        validate::validate_id("id", id)?;
        let data = self.data.lock().expect("lock");
        data.get(&t)
            .and_then(|c| c.get(id))
            .map(|(p, v)| Self::decode(id, p, v, need_vector))
            .transpose()
    }

    async fn search(&self, q: &SearchQuery) -> Result<Vec<ScoredContext>> {
        self.open()?;
        validate::validate_vector("query vector", &q.vector, self.dimension)?;
        if let Some(t) = q.score_threshold {
            validate::validate_threshold("score_threshold", t)?;
        }
        let filter = q.scope.apply(q.filter.as_ref());
        Self::check_filter(filter.as_ref())?;
        let mut hits = Vec::new();
        let data = self.data.lock().expect("lock");
        for t in Self::types(&q.context_types) {
            for (id, (p, v)) in data.get(&t).into_iter().flatten() {
                if filter.as_ref().is_none_or(|f| f.matches(p)) {
                    let score = cosine(&q.vector, v);
                    if q.score_threshold.is_none_or(|th| score >= th) {
                        hits.push(ScoredContext {
                            context: Self::decode(id, p, v, q.need_vector)?,
                            score,
                        });
                    }
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

    async fn get_processed_context_count(&self, t: ContextType) -> Result<u64> {
        self.open()?;
        Ok(self
            .data
            .lock()
            .expect("lock")
            .get(&t)
            .map_or(0, |c| c.len() as u64))
    }

    async fn delete_by_source_file(&self, key: &str, user_id: Option<&str>) -> Result<u64> {
        self.open()?;
        validate::validate_source_file_key(key, user_id)?;
        let filter = Filter::eq("source_file_key", key);
        let filter = match user_id {
            Some(u) => filter.and(Filter::eq("user_id", u)),
            None => filter,
        };
        let mut data = self.data.lock().expect("lock");
        let mut n = 0;
        for col in data.values_mut() {
            let before = col.len();
            col.retain(|_, (p, _)| !filter.matches(p));
            n += (before - col.len()) as u64;
        }
        Ok(n)
    }

    async fn search_by_hierarchy(&self, q: &HierarchyQuery) -> Result<Vec<ScoredContext>> {
        self.open()?;
        time_bucket::validate_range(q.time_bucket_start.as_deref(), q.time_bucket_end.as_deref())?;
        let mut filter = Filter::eq("hierarchy_level", q.hierarchy_level);
        if let Some(u) = &q.user_id {
            filter = filter.and(Filter::eq("user_id", u));
        }
        let mut hits: Vec<ScoredContext> = self
            .matching(q.context_type, Some(&filter), false)?
            .into_iter()
            .filter(|c| {
                c.properties.time_bucket.as_deref().is_some_and(|tb| {
                    time_bucket::in_range(
                        tb,
                        q.time_bucket_start.as_deref(),
                        q.time_bucket_end.as_deref(),
                    )
                })
            })
            .map(|context| ScoredContext {
                context,
                score: 1.0,
            })
            .collect();
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

    async fn get_by_ids(
        &self,
        ids: &[String],
        t: Option<ContextType>,
    ) -> Result<Vec<ProcessedContext>> {
        self.open()?;
        ids.iter()
            .try_for_each(|id| validate::validate_id("id", id))?;
        let types = t.map_or_else(|| ContextType::ALL.to_vec(), |t| vec![t]);
        let data = self.data.lock().expect("lock");
        let mut out = Vec::new();
        for id in ids {
            if let Some((p, v)) = types
                .iter()
                .find_map(|t| data.get(t).and_then(|c| c.get(id)))
            {
                out.push(Self::decode(id, p, v, false)?);
            }
        }
        Ok(out)
    }

    async fn upsert_todo_embedding(
        &self,
        todo_id: i64,
        content: &str,
        embedding: &[f32],
        _m: Option<&JsonMap>,
    ) -> Result<()> {
        self.open()?;
        if !self.todo_enabled {
            return Err(StorageError::unsupported(
                "todo embeddings are disabled (consumption.enabled is false)",
            ));
        }
        validate::validate_todo_id(todo_id)?;
        validate::validate_vector("todo embedding", embedding, self.dimension)?;
        self.todos
            .lock()
            .expect("lock")
            .insert(todo_id, (content.to_owned(), embedding.to_vec()));
        Ok(())
    }

    async fn search_similar_todos(
        &self,
        query: &[f32],
        top_k: usize,
        threshold: f32,
    ) -> Result<Vec<SimilarTodo>> {
        self.open()?;
        if !self.todo_enabled {
            return Err(StorageError::unsupported(
                "todo embeddings are disabled (consumption.enabled is false)",
            ));
        }
        validate::validate_vector("query embedding", query, self.dimension)?;
        validate::validate_threshold("similarity_threshold", threshold)?;
        let mut hits: Vec<SimilarTodo> = self
            .todos
            .lock()
            .expect("lock")
            .iter()
            .map(|(id, (content, v))| SimilarTodo {
                todo_id: *id,
                content: content.clone(),
                score: cosine(query, v),
            })
            .filter(|t| t.score >= threshold)
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.todo_id.cmp(&b.todo_id))
        });
        hits.truncate(top_k);
        Ok(hits)
    }

    async fn delete_todo_embedding(&self, todo_id: i64) -> Result<bool> {
        self.open()?;
        if !self.todo_enabled {
            return Err(StorageError::unsupported(
                "todo embeddings are disabled (consumption.enabled is false)",
            ));
        }
        validate::validate_todo_id(todo_id)?;
        Ok(self.todos.lock().expect("lock").remove(&todo_id).is_some())
    }

    fn scroll_processed_contexts(&self, q: ScrollQuery) -> BoxStream<'_, Result<ProcessedContext>> {
        let setup = self.open().and_then(|_| {
            let filter = q.scope.apply(q.filter.as_ref());
            Self::check_filter(filter.as_ref())?;
            let mut all = Vec::new();
            for t in Self::types(&q.context_types) {
                all.extend(self.matching(t, filter.as_ref(), q.need_vector)?);
            }
            Ok(all)
        });
        match setup {
            Ok(all) => stream::iter(all.into_iter().map(Ok)).boxed(),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testkit::vector::{KitSpec, VectorKitHarness};

    struct Harness;

    #[async_trait]
    impl VectorKitHarness for Harness {
        async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
            Arc::new(MemoryVectorBackend::new(
                spec.dimension,
                spec.todo_embeddings,
            ))
        }
    }

    crate::vector_conformance_tests!(Harness);
}
