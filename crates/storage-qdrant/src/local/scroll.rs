//! `scroll_processed_contexts`: a stream over the engine's native cursor.
//!
//! Each page is one engine `scroll` call from the previous page's `next_offset` (point id
//! order), run off the async runtime. No offsets are ever re-read, so a full walk is O(n).

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use qdrant_edge::PointId;
use storage_core::model::{ContextType, ProcessedContext};
use storage_core::{Result, ResultExt};
use storage_core::{ScrollQuery, StorageError};

use super::backend::{BACKEND, Inner};
use super::records::{native_filter, scroll_page, to_context};
use crate::filter::{FilterPlan, plan};

const OP: &str = "scroll_processed_contexts";

struct State {
    inner: Arc<Inner>,
    types: VecDeque<ContextType>,
    cursor: Option<PointId>,
    plan: FilterPlan,
    batch_size: usize,
    need_vector: bool,
    buffer: VecDeque<ProcessedContext>,
    failed: Option<StorageError>,
    done: bool,
}

/// One page of the current type: decoded, post-filtered contexts and the next cursor.
fn fetch(
    inner: &Inner,
    t: ContextType,
    plan: &FilterPlan,
    cursor: Option<PointId>,
    batch_size: usize,
    need_vector: bool,
) -> Result<(Vec<ProcessedContext>, Option<PointId>)> {
    let filter = native_filter(plan)?;
    let page = inner
        .shard(t)
        .read(|edge| scroll_page(edge, filter.as_ref(), cursor, batch_size, true, need_vector))?;
    let Some((records, next)) = page else {
        return Ok((Vec::new(), None));
    };
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let keep = r
            .payload
            .as_ref()
            .map_or(plan.post.is_none(), |p| plan.post_matches(&p.0));
        if keep {
            out.push(to_context(r.id, r.payload, r.vector)?);
        }
    }
    Ok((out, next))
}

pub(crate) fn scroll(
    inner: Arc<Inner>,
    query: ScrollQuery,
) -> BoxStream<'static, Result<ProcessedContext>> {
    let mut failed = inner.ensure_open().err();
    if query.batch_size == 0 && failed.is_none() {
        failed = Some(StorageError::invalid_input("batch_size must be at least 1"));
    }
    let plan = match plan(query.filter.as_ref(), &query.scope) {
        Ok(p) => p,
        Err(e) => {
            failed.get_or_insert(e);
            FilterPlan::default()
        }
    };
    let types: VecDeque<ContextType> =
        crate::query::types_or_all(query.context_types.as_ref()).into();
    let state = State {
        inner,
        types,
        cursor: None,
        plan,
        batch_size: query.batch_size,
        need_vector: query.need_vector,
        buffer: VecDeque::new(),
        failed,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(e) = st.failed.take() {
                st.done = true;
                return Some((Err(e.with_backend(BACKEND).with_operation(OP)), st));
            }
            if let Some(c) = st.buffer.pop_front() {
                return Some((Ok(c), st));
            }
            if st.done {
                return None;
            }
            let &t = st.types.front()?;
            let (inner, plan, cursor) = (st.inner.clone(), st.plan.clone(), st.cursor);
            let (batch, need_vector) = (st.batch_size, st.need_vector);
            let page = tokio::task::spawn_blocking(move || {
                fetch(&inner, t, &plan, cursor, batch, need_vector)
            })
            .await
            .unwrap_or_else(|e| Err(StorageError::backend(format!("engine task failed: {e}"))))
            .context(BACKEND, OP);
            match page {
                Ok((contexts, next)) => {
                    st.buffer.extend(contexts);
                    st.cursor = next;
                    if next.is_none() {
                        st.types.pop_front();
                    }
                }
                Err(e) => st.failed = Some(e),
            }
        }
    })
    .boxed()
}
