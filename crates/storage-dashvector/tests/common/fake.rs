//! An in-process fake DashVector HTTP server for tests and the benchmark.
//!
//! It implements the documented request and response shapes of the endpoints the backend
//! uses (`/v1/collections` list and create, `/v1/collections/{name}` describe,
//! `/stats`, `/docs` fetch and delete, `/docs/upsert`, `/query`), checks the
//! `dashvector-auth-token` header (HTTP 401 otherwise), checks declared field types,
//! dimensions and the per-call limits (1024 docs, `topk` 1 to 1024), parses filters with
//! its own parser (`filter_lang.rs`), answers vector queries by brute-force cosine distance
//! (`1 - cos`, ascending) and filter-only queries in a scrambled order. It counts requests,
//! records them, and can be told to fail the next requests (HTTP status, envelope code, delay)
//! or to stall the requests of one method and path (`stall`).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value as Json, json};

use super::filter_lang;

/// A failure injected into the next request.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub enum Fault {
    /// Answer with this HTTP status and an error envelope.
    Status(u16),
    /// Answer HTTP 200 with this envelope code.
    Code(i64),
    /// Wait this long before handling the request normally.
    Delay(Duration),
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Json,
    /// The parsed filter of a query request.
    pub parsed_filter: Option<filter_lang::Expr>,
}

/// A scored doc: distance, id, vector, fields.
type Hit<'a> = (f64, &'a String, &'a Vec<f32>, &'a Map<String, Json>);

struct Collection {
    dimension: usize,
    metric: String,
    schema: BTreeMap<String, String>,
    docs: BTreeMap<String, (Vec<f32>, Map<String, Json>)>,
}

struct Shared {
    token: String,
    collections: Mutex<BTreeMap<String, Collection>>,
    requests: AtomicUsize,
    faults: Mutex<VecDeque<Fault>>,
    /// `(pattern, delay)`: requests whose `"<METHOD> <path>"` contains the pattern (`"*"`:
    /// every request) wait `delay` before being handled.
    stalls: Mutex<Vec<(String, Duration)>>,
    log: Mutex<Vec<Logged>>,
}

/// A running fake server; it stops with the test's runtime.
#[derive(Clone)]
pub struct FakeDashVector {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[allow(dead_code)]
impl FakeDashVector {
    /// Starts a fake accepting `token`.
    pub async fn start(token: &str) -> Self {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            collections: Mutex::new(BTreeMap::new()),
            requests: AtomicUsize::new(0),
            faults: Mutex::new(VecDeque::new()),
            stalls: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        FakeDashVector { addr, shared }
    }

    /// The endpoint to configure (`http://127.0.0.1:<port>`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far (including refused ones).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Fails the next requests, one fault each, in order.
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.faults.lock().unwrap().extend(faults);
    }

    /// Every later request whose `"<METHOD> <path>"` (e.g. `"POST /v1/collections/event/query"`)
    /// contains `pattern` (`"*"`: every request) waits `delay` before being handled, like a
    /// server that hangs. `Duration::ZERO` removes the stall.
    pub fn stall(&self, pattern: &str, delay: Duration) {
        let mut stalls = self.shared.stalls.lock().unwrap();
        stalls.retain(|(p, _)| p != pattern);
        if !delay.is_zero() {
            stalls.push((pattern.to_owned(), delay));
        }
    }

    /// The requests received so far.
    pub fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// Number of docs in a collection.
    pub fn doc_count(&self, collection: &str) -> usize {
        self.shared
            .collections
            .lock()
            .unwrap()
            .get(collection)
            .map_or(0, |c| c.docs.len())
    }

    /// The `fields_schema` a collection was created with.
    pub fn schema_of(&self, collection: &str) -> Option<BTreeMap<String, String>> {
        self.shared
            .collections
            .lock()
            .unwrap()
            .get(collection)
            .map(|c| c.schema.clone())
    }

    /// Overwrites one field of a stored doc.
    pub fn set_field(&self, collection: &str, id: &str, field: &str, value: Json) {
        let mut cols = self.shared.collections.lock().unwrap();
        let doc = cols
            .get_mut(collection)
            .and_then(|c| c.docs.get_mut(id))
            .expect("doc");
        doc.1.insert(field.to_owned(), value);
    }

    /// Inserts a doc directly (as another writer would).
    pub fn put_doc(&self, collection: &str, id: &str, vector: Vec<f32>, fields: Map<String, Json>) {
        let mut cols = self.shared.collections.lock().unwrap();
        let c = cols.get_mut(collection).expect("collection");
        c.docs.insert(id.to_owned(), (vector, fields));
    }
}

fn envelope(status: u16, code: i64, message: &str, output: Option<Json>) -> Response {
    let mut body = json!({"code": code, "message": message, "request_id": "fake-req"});
    if let Some(o) = output {
        body["output"] = o;
    }
    Response::builder()
        .status(StatusCode::from_u16(status).expect("status"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

fn ok(output: Json) -> Response {
    envelope(200, 0, "Success", Some(output))
}

fn err(code: i64, message: &str) -> Response {
    let status = match code {
        -2021 | -2024 => 404,
        _ => 400,
    };
    envelope(status, code, message, None)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => out.push(v),
                    Err(_) => out.push(b'%'),
                }
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    1.0 - dot / (na * nb)
}

fn type_ok(kind: &str, v: &Json) -> bool {
    match kind {
        "STRING" => v.is_string(),
        "BOOL" => v.is_boolean(),
        "INT" => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        "LONG" => v.as_i64().is_some(),
        "FLOAT" => v.is_number(),
        _ => false,
    }
}

/// The doc as DashVector returns it: every declared field present (null when unset).
fn render(
    c: &Collection,
    id: &str,
    vector: &[f32],
    fields: &Map<String, Json>,
    include_vector: bool,
    output_fields: Option<&Vec<String>>,
    score: f64,
) -> Json {
    let mut out = Map::new();
    for k in c.schema.keys() {
        out.insert(k.clone(), Json::Null);
    }
    for (k, v) in fields {
        out.insert(k.clone(), v.clone());
    }
    if let Some(keep) = output_fields {
        out.retain(|k, _| keep.contains(k));
    }
    let mut doc = json!({"id": id, "fields": out, "score": score});
    if include_vector {
        doc["vector"] = json!(vector);
    }
    doc
}

fn scramble(id: &str) -> u64 {
    // A fixed order unrelated to ids and scroll keys.
    id.bytes().rev().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)
    })
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let authorised = req
        .headers()
        .get("dashvector-auth-token")
        .and_then(|v| v.to_str().ok())
        == Some(shared.token.as_str());
    let bytes = to_bytes(req.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    let body: Json = if bytes.is_empty() {
        Json::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(e) => return err(-2009, &format!("invalid JSON: {e}")),
        }
    };
    let parsed_filter = body
        .get("filter")
        .and_then(Json::as_str)
        .and_then(|f| filter_lang::parse(f).ok());
    shared.log.lock().unwrap().push(Logged {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        body: body.clone(),
        parsed_filter,
    });
    if !authorised {
        return envelope(401, -2999, "invalid dashvector-auth-token", None);
    }
    let stall = {
        let line = format!("{method} {path}");
        shared
            .stalls
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| p == "*" || line.contains(p.as_str()))
            .map(|(_, d)| *d)
    };
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    let fault = shared.faults.lock().unwrap().pop_front();
    match fault {
        Some(Fault::Status(s)) => return envelope(s, -999, "injected failure", None),
        Some(Fault::Code(c)) => return envelope(200, c, "injected code", None),
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut cols = shared.collections.lock().unwrap();
    match (method, segs.as_slice()) {
        (Method::GET, ["v1", "collections"]) => ok(json!(cols.keys().collect::<Vec<_>>())),
        (Method::POST, ["v1", "collections"]) => {
            let Some(name) = body.get("name").and_then(Json::as_str) else {
                return err(-2000, "collection name is empty");
            };
            if name.len() < 3
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return err(-2000, "invalid collection name");
            }
            let Some(dimension) = body.get("dimension").and_then(Json::as_u64) else {
                return err(-2009, "dimension is required");
            };
            if !(2..=20_000).contains(&dimension) {
                return err(-2009, "dimension must be in (1, 20000]");
            }
            let metric = body
                .get("metric")
                .and_then(Json::as_str)
                .unwrap_or("cosine");
            if !["cosine", "dotproduct", "euclidean"].contains(&metric) {
                return err(-2009, "unknown metric");
            }
            if cols.contains_key(name) {
                return err(-2025, "collection exists");
            }
            let mut schema = BTreeMap::new();
            if let Some(fs) = body.get("fields_schema").and_then(Json::as_object) {
                for (k, v) in fs {
                    let Some(t) = v
                        .as_str()
                        .filter(|t| ["STRING", "INT", "LONG", "FLOAT", "BOOL"].contains(t))
                    else {
                        return err(-2017, &format!("invalid type of field {k}"));
                    };
                    schema.insert(k.clone(), t.to_owned());
                }
            }
            cols.insert(
                name.to_owned(),
                Collection {
                    dimension: dimension as usize,
                    metric: metric.to_owned(),
                    schema,
                    docs: BTreeMap::new(),
                },
            );
            envelope(200, 0, "", None)
        }
        (Method::GET, ["v1", "collections", name]) => match cols.get(*name) {
            Some(c) => ok(json!({
                "name": name, "dimension": c.dimension, "dtype": "FLOAT", "metric": c.metric,
                "fields_schema": c.schema, "status": "SERVING", "partitions": {"default": "SERVING"}
            })),
            None => err(-2021, "collection does not exist"),
        },
        (Method::GET, ["v1", "collections", name, "stats"]) => match cols.get(*name) {
            Some(c) => {
                let n = c.docs.len().to_string();
                ok(json!({"total_doc_count": n, "index_completeness": 1.0,
                          "partitions": {"default": {"total_doc_count": n}}}))
            }
            None => err(-2021, "collection does not exist"),
        },
        (Method::GET, ["v1", "collections", name, "docs"]) => {
            let Some(c) = cols.get(*name) else {
                return err(-2021, "collection does not exist");
            };
            let Some(ids) = query_param(&query, "ids") else {
                return err(-2009, "ids is required");
            };
            let mut out = Map::new();
            for id in ids.split(',') {
                let doc = c
                    .docs
                    .get(id)
                    .map_or(Json::Null, |(v, f)| render(c, id, v, f, true, None, 0.0));
                out.insert(id.to_owned(), doc);
            }
            ok(Json::Object(out))
        }
        (Method::DELETE, ["v1", "collections", name, "docs"]) => {
            let Some(c) = cols.get_mut(*name) else {
                return err(-2021, "collection does not exist");
            };
            let Some(ids) = body.get("ids").and_then(Json::as_array) else {
                return err(-2010, "ids is required");
            };
            if ids.len() > 1024 {
                return err(-2010, "at most 1024 ids per request");
            }
            let mut out = Vec::new();
            for id in ids {
                let Some(id) = id.as_str() else {
                    return err(-2016, "ids must be strings");
                };
                c.docs.remove(id);
                out.push(json!({"doc_op": "delete", "id": id, "code": 0, "message": ""}));
            }
            ok(json!(out))
        }
        (Method::POST, ["v1", "collections", name, "docs", "upsert"]) => {
            let Some(c) = cols.get_mut(*name) else {
                return err(-2021, "collection does not exist");
            };
            let Some(docs) = body.get("docs").and_then(Json::as_array) else {
                return err(-2005, "docs is empty");
            };
            if docs.is_empty() {
                return err(-2005, "docs is empty");
            }
            if docs.len() > 1024 {
                return err(-2010, "at most 1024 docs per request");
            }
            let mut staged = Vec::new();
            for d in docs {
                let Some(id) = d.get("id").and_then(Json::as_str) else {
                    return err(-2004, "doc id is empty");
                };
                if id.is_empty() || id.len() > 64 || id.contains(',') {
                    return err(-2016, "invalid primary key");
                }
                let Some(vector) = d.get("vector").and_then(Json::as_array) else {
                    return err(-2011, "vector is required");
                };
                let vector: Vec<f32> = vector
                    .iter()
                    .filter_map(Json::as_f64)
                    .map(|x| x as f32)
                    .collect();
                if vector.len() != c.dimension {
                    return err(-2019, "vector dimension mismatch");
                }
                let fields = d
                    .get("fields")
                    .and_then(Json::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (k, v) in &fields {
                    if let Some(t) = c.schema.get(k)
                        && !v.is_null()
                        && !type_ok(t, v)
                    {
                        return err(-2017, &format!("field {k} is not a {t}: {v}"));
                    }
                }
                staged.push((id.to_owned(), vector, fields));
            }
            let mut out = Vec::new();
            for (id, v, f) in staged {
                out.push(json!({"doc_op": "upsert", "id": id, "code": 0, "message": ""}));
                c.docs.insert(id, (v, f));
            }
            ok(json!(out))
        }
        (Method::POST, ["v1", "collections", name, "query"]) => {
            let Some(c) = cols.get(*name) else {
                return err(-2021, "collection does not exist");
            };
            let topk = body.get("topk").and_then(Json::as_u64).unwrap_or(10);
            if !(1..=1024).contains(&topk) {
                return err(-2009, "topk must be in [1, 1024]");
            }
            let filter = match body.get("filter").and_then(Json::as_str) {
                Some(f) => match filter_lang::parse(f) {
                    Ok(e) => Some(e),
                    Err(e) => return err(-2015, &format!("invalid filter: {e}")),
                },
                None => None,
            };
            let include_vector = body
                .get("include_vector")
                .and_then(Json::as_bool)
                .unwrap_or(false);
            let output_fields: Option<Vec<String>> =
                body.get("output_fields").and_then(Json::as_array).map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .map(str::to_owned)
                        .collect()
                });
            let matching = c
                .docs
                .iter()
                .filter(|(_, (_, f))| filter.as_ref().is_none_or(|e| filter_lang::eval(e, f)));
            let hits: Vec<Hit<'_>> = match body.get("vector") {
                Some(q) => {
                    let q: Vec<f32> = q
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(Json::as_f64)
                                .map(|x| x as f32)
                                .collect()
                        })
                        .unwrap_or_default();
                    if q.len() != c.dimension {
                        return err(-2019, "query vector dimension mismatch");
                    }
                    let mut h: Vec<_> = matching
                        .map(|(id, (v, f))| (cosine_distance(&q, v), id, v, f))
                        .collect();
                    h.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
                    h
                }
                None => {
                    let mut h: Vec<_> = matching.map(|(id, (v, f))| (0.0, id, v, f)).collect();
                    h.sort_by_key(|x| scramble(x.1));
                    h
                }
            };
            let out: Vec<Json> = hits
                .into_iter()
                .take(topk as usize)
                .map(|(s, id, v, f)| render(c, id, v, f, include_vector, output_fields.as_ref(), s))
                .collect();
            ok(json!(out))
        }
        _ => envelope(404, -999, "no such endpoint", None),
    }
}
