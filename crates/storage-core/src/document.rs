//! The document (relational) backend trait: profiles, entities, vaults, todos, tips,
//! conversations, messages, message thinking and monitoring counters.
//!
//! Operation names are those of the original's `IDocumentStorageBackend` and of the
//! non-abstract methods its SQLite and MySQL backends implement, so users of the original find
//! them. Where the original took many keyword arguments, the operation takes a request struct
//! from [`crate::model::records`].
//!
//! Conventions for every operation:
//! - failures are errors, never `false`/`None`: `Option` means "maybe absent", `bool` means
//!   "did it exist / did something change", `u64` counts rows;
//! - bad arguments (an empty `user_id`, a `limit` above [`crate::MAX_LIST_LIMIT`], an unknown
//!   status) fail with [`crate::ErrorKind::InvalidInput`] naming the field and the bound, and
//!   nothing is written;
//! - when a write returns `Ok`, it is committed (durability per backend configuration);
//! - after [`crate::StorageBackend::close`], calls fail with [`crate::ErrorKind::NotInitialized`];
//! - a busy database fails with a retryable error ([`crate::StorageError::is_retryable`]).

use async_trait::async_trait;

use crate::backend::StorageBackend;
use crate::error::Result;
use crate::model::JsonMap;
use crate::model::records::*;
use crate::time::Timestamp;

/// A relational store of the records of [`crate::model::records`].
#[async_trait]
pub trait DocumentStorageBackend: StorageBackend {
    // ----- vaults ----------------------------------------------------------------------------

    /// Inserts a vault document (timestamps = now). Returns its id.
    ///
    /// # Errors
    /// `InvalidInput` for an empty `document_type` or oversized text; `NotFound` when
    /// `parent_id` names no vault.
    async fn insert_vaults(&self, vault: &NewVault) -> Result<i64>;

    /// Vaults matching the query, newest `created_at` first.
    async fn get_vaults(&self, query: &VaultQuery) -> Result<Vec<Vault>>;

    /// One vault by id (soft-deleted ones included), `None` when absent.
    async fn get_vault(&self, vault_id: i64) -> Result<Option<Vault>>;

    /// Writes the `Some` fields of `update` and stamps `updated_at`. Returns whether the vault
    /// exists.
    ///
    /// # Errors
    /// `InvalidInput` when `update` sets no field.
    async fn update_vault(&self, vault_id: i64, update: &VaultUpdate) -> Result<bool>;

    /// The original's "reports", newest first. Which `document_type`s count follows the
    /// original backend of the same kind: on SQLite every type except `Note`, on MySQL only
    /// `report` (compared case-insensitively). Each backend's `docs.md` states its rule.
    async fn get_reports(&self, limit: u32, offset: u64, is_deleted: bool) -> Result<Vec<Vault>>;

    // ----- todos and tips ----------------------------------------------------------------------

    /// Inserts a todo (`start_time` defaults to now). Returns its id.
    ///
    /// # Errors
    /// `InvalidInput` for an unknown status (see [`todo_status`]) or a negative urgency.
    async fn insert_todo(&self, todo: &NewTodo) -> Result<i64>;

    /// Todos matching the query, by urgency then creation time, both descending.
    async fn get_todos(&self, query: &TodoQuery) -> Result<Vec<Todo>>;

    /// Sets a todo's status and `end_time`; completing without an `end_time` stamps now.
    /// Returns whether the todo exists.
    ///
    /// # Errors
    /// `InvalidInput` for an unknown status.
    async fn update_todo_status(
        &self,
        todo_id: i64,
        status: i64,
        end_time: Option<Timestamp>,
    ) -> Result<bool>;

    /// Inserts a tip (`created_at` = now). Returns its id.
    async fn insert_tip(&self, content: &str) -> Result<i64>;

    /// Tips matching the query, newest first.
    async fn get_tips(&self, query: &TipQuery) -> Result<Vec<Tip>>;

    // ----- profiles ----------------------------------------------------------------------------

    /// Inserts or replaces the profile of a tenant triple. `created_at` survives a replace;
    /// `updated_at` is now.
    ///
    /// # Errors
    /// `InvalidInput` for an empty or control-character key part, importance outside 0 to 10,
    /// or oversized text.
    async fn upsert_profile(&self, profile: &ProfileUpsert) -> Result<()>;

    /// The profile of a tenant triple, `None` when absent.
    async fn get_profile(&self, key: &TenantKey) -> Result<Option<Profile>>;

    /// Deletes the profile of a tenant triple. Returns whether it existed.
    async fn delete_profile(&self, key: &TenantKey) -> Result<bool>;

    // ----- entities ----------------------------------------------------------------------------

    /// Inserts or replaces an entity, unique by tenant triple and `entity_name`. A new entity
    /// gets a fresh UUID v4 id; a replaced one keeps its id and `created_at`. Returns the id.
    ///
    /// # Errors
    /// `InvalidInput` for an empty key part or name, or oversized text.
    async fn upsert_entity(&self, entity: &EntityUpsert) -> Result<String>;

    /// One entity by tenant triple and name, `None` when absent.
    async fn get_entity(&self, key: &TenantKey, entity_name: &str) -> Result<Option<Entity>>;

    /// A tenant's entities (optionally of one type), most recently updated first.
    async fn list_entities(&self, query: &EntityQuery) -> Result<Vec<Entity>>;

    /// A tenant's entities whose name, content or aliases contain `query_text` (a literal
    /// substring, ASCII case-insensitive; `%` and `_` are not wildcards), most recently updated
    /// first, at most `limit` (the original's default is 20). An empty `query_text` matches
    /// every entity of the tenant.
    async fn search_entities(
        &self,
        key: &TenantKey,
        query_text: &str,
        limit: u32,
    ) -> Result<Vec<Entity>>;

    /// Deletes one entity. Returns whether it existed.
    async fn delete_entity(&self, key: &TenantKey, entity_name: &str) -> Result<bool>;

    // ----- monitoring --------------------------------------------------------------------------

    /// Adds token counts to the `(hour bucket, model)` row.
    async fn save_monitoring_token_usage(&self, sample: &TokenUsageSample) -> Result<()>;

    /// Folds one stage duration into the `(hour bucket, stage_name)` row.
    async fn save_monitoring_stage_timing(&self, sample: &StageTimingSample) -> Result<()>;

    /// Adds a count to the `(hour bucket, data_type, context_type)` row (a `None` context type
    /// is its own group).
    async fn save_monitoring_data_stats(&self, sample: &DataStatsSample) -> Result<()>;

    /// Token usage rows of the last `hours` hours (counting the current hour's bucket), newest
    /// bucket first.
    async fn query_monitoring_token_usage(&self, hours: u32) -> Result<Vec<TokenUsageRecord>>;

    /// Stage timing rows of the last `hours` hours, newest bucket first.
    async fn query_monitoring_stage_timing(&self, hours: u32) -> Result<Vec<StageTimingRecord>>;

    /// Data statistics of the last `hours` hours summed per `(data_type, context_type)`,
    /// ordered by data type then context type.
    async fn query_monitoring_data_stats(&self, hours: u32) -> Result<Vec<DataStatsRecord>>;

    /// Data statistics of the hour buckets from `start`'s to `end`'s (inclusive) summed per
    /// `(data_type, context_type)`.
    ///
    /// # Errors
    /// `InvalidInput` when `end` is before `start`.
    async fn query_monitoring_data_stats_by_range(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<DataStatsRecord>>;

    /// Data statistics of the last `hours` hours summed per interval of `interval_hours` hours
    /// (aligned to the Unix epoch, in UTC) and `(data_type, context_type)`, oldest interval
    /// first.
    ///
    /// # Errors
    /// `InvalidInput` when `interval_hours` is 0.
    async fn query_monitoring_data_stats_trend(
        &self,
        hours: u32,
        interval_hours: u32,
    ) -> Result<Vec<DataStatsTrendRecord>>;

    /// Deletes monitoring rows whose bucket is older than `days` days. Returns the counts.
    async fn cleanup_old_monitoring_data(&self, days: u32) -> Result<MonitoringCleanup>;

    // ----- conversations -----------------------------------------------------------------------

    /// Creates an active conversation. Returns it as stored.
    async fn create_conversation(&self, conversation: &NewConversation) -> Result<Conversation>;

    /// One conversation by id (deleted ones included), `None` when absent.
    async fn get_conversation(&self, conversation_id: i64) -> Result<Option<Conversation>>;

    /// A page of conversations, most recently updated first, and the total matching.
    async fn get_conversation_list(&self, query: &ConversationQuery) -> Result<ConversationPage>;

    /// Writes the `Some` fields of `update` and stamps `updated_at` (an empty update changes
    /// nothing). Returns the conversation as stored, `None` when absent.
    async fn update_conversation(
        &self,
        conversation_id: i64,
        update: &ConversationUpdate,
    ) -> Result<Option<Conversation>>;

    /// Marks a conversation deleted (soft delete). Returns whether it exists.
    async fn delete_conversation(&self, conversation_id: i64) -> Result<bool> {
        let update = ConversationUpdate {
            title: None,
            status: Some(ConversationStatus::Deleted),
        };
        Ok(self
            .update_conversation(conversation_id, &update)
            .await?
            .is_some())
    }

    // ----- messages ----------------------------------------------------------------------------

    /// One message by id, with its thinking records when `include_thinking`; `None` when absent.
    async fn get_message(&self, message_id: i64, include_thinking: bool)
    -> Result<Option<Message>>;

    /// Creates a message and touches its conversation's `updated_at`. Returns it as stored.
    ///
    /// # Errors
    /// `NotFound` when the conversation does not exist; `InvalidInput` for an empty role.
    async fn create_message(&self, message: &NewMessage) -> Result<Message>;

    /// Creates an empty message in status `streaming`.
    async fn create_streaming_message(
        &self,
        conversation_id: i64,
        role: &str,
        parent_message_id: Option<&str>,
        metadata: Option<&JsonMap>,
    ) -> Result<Message> {
        let message = NewMessage {
            conversation_id,
            role: role.to_owned(),
            content: String::new(),
            is_complete: false,
            token_count: 0,
            parent_message_id: parent_message_id.map(str::to_owned),
            metadata: metadata.cloned().unwrap_or_default(),
        };
        self.create_message(&message).await
    }

    /// Replaces a message's content (and optionally status and token count), touching the
    /// conversation. Returns the message as stored, `None` when absent.
    async fn update_message(
        &self,
        message_id: i64,
        update: &MessageUpdate,
    ) -> Result<Option<Message>>;

    /// Appends to a message's content, adds to its token count and moves `pending` to
    /// `streaming`. Returns whether the message exists.
    async fn append_message_content(
        &self,
        message_id: i64,
        content_chunk: &str,
        token_count: u64,
    ) -> Result<bool>;

    /// Replaces a message's metadata. Returns whether the message exists.
    async fn update_message_metadata(&self, message_id: i64, metadata: &JsonMap) -> Result<bool>;

    /// Sets a message's final status and `completed_at` (and `error_message` when given).
    /// Returns whether the message exists (already being in that status counts as success).
    async fn mark_message_finished(
        &self,
        message_id: i64,
        status: FinishStatus,
        error_message: Option<&str>,
    ) -> Result<bool>;

    /// Marks a message cancelled with the error message `Message interrupted by user.`.
    async fn interrupt_message(&self, message_id: i64) -> Result<bool> {
        self.mark_message_finished(
            message_id,
            FinishStatus::Cancelled,
            Some("Message interrupted by user."),
        )
        .await
    }

    /// All messages of a conversation, oldest first (then by id), each with its thinking.
    async fn get_conversation_messages(&self, conversation_id: i64) -> Result<Vec<Message>>;

    /// Deletes a message and its thinking. Returns whether it existed.
    async fn delete_message(&self, message_id: i64) -> Result<bool>;

    // ----- message thinking --------------------------------------------------------------------

    /// Adds a thinking record to a message. Returns its id.
    ///
    /// # Errors
    /// `NotFound` when the message does not exist; `InvalidInput` when `progress` is not a
    /// finite number in 0.0 to 1.0.
    async fn add_message_thinking(&self, thinking: &NewThinking) -> Result<i64>;

    /// A message's thinking records by sequence, then creation time.
    async fn get_message_thinking(&self, message_id: i64) -> Result<Vec<MessageThinking>>;

    /// Deletes a message's thinking records. Returns how many there were.
    async fn clear_message_thinking(&self, message_id: i64) -> Result<u64>;
}
