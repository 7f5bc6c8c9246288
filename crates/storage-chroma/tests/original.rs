//! Data written by the original next to a prefixed store. The original's shipped configs set
//! `collection_prefix: "opencontext"` but its backend ignores the key and always names the
//! collections `profile`, `entity`, `document`, `event`, `knowledge`, `todo`. Opening with
//! that config must not show an empty store beside them. Each test runs its own
//! `chroma run` (the original's names live in the default database, which no other test may
//! share), so everything goes with its temp directory.

mod common;

use common::ChromaProcess;
use serde_json::{Value as Json, json};
use storage_chroma::{ChromaBackend, ChromaConfig};
use storage_core::{
    ContextType, ErrorKind, ListQuery, SearchQuery, StorageBackend, VectorStorageBackend,
};

const DIM: usize = 8;

/// The original's entry (config_mysql.yaml), switched to server mode as the error for its
/// `mode: "local"` asks: no `vector_size`, no tenant or database.
fn originals_entry(port: u16) -> storage_core::config::AppConfig {
    let yaml = format!(
        r#"
storage:
  enabled: true
  backends:
    - name: "default_vector"
      storage_type: "vector_db"
      backend: "chromadb"
      config:
        mode: "server"
        host: "127.0.0.1"
        port: {port}
        path: "${{CONTEXT_PATH:.}}/persist/chromadb"
        collection_prefix: "opencontext"
"#
    );
    storage_core::config::parse_config(&yaml, |_| None).expect("parses")
}

fn chroma_config(app: &storage_core::config::AppConfig) -> ChromaConfig {
    app.storage.backends[0].parse().expect("chroma entry")
}

/// One context in the original's `_context_to_chroma_format` layout: metadata holds the
/// extracted data, the properties (datetimes as naive ISO strings plus `<field>_ts`) and the
/// caller's metadata side by side, lists JSON-encoded; the text is the record's document.
fn original_record(id: &str, t: &str, n: usize) -> (String, Json, String, Vec<f32>) {
    let ts = 1_746_086_400 + n as i64 * 60;
    let iso = format!("2025-05-01T08:{:02}:00", n);
    let meta = json!({
        "title": format!("{t} {n}"), "summary": "s", "keywords": "[\"k\"]", "entities": "[]",
        "context_type": t, "confidence": 0, "importance": 2, "raw_properties": "[]",
        "create_time": iso, "create_time_ts": ts, "event_time": iso, "event_time_ts": ts,
        "update_time": iso, "update_time_ts": ts, "is_processed": false,
        "has_compression": false, "call_count": 0, "merge_count": 0, "duration_count": 1,
        "enable_merge": false, "is_happend": false, "hierarchy_level": 0,
        "children_ids": "[]", "user_id": "u1",
    });
    let mut v = vec![0.0; DIM];
    v[n % DIM] = 1.0;
    (id.to_owned(), meta, format!("text of {id}"), v)
}

/// Creates `name` as the original does (`get_or_create_collection` with its metadata) and
/// upserts `records` into it, through Chroma's HTTP API.
async fn write_like_the_original(
    url: &str,
    database: &str,
    name: &str,
    meta: Json,
    records: &[(String, Json, String, Vec<f32>)],
) {
    let http = reqwest::Client::new();
    let db = format!("{url}/api/v2/tenants/default_tenant/databases/{database}");
    if database != "default_database" {
        let r = http
            .post(format!("{url}/api/v2/tenants/default_tenant/databases"))
            .json(&json!({ "name": database }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success() || r.status().as_u16() == 409);
    }
    let coll: Json = http
        .post(format!("{db}/collections"))
        .json(&json!({ "name": name, "get_or_create": true, "metadata": meta }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    if records.is_empty() {
        return;
    }
    let r = http
        .post(format!(
            "{db}/collections/{}/upsert",
            coll["id"].as_str().expect("collection id")
        ))
        .json(&json!({
            "ids": records.iter().map(|r| &r.0).collect::<Vec<_>>(),
            "metadatas": records.iter().map(|r| &r.1).collect::<Vec<_>>(),
            "documents": records.iter().map(|r| &r.2).collect::<Vec<_>>(),
            "embeddings": records.iter().map(|r| &r.3).collect::<Vec<_>>(),
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

/// The original's store: its six collections, 7 contexts in four of them, 1 todo.
async fn originals_store(url: &str, database: &str) -> Vec<String> {
    let spread = [
        ("event", 2),
        ("knowledge", 3),
        ("document", 1),
        ("profile", 1),
        ("entity", 0),
    ];
    let mut ids = Vec::new();
    let mut n = 0;
    for (t, count) in spread {
        let records: Vec<_> = (0..count)
            .map(|_| {
                n += 1;
                original_record(&format!("orig-{n}"), t, n)
            })
            .collect();
        ids.extend(records.iter().map(|r| r.0.clone()));
        write_like_the_original(
            url,
            database,
            t,
            json!({ "hnsw:space": "cosine", "context_type": t }),
            &records,
        )
        .await;
    }
    let mut todo_embedding = vec![0.0; DIM];
    todo_embedding[0] = 1.0;
    write_like_the_original(
        url,
        database,
        "todo",
        json!({ "hnsw:space": "cosine", "description": "Todo embeddings for deduplication" }),
        &[(
            "todo_1".into(),
            json!({ "todo_id": 1, "content": "buy milk", "created_at": "2025-05-01T08:00:00" }),
            String::new(),
            todo_embedding,
        )],
    )
    .await;
    assert_eq!(ids.len(), 7);
    ids
}

async fn own_server(dir: &std::path::Path) -> Option<ChromaProcess> {
    if !common::chroma_installed() {
        common::skip(
            "the `chroma` command is not installed (pip install chromadb); this test writes the original's collections into a server of its own",
        );
        return None;
    }
    Some(ChromaProcess::start(dir, None).await)
}

/// The original's data, its own config (prefix "opencontext"): `open` refuses, naming the
/// collections that hold data and the setting to change, and creates nothing; with the
/// setting changed as told, all 7 contexts read back (and `vector_size`, absent from the
/// original's entries, comes from the collections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_originals_config_never_shows_an_empty_store_beside_its_data() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(server) = own_server(dir.path()).await else {
        return;
    };
    let ids = originals_store(&server.url, "default_database").await;
    let app = originals_entry(server.port);
    let config = chroma_config(&app);
    assert_eq!(config.collection_prefix, "opencontext");
    assert_eq!(config.vector_size, 0, "the original's entries have none");

    let e = ChromaBackend::open(config.clone())
        .await
        .expect_err("a prefixed store beside the original's data");
    let m = e.to_string();
    eprintln!("{m}");
    assert_eq!(e.kind(), ErrorKind::Config, "{m}");
    for needle in [
        "collection_prefix \"opencontext\"",
        "opencontext_event",
        "missing or empty",
        "'event' (2 records)",
        "'knowledge' (3 records)",
        "'document' (1 records)",
        "'profile' (1 records)",
        "'todo' (1 records)",
        "written by the original, which ignores collection_prefix",
        "set `collection_prefix: \"\"`",
        "another `database`",
    ] {
        assert!(m.contains(needle), "{needle:?} not in: {m}");
    }
    assert!(
        !m.contains("'entity'"),
        "empty collections are not listed: {m}"
    );
    let names = common::collection_names(&server.url, "default_tenant", "default_database").await;
    assert!(
        names.iter().all(|n| !n.starts_with("opencontext")),
        "the refused open created nothing: {names:?}"
    );

    // As the message says: the original's names.
    let mut entry = app.storage.backends[0].clone();
    entry.config.insert("collection_prefix".into(), json!(""));
    let fixed: ChromaConfig = entry.parse().unwrap();
    let b = ChromaBackend::open(fixed)
        .await
        .expect("open the original's store");
    assert_eq!(b.dimension(), DIM, "from the collections");
    let mut total = 0;
    for t in ContextType::ALL {
        total += b.get_processed_context_count(t).await.unwrap();
    }
    assert_eq!(total, 7);
    let got = b.get_by_ids(&ids, None).await.expect("get_by_ids");
    assert_eq!(got.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(got[0].vectorize.text.as_deref(), Some("text of orig-1"));
    let listed = b
        .get_all_processed_contexts(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.values().map(Vec::len).sum::<usize>(), 7);
    let mut q = vec![0.0; DIM];
    q[3] = 1.0;
    let hits = b
        .search(&SearchQuery::new(q).top_k(1))
        .await
        .expect("search");
    assert_eq!(hits[0].context.id, "orig-3");
    b.close().await.unwrap();
}

/// A prefixed store that holds data opens although the original's data is beside it; names
/// glued without a separator (`opencontextevent`, earlier versions of this backend) are
/// detected as well, with how to rename them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_prefixed_store_opens_and_glued_names_are_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(server) = own_server(dir.path()).await else {
        return;
    };
    originals_store(&server.url, "default_database").await;
    let meta = json!({ "hnsw:space": "cosine", "context_type": "event" });
    write_like_the_original(
        &server.url,
        "default_database",
        "mine_event",
        meta.clone(),
        &[original_record("mine-1", "event", 1)],
    )
    .await;
    let mut config = chroma_config(&originals_entry(server.port));
    config.collection_prefix = "mine".into();
    let b = ChromaBackend::open(config.clone())
        .await
        .expect("a store with data of its own");
    assert_eq!(
        b.get_processed_context_count(ContextType::Event)
            .await
            .unwrap(),
        1
    );
    b.close().await.unwrap();

    write_like_the_original(
        &server.url,
        "glued",
        "opencontextevent",
        meta,
        &[original_record("g-1", "event", 1)],
    )
    .await;
    let mut config = chroma_config(&originals_entry(server.port));
    config.database = "glued".into();
    let e = ChromaBackend::open(config)
        .await
        .expect_err("glued names hold the data");
    let m = e.to_string();
    eprintln!("{m}");
    assert_eq!(e.kind(), ErrorKind::Config, "{m}");
    assert!(m.contains("'opencontextevent' (1 records)"), "{m}");
    assert!(m.contains("no separator"), "{m}");
    assert!(m.contains("'opencontext_<type>'"), "{m}");
}
