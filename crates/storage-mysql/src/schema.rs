//! Schema and versioned migrations.
//!
//! Tables and column names are those of the original's MySQL backend (`mysql_backend.py`,
//! `_create_tables`) with the columns of its SQLite schema (which our records follow):
//! `InnoDB`, `DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`. Deliberate type
//! differences, each for an observable behaviour the SQLite backend has:
//!
//! - **keys and compared names are `VARBINARY`** (`user_id`, `device_id`, `agent_id`,
//!   `entity_name`, `entity_type`, `document_type`, `page_name`, `role`, and the monitoring
//!   keys `model`, `stage_name`, `data_type`, `context_type`). A `_ci` collation would make
//!   `Bob` and `bob` the same entity, and every `PAD SPACE` collation (`utf8mb4_bin` included)
//!   makes `Bob` and `Bob ` the same key; the only `NO PAD` binary collations differ between
//!   MySQL 8 (`utf8mb4_0900_bin`) and MariaDB (`utf8mb4_nopad_bin`). `VARBINARY` compares
//!   bytes exactly on both. Sizes hold the validation bounds of `storage-core` (512-byte ids),
//!   and every index stays under InnoDB's 3072-byte key limit;
//! - **free text is `LONGTEXT`** (the original has `TEXT`, 64 KiB, for titles, summaries,
//!   tips...), so the 16 MiB text bound of `storage-core` fits;
//! - **timestamps are `DATETIME(6)`**: microseconds, so "newest first" orders rows written
//!   within one second, as in SQLite;
//! - **counters are `BIGINT`** and thinking `progress` is `DOUBLE` (the original's `INT` and
//!   `FLOAT` would overflow or round values the API accepts).
//!
//! The schema version is kept in `opencontext_schema_migrations` (one row per applied
//! version). MySQL commits DDL implicitly, so a step cannot be atomic: every step is
//! idempotent (`IF NOT EXISTS`) and its row is written last, so a step interrupted by a crash
//! runs again at the next start. Concurrent start-ups serialise on a named lock
//! (`GET_LOCK`).
//!
//! | version | what |
//! |---------|------|
//! | 1       | the tables and indexes |

use std::time::Duration;

use sqlx::mysql::MySqlPool;
use sqlx::{Executor, Row};
use storage_core::{Result, StorageError};

use crate::error::{SqlxResultExt, bounded};

/// The schema version this crate writes.
pub const SCHEMA_VERSION: i64 = 1;

const TABLE_OPTIONS: &str = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

/// `CREATE TABLE` bodies of version 1 (table options appended).
const V1_TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS vaults (
        id BIGINT PRIMARY KEY AUTO_INCREMENT,
        title LONGTEXT,
        summary LONGTEXT,
        content LONGTEXT,
        tags LONGTEXT,
        parent_id BIGINT,
        is_folder BOOLEAN DEFAULT FALSE,
        is_deleted BOOLEAN DEFAULT FALSE,
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        updated_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
        document_type VARBINARY(256) DEFAULT 'vaults',
        sort_order INT DEFAULT 0,
        INDEX idx_vaults_created (created_at),
        INDEX idx_vaults_type (document_type),
        INDEX idx_vaults_folder (is_folder),
        INDEX idx_vaults_deleted (is_deleted),
        FOREIGN KEY (parent_id) REFERENCES vaults (id) ON DELETE SET NULL
    )",
    "CREATE TABLE IF NOT EXISTS todo (
        id BIGINT PRIMARY KEY AUTO_INCREMENT,
        content LONGTEXT,
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        start_time DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        end_time DATETIME(6),
        status BIGINT DEFAULT 0,
        urgency BIGINT DEFAULT 0,
        assignee LONGTEXT,
        reason LONGTEXT,
        INDEX idx_todo_status (status),
        INDEX idx_todo_urgency (urgency),
        INDEX idx_todo_created (created_at)
    )",
    "CREATE TABLE IF NOT EXISTS tips (
        id BIGINT PRIMARY KEY AUTO_INCREMENT,
        content LONGTEXT,
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        INDEX idx_tips_time (created_at)
    )",
    "CREATE TABLE IF NOT EXISTS profiles (
        user_id VARBINARY(512) NOT NULL,
        device_id VARBINARY(512) NOT NULL DEFAULT 'default',
        agent_id VARBINARY(512) NOT NULL DEFAULT 'default',
        content LONGTEXT NOT NULL,
        summary LONGTEXT,
        keywords JSON,
        entities JSON,
        importance INT DEFAULT 0,
        metadata JSON,
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        updated_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
        PRIMARY KEY (user_id, device_id, agent_id)
    )",
    "CREATE TABLE IF NOT EXISTS entities (
        id VARBINARY(64) NOT NULL PRIMARY KEY,
        user_id VARBINARY(512) NOT NULL,
        device_id VARBINARY(512) NOT NULL DEFAULT 'default',
        agent_id VARBINARY(512) NOT NULL DEFAULT 'default',
        entity_name VARBINARY(512) NOT NULL,
        entity_type VARBINARY(1024),
        content LONGTEXT NOT NULL,
        summary LONGTEXT,
        keywords JSON,
        aliases JSON,
        metadata JSON,
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        updated_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
        UNIQUE KEY uk_entities_tenant_name (user_id, device_id, agent_id, entity_name),
        INDEX idx_entity_user (user_id),
        INDEX idx_entity_type (entity_type),
        INDEX idx_entities_tenant_updated (user_id, device_id, agent_id, updated_at)
    )",
    "CREATE TABLE IF NOT EXISTS monitoring_token_usage (
        id BIGINT PRIMARY KEY AUTO_INCREMENT,
        time_bucket VARCHAR(20) NOT NULL,
        model VARBINARY(1024) NOT NULL,
        prompt_tokens BIGINT DEFAULT 0,
        completion_tokens BIGINT DEFAULT 0,
        total_tokens BIGINT DEFAULT 0,
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        UNIQUE KEY uk_time_model (time_bucket, model),
        INDEX idx_monitoring_token_created (created_at),
        INDEX idx_monitoring_token_model (model)
    )",
    "CREATE TABLE IF NOT EXISTS monitoring_stage_timing (
        id BIGINT PRIMARY KEY AUTO_INCREMENT,
        time_bucket VARCHAR(20) NOT NULL,
        stage_name VARBINARY(1024) NOT NULL,
        `count` BIGINT DEFAULT 1,
        total_duration_ms BIGINT NOT NULL,
        min_duration_ms BIGINT NOT NULL,
        max_duration_ms BIGINT NOT NULL,
        avg_duration_ms BIGINT NOT NULL,
        success_count BIGINT DEFAULT 0,
        error_count BIGINT DEFAULT 0,
        metadata LONGTEXT,
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        UNIQUE KEY uk_time_stage (time_bucket, stage_name),
        INDEX idx_monitoring_stage_created (created_at),
        INDEX idx_monitoring_stage_name (stage_name)
    )",
    "CREATE TABLE IF NOT EXISTS monitoring_data_stats (
        id BIGINT PRIMARY KEY AUTO_INCREMENT,
        time_bucket VARCHAR(20) NOT NULL,
        data_type VARBINARY(1024) NOT NULL,
        `count` BIGINT DEFAULT 1,
        context_type VARBINARY(1024),
        metadata LONGTEXT,
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        UNIQUE KEY uk_time_type_context (time_bucket, data_type, context_type),
        INDEX idx_monitoring_data_created (created_at),
        INDEX idx_monitoring_data_type (data_type)
    )",
    "CREATE TABLE IF NOT EXISTS conversations (
        id BIGINT PRIMARY KEY AUTO_INCREMENT,
        title LONGTEXT,
        user_id VARBINARY(512),
        page_name VARBINARY(80) DEFAULT 'home',
        status VARCHAR(20) DEFAULT 'active',
        metadata JSON DEFAULT (JSON_OBJECT()),
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        updated_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
        INDEX idx_conversations_updated_at (updated_at),
        INDEX idx_conversations_user_page (user_id, page_name)
    )",
    "CREATE TABLE IF NOT EXISTS messages (
        id BIGINT PRIMARY KEY AUTO_INCREMENT,
        conversation_id BIGINT NOT NULL,
        parent_message_id LONGTEXT,
        role VARBINARY(256) NOT NULL,
        content LONGTEXT,
        status VARCHAR(20) NOT NULL DEFAULT 'pending',
        token_count BIGINT DEFAULT 0,
        metadata JSON DEFAULT (JSON_OBJECT()),
        latency_ms BIGINT DEFAULT 0,
        error_message LONGTEXT,
        completed_at DATETIME(6),
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        updated_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
        INDEX idx_messages_created_at (created_at),
        INDEX idx_messages_status (status),
        INDEX idx_messages_conversation_id (conversation_id),
        FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE
    )",
    "CREATE TABLE IF NOT EXISTS message_thinking (
        id BIGINT PRIMARY KEY AUTO_INCREMENT,
        message_id BIGINT NOT NULL,
        content LONGTEXT NOT NULL,
        stage LONGTEXT,
        progress DOUBLE DEFAULT 0.0,
        sequence BIGINT DEFAULT 0,
        metadata JSON DEFAULT (JSON_OBJECT()),
        created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
        INDEX idx_message_thinking_message_id (message_id),
        INDEX idx_message_thinking_stage (message_id, stage(100)),
        INDEX idx_message_thinking_sequence (message_id, sequence),
        FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE
    )",
    "CREATE TABLE IF NOT EXISTS system_settings (
        setting_key VARCHAR(128) NOT NULL,
        setting_value JSON NOT NULL,
        updated_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
        PRIMARY KEY (setting_key)
    )",
];

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS opencontext_schema_migrations (
        version BIGINT NOT NULL PRIMARY KEY,
        description VARCHAR(255) NOT NULL,
        applied_at DATETIME(6) NOT NULL
    )";

/// The migration steps: version, description, statements.
const STEPS: &[(i64, &str, &[&str])] = &[(1, "tables and indexes", V1_TABLES)];

/// Seconds to wait for another process's migration.
const LOCK_WAIT_SECS: i64 = 60;

/// Brings the database to [`SCHEMA_VERSION`]. Returns the version found before.
///
/// # Errors
/// [`storage_core::ErrorKind::Unsupported`] when the database was migrated by a newer version
/// of this crate; `Timeout` when another process holds the migration lock for over a minute;
/// server errors otherwise.
pub(crate) async fn migrate(pool: &MySqlPool, statement_timeout: Duration) -> Result<i64> {
    let t = statement_timeout;
    let mut conn = pool.acquire().await.db()?;
    // The session ends with the connection, releasing the named lock whatever happens (also
    // when a statement times out: the connection is then dropped and closed).
    conn.close_on_drop();
    // The server bounds the lock wait (LOCK_WAIT_SECS); its answer is bounded on top.
    let lock_limit = Duration::from_secs(LOCK_WAIT_SECS as u64) + t;
    let got: Option<i64> = bounded(lock_limit, "statement_timeout_ms", async {
        sqlx::query_scalar("SELECT GET_LOCK(CONCAT('opencontext_migrate.', DATABASE()), ?)")
            .bind(LOCK_WAIT_SECS)
            .fetch_one(&mut *conn)
            .await
            .db()
    })
    .await?;
    if got != Some(1) {
        return Err(StorageError::new(
            storage_core::ErrorKind::Timeout,
            format!("another process held the schema migration lock for {LOCK_WAIT_SECS} s"),
        )
        .set_retryable(true));
    }
    bounded(t, "statement_timeout_ms", async {
        conn.execute(MIGRATIONS_TABLE).await.db()
    })
    .await?;
    let found: i64 = bounded(t, "statement_timeout_ms", async {
        sqlx::query("SELECT COALESCE(MAX(version), 0) FROM opencontext_schema_migrations")
            .fetch_one(&mut *conn)
            .await
            .db()?
            .try_get(0)
            .db()
    })
    .await?;
    if found > SCHEMA_VERSION {
        return Err(StorageError::unsupported(format!(
            "the database schema is version {found}, this build understands up to \
             {SCHEMA_VERSION}; upgrade storage-mysql"
        )));
    }
    for &(version, description, statements) in STEPS {
        if version <= found {
            continue;
        }
        for stmt in statements {
            let sql = format!("{stmt} {TABLE_OPTIONS}");
            bounded(t, "statement_timeout_ms", async {
                conn.execute(sqlx::AssertSqlSafe(sql)).await.db()
            })
            .await?;
        }
        bounded(t, "statement_timeout_ms", async {
            sqlx::query(
                "INSERT INTO opencontext_schema_migrations (version, description, applied_at)
                 VALUES (?, ?, UTC_TIMESTAMP(6))",
            )
            .bind(version)
            .bind(description)
            .execute(&mut *conn)
            .await
            .db()
        })
        .await?;
    }
    bounded(t, "statement_timeout_ms", async {
        sqlx::query("SELECT RELEASE_LOCK(CONCAT('opencontext_migrate.', DATABASE()))")
            .execute(&mut *conn)
            .await
            .db()
    })
    .await?;
    Ok(found)
}
