//! An in-process fake of VikingDB's HTTP APIs, for tests and the benchmark.
//!
//! * Verifies every request's HMAC-SHA256 signature with its own implementation of
//!   Volcengine's algorithm (HMAC written out from SHA-256 here, not the client's code).
//! * Control plane (`POST /?Action=...&Version=2025-06-09`): `GetVikingdbCollection`,
//!   `CreateVikingdbCollection`, `GetVikingdbIndex`, `CreateVikingdbIndex`, with the
//!   `ResponseMetadata.Error` envelope.
//! * Data plane (`/api/vikingdb/data/...`): `upsert`, `fetch_in_collection`, `delete`,
//!   `search/vector` (brute-force cosine), `search/scalar` (sort on an indexed numeric field),
//!   with the `{"code", "message", "request_id", "result"}` envelope; schemas are enforced
//!   (unknown fields, wrong types, wrong dimension, > 100 items are `InvalidParameter`).
//! * Filters: `must`, `must_not`, `range`, `range_out`, `and`, `or`, on scalar-indexed fields
//!   only; unset fields compare as their type's default (`""`, `0`, `false`).
//! * Faults: the next requests can answer 429 / 500 / 400 or be delayed (client timeouts);
//!   the requests of one path or action can be stalled (`stall`).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use storage_viking::VikingConfig;

/// Access key the fake accepts.
pub const AK: &str = "AKLTfakeaccesskey";
/// Secret key the fake verifies with.
pub const SK: &str = "fake-secret-key-for-tests";
/// Region the fake expects in the credential scope.
pub const REGION: &str = "cn-beijing";

/// An injected failure of the next request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this HTTP status and a matching error envelope.
    Status(u16),
    /// Sleep this long before answering normally.
    Delay(Duration),
}

type Fail = (u16, &'static str, String);
type Row = Map<String, Json>;

struct Coll {
    /// Scalar field name -> type (`string`, `int64`, `float32`, `bool`).
    types: HashMap<String, String>,
    created_fields: Json,
    dim: usize,
    index: Option<(String, HashSet<String>)>,
    rows: HashMap<String, Row>,
}

#[derive(Default)]
struct FakeState {
    collections: HashMap<String, Coll>,
    faults: VecDeque<Fault>,
    /// Labels (path or action; `"*"`: every request) whose requests wait before being served.
    stalls: HashMap<String, Duration>,
    log: Vec<String>,
    seq: u64,
}

/// A running fake server.
#[derive(Clone)]
pub struct FakeViking {
    /// `127.0.0.1:port`.
    pub host: String,
    state: Arc<Mutex<FakeState>>,
}

impl FakeViking {
    /// Starts a server on an ephemeral port in the current tokio runtime.
    pub async fn start() -> FakeViking {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake VikingDB");
        let host = listener.local_addr().expect("addr").to_string();
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake VikingDB server");
        });
        FakeViking { host, state }
    }

    /// A client configuration pointing at this server (plain HTTP, fast retries).
    pub fn config(&self, dimension: usize) -> VikingConfig {
        let mut c = VikingConfig::new(AK, SK, dimension).with_endpoint("http", &self.host);
        c.retry_base_delay_ms = 5;
        c.retry_max_delay_ms = 50;
        c
    }

    /// Makes the next request fail (faults queue up in order).
    pub fn fail_next(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// Every later request with this label (data-plane path or control-plane action; `"*"`:
    /// every request) waits `delay` before being served, like a server that hangs.
    /// `Duration::ZERO` removes the stall.
    pub fn stall(&self, label: &str, delay: Duration) {
        let mut s = self.state.lock().unwrap();
        if delay.is_zero() {
            s.stalls.remove(label);
        } else {
            s.stalls.insert(label.to_owned(), delay);
        }
    }

    /// How many requests reached the server for this path or control-plane action.
    pub fn requests(&self, label: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| *l == label)
            .count()
    }

    /// How many requests reached the server.
    pub fn total_requests(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }

    /// Deletes a collection (as if someone removed it in the console).
    pub fn drop_collection(&self, collection: &str) {
        self.state.lock().unwrap().collections.remove(collection);
    }

    /// Rows stored in a collection.
    pub fn row_count(&self, collection: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .collections
            .get(collection)
            .map_or(0, |c| c.rows.len())
    }
}

// ---- signature verification (independent implementation) ----

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA256 per RFC 2104, written out.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Vec::with_capacity(64 + msg.len());
    inner.extend(k.iter().map(|b| b ^ 0x36));
    inner.extend_from_slice(msg);
    let inner_hash = sha256(&inner);
    let mut outer = Vec::with_capacity(96);
    outer.extend(k.iter().map(|b| b ^ 0x5c));
    outer.extend_from_slice(&inner_hash);
    sha256(&outer)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn verify(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("missing Authorization header")?;
    let rest = auth
        .strip_prefix("HMAC-SHA256 ")
        .ok_or("Authorization is not HMAC-SHA256")?;
    let mut credential = "";
    let mut signed_headers = "";
    let mut signature = "";
    for part in rest.split(", ") {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = v;
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = v;
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = v;
        }
    }
    let cred: Vec<&str> = credential.split('/').collect();
    if cred.len() != 5 || cred[4] != "request" {
        return Err(format!("malformed credential {credential:?}"));
    }
    if cred[0] != AK {
        return Err("unknown access key".into());
    }
    if cred[2] != REGION || cred[3] != "vikingdb" {
        return Err(format!("wrong credential scope {credential:?}"));
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    };
    let x_date = header("x-date").ok_or("missing X-Date")?;
    if !x_date.starts_with(cred[1]) {
        return Err("X-Date and credential date differ".into());
    }
    let body_hash = to_hex(&sha256(body));
    if header("x-content-sha256").as_deref() != Some(body_hash.as_str()) {
        return Err("X-Content-Sha256 does not match the body".into());
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    for required in ["host", "x-date", "x-content-sha256"] {
        if !names.contains(&required) {
            return Err(format!("{required} is not signed"));
        }
    }
    let mut canonical_headers = String::new();
    for n in &names {
        let v = header(n).ok_or_else(|| format!("signed header {n} is missing"))?;
        canonical_headers.push_str(&format!("{n}:{v}\n"));
    }
    let mut query: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .collect();
    query.sort();
    let canonical = [
        method.as_str().to_owned(),
        uri.path().to_owned(),
        query.join("&"),
        canonical_headers,
        signed_headers.to_owned(),
        body_hash,
    ]
    .join("\n");
    let scope = format!("{}/{}/{}/request", cred[1], cred[2], cred[3]);
    let string_to_sign = format!(
        "HMAC-SHA256\n{x_date}\n{scope}\n{}",
        to_hex(&sha256(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(SK.as_bytes(), cred[1].as_bytes());
    for part in [cred[2], cred[3], "request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let expected = to_hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    if expected != signature {
        return Err("the request signature does not match".into());
    }
    Ok(())
}

// ---- envelopes ----

fn respond(status: u16, body: Json) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn envelope_error(console: bool, action: &str, rid: &str, fail: Fail) -> Response {
    let (status, code, message) = fail;
    if console {
        respond(
            status,
            json!({"ResponseMetadata": {"Action": action, "RequestId": rid, "Region": REGION,
                "Service": "vikingdb", "Version": "2025-06-09",
                "Error": {"Code": code, "Message": message}}, "Result": null}),
        )
    } else {
        respond(
            status,
            json!({"code": code, "message": message, "request_id": rid, "result": null}),
        )
    }
}

fn fault_code(status: u16) -> &'static str {
    match status {
        429 => "RequestLimitExceeded",
        400 => "InvalidParameter",
        401 => "Unauthorized",
        s if s >= 500 => "InternalServerError",
        _ => "Error",
    }
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let console = path == "/";
    let action = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("")
        .to_owned();
    let label = if console {
        action.clone()
    } else {
        path.clone()
    };
    let (fault, rid, stall) = {
        let mut s = state.lock().unwrap();
        let stall = s.stalls.get(&label).or_else(|| s.stalls.get("*")).copied();
        s.log.push(label);
        s.seq += 1;
        (s.faults.pop_front(), format!("fake-{}", s.seq), stall)
    };
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    match fault {
        Some(Fault::Status(code)) => {
            return envelope_error(
                console,
                &action,
                &rid,
                (code, fault_code(code), "injected failure".into()),
            );
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    if method != Method::POST {
        return envelope_error(
            console,
            &action,
            &rid,
            (405, "InvalidMethod", "POST only".into()),
        );
    }
    if let Err(msg) = verify(&method, &uri, &headers, &body) {
        return envelope_error(console, &action, &rid, (401, "SignatureDoesNotMatch", msg));
    }
    let req: Json = match serde_json::from_slice(&body) {
        Ok(Json::Object(m)) => Json::Object(m),
        _ => {
            return envelope_error(
                console,
                &action,
                &rid,
                (400, "InvalidParameter", "body is not a JSON object".into()),
            );
        }
    };
    let mut s = state.lock().unwrap();
    if console {
        match console_op(&mut s, &action, &req) {
            Ok(result) => respond(
                200,
                json!({"ResponseMetadata": {"Action": action, "RequestId": rid, "Region": REGION,
                    "Service": "vikingdb", "Version": "2025-06-09"}, "Result": result}),
            ),
            Err(f) => envelope_error(true, &action, &rid, f),
        }
    } else {
        match data_op(&mut s, &path, &req) {
            Ok(result) => respond(
                200,
                json!({"code": "Success", "message": "The API call was executed successfully.",
                    "request_id": rid, "result": result}),
            ),
            Err(f) => envelope_error(false, &action, &rid, f),
        }
    }
}

fn bad(msg: impl Into<String>) -> Fail {
    (400, "InvalidParameter", msg.into())
}

fn str_param<'a>(req: &'a Json, key: &str) -> Result<&'a str, Fail> {
    req.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| (400, "MissingParameter", format!("{key} is required")))
}

// ---- control plane ----

fn console_op(s: &mut FakeState, action: &str, req: &Json) -> Result<Json, Fail> {
    let name = str_param(req, "CollectionName")?;
    let not_found = || {
        (
            404,
            "NotFound.VikingdbCollection",
            format!("The specified collection '{name}' of VikingDB does not exist."),
        )
    };
    match action {
        "GetVikingdbCollection" => {
            let c = s.collections.get(name).ok_or_else(not_found)?;
            Ok(json!({"CollectionName": name, "Fields": c.created_fields}))
        }
        "CreateVikingdbCollection" => {
            if s.collections.contains_key(name) {
                return Err((
                    409,
                    "AlreadyExists.VikingdbCollection",
                    format!("'{name}' exists"),
                ));
            }
            let fields = req
                .get("Fields")
                .and_then(Json::as_array)
                .ok_or_else(|| bad("Fields is required"))?;
            let mut types = HashMap::new();
            let mut dim = None;
            let mut pk = 0;
            for f in fields {
                let n = str_param(f, "FieldName")?;
                let t = str_param(f, "FieldType")?;
                if f.get("IsPrimaryKey").and_then(Json::as_bool) == Some(true) {
                    if n != "id" || t != "string" {
                        return Err(bad("the fake supports a string primary key named id"));
                    }
                    pk += 1;
                    continue;
                }
                match t {
                    "vector" => {
                        dim = Some(
                            f.get("Dim")
                                .and_then(Json::as_u64)
                                .ok_or_else(|| bad("vector needs Dim"))?
                                as usize,
                        )
                    }
                    "string" | "int64" | "float32" | "bool" => {
                        if types.insert(n.to_owned(), t.to_owned()).is_some() {
                            return Err(bad(format!("duplicate field {n}")));
                        }
                    }
                    other => return Err(bad(format!("unsupported FieldType {other}"))),
                }
            }
            if pk != 1 {
                return Err(bad("exactly one primary key is required"));
            }
            let dim = dim.ok_or_else(|| bad("a vector field is required"))?;
            s.collections.insert(
                name.to_owned(),
                Coll {
                    types,
                    created_fields: Json::Array(fields.clone()),
                    dim,
                    index: None,
                    rows: HashMap::new(),
                },
            );
            Ok(json!({"CollectionName": name}))
        }
        "GetVikingdbIndex" | "CreateVikingdbIndex" => {
            let index = str_param(req, "IndexName")?;
            let c = s.collections.get_mut(name).ok_or_else(not_found)?;
            if action == "GetVikingdbIndex" {
                return match &c.index {
                    Some((n, _)) if n == index => Ok(json!({"IndexName": index})),
                    _ => Err((
                        404,
                        "NotFound.VikingdbIndex",
                        format!("index '{index}' does not exist"),
                    )),
                };
            }
            if c.index.is_some() {
                return Err((409, "AlreadyExists.VikingdbIndex", "index exists".into()));
            }
            if req.pointer("/VectorIndex/Distance").and_then(Json::as_str) != Some("cosine") {
                return Err(bad("the fake implements cosine distance only"));
            }
            let mut scalar = HashSet::new();
            for f in req
                .get("ScalarIndex")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let f = f
                    .as_str()
                    .ok_or_else(|| bad("ScalarIndex holds field names"))?;
                if !c.types.contains_key(f) {
                    return Err(bad(format!("ScalarIndex field {f} is not a field")));
                }
                scalar.insert(f.to_owned());
            }
            c.index = Some((index.to_owned(), scalar));
            Ok(json!({"IndexName": index}))
        }
        other => Err((400, "InvalidAction", format!("unknown action {other}"))),
    }
}

// ---- data plane ----

fn default_of(t: &str) -> Json {
    match t {
        "string" => json!(""),
        "bool" => json!(false),
        _ => json!(0),
    }
}

fn value_of(c: &Coll, row: &Row, field: &str) -> Json {
    row.get(field)
        .cloned()
        .unwrap_or_else(|| default_of(c.types.get(field).map_or("string", String::as_str)))
}

fn json_eq(a: &Json, b: &Json) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn check_filter(f: &Json, c: &Coll, indexed: &HashSet<String>) -> Result<(), Fail> {
    let op = str_param(f, "op")?;
    match op {
        "and" | "or" => {
            let conds = f
                .get("conds")
                .and_then(Json::as_array)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| bad(format!("{op} needs a non-empty conds list")))?;
            conds.iter().try_for_each(|x| check_filter(x, c, indexed))
        }
        "must" | "must_not" | "range" | "range_out" => {
            let field = str_param(f, "field")?;
            let t = c
                .types
                .get(field)
                .ok_or_else(|| bad(format!("filter field {field} is not a field")))?;
            if !indexed.contains(field) {
                return Err(bad(format!("filter field {field} has no scalar index")));
            }
            if op.starts_with("must") {
                if !matches!(t.as_str(), "string" | "int64" | "bool") {
                    return Err(bad(format!("{op} does not apply to {t} field {field}")));
                }
                f.get("conds")
                    .and_then(Json::as_array)
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| bad(format!("{op} needs a non-empty conds list")))?;
            } else {
                if !matches!(t.as_str(), "int64" | "float32") {
                    return Err(bad(format!("{op} does not apply to {t} field {field}")));
                }
                let bounds = ["gt", "gte", "lt", "lte"]
                    .iter()
                    .filter_map(|b| f.get(*b))
                    .collect::<Vec<_>>();
                if bounds.is_empty() || bounds.iter().any(|b| !b.is_number()) {
                    return Err(bad(format!("{op} on {field} needs numeric bounds")));
                }
            }
            Ok(())
        }
        other => Err(bad(format!("unknown filter op {other}"))),
    }
}

fn eval(f: &Json, c: &Coll, row: &Row) -> bool {
    let op = f["op"].as_str().unwrap_or("");
    let conds = || f["conds"].as_array().cloned().unwrap_or_default();
    match op {
        "and" => conds().iter().all(|x| eval(x, c, row)),
        "or" => conds().iter().any(|x| eval(x, c, row)),
        "must" | "must_not" => {
            let v = value_of(c, row, f["field"].as_str().unwrap_or(""));
            let inside = conds().iter().any(|x| json_eq(x, &v));
            inside == (op == "must")
        }
        _ => {
            let v = value_of(c, row, f["field"].as_str().unwrap_or(""))
                .as_f64()
                .unwrap_or(0.0);
            let b = |k: &str| f.get(k).and_then(Json::as_f64);
            let checks = [
                b("gt").map(|x| v > x),
                b("gte").map(|x| v >= x),
                b("lt").map(|x| v < x),
                b("lte").map(|x| v <= x),
            ];
            let mut present = checks.iter().flatten();
            if op == "range" {
                present.all(|x| *x)
            } else {
                present.any(|x| *x)
            }
        }
    }
}

fn project(row: &Row, output_fields: Option<&Json>) -> Result<Json, Fail> {
    match output_fields {
        None => Ok(Json::Object(
            row.iter()
                .filter(|(k, _)| k.as_str() != "vector")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )),
        Some(Json::Array(names)) => {
            let mut out = Map::new();
            for n in names {
                let n = n.as_str().ok_or_else(|| bad("output_fields holds names"))?;
                if let Some(v) = row.get(n) {
                    out.insert(n.to_owned(), v.clone());
                }
            }
            Ok(Json::Object(out))
        }
        Some(_) => Err(bad("output_fields must be a list")),
    }
}

fn ids_param(req: &Json) -> Result<Vec<String>, Fail> {
    let ids = req
        .get("ids")
        .and_then(Json::as_array)
        .ok_or_else(|| bad("ids is required"))?;
    if ids.len() > 100 {
        return Err(bad(format!(
            "ids holds {} keys, the limit is 100",
            ids.len()
        )));
    }
    ids.iter()
        .map(|i| {
            i.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad("ids must be strings"))
        })
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

fn data_op(s: &mut FakeState, path: &str, req: &Json) -> Result<Json, Fail> {
    let name = str_param(req, "collection_name")?;
    let c = s.collections.get_mut(name).ok_or_else(|| {
        (
            404,
            "NotFound.VikingdbCollection",
            format!("The specified collection '{name}' of VikingDB does not exist."),
        )
    })?;
    match path {
        "/api/vikingdb/data/upsert" => {
            let data = req
                .get("data")
                .and_then(Json::as_array)
                .ok_or_else(|| bad("data is required"))?;
            if data.len() > 100 {
                return Err(bad(format!(
                    "data holds {} items, the limit is 100",
                    data.len()
                )));
            }
            let mut staged = Vec::new();
            for item in data {
                let obj = item
                    .as_object()
                    .ok_or_else(|| bad("data items are objects"))?;
                let id = obj
                    .get("id")
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad("id is required"))?;
                let mut row = Row::new();
                for (k, v) in obj {
                    if k == "id" {
                        continue;
                    }
                    if k == "vector" {
                        let arr = v.as_array().ok_or_else(|| bad("vector must be a list"))?;
                        if arr.len() != c.dim || arr.iter().any(|x| !x.is_number()) {
                            return Err(bad(format!("vector must hold {} numbers", c.dim)));
                        }
                    } else {
                        let t = c
                            .types
                            .get(k)
                            .ok_or_else(|| bad(format!("unknown field {k}")))?;
                        let ok = match t.as_str() {
                            "string" => v.is_string(),
                            "int64" => v.is_i64(),
                            "float32" => v.is_number(),
                            _ => v.is_boolean(),
                        };
                        if !ok {
                            return Err(bad(format!("field {k} expects {t}, got {v}")));
                        }
                    }
                    row.insert(k.clone(), v.clone());
                }
                if !row.contains_key("vector") {
                    return Err(bad("vector is required"));
                }
                staged.push((id.to_owned(), row));
            }
            for (id, row) in staged {
                c.rows.insert(id, row);
            }
            Ok(Json::Null)
        }
        "/api/vikingdb/data/fetch_in_collection" => {
            let ids = ids_param(req)?;
            let mut items = Vec::new();
            let mut missing = Vec::new();
            for id in ids {
                match c.rows.get(&id) {
                    Some(row) => items
                        .push(json!({"id": id, "fields": project(row, req.get("output_fields"))?})),
                    None => missing.push(id),
                }
            }
            Ok(json!({"items": items, "not_found_ids": missing}))
        }
        "/api/vikingdb/data/delete" => {
            for id in ids_param(req)? {
                c.rows.remove(&id);
            }
            Ok(Json::Null)
        }
        "/api/vikingdb/data/search/vector" | "/api/vikingdb/data/search/scalar" => {
            let index = str_param(req, "index_name")?;
            let indexed = match &c.index {
                Some((n, scalar)) if n == index => scalar.clone(),
                _ => {
                    return Err((
                        404,
                        "NotFound.VikingdbIndex",
                        format!("index '{index}' does not exist"),
                    ));
                }
            };
            let limit = req.get("limit").and_then(Json::as_u64).unwrap_or(10) as usize;
            if limit == 0 || limit > 5000 {
                return Err(bad(format!("limit {limit} is outside 1 to 5000")));
            }
            let offset = req.get("offset").and_then(Json::as_u64).unwrap_or(0) as usize;
            let filter = req.get("filter");
            if let Some(f) = filter {
                check_filter(f, c, &indexed)?;
            }
            let matching: Vec<(&String, &Row)> = c
                .rows
                .iter()
                .filter(|(_, row)| filter.is_none_or(|f| eval(f, c, row)))
                .collect();
            let mut scored: Vec<(f64, &String, &Row)> = if path.ends_with("vector") {
                let q: Vec<f64> = req
                    .get("dense_vector")
                    .and_then(Json::as_array)
                    .ok_or_else(|| bad("dense_vector is required"))?
                    .iter()
                    .map(|x| x.as_f64().unwrap_or(f64::NAN))
                    .collect();
                if q.len() != c.dim || q.iter().any(|x| !x.is_finite()) {
                    return Err(bad(format!(
                        "dense_vector must hold {} finite numbers",
                        c.dim
                    )));
                }
                let mut v: Vec<_> = matching
                    .into_iter()
                    .map(|(id, row)| {
                        let rv: Vec<f64> = row["vector"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Json::as_f64).collect())
                            .unwrap_or_default();
                        (cosine(&q, &rv), id, row)
                    })
                    .collect();
                v.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
                v
            } else {
                let field = str_param(req, "field")?;
                let t = c.types.get(field).cloned().unwrap_or_default();
                if !matches!(t.as_str(), "int64" | "float32") || !indexed.contains(field) {
                    return Err(bad(format!(
                        "field {field} must be an indexed int64 or float32 field"
                    )));
                }
                let desc = match req.get("order").and_then(Json::as_str).unwrap_or("desc") {
                    "desc" => true,
                    "asc" => false,
                    o => return Err(bad(format!("order {o} is not asc or desc"))),
                };
                let mut v: Vec<_> = matching
                    .into_iter()
                    .map(|(id, row)| (value_of(c, row, field).as_f64().unwrap_or(0.0), id, row))
                    .collect();
                v.sort_by(|a, b| {
                    let o = a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1));
                    if desc { o.reverse() } else { o }
                });
                v
            };
            let matched = scored.len();
            let page: Vec<Json> = scored
                .drain(..)
                .skip(offset)
                .take(limit)
                .map(|(score, id, row)| {
                    Ok(
                        json!({"id": id, "fields": project(row, req.get("output_fields"))?,
                        "score": score, "ann_score": score}),
                    )
                })
                .collect::<Result<_, Fail>>()?;
            Ok(json!({"data": page, "filter_matched_count": matched,
                "total_return_count": page.len()}))
        }
        other => Err((404, "NotFound.Api", format!("unknown API {other}"))),
    }
}
