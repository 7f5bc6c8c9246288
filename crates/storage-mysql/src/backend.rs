//! [`MysqlBackend`]: opening, the backend traits, transactions with retry, and the validation
//! in front of every call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::MySqlPool;
use sqlx::pool::PoolConnection;
use storage_core::*;

use crate::config::MysqlConfig;
use crate::error::{SqlxResultExt, answer_lost, is_lock_error, timed_out};
use crate::{pool, queries as q, schema, search};

const NAME: &str = "mysql";

/// The MySQL 8 / MariaDB document backend. Cheap to clone (clones share the pool).
///
/// Every operation that writes more than one statement (or reads several for one answer)
/// runs in one transaction: on any error it is rolled back, so no partial rows remain.
/// Deadlocks and lock wait timeouts roll the transaction back on the server; such
/// transactions are retried up to `max_retries` times with exponential backoff.
#[derive(Clone)]
pub struct MysqlBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool: MySqlPool,
    database: String,
    closed: AtomicBool,
    max_retries: u32,
    retry_backoff_ms: u64,
    max_backoff_ms: u64,
    /// Bound of one attempt of a call once it holds a connection (`statement_timeout_ms`).
    statement_timeout: Duration,
    /// The server's `max_allowed_packet`, in bytes: the largest statement it accepts.
    max_packet: u64,
}

/// Bytes of a statement besides its large values: SQL text, keys, numbers, framing.
const STATEMENT_OVERHEAD: usize = 8 * 1024;

/// Length of the JSON text of a value (as stored).
fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    crate::mapping::json_text(value).map_or(0, |s| s.len())
}

fn opt_len(s: Option<&str>) -> usize {
    s.map_or(0, str::len)
}

impl std::fmt::Debug for MysqlBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlBackend")
            .field("database", &self.inner.database)
            .field("pool_size", &self.inner.pool.size())
            .finish_non_exhaustive()
    }
}

/// What a call does to stored data, which decides the outcome of its failures (see
/// `docs.md`, "Timeouts and ambiguous writes").
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Reads only: a failure changed nothing.
    Read,
    /// A write that gives the same stored state when repeated (an upsert by a unique key, an
    /// update or delete by id): an unknown outcome stays retryable.
    Idempotent,
    /// A write that must not be repeated blindly (an insert allocating an auto-increment id,
    /// an increment, an append): an unknown outcome is not retryable.
    NotIdempotent,
}

impl Effect {
    /// Marks `err` as of unknown outcome when the request may have reached the server
    /// (`sent`) and its answer was lost (`lost`: a broken connection or a timeout).
    fn classify(self, err: StorageError, sent: bool, lost: bool) -> StorageError {
        if self == Effect::Read || !sent || !lost {
            return err;
        }
        err.with_outcome_unknown(self == Effect::Idempotent)
    }
}

/// Whether a failed attempt may be retried by the backend itself: only deadlocks and lock
/// wait timeouts (the server rolled the work back), and never a write of unknown outcome.
fn retry_internally(err: &StorageError) -> bool {
    is_lock_error(err) && err.outcome() == WriteOutcome::NotApplied
}

/// Runs `$body` (an expression using `$tx: &mut Transaction` and `?`) in a transaction,
/// committing on success; retried from the start after a deadlock or lock wait timeout.
///
/// Acquiring is bounded by `acquire_timeout_ms`; the statements and the commit together by
/// `statement_timeout_ms`. A failure before the commit was sent rolled everything back (the
/// server rolls back the transaction of a lost connection), so only a lost answer to the
/// commit makes the outcome unknown.
macro_rules! in_tx {
    ($self:ident, $op:literal, $effect:expr, |$tx:ident| $body:expr) => {{
        $self.check_open($op)?;
        let effect: Effect = $effect;
        let mut attempt = 0u32;
        loop {
            let commit_sent = AtomicBool::new(false);
            let outcome: Result<_> = async {
                let mut conn: PoolConnection<sqlx::MySql> = $self.inner.pool.acquire().await.db()?;
                let limit = $self.inner.statement_timeout;
                let timed = tokio::time::timeout(limit, async {
                    let mut $tx = sqlx::Connection::begin(&mut *conn).await.db()?;
                    let value = $body;
                    commit_sent.store(true, Ordering::Release);
                    $tx.commit().await.db()?;
                    Ok(value)
                })
                .await;
                settle(&mut conn, timed, limit, |e, lost| {
                    effect.classify(e, commit_sent.load(Ordering::Acquire), lost)
                })
            }
            .await;
            match outcome {
                Err(e) if attempt < $self.inner.max_retries && retry_internally(&e) => {
                    tracing::debug!(backend = NAME, operation = $op, attempt, error = %e, "retrying transaction");
                    tokio::time::sleep($self.backoff(attempt)).await;
                    attempt += 1;
                }
                other => break other.context(NAME, $op),
            }
        }
    }};
}

/// Runs `$body` (one write statement, using `$c: &mut PoolConnection`) in autocommit mode:
/// InnoDB makes a single statement atomic, so no explicit transaction (two round trips) is
/// needed. Retried like [`in_tx!`] after a deadlock or lock wait timeout, which roll the
/// statement back. Bounded like [`in_tx!`]; once the connection is acquired the statement
/// counts as sent, so a lost answer or a timeout makes its outcome unknown.
macro_rules! autocommit {
    ($self:ident, $op:literal, $effect:expr, |$c:ident| $body:expr) => {{
        $self.check_open($op)?;
        let effect: Effect = $effect;
        let mut attempt = 0u32;
        loop {
            let outcome: Result<_> = async {
                let mut conn: PoolConnection<sqlx::MySql> = $self.inner.pool.acquire().await.db()?;
                let limit = $self.inner.statement_timeout;
                let timed = tokio::time::timeout(limit, async {
                    let $c: &mut sqlx::MySqlConnection = &mut conn;
                    Ok($body)
                })
                .await;
                settle(&mut conn, timed, limit, |e, lost| effect.classify(e, true, lost))
            }
            .await;
            match outcome {
                Err(e) if attempt < $self.inner.max_retries && retry_internally(&e) => {
                    tracing::debug!(backend = NAME, operation = $op, attempt, error = %e, "retrying statement");
                    tokio::time::sleep($self.backoff(attempt)).await;
                    attempt += 1;
                }
                other => break other.context(NAME, $op),
            }
        }
    }};
}

/// Runs `$body` (reads, using `$c: &mut PoolConnection`) on one pooled connection, bounded
/// like [`in_tx!`].
macro_rules! on_conn {
    ($self:ident, $op:literal, |$c:ident| $body:expr) => {{
        $self.check_open($op)?;
        let outcome: Result<_> = async {
            let mut conn: PoolConnection<sqlx::MySql> = $self.inner.pool.acquire().await.db()?;
            let limit = $self.inner.statement_timeout;
            let timed = tokio::time::timeout(limit, async {
                let $c: &mut sqlx::MySqlConnection = &mut conn;
                Ok($body)
            })
            .await;
            settle(&mut conn, timed, limit, |e, _| e)
        }
        .await;
        outcome.context(NAME, $op)
    }};
}

/// The result of a bounded attempt on `conn`: a timeout becomes a `Timeout` error naming
/// `statement_timeout_ms`; after a timeout or a lost answer the connection is closed instead
/// of going back to the pool (sqlx would ping it there, which waits for as long as the server
/// does not answer). `classify(err, lost)` adds the write outcome.
fn settle<T>(
    conn: &mut PoolConnection<sqlx::MySql>,
    timed: std::result::Result<Result<T>, tokio::time::error::Elapsed>,
    limit: Duration,
    classify: impl FnOnce(StorageError, bool) -> StorageError,
) -> Result<T> {
    let (err, lost) = match timed {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(e)) => {
            let lost = answer_lost(&e);
            (e, lost)
        }
        Err(_) => (timed_out("statement_timeout_ms", limit.as_millis()), true),
    };
    if lost {
        conn.close_on_drop();
    }
    Err(classify(err, lost))
}

impl MysqlBackend {
    /// Connects, creates the database when missing (`create_database`), applies pending
    /// migrations and opens the pool.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a bad configuration; [`ErrorKind::Unavailable`] when the
    /// server cannot be reached; [`ErrorKind::PermissionDenied`] for refused credentials;
    /// [`ErrorKind::Unsupported`] for a database migrated by a newer version of this crate.
    pub async fn open(config: MysqlConfig) -> Result<Self> {
        Self::open_inner(&config).await.context(NAME, "open")
    }

    async fn open_inner(config: &MysqlConfig) -> Result<Self> {
        config.validate()?;
        let (pool, database) = pool::open_pool(config).await?;
        let opened = Self::prepare(&pool, config).await;
        let (before, max_packet) = match opened {
            Ok(v) => v,
            Err(e) => {
                // Dropped, not `close`d: closing waits for checked-out connections, which a
                // server that stopped answering may hold.
                drop(pool);
                return Err(e);
            }
        };
        if before < schema::SCHEMA_VERSION {
            tracing::info!(database = %database, from = before, to = schema::SCHEMA_VERSION, "mysql schema migrated");
        }
        Ok(MysqlBackend {
            inner: Arc::new(Inner {
                pool,
                database,
                closed: AtomicBool::new(false),
                max_retries: config.max_retries,
                retry_backoff_ms: config.retry_backoff_ms,
                max_backoff_ms: config.max_backoff_ms,
                statement_timeout: config.statement_timeout(),
                max_packet,
            }),
        })
    }

    /// Migrates and reads `max_allowed_packet`; each statement bounded by
    /// `statement_timeout_ms`.
    async fn prepare(pool: &MySqlPool, config: &MysqlConfig) -> Result<(i64, u64)> {
        let before = schema::migrate(pool, config.statement_timeout()).await?;
        let mut c = pool.acquire().await.db()?;
        let read = sqlx::query_scalar("SELECT @@max_allowed_packet").fetch_one(&mut *c);
        let max_packet: u64 = match tokio::time::timeout(config.statement_timeout(), read).await {
            Ok(v) => v.db()?,
            Err(_) => {
                c.close_on_drop();
                return Err(timed_out(
                    "statement_timeout_ms",
                    config.statement_timeout().as_millis(),
                ));
            }
        };
        Ok((before, max_packet))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        crate::config::backoff(
            self.inner.retry_backoff_ms,
            self.inner.max_backoff_ms,
            attempt,
        )
    }

    /// The database (schema) name in use.
    pub fn database(&self) -> &str {
        &self.inner.database
    }

    fn check_open(&self, op: &'static str) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StorageError::new(
                ErrorKind::NotInitialized,
                "the backend is closed",
            ))
            .context(NAME, op);
        }
        Ok(())
    }
}

impl MysqlBackend {
    /// Refuses a write whose statement would exceed the server's `max_allowed_packet`: the
    /// server would drop the connection, which reads as a (retryable) lost connection.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming `what`, the size and the server's limit.
    fn check_packet(&self, op: &'static str, what: &str, value_bytes: usize) -> Result<()> {
        let size = value_bytes.saturating_add(STATEMENT_OVERHEAD) as u64;
        if size > self.inner.max_packet {
            return Err(StorageError::invalid_input(format!(
                "{what} make a statement of about {size} bytes, above the server's \
                 max_allowed_packet ({} bytes); store less or raise max_allowed_packet \
                 (texts up to {} bytes need it above that)",
                self.inner.max_packet,
                records::MAX_TEXT_BYTES
            )))
            .context(NAME, op);
        }
        Ok(())
    }
}

fn check<T>(op: &'static str, r: Result<T>) -> Result<T> {
    r.context(NAME, op)
}

#[async_trait]
impl StorageBackend for MysqlBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn storage_type(&self) -> StorageType {
        StorageType::DocumentDb
    }

    async fn health_check(&self) -> Result<()> {
        on_conn!(self, "health_check", |c| {
            sqlx::query("SELECT 1").execute(&mut *c).await.db()?;
        })
    }

    async fn close(&self) -> Result<()> {
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            self.inner.pool.close().await;
        }
        Ok(())
    }
}

#[async_trait]
impl DocumentStorageBackend for MysqlBackend {
    async fn insert_vaults(&self, vault: &NewVault) -> Result<i64> {
        check("insert_vaults", vault.validate())?;
        self.check_packet(
            "insert_vaults",
            "title, summary, content and tags",
            vault.title.len()
                + vault.summary.len()
                + vault.content.len()
                + opt_len(vault.tags.as_deref()),
        )?;
        in_tx!(self, "insert_vaults", Effect::NotIdempotent, |tx| {
            q::insert_vaults(&mut tx, vault).await?
        })
    }

    async fn get_vaults(&self, query: &VaultQuery) -> Result<Vec<Vault>> {
        check("get_vaults", query.validate())?;
        on_conn!(self, "get_vaults", |c| q::get_vaults(c, query).await?)
    }

    async fn get_vault(&self, vault_id: i64) -> Result<Option<Vault>> {
        on_conn!(self, "get_vault", |c| q::get_vault(c, vault_id).await?)
    }

    async fn update_vault(&self, vault_id: i64, update: &VaultUpdate) -> Result<bool> {
        check("update_vault", update.validate())?;
        self.check_packet(
            "update_vault",
            "title, summary, content and tags",
            opt_len(update.title.as_deref())
                + opt_len(update.summary.as_deref())
                + opt_len(update.content.as_deref())
                + opt_len(update.tags.as_ref().and_then(|t| t.as_deref())),
        )?;
        in_tx!(self, "update_vault", Effect::Idempotent, |tx| {
            q::update_vault(&mut tx, vault_id, update).await?
        })
    }

    async fn get_reports(&self, limit: u32, offset: u64, is_deleted: bool) -> Result<Vec<Vault>> {
        check("get_reports", records::validate_page(limit, offset))?;
        on_conn!(self, "get_reports", |c| {
            q::get_reports(c, limit, offset, is_deleted).await?
        })
    }

    async fn insert_todo(&self, todo: &NewTodo) -> Result<i64> {
        check("insert_todo", todo.validate())?;
        self.check_packet(
            "insert_todo",
            "content, assignee and reason",
            todo.content.len()
                + opt_len(todo.assignee.as_deref())
                + opt_len(todo.reason.as_deref()),
        )?;
        autocommit!(self, "insert_todo", Effect::NotIdempotent, |c| {
            q::insert_todo(c, todo).await?
        })
    }

    async fn get_todos(&self, query: &TodoQuery) -> Result<Vec<Todo>> {
        check("get_todos", query.validate())?;
        on_conn!(self, "get_todos", |c| q::get_todos(c, query).await?)
    }

    async fn update_todo_status(
        &self,
        todo_id: i64,
        status: i64,
        end_time: Option<Timestamp>,
    ) -> Result<bool> {
        check(
            "update_todo_status",
            records::validate_todo_status_update(status, end_time.as_ref()),
        )?;
        autocommit!(self, "update_todo_status", Effect::Idempotent, |c| {
            q::update_todo_status(c, todo_id, status, end_time).await?
        })
    }

    async fn insert_tip(&self, content: &str) -> Result<i64> {
        check("insert_tip", records::validate_text("content", content))?;
        self.check_packet("insert_tip", "content", content.len())?;
        autocommit!(self, "insert_tip", Effect::NotIdempotent, |c| {
            q::insert_tip(c, content).await?
        })
    }

    async fn get_tips(&self, query: &TipQuery) -> Result<Vec<Tip>> {
        check("get_tips", query.validate())?;
        on_conn!(self, "get_tips", |c| q::get_tips(c, query).await?)
    }

    async fn upsert_profile(&self, profile: &ProfileUpsert) -> Result<()> {
        check("upsert_profile", profile.validate())?;
        self.check_packet(
            "upsert_profile",
            "content, summary, keywords, entities and metadata",
            profile.content.len()
                + opt_len(profile.summary.as_deref())
                + json_len(&profile.keywords)
                + json_len(&profile.entities)
                + json_len(&profile.metadata),
        )?;
        autocommit!(self, "upsert_profile", Effect::Idempotent, |c| {
            q::upsert_profile(c, profile).await?
        })
    }

    async fn get_profile(&self, key: &TenantKey) -> Result<Option<Profile>> {
        check("get_profile", key.validate())?;
        on_conn!(self, "get_profile", |c| q::get_profile(c, key).await?)
    }

    async fn delete_profile(&self, key: &TenantKey) -> Result<bool> {
        check("delete_profile", key.validate())?;
        autocommit!(self, "delete_profile", Effect::Idempotent, |c| {
            q::delete_profile(c, key).await?
        })
    }

    async fn upsert_entity(&self, entity: &EntityUpsert) -> Result<String> {
        check("upsert_entity", entity.validate())?;
        self.check_packet(
            "upsert_entity",
            "content, summary, keywords, aliases and metadata",
            entity.content.len()
                + opt_len(entity.summary.as_deref())
                + json_len(&entity.keywords)
                + json_len(&entity.aliases)
                + json_len(&entity.metadata),
        )?;
        in_tx!(self, "upsert_entity", Effect::Idempotent, |tx| {
            q::upsert_entity(&mut tx, entity).await?
        })
    }

    async fn get_entity(&self, key: &TenantKey, entity_name: &str) -> Result<Option<Entity>> {
        check(
            "get_entity",
            key.validate()
                .and_then(|_| records::validate_entity_name(entity_name)),
        )?;
        on_conn!(self, "get_entity", |c| {
            q::get_entity(c, key, entity_name).await?
        })
    }

    async fn list_entities(&self, query: &EntityQuery) -> Result<Vec<Entity>> {
        check("list_entities", query.validate())?;
        on_conn!(self, "list_entities", |c| q::list_entities(c, query)
            .await?)
    }

    async fn search_entities(
        &self,
        key: &TenantKey,
        query_text: &str,
        limit: u32,
    ) -> Result<Vec<Entity>> {
        check(
            "search_entities",
            key.validate()
                .and_then(|_| records::validate_page(limit, 0))
                .and_then(|_| records::validate_text("query_text", query_text)),
        )?;
        // The escaped pattern (at most twice the query) is bound once per searched column.
        self.check_packet(
            "search_entities",
            "query_text (bound for name, content and aliases)",
            query_text.len().saturating_mul(6),
        )?;
        on_conn!(self, "search_entities", |c| {
            search::search_entities(c, key, query_text, limit).await?
        })
    }

    async fn delete_entity(&self, key: &TenantKey, entity_name: &str) -> Result<bool> {
        check(
            "delete_entity",
            key.validate()
                .and_then(|_| records::validate_entity_name(entity_name)),
        )?;
        autocommit!(self, "delete_entity", Effect::Idempotent, |c| {
            q::delete_entity(c, key, entity_name).await?
        })
    }

    async fn save_monitoring_token_usage(&self, sample: &TokenUsageSample) -> Result<()> {
        check("save_monitoring_token_usage", sample.validate())?;
        autocommit!(
            self,
            "save_monitoring_token_usage",
            Effect::NotIdempotent,
            |c| q::save_token_usage(c, sample).await?
        )
    }

    async fn save_monitoring_stage_timing(&self, sample: &StageTimingSample) -> Result<()> {
        check("save_monitoring_stage_timing", sample.validate())?;
        autocommit!(
            self,
            "save_monitoring_stage_timing",
            Effect::NotIdempotent,
            |c| q::save_stage_timing(c, sample).await?
        )
    }

    async fn save_monitoring_data_stats(&self, sample: &DataStatsSample) -> Result<()> {
        check("save_monitoring_data_stats", sample.validate())?;
        in_tx!(
            self,
            "save_monitoring_data_stats",
            Effect::NotIdempotent,
            |tx| { q::save_data_stats(&mut tx, sample).await? }
        )
    }

    async fn query_monitoring_token_usage(&self, hours: u32) -> Result<Vec<TokenUsageRecord>> {
        on_conn!(self, "query_monitoring_token_usage", |c| {
            q::query_token_usage(c, hours).await?
        })
    }

    async fn query_monitoring_stage_timing(&self, hours: u32) -> Result<Vec<StageTimingRecord>> {
        on_conn!(self, "query_monitoring_stage_timing", |c| {
            q::query_stage_timing(c, hours).await?
        })
    }

    async fn query_monitoring_data_stats(&self, hours: u32) -> Result<Vec<DataStatsRecord>> {
        on_conn!(self, "query_monitoring_data_stats", |c| {
            q::query_data_stats(c, hours).await?
        })
    }

    async fn query_monitoring_data_stats_by_range(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<DataStatsRecord>> {
        records::validate_time_range(&start, &end)
            .context(NAME, "query_monitoring_data_stats_by_range")?;
        on_conn!(self, "query_monitoring_data_stats_by_range", |c| {
            q::query_data_stats_by_range(c, &start, &end).await?
        })
    }

    async fn query_monitoring_data_stats_trend(
        &self,
        hours: u32,
        interval_hours: u32,
    ) -> Result<Vec<DataStatsTrendRecord>> {
        if interval_hours == 0 {
            return Err(StorageError::invalid_input(
                "interval_hours is 0, it must be at least 1",
            ))
            .context(NAME, "query_monitoring_data_stats_trend");
        }
        on_conn!(self, "query_monitoring_data_stats_trend", |c| {
            q::query_data_stats_trend(c, hours, interval_hours).await?
        })
    }

    async fn cleanup_old_monitoring_data(&self, days: u32) -> Result<MonitoringCleanup> {
        in_tx!(
            self,
            "cleanup_old_monitoring_data",
            Effect::Idempotent,
            |tx| { q::cleanup_monitoring(&mut tx, days).await? }
        )
    }

    async fn create_conversation(&self, conversation: &NewConversation) -> Result<Conversation> {
        check("create_conversation", conversation.validate())?;
        self.check_packet(
            "create_conversation",
            "title and metadata",
            opt_len(conversation.title.as_deref()) + json_len(&conversation.metadata),
        )?;
        in_tx!(self, "create_conversation", Effect::NotIdempotent, |tx| {
            q::create_conversation(&mut tx, conversation).await?
        })
    }

    async fn get_conversation(&self, conversation_id: i64) -> Result<Option<Conversation>> {
        on_conn!(self, "get_conversation", |c| {
            q::get_conversation(c, conversation_id).await?
        })
    }

    async fn get_conversation_list(&self, query: &ConversationQuery) -> Result<ConversationPage> {
        check("get_conversation_list", query.validate())?;
        in_tx!(self, "get_conversation_list", Effect::Read, |tx| {
            q::get_conversation_list(&mut tx, query).await?
        })
    }

    async fn update_conversation(
        &self,
        conversation_id: i64,
        update: &ConversationUpdate,
    ) -> Result<Option<Conversation>> {
        if let Some(t) = &update.title {
            check("update_conversation", records::validate_text("title", t))?;
        }
        in_tx!(self, "update_conversation", Effect::Idempotent, |tx| {
            q::update_conversation(&mut tx, conversation_id, update).await?
        })
    }

    async fn get_message(
        &self,
        message_id: i64,
        include_thinking: bool,
    ) -> Result<Option<Message>> {
        in_tx!(self, "get_message", Effect::Read, |tx| {
            q::get_message(&mut tx, message_id, include_thinking).await?
        })
    }

    async fn create_message(&self, message: &NewMessage) -> Result<Message> {
        check("create_message", message.validate())?;
        self.check_packet(
            "create_message",
            "content, parent_message_id and metadata",
            message.content.len()
                + opt_len(message.parent_message_id.as_deref())
                + json_len(&message.metadata),
        )?;
        in_tx!(self, "create_message", Effect::NotIdempotent, |tx| {
            q::create_message(&mut tx, message).await?
        })
    }

    async fn update_message(
        &self,
        message_id: i64,
        update: &MessageUpdate,
    ) -> Result<Option<Message>> {
        check(
            "update_message",
            records::validate_text("new_content", &update.new_content).and_then(|_| {
                update
                    .token_count
                    .map_or(Ok(0), |t| records::validate_count("token_count", t))
                    .map(|_| ())
            }),
        )?;
        self.check_packet("update_message", "new_content", update.new_content.len())?;
        in_tx!(self, "update_message", Effect::Idempotent, |tx| {
            q::update_message(&mut tx, message_id, update).await?
        })
    }

    async fn append_message_content(
        &self,
        message_id: i64,
        content_chunk: &str,
        token_count: u64,
    ) -> Result<bool> {
        check(
            "append_message_content",
            records::validate_text("content_chunk", content_chunk)
                .and_then(|_| records::validate_count("token_count", token_count).map(|_| ())),
        )?;
        self.check_packet(
            "append_message_content",
            "content_chunk",
            content_chunk.len(),
        )?;
        in_tx!(
            self,
            "append_message_content",
            Effect::NotIdempotent,
            |tx| {
                q::append_message_content(&mut tx, message_id, content_chunk, token_count).await?
            }
        )
    }

    async fn update_message_metadata(&self, message_id: i64, metadata: &JsonMap) -> Result<bool> {
        check(
            "update_message_metadata",
            records::validate_metadata("metadata", metadata),
        )?;
        self.check_packet("update_message_metadata", "metadata", json_len(metadata))?;
        autocommit!(self, "update_message_metadata", Effect::Idempotent, |c| {
            q::update_message_metadata(c, message_id, metadata).await?
        })
    }

    async fn mark_message_finished(
        &self,
        message_id: i64,
        status: FinishStatus,
        error_message: Option<&str>,
    ) -> Result<bool> {
        if let Some(e) = error_message {
            check(
                "mark_message_finished",
                records::validate_text("error_message", e),
            )?;
        }
        in_tx!(self, "mark_message_finished", Effect::Idempotent, |tx| {
            q::mark_message_finished(&mut tx, message_id, status, error_message).await?
        })
    }

    async fn get_conversation_messages(&self, conversation_id: i64) -> Result<Vec<Message>> {
        in_tx!(self, "get_conversation_messages", Effect::Read, |tx| {
            q::get_conversation_messages(&mut tx, conversation_id).await?
        })
    }

    async fn delete_message(&self, message_id: i64) -> Result<bool> {
        autocommit!(self, "delete_message", Effect::Idempotent, |c| {
            q::delete_message(c, message_id).await?
        })
    }

    async fn add_message_thinking(&self, thinking: &NewThinking) -> Result<i64> {
        check("add_message_thinking", thinking.validate())?;
        self.check_packet(
            "add_message_thinking",
            "content, stage and metadata",
            thinking.content.len()
                + opt_len(thinking.stage.as_deref())
                + json_len(&thinking.metadata),
        )?;
        in_tx!(self, "add_message_thinking", Effect::NotIdempotent, |tx| {
            q::add_message_thinking(&mut tx, thinking).await?
        })
    }

    async fn get_message_thinking(&self, message_id: i64) -> Result<Vec<MessageThinking>> {
        on_conn!(self, "get_message_thinking", |c| {
            q::get_message_thinking(c, message_id).await?
        })
    }

    async fn clear_message_thinking(&self, message_id: i64) -> Result<u64> {
        autocommit!(self, "clear_message_thinking", Effect::Idempotent, |c| {
            q::clear_message_thinking(c, message_id).await?
        })
    }
}
