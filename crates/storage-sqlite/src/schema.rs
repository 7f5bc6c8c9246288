//! Schema and versioned migrations.
//!
//! The tables, columns, defaults and indexes are those of the original
//! (`sqlite_backend.py`, `_create_tables` + `_migrate_schema_v2`), so a database file written
//! by the original opens here and ours opens there. The schema version lives in
//! `PRAGMA user_version`: the original never sets it, so its files are at version 0.
//!
//! | version | what                                                                        |
//! |---------|-----------------------------------------------------------------------------|
//! | 1       | the original's tables and indexes; upgrades older original files in place (`todo.assignee`/`reason`, `device_id`/`agent_id` in `profiles` and `entities`) |
//! | 2       | `idx_entities_tenant_updated` and the `entities_fts` trigram index (FTS5, external content, kept in sync by triggers) behind `search_entities` |
//! | 3       | `entity_search` (one ASCII-lowercased search text per entity, kept in sync by triggers), its tenant/recency covering index, the case-sensitive trigram index `entity_search_fts` over it and the `entity_search_vocab` view of its terms; `entities_fts` and its triggers are dropped |
//!
//! Each migration runs in one `BEGIN IMMEDIATE` transaction together with the version bump, so
//! a crash leaves the file at the previous version, and reopening is a no-op.

use rusqlite::{Connection, TransactionBehavior};
use storage_core::{Result, StorageError};

use crate::mapping::sql_err;

/// The schema version this crate writes.
pub const SCHEMA_VERSION: i64 = 3;

const BASELINE: &str = r#"
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
    assignee TEXT,
    reason TEXT
);
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
"#;

/// Indexes of the original (its `idx_activity_time` names a table it never creates and is
/// left out).
const BASELINE_INDEXES: &str = r#"
CREATE INDEX IF NOT EXISTS idx_vaults_created ON vaults (created_at);
CREATE INDEX IF NOT EXISTS idx_vaults_type ON vaults (document_type);
CREATE INDEX IF NOT EXISTS idx_vaults_folder ON vaults (is_folder);
CREATE INDEX IF NOT EXISTS idx_vaults_deleted ON vaults (is_deleted);
CREATE INDEX IF NOT EXISTS idx_todo_status ON todo (status);
CREATE INDEX IF NOT EXISTS idx_todo_urgency ON todo (urgency);
CREATE INDEX IF NOT EXISTS idx_todo_created ON todo (created_at);
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
CREATE INDEX IF NOT EXISTS idx_message_thinking_message_id ON message_thinking(message_id);
CREATE INDEX IF NOT EXISTS idx_message_thinking_stage ON message_thinking(message_id, stage);
CREATE INDEX IF NOT EXISTS idx_message_thinking_sequence ON message_thinking(message_id, sequence);
"#;

/// Version 2: entity listing index and the trigram search index.
const ENTITY_SEARCH: &str = r#"
CREATE INDEX IF NOT EXISTS idx_entities_tenant_updated
    ON entities (user_id, device_id, agent_id, updated_at);
CREATE VIRTUAL TABLE IF NOT EXISTS entities_fts USING fts5(
    entity_name, content, aliases,
    content='entities', content_rowid='rowid', tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS entities_fts_ai AFTER INSERT ON entities BEGIN
    INSERT INTO entities_fts(rowid, entity_name, content, aliases)
    VALUES (new.rowid, new.entity_name, new.content, new.aliases);
END;
CREATE TRIGGER IF NOT EXISTS entities_fts_ad AFTER DELETE ON entities BEGIN
    INSERT INTO entities_fts(entities_fts, rowid, entity_name, content, aliases)
    VALUES ('delete', old.rowid, old.entity_name, old.content, old.aliases);
END;
CREATE TRIGGER IF NOT EXISTS entities_fts_au AFTER UPDATE ON entities BEGIN
    INSERT INTO entities_fts(entities_fts, rowid, entity_name, content, aliases)
    VALUES ('delete', old.rowid, old.entity_name, old.content, old.aliases);
    INSERT INTO entities_fts(rowid, entity_name, content, aliases)
    VALUES (new.rowid, new.entity_name, new.content, new.aliases);
END;
INSERT INTO entities_fts(entities_fts) VALUES ('rebuild');
"#;

/// The search text of an entity row `r` (`new` or `old` in a trigger): the ASCII-lowercased
/// name, content and each alias, every one followed by `char(31)`, plus one more `char(31)`.
/// The separators keep a match inside one field (queries containing `char(31)` take an exact
/// path that does not use this text), and the trailing pair guarantees that every character
/// of every field starts a trigram, so a 1- or 2-character query occurs in a row exactly when
/// one of the row's trigrams starts with it (see `queries::search_entities`). `lower()` of a
/// SQLite built without ICU (ours, bundled) changes ASCII letters only.
macro_rules! search_text {
    ($r:literal) => {
        concat!(
            "lower(coalesce(",
            $r,
            ".entity_name, '')) || char(31) || lower(coalesce(",
            $r,
            ".content, '')) || char(31) || coalesce((SELECT group_concat(lower(value), char(31)) \
             FROM json_each(CASE WHEN json_valid(",
            $r,
            ".aliases) THEN ",
            $r,
            ".aliases ELSE '[]' END)) || char(31), '') || char(31)"
        )
    };
}

/// Removes the search row of entity rowid `r` (`new` or `old`) from the index and the table.
/// Also run before an insert, so a stale row left by a rowid reuse is replaced, not duplicated.
macro_rules! search_forget {
    ($r:literal) => {
        concat!(
            "INSERT INTO entity_search_fts(entity_search_fts, rowid, text) \
                 SELECT 'delete', rid, text FROM entity_search WHERE rid = ",
            $r,
            ".rowid;
             DELETE FROM entity_search WHERE rid = ",
            $r,
            ".rowid;"
        )
    };
}

/// Adds the search row of the entity `new`.
macro_rules! search_add {
    () => {
        concat!(
            "INSERT INTO entity_search (rid, user_id, device_id, agent_id, updated_at, text)
                 VALUES (new.rowid, new.user_id, new.device_id, new.agent_id, new.updated_at, ",
            search_text!("new"),
            ");
             INSERT INTO entity_search_fts(rowid, text) SELECT rid, text FROM entity_search WHERE rid = new.rowid;"
        )
    };
}

/// Version 3: the search table, its indexes and triggers (replacing version 2's `entities_fts`).
const ENTITY_SEARCH_V3: &str = concat!(
    "DROP TRIGGER IF EXISTS entities_fts_ai;
     DROP TRIGGER IF EXISTS entities_fts_ad;
     DROP TRIGGER IF EXISTS entities_fts_au;
     DROP TABLE IF EXISTS entities_fts;
     CREATE TABLE IF NOT EXISTS entity_search (
         rid INTEGER PRIMARY KEY,
         user_id TEXT,
         device_id TEXT,
         agent_id TEXT,
         updated_at,
         text TEXT NOT NULL
     );
     CREATE INDEX IF NOT EXISTS idx_entity_search_scan
         ON entity_search (user_id, device_id, agent_id, updated_at, rid, text);
     CREATE VIRTUAL TABLE IF NOT EXISTS entity_search_fts USING fts5(
         text, content='entity_search', content_rowid='rid', tokenize='trigram case_sensitive 1'
     );
     CREATE VIRTUAL TABLE IF NOT EXISTS entity_search_vocab USING fts5vocab(entity_search_fts, 'row');
     CREATE TRIGGER IF NOT EXISTS entity_search_ai AFTER INSERT ON entities BEGIN ",
    search_forget!("new"),
    search_add!(),
    " END;
     CREATE TRIGGER IF NOT EXISTS entity_search_ad AFTER DELETE ON entities BEGIN ",
    search_forget!("old"),
    " END;
     CREATE TRIGGER IF NOT EXISTS entity_search_au AFTER UPDATE ON entities BEGIN ",
    search_forget!("old"),
    search_forget!("new"),
    search_add!(),
    " END;"
);

/// Refills `entity_search` and its trigram index from `entities` (migration to version 3 and
/// [`crate::SqliteBackend::rebuild_entity_search_index`]), then merges the index into one
/// segment.
pub(crate) const REBUILD_ENTITY_SEARCH: &str = concat!(
    "DELETE FROM entity_search;
     INSERT INTO entity_search (rid, user_id, device_id, agent_id, updated_at, text)
         SELECT e.rowid, e.user_id, e.device_id, e.agent_id, e.updated_at, ",
    search_text!("e"),
    " FROM entities AS e;
     INSERT INTO entity_search_fts(entity_search_fts) VALUES ('rebuild');
     INSERT INTO entity_search_fts(entity_search_fts) VALUES ('optimize');"
);

fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    // `table` comes from the fixed list in this file, never from a caller.
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .map_err(sql_err)?;
    let names = stmt
        .query_map([], |row| row.get::<_, String>(1))
        .map_err(sql_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_err)?;
    Ok(names)
}

/// Version 1: the original's schema, upgrading files of older original versions in place.
fn migrate_v1(conn: &Connection) -> Result<()> {
    conn.execute_batch(BASELINE).map_err(sql_err)?;

    let todo = columns(conn, "todo")?;
    for (col, decl) in [("assignee", "TEXT"), ("reason", "TEXT")] {
        if !todo.iter().any(|c| c == col) {
            conn.execute_batch(&format!("ALTER TABLE todo ADD COLUMN {col} {decl}"))
                .map_err(sql_err)?;
        }
    }

    // Older original files keyed profiles by (user_id, agent_id) and entities by
    // (user_id, entity_name): rebuild them with the triple, as the original's
    // `_migrate_schema_v2` does, but inside our transaction so a failure changes nothing.
    if !columns(conn, "profiles")?.iter().any(|c| c == "device_id") {
        let old = columns(conn, "profiles")?;
        let agent = if old.iter().any(|c| c == "agent_id") {
            "agent_id"
        } else {
            "'default'"
        };
        conn.execute_batch(&format!(
            "ALTER TABLE profiles RENAME TO profiles_old;
             CREATE TABLE profiles (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL DEFAULT 'default',
                agent_id TEXT NOT NULL DEFAULT 'default',
                content TEXT NOT NULL,
                summary TEXT,
                keywords TEXT,
                entities TEXT,
                importance INTEGER DEFAULT 0,
                metadata TEXT,
                created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
                updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
                PRIMARY KEY (user_id, device_id, agent_id));
             INSERT INTO profiles (user_id, device_id, agent_id, content, summary, keywords,
                                   entities, importance, metadata, created_at, updated_at)
                SELECT user_id, 'default', {agent}, content, summary, keywords,
                       entities, importance, metadata, created_at, updated_at
                FROM profiles_old;
             DROP TABLE profiles_old;"
        ))
        .map_err(sql_err)?;
    }
    let entity_cols = columns(conn, "entities")?;
    if !entity_cols.iter().any(|c| c == "device_id") || !entity_cols.iter().any(|c| c == "agent_id")
    {
        conn.execute_batch(
            "ALTER TABLE entities RENAME TO entities_old;
             CREATE TABLE entities (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL DEFAULT 'default',
                agent_id TEXT NOT NULL DEFAULT 'default',
                entity_name TEXT NOT NULL,
                entity_type TEXT,
                content TEXT NOT NULL,
                summary TEXT,
                keywords TEXT,
                aliases TEXT,
                metadata TEXT,
                created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
                updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
                UNIQUE (user_id, device_id, agent_id, entity_name));
             INSERT INTO entities (id, user_id, device_id, agent_id, entity_name, entity_type,
                                   content, summary, keywords, aliases, metadata, created_at, updated_at)
                SELECT id, user_id, 'default', 'default', entity_name, entity_type,
                       content, summary, keywords, aliases, metadata, created_at, updated_at
                FROM entities_old;
             DROP TABLE entities_old;",
        )
        .map_err(sql_err)?;
    }
    conn.execute_batch(BASELINE_INDEXES).map_err(sql_err)
}

/// One migration step, run inside its transaction.
type Migration = fn(&Connection) -> Result<()>;

fn migrate_v2(conn: &Connection) -> Result<()> {
    conn.execute_batch(ENTITY_SEARCH).map_err(sql_err)
}

fn migrate_v3(conn: &Connection) -> Result<()> {
    conn.execute_batch(ENTITY_SEARCH_V3).map_err(sql_err)?;
    conn.execute_batch(REBUILD_ENTITY_SEARCH).map_err(sql_err)
}

/// Brings the file to [`SCHEMA_VERSION`]. Returns the version found before.
///
/// # Errors
/// [`storage_core::ErrorKind::Unsupported`] when the file was written by a newer version of
/// this crate; SQLite errors otherwise (nothing is changed by a failed step).
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    if found > SCHEMA_VERSION {
        return Err(StorageError::unsupported(format!(
            "the database schema is version {found}, this build understands up to {SCHEMA_VERSION}; \
             upgrade storage-sqlite"
        )));
    }
    let steps: [(i64, Migration); 3] = [(1, migrate_v1), (2, migrate_v2), (3, migrate_v3)];
    for (version, step) in steps {
        if found >= version {
            continue;
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        // Another process may have migrated while we waited for the write lock.
        let now: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err)?;
        if now < version {
            step(&tx)?;
            tx.execute_batch(&format!("PRAGMA user_version = {version}"))
                .map_err(sql_err)?;
        }
        tx.commit().map_err(sql_err)?;
    }
    Ok(found)
}
