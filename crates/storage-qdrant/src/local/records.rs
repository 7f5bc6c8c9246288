//! Engine calls shared by the backend's operations: paging with the native cursor, fetching
//! points, and turning engine records into contexts.

use qdrant_edge::{
    Condition, EdgeShard, Filter as EdgeFilter, PointId, Record, ScrollRequest, VectorInternal,
    VectorStructInternal, WithPayloadInterface, WithVector,
};
use storage_core::Result;
use storage_core::model::ProcessedContext;

use super::condition::to_edge_filter;
use super::shard::engine_err;
use crate::filter::FilterPlan;
use crate::points::decode_context;

/// Page size used when the backend walks a collection for its own purposes.
pub(crate) const INTERNAL_PAGE: usize = 512;

/// The engine filter of a plan's native part.
pub(crate) fn native_filter(plan: &FilterPlan) -> Result<Option<EdgeFilter>> {
    plan.native.as_ref().map(to_edge_filter).transpose()
}

/// `filter and id in ids`.
pub(crate) fn with_ids(
    filter: Option<EdgeFilter>,
    ids: impl IntoIterator<Item = PointId>,
) -> EdgeFilter {
    let mut must = vec![Condition::HasId(ids.into_iter().collect())];
    if let Some(f) = filter {
        must.push(Condition::Filter(f));
    }
    EdgeFilter {
        must: Some(must),
        ..EdgeFilter::default()
    }
}

/// One page of the native cursor: records from `cursor` (inclusive) on, in point id order,
/// and the cursor of the next page (`None` at the end).
pub(crate) fn scroll_page(
    edge: &EdgeShard,
    filter: Option<&EdgeFilter>,
    cursor: Option<PointId>,
    limit: usize,
    with_payload: bool,
    with_vector: bool,
) -> Result<(Vec<Record>, Option<PointId>)> {
    edge.scroll(ScrollRequest {
        offset: cursor,
        limit: Some(limit.max(1)),
        filter: filter.cloned(),
        with_payload: Some(WithPayloadInterface::Bool(with_payload)),
        with_vector: WithVector::Bool(with_vector),
        order_by: None,
    })
    .map_err(engine_err)
}

/// Points by id (missing ones are left out), in the order asked.
pub(crate) fn retrieve(
    edge: &EdgeShard,
    ids: &[PointId],
    with_payload: bool,
    with_vector: bool,
) -> Result<Vec<Record>> {
    edge.retrieve(
        ids,
        Some(WithPayloadInterface::Bool(with_payload)),
        Some(WithVector::Bool(with_vector)),
    )
    .map_err(engine_err)
}

/// The dense default vector of a stored point.
pub(crate) fn dense_vector(vector: Option<VectorStructInternal>) -> Option<Vec<f32>> {
    match vector? {
        VectorStructInternal::Single(v) => Some(v),
        VectorStructInternal::Named(mut named) => match named.remove("")? {
            VectorInternal::Dense(v) => Some(v),
            _ => None,
        },
        VectorStructInternal::MultiDense(_) => None,
    }
}

/// A context from a point's parts.
pub(crate) fn to_context(
    id: PointId,
    payload: Option<qdrant_edge::Payload>,
    vector: Option<VectorStructInternal>,
) -> Result<ProcessedContext> {
    decode_context(
        payload.map(|p| p.0).unwrap_or_default(),
        &id.to_string(),
        dense_vector(vector),
    )
}

/// Walks every point matching the plan (native filter through the cursor, post filter in
/// process) and hands each matching record to `visit`, which returns `false` to stop.
pub(crate) fn walk(
    edge: &EdgeShard,
    plan: &FilterPlan,
    with_vector: bool,
    mut visit: impl FnMut(Record) -> Result<bool>,
) -> Result<()> {
    let filter = native_filter(plan)?;
    let mut cursor = None;
    loop {
        let (records, next) = scroll_page(
            edge,
            filter.as_ref(),
            cursor,
            INTERNAL_PAGE,
            true,
            with_vector,
        )?;
        for r in records {
            let keep = r
                .payload
                .as_ref()
                .map_or(plan.post.is_none(), |p| plan.post_matches(&p.0));
            if keep && !visit(r)? {
                return Ok(());
            }
        }
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(()),
        }
    }
}
