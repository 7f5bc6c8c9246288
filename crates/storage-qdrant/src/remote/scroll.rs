//! `scroll_processed_contexts`: a stream over the server's native cursor.
//!
//! Each page is one `Scroll` call from the previous page's `next_page_offset` (point id
//! order). No offsets are ever re-read, so a full walk is O(n).

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use qdrant_client::qdrant::{Filter as GrpcFilter, PointId};
use storage_core::model::{ContextType, ProcessedContext};
use storage_core::{Result, ResultExt};
use storage_core::{ScrollQuery, StorageError};

use super::backend::{BACKEND, Inner};
use super::records::{PayloadWanted, native_filter};
use crate::filter::{FilterPlan, plan};
use crate::query::types_or_all;

const OP: &str = "scroll_processed_contexts";

struct State {
    inner: Arc<Inner>,
    types: VecDeque<ContextType>,
    cursor: Option<PointId>,
    plan: FilterPlan,
    filter: Option<GrpcFilter>,
    batch_size: usize,
    need_vector: bool,
    buffer: VecDeque<ProcessedContext>,
    failed: Option<StorageError>,
    done: bool,
}

impl State {
    /// One page of the current type: decoded, post-filtered contexts and the next cursor.
    async fn fetch(&self, t: ContextType) -> Result<(Vec<ProcessedContext>, Option<PointId>)> {
        let (records, next) = self
            .inner
            .collection(t)
            .scroll_page(
                self.filter.as_ref(),
                self.cursor.clone(),
                self.batch_size,
                &PayloadWanted::All,
                self.need_vector,
            )
            .await?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            if self.plan.post_matches(&r.payload) {
                out.push(r.into_context()?);
            }
        }
        Ok((out, next))
    }
}

pub(crate) fn scroll(
    inner: Arc<Inner>,
    query: ScrollQuery,
) -> BoxStream<'static, Result<ProcessedContext>> {
    let mut failed = inner.ensure_open().err();
    if query.batch_size == 0 && failed.is_none() {
        failed = Some(StorageError::invalid_input("batch_size must be at least 1"));
    }
    let (plan, filter) = match plan(query.filter.as_ref(), &query.scope)
        .and_then(|p| native_filter(&p).map(|f| (p, f)))
    {
        Ok(v) => v,
        Err(e) => {
            failed.get_or_insert(e);
            (FilterPlan::default(), None)
        }
    };
    let state = State {
        inner,
        types: types_or_all(query.context_types.as_ref()).into(),
        cursor: None,
        plan,
        filter,
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
            if let Err(e) = st.inner.ensure_open() {
                st.failed = Some(e);
                continue;
            }
            match st.fetch(t).await.context(BACKEND, OP) {
                Ok((contexts, next)) => {
                    st.buffer.extend(contexts);
                    if next.is_none() {
                        st.types.pop_front();
                    }
                    st.cursor = next;
                }
                Err(e) => st.failed = Some(e),
            }
        }
    })
    .boxed()
}
