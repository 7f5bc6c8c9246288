//! Server calls shared by the backend's operations: paging with the native cursor, fetching,
//! writing and deleting points, and turning server points into our model.

use std::collections::HashMap;

use qdrant_client::Payload;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::points_selector::PointsSelectorOneOf;
use qdrant_client::qdrant::vector_output::Vector as VectorKind;
use qdrant_client::qdrant::with_payload_selector::SelectorOptions as PayloadOptions;
use qdrant_client::qdrant::with_vectors_selector::SelectorOptions as VectorOptions;
use qdrant_client::qdrant::{
    CountPoints, DeletePoints, Filter as GrpcFilter, GetPoints, PayloadIncludeSelector, PointId,
    PointStruct, PointsIdsList, PointsSelector, RetrievedPoint, ScrollPoints, UpsertPoints, Value,
    VectorsOutput, WithPayloadSelector, WithVectorsSelector,
};
use storage_core::model::{JsonMap, ProcessedContext};
use storage_core::payload::{FIELD_ID, FIELD_ORIGINAL_ID};
use storage_core::{Result, StorageError};
use uuid::Uuid;

use super::client::Client;
use super::condition::{key_path, to_grpc_filter};
use crate::filter::FilterPlan;
use crate::points::decode_context;

/// Page size used when the backend walks a collection for its own purposes.
pub(crate) const INTERNAL_PAGE: usize = 512;
/// Most ids in one `get` or `delete` request.
pub(crate) const IDS_PER_REQUEST: usize = 1024;

/// A point as the backend uses it: id, payload as JSON, dense vector.
#[derive(Debug)]
pub(crate) struct Record {
    pub id: PointId,
    pub payload: JsonMap,
    pub vector: Option<Vec<f32>>,
}

impl Record {
    pub(crate) fn from_retrieved(p: RetrievedPoint) -> Record {
        Record {
            id: p.id.unwrap_or_default(),
            payload: payload_json(p.payload),
            vector: dense_vector(p.vectors),
        }
    }

    /// The context stored in this point.
    pub(crate) fn into_context(self) -> Result<ProcessedContext> {
        decode_context(self.payload, &id_string(&self.id), self.vector)
    }

    /// A string field of the payload.
    pub(crate) fn str_field(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(serde_json::Value::as_str)
    }
}

/// Which payload fields a read returns.
#[derive(Clone, Debug)]
pub(crate) enum PayloadWanted {
    None,
    All,
    Fields(Vec<String>),
}

impl PayloadWanted {
    /// The fields the plan's in-process part reads, plus the id fields and `extra`.
    pub(crate) fn for_plan(plan: &FilterPlan, extra: &[&str]) -> PayloadWanted {
        let mut fields: Vec<String> = plan
            .post
            .iter()
            .flat_map(|f| f.fields())
            .chain([FIELD_ORIGINAL_ID, FIELD_ID])
            .chain(extra.iter().copied())
            .map(str::to_owned)
            .collect();
        fields.sort();
        fields.dedup();
        PayloadWanted::Fields(fields)
    }

    fn selector(&self) -> WithPayloadSelector {
        let options = match self {
            PayloadWanted::None => PayloadOptions::Enable(false),
            PayloadWanted::All => PayloadOptions::Enable(true),
            PayloadWanted::Fields(fields) => PayloadOptions::Include(PayloadIncludeSelector {
                fields: fields.iter().map(|f| key_path(f)).collect(),
            }),
        };
        WithPayloadSelector {
            selector_options: Some(options),
        }
    }
}

pub(crate) fn vectors_selector(with_vector: bool) -> WithVectorsSelector {
    WithVectorsSelector {
        selector_options: Some(VectorOptions::Enable(with_vector)),
    }
}

/// The point id of a UUID.
pub(crate) fn uuid_id(u: Uuid) -> PointId {
    PointId {
        point_id_options: Some(PointIdOptions::Uuid(u.to_string())),
    }
}

/// The point id of a number.
pub(crate) fn num_id(n: u64) -> PointId {
    PointId {
        point_id_options: Some(PointIdOptions::Num(n)),
    }
}

/// A point id as text (the UUID or the number).
pub(crate) fn id_string(id: &PointId) -> String {
    match &id.point_id_options {
        Some(PointIdOptions::Uuid(u)) => u.clone(),
        Some(PointIdOptions::Num(n)) => n.to_string(),
        None => String::new(),
    }
}

/// A comparable key of a point id (UUIDs are normalised to lower case).
pub(crate) fn id_key(id: &PointId) -> String {
    id_string(id).to_ascii_lowercase()
}

/// A server payload as JSON.
pub(crate) fn payload_json(payload: HashMap<String, Value>) -> JsonMap {
    JsonMap::from(Payload::from(payload))
}

/// The default dense vector of a server point.
pub(crate) fn dense_vector(vectors: Option<VectorsOutput>) -> Option<Vec<f32>> {
    match vectors?.get_vector()? {
        VectorKind::Dense(d) => Some(d.data),
        _ => None,
    }
}

/// A point to write.
pub(crate) fn point(id: PointId, vector: Vec<f32>, payload: JsonMap) -> PointStruct {
    PointStruct {
        id: Some(id),
        payload: Payload::from(payload).into(),
        vectors: Some(vector.into()),
    }
}

/// The server filter of a plan's native part.
pub(crate) fn native_filter(plan: &FilterPlan) -> Result<Option<GrpcFilter>> {
    plan.native.as_ref().map(to_grpc_filter).transpose()
}

/// Calls on one collection.
pub(crate) struct Collection<'a> {
    pub client: &'a Client,
    pub name: &'a str,
}

impl Collection<'_> {
    /// One page of the native cursor: points from `cursor` (inclusive) on, in point id
    /// order, and the cursor of the next page (`None` at the end).
    pub(crate) async fn scroll_page(
        &self,
        filter: Option<&GrpcFilter>,
        cursor: Option<PointId>,
        limit: usize,
        payload: &PayloadWanted,
        with_vector: bool,
    ) -> Result<(Vec<Record>, Option<PointId>)> {
        let request = ScrollPoints {
            collection_name: self.name.to_owned(),
            filter: filter.cloned(),
            offset: cursor,
            limit: Some(u32::try_from(limit.max(1)).unwrap_or(u32::MAX)),
            with_payload: Some(payload.selector()),
            with_vectors: Some(vectors_selector(with_vector)),
            ..ScrollPoints::default()
        };
        let response = self
            .client
            .call("scroll", || self.client.qdrant.scroll(request.clone()))
            .await?;
        let records = response
            .result
            .into_iter()
            .map(Record::from_retrieved)
            .collect();
        Ok((records, response.next_page_offset))
    }

    /// Points by id (missing ones are left out), in no particular order.
    pub(crate) async fn get(
        &self,
        ids: &[PointId],
        payload: &PayloadWanted,
        with_vector: bool,
    ) -> Result<Vec<Record>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_REQUEST) {
            let request = GetPoints {
                collection_name: self.name.to_owned(),
                ids: chunk.to_vec(),
                with_payload: Some(payload.selector()),
                with_vectors: Some(vectors_selector(with_vector)),
                ..GetPoints::default()
            };
            let response = self
                .client
                .call("get", || self.client.qdrant.get_points(request.clone()))
                .await?;
            out.extend(response.result.into_iter().map(Record::from_retrieved));
        }
        Ok(out)
    }

    /// The exact number of points matching `filter` (all when `None`).
    pub(crate) async fn count(&self, filter: Option<GrpcFilter>) -> Result<u64> {
        let request = CountPoints {
            collection_name: self.name.to_owned(),
            filter,
            exact: Some(true),
            ..CountPoints::default()
        };
        let response = self
            .client
            .call("count", || self.client.qdrant.count(request.clone()))
            .await?;
        Ok(response.result.map_or(0, |r| r.count))
    }

    /// Writes points, waiting until they are applied.
    pub(crate) async fn upsert(&self, points: Vec<PointStruct>) -> Result<()> {
        let request = UpsertPoints {
            collection_name: self.name.to_owned(),
            wait: Some(true),
            points,
            ..UpsertPoints::default()
        };
        self.client
            .call_write("upsert", || {
                self.client.qdrant.upsert_points(request.clone())
            })
            .await?;
        Ok(())
    }

    /// Deletes points by id, waiting until applied. A failure after an earlier request of
    /// the call was applied has an unknown outcome (some points are deleted).
    pub(crate) async fn delete_ids(&self, ids: &[PointId]) -> Result<()> {
        for (i, chunk) in ids.chunks(IDS_PER_REQUEST).enumerate() {
            self.delete(PointsSelectorOneOf::Points(PointsIdsList {
                ids: chunk.to_vec(),
            }))
            .await
            .map_err(|e| {
                if i > 0 {
                    e.with_outcome_unknown(true)
                } else {
                    e
                }
            })?;
        }
        Ok(())
    }

    /// Deletes the points matching `filter` on the server, waiting until applied.
    pub(crate) async fn delete_matching(&self, filter: GrpcFilter) -> Result<()> {
        self.delete(PointsSelectorOneOf::Filter(filter)).await
    }

    async fn delete(&self, selector: PointsSelectorOneOf) -> Result<()> {
        let request = DeletePoints {
            collection_name: self.name.to_owned(),
            wait: Some(true),
            points: Some(PointsSelector {
                points_selector_one_of: Some(selector),
            }),
            ..DeletePoints::default()
        };
        self.client
            .call_write("delete", || {
                self.client.qdrant.delete_points(request.clone())
            })
            .await?;
        Ok(())
    }

    /// Walks every point matching the plan (native filter through the cursor, in point id
    /// order; in-process part on the returned payload) and hands each to `visit`, which
    /// returns `false` to stop. `payload` must include the fields the plan's in-process part
    /// reads ([`PayloadWanted::for_plan`]).
    pub(crate) async fn walk(
        &self,
        plan: &FilterPlan,
        payload: &PayloadWanted,
        with_vector: bool,
        mut visit: impl FnMut(Record) -> Result<bool>,
    ) -> Result<()> {
        let filter = native_filter(plan)?;
        let mut cursor = None;
        loop {
            let (records, next) = self
                .scroll_page(filter.as_ref(), cursor, INTERNAL_PAGE, payload, with_vector)
                .await?;
            for r in records {
                if plan.post_matches(&r.payload) && !visit(r)? {
                    return Ok(());
                }
            }
            match next {
                Some(n) => cursor = Some(n),
                None => return Ok(()),
            }
        }
    }
}

/// An error for a server answer that breaks the protocol.
pub(crate) fn protocol_error(what: impl std::fmt::Display) -> StorageError {
    StorageError::backend(format!("unexpected server answer: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_and_ids_round_trip() {
        let payload =
            json!({"s": "x", "n": 3, "f": 1.5, "b": true, "l": "[1,2]", "o": {"k": null}});
        let p = point(
            uuid_id(Uuid::nil()),
            vec![0.5, 0.25],
            payload.as_object().unwrap().clone(),
        );
        assert_eq!(
            &payload_json(p.payload.clone()),
            payload.as_object().unwrap()
        );
        assert_eq!(
            id_string(&p.id.unwrap()),
            "00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(id_string(&num_id(7)), "7");
        let fields = PayloadWanted::for_plan(
            &FilterPlan {
                native: None,
                post: Some(storage_core::Filter::gte("time_bucket", "2026")),
            },
            &["a.b"],
        );
        let sel = fields.selector();
        let Some(PayloadOptions::Include(inc)) = sel.selector_options else {
            panic!("include selector expected");
        };
        assert_eq!(inc.fields, ["\"a.b\"", "id", "original_id", "time_bucket"]);
    }
}
