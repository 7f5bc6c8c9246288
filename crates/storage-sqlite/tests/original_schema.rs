//! Files written by the original (Python `SQLiteBackend`) open and read correctly, and are
//! upgraded in place, idempotently.
//!
//! The DDL below is the original's, verbatim in substance (`_create_tables` and the tables
//! `_migrate_schema_v2` rebuilds), and rows are inserted the way the original's methods insert
//! them: Python's `str(datetime.now())` timestamps (naive), `json.dumps(..., ensure_ascii=False)`
//! lists with `", "` separators, booleans as 0/1, `CURRENT_TIMESTAMP` defaults.

use rusqlite::{Connection, params};
use storage_core::*;
use storage_sqlite::{SCHEMA_VERSION, SqliteBackend, SqliteConfig};

/// `_create_tables` of the original. Its `idx_activity_time` index names a table `activity`
/// that this version never creates (older versions did): the file below has one, as a
/// deployment upgraded from those versions does, or the original could not have initialised.
const ORIGINAL_DDL: &str = r#"
CREATE TABLE activity (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, content TEXT,
                       start_time DATETIME, end_time DATETIME);
CREATE TABLE IF NOT EXISTS vaults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT,
    summary TEXT,
    content TEXT,
    tags TEXT,
    parent_id INTEGER,
    is_folder BOOLEAN DEFAULT 0,
    is_deleted BOOLEAN DEFAULT 0,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    document_type TEXT DEFAULT 'vaults',
    sort_order INTEGER DEFAULT 0,
    FOREIGN KEY (parent_id) REFERENCES vaults (id)
);
CREATE TABLE IF NOT EXISTS todo (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content TEXT,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    start_time DATETIME DEFAULT CURRENT_TIMESTAMP,
    end_time DATETIME,
    status INTEGER DEFAULT 0,
    urgency INTEGER DEFAULT 0,
    assignee TEXT
);
ALTER TABLE todo ADD COLUMN reason TEXT;
CREATE TABLE IF NOT EXISTS tips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content TEXT,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL DEFAULT 'default',
    agent_id TEXT NOT NULL DEFAULT 'default',
    content TEXT NOT NULL,
    summary TEXT,
    keywords JSON,
    entities JSON,
    importance INTEGER DEFAULT 0,
    metadata JSON,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, device_id, agent_id)
);
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL DEFAULT 'default',
    agent_id TEXT NOT NULL DEFAULT 'default',
    entity_name TEXT NOT NULL,
    entity_type TEXT,
    content TEXT NOT NULL,
    summary TEXT,
    keywords JSON,
    aliases JSON,
    metadata JSON,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (user_id, device_id, agent_id, entity_name)
);
CREATE TABLE IF NOT EXISTS monitoring_token_usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_bucket TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER DEFAULT 0,
    completion_tokens INTEGER DEFAULT 0,
    total_tokens INTEGER DEFAULT 0,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(time_bucket, model)
);
CREATE TABLE IF NOT EXISTS monitoring_stage_timing (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_bucket TEXT NOT NULL,
    stage_name TEXT NOT NULL,
    count INTEGER DEFAULT 1,
    total_duration_ms INTEGER NOT NULL,
    min_duration_ms INTEGER NOT NULL,
    max_duration_ms INTEGER NOT NULL,
    avg_duration_ms INTEGER NOT NULL,
    success_count INTEGER DEFAULT 0,
    error_count INTEGER DEFAULT 0,
    metadata TEXT,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(time_bucket, stage_name)
);
CREATE TABLE IF NOT EXISTS monitoring_data_stats (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_bucket TEXT NOT NULL,
    data_type TEXT NOT NULL,
    count INTEGER DEFAULT 1,
    context_type TEXT,
    metadata TEXT,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(time_bucket, data_type, context_type)
);
CREATE TABLE IF NOT EXISTS conversations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT,
  user_id TEXT,
  page_name VARCHAR(20) DEFAULT 'home',
  status VARCHAR(20) DEFAULT 'active',
  metadata JSON DEFAULT '{}',
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id INTEGER NOT NULL,
  parent_message_id TEXT,
  role TEXT NOT NULL,
  content TEXT DEFAULT '',
  status TEXT NOT NULL DEFAULT 'pending',
  token_count INTEGER DEFAULT 0,
  metadata JSON DEFAULT '{}',
  latency_ms INTEGER DEFAULT 0,
  error_message TEXT DEFAULT '',
  completed_at DATETIME,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  FOREIGN KEY(conversation_id) REFERENCES conversations(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_vaults_created ON vaults (created_at);
CREATE INDEX IF NOT EXISTS idx_vaults_type ON vaults (document_type);
CREATE INDEX IF NOT EXISTS idx_vaults_folder ON vaults (is_folder);
CREATE INDEX IF NOT EXISTS idx_vaults_deleted ON vaults (is_deleted);
CREATE INDEX IF NOT EXISTS idx_todo_status ON todo (status);
CREATE INDEX IF NOT EXISTS idx_todo_urgency ON todo (urgency);
CREATE INDEX IF NOT EXISTS idx_todo_created ON todo (created_at);
CREATE INDEX IF NOT EXISTS idx_activity_time ON activity (start_time, end_time);
CREATE INDEX IF NOT EXISTS idx_tips_time ON tips (created_at);
CREATE INDEX IF NOT EXISTS idx_monitoring_token_created ON monitoring_token_usage (created_at);
CREATE INDEX IF NOT EXISTS idx_monitoring_token_model ON monitoring_token_usage (model);
CREATE INDEX IF NOT EXISTS idx_monitoring_stage_created ON monitoring_stage_timing (created_at);
CREATE INDEX IF NOT EXISTS idx_monitoring_stage_name ON monitoring_stage_timing (stage_name);
CREATE INDEX IF NOT EXISTS idx_monitoring_data_created ON monitoring_data_stats (created_at);
CREATE INDEX IF NOT EXISTS idx_monitoring_data_type ON monitoring_data_stats (data_type);
CREATE INDEX IF NOT EXISTS idx_messages_created_at ON messages(created_at);
CREATE INDEX IF NOT EXISTS idx_messages_status ON messages(status);
CREATE INDEX IF NOT EXISTS idx_messages_conversation_id ON messages(conversation_id);
CREATE INDEX IF NOT EXISTS idx_conversations_updated_at ON conversations(updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_conversations_user_page ON conversations(user_id, page_name);
CREATE INDEX IF NOT EXISTS idx_entity_user ON entities (user_id);
CREATE INDEX IF NOT EXISTS idx_entity_type ON entities (entity_type);
CREATE TABLE IF NOT EXISTS message_thinking (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL,
    content TEXT NOT NULL,
    stage TEXT,
    progress REAL DEFAULT 0.0,
    sequence INTEGER DEFAULT 0,
    metadata JSON DEFAULT '{}',
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY(message_id) REFERENCES messages(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_message_thinking_message_id ON message_thinking(message_id);
CREATE INDEX IF NOT EXISTS idx_message_thinking_stage ON message_thinking(message_id, stage);
CREATE INDEX IF NOT EXISTS idx_message_thinking_sequence ON message_thinking(message_id, sequence);
"#;

/// The layout `_migrate_schema_v2` upgrades from: profiles keyed by (user_id, agent_id),
/// entities without device_id/agent_id, todo without `reason`.
const ORIGINAL_PRE_V2_DDL: &str = r#"
CREATE TABLE todo (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content TEXT,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    start_time DATETIME DEFAULT CURRENT_TIMESTAMP,
    end_time DATETIME,
    status INTEGER DEFAULT 0,
    urgency INTEGER DEFAULT 0
);
CREATE TABLE profiles (
    user_id TEXT NOT NULL,
    agent_id TEXT NOT NULL DEFAULT 'default',
    content TEXT NOT NULL,
    summary TEXT,
    keywords JSON,
    entities JSON,
    importance INTEGER DEFAULT 0,
    metadata JSON,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, agent_id)
);
CREATE TABLE entities (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    entity_name TEXT NOT NULL,
    entity_type TEXT,
    content TEXT NOT NULL,
    summary TEXT,
    keywords JSON,
    aliases JSON,
    metadata JSON,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (user_id, entity_name)
);
"#;

/// Python's `str(datetime)` of a naive local time.
const PY_NOW: &str = "2025-03-01 10:00:00.123456";

fn hour_bucket_now() -> String {
    storage_core::records::monitoring_bucket(&storage_core::time::now())
}

/// Rows as the original's methods write them.
fn fill_like_the_original(conn: &Connection) {
    // _insert_default_vault_document, then insert_vaults(...)
    conn.execute(
        "INSERT INTO vaults (title, summary, content, document_type, tags, is_folder, is_deleted)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![
            "Start With Tutorial",
            "",
            "Welcome to MineContext!",
            "vaults",
            "guide,welcome,quick-start",
            false,
            false
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO vaults (title, summary, content, tags, parent_id, is_folder, document_type, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params!["Daily report", "s", "# body", "a,b", 1, false, "Report", PY_NOW, PY_NOW],
    )
    .unwrap();
    // insert_todo
    conn.execute(
        "INSERT INTO todo (content, start_time, end_time, status, urgency, assignee, reason, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        params!["call Bob", "2025-03-01 09:00:00", None::<String>, 0, 2, "me", "promised", PY_NOW],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO tips (content, created_at) VALUES (?, ?)",
        params!["drink water", PY_NOW],
    )
    .unwrap();
    // upsert_profile
    conn.execute(
        "INSERT INTO profiles (user_id, device_id, agent_id, content, summary, keywords, entities, importance,
                               metadata, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            "u1", "default", "default", "喜欢喝茶", None::<String>, r#"["tea", "茶"]"#, r#"["Bob"]"#, 5,
            r#"{"source": "chat", "n": 1}"#, PY_NOW, PY_NOW
        ],
    )
    .unwrap();
    // upsert_entity
    conn.execute(
        "INSERT INTO entities (id, user_id, device_id, agent_id, entity_name, entity_type, content, summary,
                               keywords, aliases, metadata, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            "0b1c2d3e-0000-4000-8000-000000000001", "u1", "default", "default", "Bob", "person",
            "colleague who builds rockets", None::<String>, "[]", r#"["Bobby", "罗伯特"]"#, "{}", PY_NOW, PY_NOW
        ],
    )
    .unwrap();
    // create_conversation / create_message / add_message_thinking
    conn.execute(
        "INSERT INTO conversations (page_name, user_id, title, metadata, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        params!["home", "u1", "chat", "{}", "active", PY_NOW, PY_NOW],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO messages (conversation_id, role, content, status, token_count, parent_message_id, metadata,
                               completed_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![1, "user", "hi", "completed", 1, None::<String>, "{}", PY_NOW, PY_NOW, PY_NOW],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO message_thinking (message_id, content, stage, progress, sequence, metadata)
         VALUES (?, ?, ?, ?, ?, ?)",
        params![1, "thinking...", "intent_analysis", 0.5, 0, "{}"],
    )
    .unwrap();
    // save_monitoring_* (hour bucket of "now")
    let bucket = hour_bucket_now();
    conn.execute(
        "INSERT INTO monitoring_token_usage (time_bucket, model, prompt_tokens, completion_tokens, total_tokens, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        params![bucket, "gpt", 10, 5, 15, PY_NOW],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO monitoring_stage_timing (time_bucket, stage_name, count, total_duration_ms, min_duration_ms,
             max_duration_ms, avg_duration_ms, success_count, error_count, metadata, created_at)
         VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![bucket, "llm", 30, 30, 30, 30, 1, 0, None::<String>, PY_NOW],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO monitoring_data_stats (time_bucket, data_type, count, context_type, metadata, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        params![bucket, "context", 3, "event", None::<String>, PY_NOW],
    )
    .unwrap();
}

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

async fn read_everything(b: &SqliteBackend) {
    // This binary reads naive values as UTC; tests/naive_zone.rs reads them in UTC+8.
    storage_core::time::set_default_naive_zone(storage_core::time::NaiveZone::utc());
    let naive = storage_core::time::parse_timestamp("2025-03-01T10:00:00.123456Z").unwrap();

    let vaults = b.get_vaults(&VaultQuery::default()).await.unwrap();
    assert_eq!(vaults.len(), 2);
    let tutorial = b.get_vault(1).await.unwrap().unwrap();
    assert_eq!(tutorial.title.as_deref(), Some("Start With Tutorial"));
    assert_eq!(tutorial.tags.as_deref(), Some("guide,welcome,quick-start"));
    assert!(!tutorial.is_folder && !tutorial.is_deleted);
    assert_eq!(tutorial.document_type, "vaults");
    let report = b.get_vault(2).await.unwrap().unwrap();
    assert_eq!(report.parent_id, Some(1));
    assert_eq!(
        report.created_at, naive,
        "naive Python timestamps read in the naive zone (UTC here)"
    );
    assert_eq!(b.get_reports(10, 0, false).await.unwrap().len(), 2);

    let todos = b.get_todos(&TodoQuery::default()).await.unwrap();
    assert_eq!(todos.len(), 1);
    assert_eq!(todos[0].content.as_deref(), Some("call Bob"));
    assert_eq!(
        (
            todos[0].urgency,
            todos[0].assignee.as_deref(),
            todos[0].reason.as_deref()
        ),
        (2, Some("me"), Some("promised"))
    );
    assert_eq!(todos[0].end_time, None);
    let tips = b.get_tips(&TipQuery::default()).await.unwrap();
    assert_eq!(tips[0].content.as_deref(), Some("drink water"));

    let p = b
        .get_profile(&TenantKey::user("u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.content, "喜欢喝茶");
    assert_eq!(p.keywords, ["tea", "茶"]);
    assert_eq!(p.entities, ["Bob"]);
    assert_eq!(p.importance, 5);
    assert_eq!(p.metadata["source"], "chat");
    assert_eq!(p.created_at, naive);

    let e = b
        .get_entity(&TenantKey::user("u1"), "Bob")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.id, "0b1c2d3e-0000-4000-8000-000000000001");
    assert_eq!(e.aliases, ["Bobby", "罗伯特"]);
    assert_eq!(e.entity_type.as_deref(), Some("person"));
    // The search index was built from rows the original wrote.
    let found = b
        .search_entities(&TenantKey::user("u1"), "rocket", 20)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let found = b
        .search_entities(&TenantKey::user("u1"), "罗伯特", 20)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);

    let conv = b.get_conversation(1).await.unwrap().unwrap();
    assert_eq!(
        (conv.page_name.as_str(), conv.status.as_str()),
        ("home", "active")
    );
    let msgs = b.get_conversation_messages(1).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].completed_at, Some(naive));
    assert_eq!(msgs[0].thinking.len(), 1);
    assert_eq!(msgs[0].thinking[0].progress, 0.5);

    assert_eq!(
        b.query_monitoring_token_usage(1).await.unwrap()[0].total_tokens,
        15
    );
    assert_eq!(
        b.query_monitoring_stage_timing(1).await.unwrap()[0].avg_duration_ms,
        30
    );
    assert_eq!(b.query_monitoring_data_stats(1).await.unwrap()[0].count, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_and_reads_a_file_written_by_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("persist/sqlite/app.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL;").unwrap();
        conn.execute_batch(ORIGINAL_DDL).unwrap();
        fill_like_the_original(&conn);
    }
    assert_eq!(
        user_version(&path),
        0,
        "the original never sets user_version"
    );

    let b = SqliteBackend::open(SqliteConfig::new(&path)).await.unwrap();
    read_everything(&b).await;

    // Our writes land in the original's columns in the original's encodings.
    b.upsert_profile(&ProfileUpsert {
        keywords: vec!["k".into()],
        ..ProfileUpsert::new(TenantKey::user("u2"), "new")
    })
    .await
    .unwrap();
    let id = b
        .upsert_entity(&EntityUpsert::new(TenantKey::user("u1"), "Carol", "x"))
        .await
        .unwrap();
    b.close().await.unwrap();
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    {
        let conn = Connection::open(&path).unwrap();
        let (kw, created): (String, String) = conn
            .query_row(
                "SELECT keywords, created_at FROM profiles WHERE user_id = 'u2'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(kw, r#"["k"]"#);
        assert!(
            chrono::NaiveDateTime::parse_from_str(&created, "%Y-%m-%d %H:%M:%S%.f").is_ok(),
            "{created}"
        );
        let stored: String = conn
            .query_row(
                "SELECT id FROM entities WHERE entity_name = 'Carol'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, id);
    }

    // Reopening is a no-op: same version, same rows, no duplicates.
    let b = SqliteBackend::open(SqliteConfig::new(&path)).await.unwrap();
    read_everything(&b).await;
    assert_eq!(
        b.list_entities(&EntityQuery::new(TenantKey::user("u1")))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        b.search_entities(&TenantKey::user("u1"), "Carol", 5)
            .await
            .unwrap()
            .len(),
        1
    );
    b.close().await.unwrap();
    assert_eq!(user_version(&path), SCHEMA_VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_a_pre_v2_original_file_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(ORIGINAL_PRE_V2_DDL).unwrap();
        conn.execute(
            "INSERT INTO profiles (user_id, agent_id, content, keywords, entities, importance, metadata, created_at, updated_at)
             VALUES ('u1', 'agent-a', 'old profile', '[\"x\"]', '[]', 3, '{}', ?1, ?1)",
            [PY_NOW],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO entities (id, user_id, entity_name, entity_type, content, keywords, aliases, metadata, created_at, updated_at)
             VALUES ('e-1', 'u1', 'Bob', 'person', 'old bob', '[]', '[\"Bobby\"]', '{}', ?1, ?1)",
            [PY_NOW],
        )
        .unwrap();
        conn.execute("INSERT INTO todo (content) VALUES ('legacy todo')", [])
            .unwrap();
    }
    let b = SqliteBackend::open(SqliteConfig::new(&path)).await.unwrap();
    let p = b
        .get_profile(&TenantKey::new("u1", "default", "agent-a"))
        .await
        .unwrap()
        .expect("profile moved to device 'default'");
    assert_eq!((p.content.as_str(), p.importance), ("old profile", 3));
    let e = b
        .get_entity(&TenantKey::user("u1"), "Bob")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.id, "e-1");
    assert_eq!(
        b.search_entities(&TenantKey::user("u1"), "Bobby", 5)
            .await
            .unwrap()
            .len(),
        1
    );
    let todos = b.get_todos(&TodoQuery::default()).await.unwrap();
    assert_eq!(
        (todos[0].content.as_deref(), todos[0].reason.as_deref()),
        (Some("legacy todo"), None)
    );
    // Every table of the current schema is usable.
    let c = b
        .create_conversation(&NewConversation::new("home"))
        .await
        .unwrap();
    b.create_message(&NewMessage::new(c.id, "user", "hi"))
        .await
        .unwrap();
    b.insert_vaults(&NewVault::new("t", "s", "c", "vaults"))
        .await
        .unwrap();
    b.close().await.unwrap();
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    let b = SqliteBackend::open(SqliteConfig::new(&path)).await.unwrap();
    assert!(
        b.get_entity(&TenantKey::user("u1"), "Bob")
            .await
            .unwrap()
            .is_some()
    );
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_newer_schema_and_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let e = SqliteBackend::open(SqliteConfig::new(&path))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");

    let not_a_db = dir.path().join("garbage.db");
    std::fs::write(&not_a_db, vec![0x42u8; 8192]).unwrap();
    let e = SqliteBackend::open(SqliteConfig::new(&not_a_db))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataCorrupted, "{e}");

    // The parent "directory" is a file: it cannot be created.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let e = SqliteBackend::open(SqliteConfig::new(blocker.join("sub/app.db")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("cannot create the directory"), "{e}");

    let e = SqliteBackend::open(SqliteConfig::new(":memory:"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}
