//! [`SqliteBackend`]: opening, the backend traits, and the validation in front of every call.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use storage_core::*;

use crate::config::SqliteConfig;
use crate::pool::{self, Pool};
use crate::{queries as q, schema, search};

const NAME: &str = "sqlite";

/// The SQLite document backend. Cheap to clone (clones share the connections).
///
/// See the crate documentation for durability and the concurrency model.
#[derive(Clone)]
pub struct SqliteBackend {
    pool: Arc<Pool>,
    search: Arc<search::SearchState>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// Opens (creating when missing) the database at `config.path`, applies pending migrations
    /// and opens the connections. Runs on a blocking thread.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a bad configuration (path not UTF-8, `:memory:`, readers out
    /// of range) or a parent directory that cannot be created; [`ErrorKind::Unsupported`] for a
    /// file written by a newer schema version; SQLite errors otherwise (e.g.
    /// [`ErrorKind::DataCorrupted`] when the file is not a database).
    pub async fn open(config: SqliteConfig) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::open_blocking(config))
            .await
            .map_err(|e| StorageError::backend("opening sqlite failed").with_source(e))?
    }

    /// Same as [`SqliteBackend::open`], on the calling thread (for synchronous callers; do not
    /// call it from an async task).
    pub fn open_blocking(config: SqliteConfig) -> Result<Self> {
        Self::open_inner(&config).context(NAME, "open")
    }

    fn open_inner(config: &SqliteConfig) -> Result<Self> {
        let path_str = config.validate()?;
        let path = Path::new(path_str);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StorageError::config(format!(
                    "cannot create the directory {} for sqlite config.path",
                    parent.display()
                ))
                .with_source(e)
            })?;
        }
        let mut writer = pool::open_writer(path, config)?;
        let before = schema::migrate(&mut writer)?;
        if before < schema::SCHEMA_VERSION {
            tracing::info!(path = %path.display(), from = before, to = schema::SCHEMA_VERSION, "sqlite schema migrated");
        }
        let readers = (0..config.readers)
            .map(|_| pool::open_reader(path, config))
            .collect::<Result<Vec<_>>>()?;
        let (reopen_path, reopen_config) = (path.to_path_buf(), config.clone());
        let reopen = move || pool::open_reader(&reopen_path, &reopen_config);
        Ok(SqliteBackend {
            pool: Arc::new(Pool::new(writer, readers, reopen)),
            search: Arc::default(),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rebuilds the entity search table and its trigram index from the `entities` table, and
    /// merges the index into one segment. Needed only if the file was `VACUUM`ed by another
    /// tool (VACUUM may renumber the rowids the search table refers to) or entities were
    /// written with the triggers removed.
    pub async fn rebuild_entity_search_index(&self) -> Result<()> {
        self.pool
            .write(|tx| {
                tx.execute_batch(schema::REBUILD_ENTITY_SEARCH)
                    .map_err(crate::mapping::sql_err)
            })
            .await
            .context(NAME, "rebuild_entity_search_index")
    }

    /// Merges the segments of the entity trigram index into one (FTS5 `optimize`). Worth
    /// calling after a bulk load or many entity updates: a trigram lookup then reads one
    /// doclist per trigram instead of one per segment. Searches stay correct without it.
    pub async fn optimize_entity_search_index(&self) -> Result<()> {
        self.pool
            .write(|tx| {
                tx.execute_batch(
                    "INSERT INTO entity_search_fts(entity_search_fts) VALUES ('optimize')",
                )
                .map_err(crate::mapping::sql_err)
            })
            .await
            .context(NAME, "optimize_entity_search_index")
    }

    async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        self.pool.write(move |tx| f(tx)).await.context(NAME, op)
    }

    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        self.pool.read(f).await.context(NAME, op)
    }
}

fn check<T>(op: &'static str, r: Result<T>) -> Result<T> {
    r.context(NAME, op)
}

#[async_trait]
impl StorageBackend for SqliteBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn storage_type(&self) -> StorageType {
        StorageType::DocumentDb
    }

    async fn health_check(&self) -> Result<()> {
        self.read("health_check", |c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(|e| crate::mapping::sql_err(e).set_retryable(true))
                .map(|_| ())
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        self.pool.close().await.context(NAME, "close")
    }
}

#[async_trait]
impl DocumentStorageBackend for SqliteBackend {
    async fn insert_vaults(&self, vault: &NewVault) -> Result<i64> {
        check("insert_vaults", vault.validate())?;
        let v = vault.clone();
        self.write("insert_vaults", move |c| q::insert_vaults(c, &v))
            .await
    }

    async fn get_vaults(&self, query: &VaultQuery) -> Result<Vec<Vault>> {
        check("get_vaults", query.validate())?;
        let query = query.clone();
        self.read("get_vaults", move |c| q::get_vaults(c, &query))
            .await
    }

    async fn get_vault(&self, vault_id: i64) -> Result<Option<Vault>> {
        self.read("get_vault", move |c| q::get_vault(c, vault_id))
            .await
    }

    async fn update_vault(&self, vault_id: i64, update: &VaultUpdate) -> Result<bool> {
        check("update_vault", update.validate())?;
        let u = update.clone();
        self.write("update_vault", move |c| q::update_vault(c, vault_id, &u))
            .await
    }

    async fn get_reports(&self, limit: u32, offset: u64, is_deleted: bool) -> Result<Vec<Vault>> {
        check("get_reports", records::validate_page(limit, offset))?;
        self.read("get_reports", move |c| {
            q::get_reports(c, limit, offset, is_deleted)
        })
        .await
    }

    async fn insert_todo(&self, todo: &NewTodo) -> Result<i64> {
        check("insert_todo", todo.validate())?;
        let t = todo.clone();
        self.write("insert_todo", move |c| q::insert_todo(c, &t))
            .await
    }

    async fn get_todos(&self, query: &TodoQuery) -> Result<Vec<Todo>> {
        check("get_todos", query.validate())?;
        let query = query.clone();
        self.read("get_todos", move |c| q::get_todos(c, &query))
            .await
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
        self.write("update_todo_status", move |c| {
            q::update_todo_status(c, todo_id, status, end_time)
        })
        .await
    }

    async fn insert_tip(&self, content: &str) -> Result<i64> {
        check("insert_tip", records::validate_text("content", content))?;
        let content = content.to_owned();
        self.write("insert_tip", move |c| q::insert_tip(c, &content))
            .await
    }

    async fn get_tips(&self, query: &TipQuery) -> Result<Vec<Tip>> {
        check("get_tips", query.validate())?;
        let query = query.clone();
        self.read("get_tips", move |c| q::get_tips(c, &query)).await
    }

    async fn upsert_profile(&self, profile: &ProfileUpsert) -> Result<()> {
        check("upsert_profile", profile.validate())?;
        let p = profile.clone();
        self.write("upsert_profile", move |c| q::upsert_profile(c, &p))
            .await
    }

    async fn get_profile(&self, key: &TenantKey) -> Result<Option<Profile>> {
        check("get_profile", key.validate())?;
        let k = key.clone();
        self.read("get_profile", move |c| q::get_profile(c, &k))
            .await
    }

    async fn delete_profile(&self, key: &TenantKey) -> Result<bool> {
        check("delete_profile", key.validate())?;
        let k = key.clone();
        self.write("delete_profile", move |c| q::delete_profile(c, &k))
            .await
    }

    async fn upsert_entity(&self, entity: &EntityUpsert) -> Result<String> {
        check("upsert_entity", entity.validate())?;
        let e = entity.clone();
        self.write("upsert_entity", move |c| q::upsert_entity(c, &e))
            .await
    }

    async fn get_entity(&self, key: &TenantKey, entity_name: &str) -> Result<Option<Entity>> {
        check(
            "get_entity",
            key.validate()
                .and_then(|_| records::validate_entity_name(entity_name)),
        )?;
        let (k, n) = (key.clone(), entity_name.to_owned());
        self.read("get_entity", move |c| q::get_entity(c, &k, &n))
            .await
    }

    async fn list_entities(&self, query: &EntityQuery) -> Result<Vec<Entity>> {
        check("list_entities", query.validate())?;
        let query = query.clone();
        self.read("list_entities", move |c| q::list_entities(c, &query))
            .await
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
        let (k, t) = (key.clone(), query_text.to_owned());
        let state = Arc::clone(&self.search);
        self.read("search_entities", move |c| {
            search::search_entities(c, &state, &k, &t, limit)
        })
        .await
    }

    async fn delete_entity(&self, key: &TenantKey, entity_name: &str) -> Result<bool> {
        check(
            "delete_entity",
            key.validate()
                .and_then(|_| records::validate_entity_name(entity_name)),
        )?;
        let (k, n) = (key.clone(), entity_name.to_owned());
        self.write("delete_entity", move |c| q::delete_entity(c, &k, &n))
            .await
    }

    async fn save_monitoring_token_usage(&self, sample: &TokenUsageSample) -> Result<()> {
        check("save_monitoring_token_usage", sample.validate())?;
        let s = sample.clone();
        self.write("save_monitoring_token_usage", move |c| {
            q::save_token_usage(c, &s)
        })
        .await
    }

    async fn save_monitoring_stage_timing(&self, sample: &StageTimingSample) -> Result<()> {
        check("save_monitoring_stage_timing", sample.validate())?;
        let s = sample.clone();
        self.write("save_monitoring_stage_timing", move |c| {
            q::save_stage_timing(c, &s)
        })
        .await
    }

    async fn save_monitoring_data_stats(&self, sample: &DataStatsSample) -> Result<()> {
        check("save_monitoring_data_stats", sample.validate())?;
        let s = sample.clone();
        self.write("save_monitoring_data_stats", move |c| {
            q::save_data_stats(c, &s)
        })
        .await
    }

    async fn query_monitoring_token_usage(&self, hours: u32) -> Result<Vec<TokenUsageRecord>> {
        self.read("query_monitoring_token_usage", move |c| {
            q::query_token_usage(c, hours)
        })
        .await
    }

    async fn query_monitoring_stage_timing(&self, hours: u32) -> Result<Vec<StageTimingRecord>> {
        self.read("query_monitoring_stage_timing", move |c| {
            q::query_stage_timing(c, hours)
        })
        .await
    }

    async fn query_monitoring_data_stats(&self, hours: u32) -> Result<Vec<DataStatsRecord>> {
        self.read("query_monitoring_data_stats", move |c| {
            q::query_data_stats(c, hours)
        })
        .await
    }

    async fn query_monitoring_data_stats_by_range(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<DataStatsRecord>> {
        records::validate_time_range(&start, &end)
            .context(NAME, "query_monitoring_data_stats_by_range")?;
        self.read("query_monitoring_data_stats_by_range", move |c| {
            q::query_data_stats_by_range(c, &start, &end)
        })
        .await
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
        self.read("query_monitoring_data_stats_trend", move |c| {
            q::query_data_stats_trend(c, hours, interval_hours)
        })
        .await
    }

    async fn cleanup_old_monitoring_data(&self, days: u32) -> Result<MonitoringCleanup> {
        self.write("cleanup_old_monitoring_data", move |c| {
            q::cleanup_monitoring(c, days)
        })
        .await
    }

    async fn create_conversation(&self, conversation: &NewConversation) -> Result<Conversation> {
        check("create_conversation", conversation.validate())?;
        let c2 = conversation.clone();
        self.write("create_conversation", move |c| {
            q::create_conversation(c, &c2)
        })
        .await
    }

    async fn get_conversation(&self, conversation_id: i64) -> Result<Option<Conversation>> {
        self.read("get_conversation", move |c| {
            q::get_conversation(c, conversation_id)
        })
        .await
    }

    async fn get_conversation_list(&self, query: &ConversationQuery) -> Result<ConversationPage> {
        check("get_conversation_list", query.validate())?;
        let query = query.clone();
        self.read("get_conversation_list", move |c| {
            q::get_conversation_list(c, &query)
        })
        .await
    }

    async fn update_conversation(
        &self,
        conversation_id: i64,
        update: &ConversationUpdate,
    ) -> Result<Option<Conversation>> {
        if let Some(t) = &update.title {
            check("update_conversation", records::validate_text("title", t))?;
        }
        let u = update.clone();
        self.write("update_conversation", move |c| {
            q::update_conversation(c, conversation_id, &u)
        })
        .await
    }

    async fn get_message(
        &self,
        message_id: i64,
        include_thinking: bool,
    ) -> Result<Option<Message>> {
        self.read("get_message", move |c| {
            let tx = c.unchecked_transaction().map_err(crate::mapping::sql_err)?;
            let m = q::get_message(&tx, message_id, include_thinking)?;
            tx.finish().map_err(crate::mapping::sql_err)?;
            Ok(m)
        })
        .await
    }

    async fn create_message(&self, message: &NewMessage) -> Result<Message> {
        check("create_message", message.validate())?;
        let m = message.clone();
        self.write("create_message", move |c| q::create_message(c, &m))
            .await
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
        let u = update.clone();
        self.write("update_message", move |c| {
            q::update_message(c, message_id, &u)
        })
        .await
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
        let chunk = content_chunk.to_owned();
        self.write("append_message_content", move |c| {
            q::append_message_content(c, message_id, &chunk, token_count)
        })
        .await
    }

    async fn update_message_metadata(&self, message_id: i64, metadata: &JsonMap) -> Result<bool> {
        check(
            "update_message_metadata",
            records::validate_metadata("metadata", metadata),
        )?;
        let m = metadata.clone();
        self.write("update_message_metadata", move |c| {
            q::update_message_metadata(c, message_id, &m)
        })
        .await
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
        let e = error_message.map(str::to_owned);
        self.write("mark_message_finished", move |c| {
            q::mark_message_finished(c, message_id, status, e.as_deref())
        })
        .await
    }

    async fn get_conversation_messages(&self, conversation_id: i64) -> Result<Vec<Message>> {
        self.read("get_conversation_messages", move |c| {
            q::get_conversation_messages(c, conversation_id)
        })
        .await
    }

    async fn delete_message(&self, message_id: i64) -> Result<bool> {
        self.write("delete_message", move |c| q::delete_message(c, message_id))
            .await
    }

    async fn add_message_thinking(&self, thinking: &NewThinking) -> Result<i64> {
        check("add_message_thinking", thinking.validate())?;
        let t = thinking.clone();
        self.write("add_message_thinking", move |c| {
            q::add_message_thinking(c, &t)
        })
        .await
    }

    async fn get_message_thinking(&self, message_id: i64) -> Result<Vec<MessageThinking>> {
        self.read("get_message_thinking", move |c| {
            q::get_message_thinking(c, message_id)
        })
        .await
    }

    async fn clear_message_thinking(&self, message_id: i64) -> Result<u64> {
        self.write("clear_message_thinking", move |c| {
            q::clear_message_thinking(c, message_id)
        })
        .await
    }
}
