//! An in-process Qdrant gRPC server for the remote-mode tests.
//!
//! It serves the generated server traits that `qdrant-client` ships
//! (`qdrant_server::Qdrant`, `collections_server::Collections`, `points_server::Points`) over
//! real gRPC on `127.0.0.1:<random port>`, and stores every collection in the embedded Qdrant
//! engine (`qdrant-edge`), one on-disk shard per collection in a temp directory. So filters,
//! payload indexes, cosine scores and scroll cursors are evaluated by Qdrant's own segment
//! code; this file only converts between the gRPC messages and the engine's types.
//!
//! Implemented: health check; collections `create`, `get`, `list`, `delete`,
//! `collection_exists`; points `upsert`, `get`, `delete` (ids or filter), `scroll`, `count`,
//! `query` (nearest to a dense vector), `create_field_index`. Filters: `must`, `should`,
//! `must_not`, nested filters, `match` keyword / integer / boolean / any / except, `range`,
//! `has_id`, `is_empty`, `is_null`. Everything else answers `UNIMPLEMENTED`.
//!
//! Test hooks: an API key the server requires (`api-key` header, as Qdrant), a count of
//! calls per method, failures to inject into the next calls, and stalls (a method's calls
//! wait before being served).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use qdrant_client::Payload as ClientPayload;
use qdrant_client::qdrant as g;
use qdrant_client::qdrant::collections_server::{Collections, CollectionsServer};
use qdrant_client::qdrant::points_server::{Points, PointsServer};
use qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use qdrant_edge as e;
use qdrant_edge::external::ordered_float::OrderedFloat;
use tonic::{Request, Response, Status};

type Res<T> = Result<Response<T>, Status>;

/// A running server; stops when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The server's state (hooks and collections).
    pub state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// One collection: its shard and what it was created with.
struct Coll {
    shard: Arc<e::EdgeShard>,
    size: u64,
    /// The distance it was created with.
    distance: g::Distance,
    /// Payload indexes created on it, with their types.
    indexes: Mutex<BTreeMap<String, g::PayloadSchemaType>>,
}

/// Shared state of a server.
pub struct State {
    /// Declared before `dir`: the shards flush on drop, before their files are removed.
    collections: Mutex<HashMap<String, Arc<Coll>>>,
    dir: tempfile::TempDir,
    next_dir: AtomicU64,
    api_key: Option<String>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
    failures: Mutex<Vec<Status>>,
    /// Failures of one method: calls to let through first, then the statuses in order.
    method_failures: Mutex<HashMap<&'static str, (u64, Vec<Status>)>>,
    /// Methods whose calls wait this long before being served (`"*"`: every method).
    stalls: Mutex<HashMap<&'static str, std::time::Duration>>,
}

impl State {
    /// How many times `method` was called (including failed calls).
    pub fn calls(&self, method: &str) -> u64 {
        self.calls.lock().unwrap().get(method).copied().unwrap_or(0)
    }

    /// The next calls (of any method) fail with these statuses, in order.
    pub fn fail_next(&self, statuses: Vec<Status>) {
        let mut f = self.failures.lock().unwrap();
        *f = statuses;
        f.reverse();
    }

    /// The calls of `method` after the next `pass` ones fail with these statuses, in order
    /// (other methods are not affected).
    pub fn fail_method_after(&self, method: &'static str, pass: u64, statuses: Vec<Status>) {
        let mut statuses = statuses;
        statuses.reverse();
        self.method_failures
            .lock()
            .unwrap()
            .insert(method, (pass, statuses));
    }

    /// Every later call of `method` (`"*"`: of every method) waits `delay` after being
    /// counted and before being served, like a server that hangs; the call is then served
    /// normally, unless its client gave up first (tonic then drops the handler, so the
    /// stalled write is not applied). `Duration::ZERO` removes the stall.
    pub fn stall_method(&self, method: &'static str, delay: std::time::Duration) {
        let mut stalls = self.stalls.lock().unwrap();
        if delay.is_zero() {
            stalls.remove(method);
        } else {
            stalls.insert(method, delay);
        }
    }

    /// Waits the stall of `method`, if any.
    async fn stall(&self, method: &'static str) {
        let delay = {
            let stalls = self.stalls.lock().unwrap();
            stalls.get(method).or_else(|| stalls.get("*")).copied()
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }

    /// The payload indexes of a collection, by field.
    pub fn indexes(&self, collection: &str) -> BTreeMap<String, g::PayloadSchemaType> {
        self.coll(collection)
            .map(|c| c.indexes.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Names of the collections.
    pub fn collection_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.collections.lock().unwrap().keys().cloned().collect();
        v.sort();
        v
    }

    fn coll(&self, name: &str) -> Result<Arc<Coll>, Status> {
        self.collections
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("Collection `{name}` doesn't exist!")))
    }

    /// Counts the call, checks the API key, and applies an injected failure.
    fn enter<T>(&self, method: &'static str, req: &Request<T>) -> Result<(), Status> {
        *self.calls.lock().unwrap().entry(method).or_default() += 1;
        if let Some(key) = &self.api_key {
            let given = req.metadata().get("api-key").and_then(|v| v.to_str().ok());
            if given != Some(key.as_str()) {
                return Err(Status::unauthenticated("Invalid api-key"));
            }
        }
        if let Some(status) = self.failures.lock().unwrap().pop() {
            return Err(status);
        }
        if let Some((pass, statuses)) = self.method_failures.lock().unwrap().get_mut(method) {
            if *pass > 0 {
                *pass -= 1;
            } else if let Some(status) = statuses.pop() {
                return Err(status);
            }
        }
        Ok(())
    }
}

/// Starts a server on `127.0.0.1:0` on the current runtime; with `api_key`, every call must
/// carry it.
pub async fn start(api_key: Option<&str>) -> TestServer {
    let state = Arc::new(State {
        dir: tempfile::tempdir().expect("temp dir"),
        next_dir: AtomicU64::new(0),
        collections: Mutex::new(HashMap::new()),
        api_key: api_key.map(str::to_owned),
        calls: Mutex::new(BTreeMap::new()),
        failures: Mutex::new(Vec::new()),
        method_failures: Mutex::new(HashMap::new()),
        stalls: Mutex::new(HashMap::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let svc = Svc(state.clone());
    let incoming = tokio_stream_from(listener);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(QdrantServer::new(svc.clone()))
            .add_service(CollectionsServer::new(svc.clone()))
            .add_service(
                PointsServer::new(svc)
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20),
            )
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await
            .expect("test server");
    });
    TestServer {
        url: format!("http://{addr}"),
        state,
        shutdown: Some(tx),
    }
}

/// The accepted connections of a listener as the stream tonic serves.
fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    })
}

#[derive(Clone)]
struct Svc(Arc<State>);

/// Runs engine work off the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("engine task: {e}")))?
}

fn engine(e: e::OperationError) -> Status {
    Status::internal(format!("engine: {e}"))
}

fn unimplemented<T>(what: &str) -> Res<T> {
    Err(Status::unimplemented(format!(
        "test server: {what} is not implemented"
    )))
}

// ---- conversions: gRPC -> engine ----

fn point_id(id: g::PointId) -> Result<e::PointId, Status> {
    match id.point_id_options {
        Some(g::point_id::PointIdOptions::Num(n)) => Ok(e::PointId::NumId(n)),
        Some(g::point_id::PointIdOptions::Uuid(s)) => uuid::Uuid::parse_str(&s)
            .map(e::PointId::Uuid)
            .map_err(|_| Status::invalid_argument(format!("Unable to parse UUID: {s}"))),
        None => Err(Status::invalid_argument("point id without a value")),
    }
}

fn key(path: &str) -> Result<e::JsonPath, Status> {
    e::JsonPath::from_str(path)
        .map_err(|()| Status::invalid_argument(format!("invalid payload key {path:?}")))
}

fn conditions(cs: Vec<g::Condition>) -> Result<Option<Vec<e::Condition>>, Status> {
    if cs.is_empty() {
        return Ok(None);
    }
    cs.into_iter()
        .map(condition)
        .collect::<Result<_, _>>()
        .map(Some)
}

fn filter(f: g::Filter) -> Result<e::Filter, Status> {
    if f.min_should.is_some() {
        return Err(Status::unimplemented("test server: min_should"));
    }
    Ok(e::Filter {
        should: conditions(f.should)?,
        min_should: None,
        must: conditions(f.must)?,
        must_not: conditions(f.must_not)?,
    })
}

fn opt_filter(f: Option<g::Filter>) -> Result<Option<e::Filter>, Status> {
    f.map(filter).transpose()
}

fn condition(c: g::Condition) -> Result<e::Condition, Status> {
    use g::condition::ConditionOneOf as C;
    match c.condition_one_of {
        Some(C::Field(fc)) => field_condition(fc),
        Some(C::IsEmpty(c)) => Ok(e::Condition::IsEmpty(e::IsEmptyCondition::from(key(
            &c.key
        )?))),
        Some(C::IsNull(c)) => Ok(e::Condition::IsNull(e::IsNullCondition::from(key(&c.key)?))),
        Some(C::HasId(h)) => Ok(e::Condition::HasId(
            h.has_id
                .into_iter()
                .map(point_id)
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .collect(),
        )),
        Some(C::Filter(f)) => Ok(e::Condition::Filter(filter(f)?)),
        Some(other) => Err(Status::unimplemented(format!(
            "test server: condition {other:?}"
        ))),
        None => Err(Status::invalid_argument("empty condition")),
    }
}

fn field_condition(fc: g::FieldCondition) -> Result<e::Condition, Status> {
    use g::r#match::MatchValue as M;
    let k = key(&fc.key)?;
    if fc.geo_bounding_box.is_some()
        || fc.geo_radius.is_some()
        || fc.geo_polygon.is_some()
        || fc.values_count.is_some()
        || fc.datetime_range.is_some()
    {
        return Err(Status::unimplemented(format!(
            "test server: field condition on {:?}",
            fc.key
        )));
    }
    if fc.is_empty == Some(true) {
        return Ok(e::Condition::IsEmpty(e::IsEmptyCondition::from(k)));
    }
    if fc.is_null == Some(true) {
        return Ok(e::Condition::IsNull(e::IsNullCondition::from(k)));
    }
    if let Some(r) = fc.range {
        return Ok(e::Condition::Field(e::FieldCondition::new_range(
            k,
            e::Range {
                lt: r.lt.map(OrderedFloat),
                gt: r.gt.map(OrderedFloat),
                gte: r.gte.map(OrderedFloat),
                lte: r.lte.map(OrderedFloat),
            },
        )));
    }
    let m = fc
        .r#match
        .and_then(|m| m.match_value)
        .ok_or_else(|| Status::invalid_argument("field condition without a condition"))?;
    let m = match m {
        M::Keyword(s) => e::Match::new_value(e::ValueVariants::String(s)),
        M::Integer(i) => e::Match::new_value(e::ValueVariants::Integer(i)),
        M::Boolean(b) => e::Match::new_value(e::ValueVariants::Bool(b)),
        M::Keywords(r) => {
            e::Match::new_any(e::AnyVariants::Strings(r.strings.into_iter().collect()))
        }
        M::Integers(r) => {
            e::Match::new_any(e::AnyVariants::Integers(r.integers.into_iter().collect()))
        }
        M::ExceptKeywords(r) => {
            e::Match::new_except(e::AnyVariants::Strings(r.strings.into_iter().collect()))
        }
        M::ExceptIntegers(r) => {
            e::Match::new_except(e::AnyVariants::Integers(r.integers.into_iter().collect()))
        }
        other => {
            return Err(Status::unimplemented(format!(
                "test server: match {other:?}"
            )));
        }
    };
    Ok(e::Condition::Field(e::FieldCondition::new_match(k, m)))
}

#[allow(deprecated)]
fn dense(v: Option<g::Vectors>, size: u64) -> Result<Vec<f32>, Status> {
    use g::vectors::VectorsOptions;
    let data = match v.and_then(|v| v.vectors_options) {
        Some(VectorsOptions::Vector(v)) => match v.vector {
            Some(g::vector::Vector::Dense(d)) => d.data,
            Some(_) => return Err(Status::unimplemented("test server: non-dense vector")),
            None if v.indices.is_none() && v.vectors_count.is_none() => v.data,
            None => return Err(Status::unimplemented("test server: non-dense vector")),
        },
        Some(VectorsOptions::Vectors(_)) => {
            return Err(Status::unimplemented("test server: named vectors"));
        }
        None => return Err(Status::invalid_argument("point without a vector")),
    };
    if data.len() as u64 != size {
        return Err(Status::invalid_argument(format!(
            "Wrong input: Vector dimension error: expected dim: {size}, got {}",
            data.len()
        )));
    }
    Ok(data)
}

fn with_payload(s: Option<g::WithPayloadSelector>) -> Result<e::WithPayloadInterface, Status> {
    use g::with_payload_selector::SelectorOptions as O;
    Ok(match s.and_then(|s| s.selector_options) {
        None => e::WithPayloadInterface::Bool(false),
        Some(O::Enable(b)) => e::WithPayloadInterface::Bool(b),
        Some(O::Include(i)) => e::WithPayloadInterface::Fields(
            i.fields.iter().map(|f| key(f)).collect::<Result<_, _>>()?,
        ),
        Some(O::Exclude(_)) => {
            return Err(Status::unimplemented("test server: payload exclude"));
        }
    })
}

fn with_vector(s: Option<g::WithVectorsSelector>) -> Result<e::WithVector, Status> {
    use g::with_vectors_selector::SelectorOptions as O;
    Ok(match s.and_then(|s| s.selector_options) {
        None => e::WithVector::Bool(false),
        Some(O::Enable(b)) => e::WithVector::Bool(b),
        Some(O::Include(_)) => return Err(Status::unimplemented("test server: named vectors")),
    })
}

// ---- conversions: engine -> gRPC ----

fn grpc_id(id: e::PointId) -> g::PointId {
    match id {
        e::PointId::NumId(n) => n.into(),
        e::PointId::Uuid(u) => u.to_string().into(),
    }
}

fn grpc_payload(p: Option<e::Payload>) -> HashMap<String, g::Value> {
    p.map(|p| ClientPayload::from(p.0).into())
        .unwrap_or_default()
}

#[allow(deprecated)]
fn grpc_vectors(v: Option<e::VectorStructInternal>) -> Option<g::VectorsOutput> {
    let data = match v? {
        e::VectorStructInternal::Single(v) => v,
        e::VectorStructInternal::Named(mut named) => match named.remove("")? {
            e::VectorInternal::Dense(v) => v,
            _ => return None,
        },
        e::VectorStructInternal::MultiDense(_) => return None,
    };
    Some(g::VectorsOutput {
        vectors_options: Some(g::vectors_output::VectorsOptions::Vector(g::VectorOutput {
            vector: Some(g::vector_output::Vector::Dense(g::DenseVector { data })),
            ..g::VectorOutput::default()
        })),
    })
}

fn retrieved(r: e::Record) -> g::RetrievedPoint {
    g::RetrievedPoint {
        id: Some(grpc_id(r.id)),
        payload: grpc_payload(r.payload),
        vectors: grpc_vectors(r.vector),
        shard_key: None,
        order_value: None,
    }
}

fn update_ok() -> g::PointsOperationResponse {
    g::PointsOperationResponse {
        result: Some(g::UpdateResult {
            operation_id: Some(0),
            status: g::UpdateStatus::Completed.into(),
        }),
        time: 0.0,
        usage: None,
    }
}

// ---- services ----

#[tonic::async_trait]
impl Qdrant for Svc {
    async fn health_check(&self, req: Request<g::HealthCheckRequest>) -> Res<g::HealthCheckReply> {
        self.0.enter("health_check", &req)?;
        self.0.stall("health_check").await;
        Ok(Response::new(g::HealthCheckReply {
            title: "qdrant - in-process test server".into(),
            version: "1.16.0".into(),
            commit: None,
        }))
    }
}

#[tonic::async_trait]
impl Collections for Svc {
    async fn get(
        &self,
        req: Request<g::GetCollectionInfoRequest>,
    ) -> Res<g::GetCollectionInfoResponse> {
        self.0.enter("collection_info", &req)?;
        self.0.stall("collection_info").await;
        let name = req.into_inner().collection_name;
        let coll = self.0.coll(&name)?;
        let shard = coll.shard.clone();
        let points = blocking(move || Ok(shard.info().points_count)).await?;
        let payload_schema = coll
            .indexes
            .lock()
            .unwrap()
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    g::PayloadSchemaInfo {
                        data_type: (*t).into(),
                        params: None,
                        points: None,
                    },
                )
            })
            .collect();
        Ok(Response::new(g::GetCollectionInfoResponse {
            result: Some(g::CollectionInfo {
                status: g::CollectionStatus::Green.into(),
                config: Some(g::CollectionConfig {
                    params: Some(g::CollectionParams {
                        vectors_config: Some(g::VectorsConfig {
                            config: Some(g::vectors_config::Config::Params(g::VectorParams {
                                size: coll.size,
                                distance: coll.distance.into(),
                                ..g::VectorParams::default()
                            })),
                        }),
                        ..g::CollectionParams::default()
                    }),
                    ..g::CollectionConfig::default()
                }),
                payload_schema,
                points_count: Some(points as u64),
                ..g::CollectionInfo::default()
            }),
            time: 0.0,
        }))
    }

    async fn list(
        &self,
        req: Request<g::ListCollectionsRequest>,
    ) -> Res<g::ListCollectionsResponse> {
        self.0.enter("list_collections", &req)?;
        self.0.stall("list_collections").await;
        Ok(Response::new(g::ListCollectionsResponse {
            collections: self
                .0
                .collection_names()
                .into_iter()
                .map(|name| g::CollectionDescription { name })
                .collect(),
            time: 0.0,
        }))
    }

    async fn create(
        &self,
        req: Request<g::CreateCollection>,
    ) -> Res<g::CollectionOperationResponse> {
        self.0.enter("create_collection", &req)?;
        self.0.stall("create_collection").await;
        let c = req.into_inner();
        let params = match c.vectors_config.and_then(|v| v.config) {
            Some(g::vectors_config::Config::Params(p)) => p,
            _ => return unimplemented("collections without one unnamed vector"),
        };
        let (distance, engine_distance) = match g::Distance::try_from(params.distance) {
            Ok(g::Distance::Cosine) => (g::Distance::Cosine, e::Distance::Cosine),
            Ok(g::Distance::Dot) => (g::Distance::Dot, e::Distance::Dot),
            Ok(g::Distance::Euclid) => (g::Distance::Euclid, e::Distance::Euclid),
            _ => return unimplemented("distances other than cosine, dot and euclid"),
        };
        let name = c.collection_name;
        if self.0.collections.lock().unwrap().contains_key(&name) {
            return Err(Status::invalid_argument(format!(
                "Wrong input: Collection `{name}` already exists!"
            )));
        }
        let n = self.0.next_dir.fetch_add(1, Ordering::Relaxed);
        let dir = self.0.dir.path().join(format!("c{n}"));
        let size = params.size;
        let shard = blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| Status::internal(e.to_string()))?;
            let config = e::EdgeConfig::builder()
                .vector(
                    "",
                    e::EdgeVectorParams::builder(size as usize, engine_distance).build(),
                )
                .build();
            e::EdgeShard::new(&dir, config).map_err(engine)
        })
        .await?;
        let coll = Arc::new(Coll {
            shard: Arc::new(shard),
            size,
            distance,
            indexes: Mutex::new(BTreeMap::new()),
        });
        let mut all = self.0.collections.lock().unwrap();
        if all.contains_key(&name) {
            return Err(Status::invalid_argument(format!(
                "Wrong input: Collection `{name}` already exists!"
            )));
        }
        all.insert(name, coll);
        Ok(Response::new(g::CollectionOperationResponse {
            result: true,
            time: 0.0,
        }))
    }

    async fn update(&self, _: Request<g::UpdateCollection>) -> Res<g::CollectionOperationResponse> {
        unimplemented("update collection")
    }

    async fn delete(
        &self,
        req: Request<g::DeleteCollection>,
    ) -> Res<g::CollectionOperationResponse> {
        self.0.enter("delete_collection", &req)?;
        self.0.stall("delete_collection").await;
        let removed = self
            .0
            .collections
            .lock()
            .unwrap()
            .remove(&req.into_inner().collection_name);
        Ok(Response::new(g::CollectionOperationResponse {
            result: removed.is_some(),
            time: 0.0,
        }))
    }

    async fn update_aliases(
        &self,
        _: Request<g::ChangeAliases>,
    ) -> Res<g::CollectionOperationResponse> {
        unimplemented("aliases")
    }

    async fn list_collection_aliases(
        &self,
        _: Request<g::ListCollectionAliasesRequest>,
    ) -> Res<g::ListAliasesResponse> {
        unimplemented("aliases")
    }

    async fn list_aliases(&self, _: Request<g::ListAliasesRequest>) -> Res<g::ListAliasesResponse> {
        unimplemented("aliases")
    }

    async fn collection_cluster_info(
        &self,
        _: Request<g::CollectionClusterInfoRequest>,
    ) -> Res<g::CollectionClusterInfoResponse> {
        unimplemented("cluster info")
    }

    async fn collection_exists(
        &self,
        req: Request<g::CollectionExistsRequest>,
    ) -> Res<g::CollectionExistsResponse> {
        self.0.enter("collection_exists", &req)?;
        self.0.stall("collection_exists").await;
        let exists = self
            .0
            .collections
            .lock()
            .unwrap()
            .contains_key(&req.into_inner().collection_name);
        Ok(Response::new(g::CollectionExistsResponse {
            result: Some(g::CollectionExists { exists }),
            time: 0.0,
        }))
    }

    async fn update_collection_cluster_setup(
        &self,
        _: Request<g::UpdateCollectionClusterSetupRequest>,
    ) -> Res<g::UpdateCollectionClusterSetupResponse> {
        unimplemented("cluster setup")
    }

    async fn create_shard_key(
        &self,
        _: Request<g::CreateShardKeyRequest>,
    ) -> Res<g::CreateShardKeyResponse> {
        unimplemented("shard keys")
    }

    async fn delete_shard_key(
        &self,
        _: Request<g::DeleteShardKeyRequest>,
    ) -> Res<g::DeleteShardKeyResponse> {
        unimplemented("shard keys")
    }

    async fn list_shard_keys(
        &self,
        _: Request<g::ListShardKeysRequest>,
    ) -> Res<g::ListShardKeysResponse> {
        unimplemented("shard keys")
    }
}

#[tonic::async_trait]
impl Points for Svc {
    async fn upsert(&self, req: Request<g::UpsertPoints>) -> Res<g::PointsOperationResponse> {
        self.0.enter("upsert", &req)?;
        self.0.stall("upsert").await;
        let r = req.into_inner();
        let coll = self.0.coll(&r.collection_name)?;
        let mut points = Vec::with_capacity(r.points.len());
        for p in r.points {
            let id = point_id(p.id.ok_or_else(|| Status::invalid_argument("point without id"))?)?;
            let vector = dense(p.vectors, coll.size)?;
            let payload = serde_json::Value::Object(ClientPayload::from(p.payload).into());
            points.push(e::PointStruct::new(id, vector, payload).into());
        }
        let shard = coll.shard.clone();
        blocking(move || {
            shard
                .update(e::UpdateOperation::PointOperation(
                    e::PointOperations::UpsertPoints(e::PointInsertOperations::PointsList(points)),
                ))
                .map_err(engine)
        })
        .await?;
        Ok(Response::new(update_ok()))
    }

    async fn delete(&self, req: Request<g::DeletePoints>) -> Res<g::PointsOperationResponse> {
        use g::points_selector::PointsSelectorOneOf as S;
        self.0.enter("delete", &req)?;
        self.0.stall("delete").await;
        let r = req.into_inner();
        let coll = self.0.coll(&r.collection_name)?;
        let op = match r.points.and_then(|p| p.points_selector_one_of) {
            Some(S::Points(ids)) => e::PointOperations::DeletePoints {
                ids: ids
                    .ids
                    .into_iter()
                    .map(point_id)
                    .collect::<Result<_, _>>()?,
            },
            Some(S::Filter(f)) => e::PointOperations::DeletePointsByFilter(filter(f)?),
            None => return Err(Status::invalid_argument("delete without a selector")),
        };
        let shard = coll.shard.clone();
        blocking(move || {
            shard
                .update(e::UpdateOperation::PointOperation(op))
                .map_err(engine)
        })
        .await?;
        Ok(Response::new(update_ok()))
    }

    async fn get(&self, req: Request<g::GetPoints>) -> Res<g::GetResponse> {
        self.0.enter("get", &req)?;
        self.0.stall("get").await;
        let r = req.into_inner();
        let coll = self.0.coll(&r.collection_name)?;
        let ids: Vec<e::PointId> = r.ids.into_iter().map(point_id).collect::<Result<_, _>>()?;
        let (wp, wv) = (with_payload(r.with_payload)?, with_vector(r.with_vectors)?);
        let shard = coll.shard.clone();
        let records =
            blocking(move || shard.retrieve(&ids, Some(wp), Some(wv)).map_err(engine)).await?;
        Ok(Response::new(g::GetResponse {
            result: records.into_iter().map(retrieved).collect(),
            time: 0.0,
            usage: None,
        }))
    }

    async fn update_vectors(
        &self,
        _: Request<g::UpdatePointVectors>,
    ) -> Res<g::PointsOperationResponse> {
        unimplemented("update vectors")
    }

    async fn delete_vectors(
        &self,
        _: Request<g::DeletePointVectors>,
    ) -> Res<g::PointsOperationResponse> {
        unimplemented("delete vectors")
    }

    async fn set_payload(
        &self,
        _: Request<g::SetPayloadPoints>,
    ) -> Res<g::PointsOperationResponse> {
        unimplemented("set payload")
    }

    async fn overwrite_payload(
        &self,
        _: Request<g::SetPayloadPoints>,
    ) -> Res<g::PointsOperationResponse> {
        unimplemented("overwrite payload")
    }

    async fn delete_payload(
        &self,
        _: Request<g::DeletePayloadPoints>,
    ) -> Res<g::PointsOperationResponse> {
        unimplemented("delete payload")
    }

    async fn clear_payload(
        &self,
        _: Request<g::ClearPayloadPoints>,
    ) -> Res<g::PointsOperationResponse> {
        unimplemented("clear payload")
    }

    async fn create_field_index(
        &self,
        req: Request<g::CreateFieldIndexCollection>,
    ) -> Res<g::PointsOperationResponse> {
        self.0.enter("create_field_index", &req)?;
        self.0.stall("create_field_index").await;
        let r = req.into_inner();
        let coll = self.0.coll(&r.collection_name)?;
        let (schema, grpc_type) = match r.field_type.map(g::FieldType::try_from) {
            Some(Ok(g::FieldType::Keyword)) => {
                (e::PayloadSchemaType::Keyword, g::PayloadSchemaType::Keyword)
            }
            Some(Ok(g::FieldType::Integer)) => {
                (e::PayloadSchemaType::Integer, g::PayloadSchemaType::Integer)
            }
            Some(Ok(g::FieldType::Bool)) => {
                (e::PayloadSchemaType::Bool, g::PayloadSchemaType::Bool)
            }
            Some(Ok(g::FieldType::Float)) => {
                (e::PayloadSchemaType::Float, g::PayloadSchemaType::Float)
            }
            other => return unimplemented(&format!("index type {other:?}")),
        };
        let field = key(&r.field_name)?;
        let shard = coll.shard.clone();
        blocking(move || {
            shard
                .update(e::UpdateOperation::FieldIndexOperation(
                    e::FieldIndexOperations::CreateIndex(e::CreateIndex {
                        field_name: field,
                        field_schema: Some(e::PayloadFieldSchema::FieldType(schema)),
                    }),
                ))
                .map_err(engine)
        })
        .await?;
        coll.indexes.lock().unwrap().insert(r.field_name, grpc_type);
        Ok(Response::new(update_ok()))
    }

    async fn delete_field_index(
        &self,
        _: Request<g::DeleteFieldIndexCollection>,
    ) -> Res<g::PointsOperationResponse> {
        unimplemented("delete field index")
    }

    async fn create_vector_name(
        &self,
        _: Request<g::CreateVectorNameRequest>,
    ) -> Res<g::PointsOperationResponse> {
        unimplemented("vector names")
    }

    async fn delete_vector_name(
        &self,
        _: Request<g::DeleteVectorNameRequest>,
    ) -> Res<g::PointsOperationResponse> {
        unimplemented("vector names")
    }

    async fn search(&self, _: Request<g::SearchPoints>) -> Res<g::SearchResponse> {
        unimplemented("search (the backend uses query)")
    }

    async fn search_batch(&self, _: Request<g::SearchBatchPoints>) -> Res<g::SearchBatchResponse> {
        unimplemented("search batch")
    }

    async fn search_groups(
        &self,
        _: Request<g::SearchPointGroups>,
    ) -> Res<g::SearchGroupsResponse> {
        unimplemented("search groups")
    }

    async fn scroll(&self, req: Request<g::ScrollPoints>) -> Res<g::ScrollResponse> {
        self.0.enter("scroll", &req)?;
        self.0.stall("scroll").await;
        let r = req.into_inner();
        if r.order_by.is_some() {
            return unimplemented("scroll order_by");
        }
        let coll = self.0.coll(&r.collection_name)?;
        let request = e::ScrollRequest {
            offset: r.offset.map(point_id).transpose()?,
            limit: Some(r.limit.unwrap_or(10) as usize),
            filter: opt_filter(r.filter)?,
            with_payload: Some(with_payload(r.with_payload)?),
            with_vector: with_vector(r.with_vectors)?,
            order_by: None,
        };
        let shard = coll.shard.clone();
        let (records, next) = blocking(move || shard.scroll(request).map_err(engine)).await?;
        Ok(Response::new(g::ScrollResponse {
            next_page_offset: next.map(grpc_id),
            result: records.into_iter().map(retrieved).collect(),
            time: 0.0,
            usage: None,
        }))
    }

    async fn recommend(&self, _: Request<g::RecommendPoints>) -> Res<g::RecommendResponse> {
        unimplemented("recommend")
    }

    async fn recommend_batch(
        &self,
        _: Request<g::RecommendBatchPoints>,
    ) -> Res<g::RecommendBatchResponse> {
        unimplemented("recommend batch")
    }

    async fn recommend_groups(
        &self,
        _: Request<g::RecommendPointGroups>,
    ) -> Res<g::RecommendGroupsResponse> {
        unimplemented("recommend groups")
    }

    async fn discover(&self, _: Request<g::DiscoverPoints>) -> Res<g::DiscoverResponse> {
        unimplemented("discover")
    }

    async fn discover_batch(
        &self,
        _: Request<g::DiscoverBatchPoints>,
    ) -> Res<g::DiscoverBatchResponse> {
        unimplemented("discover batch")
    }

    async fn count(&self, req: Request<g::CountPoints>) -> Res<g::CountResponse> {
        self.0.enter("count", &req)?;
        self.0.stall("count").await;
        let r = req.into_inner();
        let coll = self.0.coll(&r.collection_name)?;
        let request = e::CountRequest {
            filter: opt_filter(r.filter)?,
            exact: r.exact.unwrap_or(true),
        };
        let shard = coll.shard.clone();
        let n = blocking(move || shard.count(request).map_err(engine)).await?;
        Ok(Response::new(g::CountResponse {
            result: Some(g::CountResult { count: n as u64 }),
            time: 0.0,
            usage: None,
        }))
    }

    async fn update_batch(&self, _: Request<g::UpdateBatchPoints>) -> Res<g::UpdateBatchResponse> {
        unimplemented("update batch")
    }

    async fn query(&self, req: Request<g::QueryPoints>) -> Res<g::QueryResponse> {
        self.0.enter("query", &req)?;
        self.0.stall("query").await;
        let r = req.into_inner();
        if !r.prefetch.is_empty() || r.using.as_deref().is_some_and(|u| !u.is_empty()) {
            return unimplemented("prefetch and named vectors");
        }
        let coll = self.0.coll(&r.collection_name)?;
        let vector = match r.query.and_then(|q| q.variant) {
            Some(g::query::Variant::Nearest(v)) => match v.variant {
                Some(g::vector_input::Variant::Dense(d)) => d.data,
                _ => return unimplemented("nearest to anything but a dense vector"),
            },
            _ => return unimplemented("queries other than nearest"),
        };
        if vector.len() as u64 != coll.size {
            return Err(Status::invalid_argument(format!(
                "Wrong input: Vector dimension error: expected dim: {}, got {}",
                coll.size,
                vector.len()
            )));
        }
        let request = e::SearchRequest {
            query: e::QueryEnum::Nearest(e::NamedQuery::default_dense(vector)),
            filter: opt_filter(r.filter)?,
            params: None,
            limit: r.limit.unwrap_or(10) as usize,
            offset: r.offset.unwrap_or(0) as usize,
            with_payload: Some(with_payload(r.with_payload)?),
            with_vector: Some(with_vector(r.with_vectors)?),
            score_threshold: r.score_threshold,
        };
        let shard = coll.shard.clone();
        let hits = blocking(move || shard.search(request).map_err(engine)).await?;
        Ok(Response::new(g::QueryResponse {
            result: hits
                .into_iter()
                .map(|h| g::ScoredPoint {
                    id: Some(grpc_id(h.id)),
                    payload: grpc_payload(h.payload),
                    score: h.score,
                    version: h.version,
                    vectors: grpc_vectors(h.vector),
                    shard_key: None,
                    order_value: None,
                })
                .collect(),
            time: 0.0,
            usage: None,
        }))
    }

    async fn query_batch(&self, _: Request<g::QueryBatchPoints>) -> Res<g::QueryBatchResponse> {
        unimplemented("query batch")
    }

    async fn query_groups(&self, _: Request<g::QueryPointGroups>) -> Res<g::QueryGroupsResponse> {
        unimplemented("query groups")
    }

    async fn facet(&self, _: Request<g::FacetCounts>) -> Res<g::FacetResponse> {
        unimplemented("facet")
    }

    async fn search_matrix_pairs(
        &self,
        _: Request<g::SearchMatrixPoints>,
    ) -> Res<g::SearchMatrixPairsResponse> {
        unimplemented("search matrix")
    }

    async fn search_matrix_offsets(
        &self,
        _: Request<g::SearchMatrixPoints>,
    ) -> Res<g::SearchMatrixOffsetsResponse> {
        unimplemented("search matrix")
    }
}
