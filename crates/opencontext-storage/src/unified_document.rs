// Generated from the DocumentStorageBackend trait by xtask/scripts/gen_document_facade.py; edit there.
use storage_core::model::records::*;
use storage_core::{JsonMap, Result, Timestamp};

use crate::UnifiedStorage;
use crate::trace::traced;

/// Record operations, routed to the document backend.
impl UnifiedStorage {
    /// See [`storage_core::DocumentStorageBackend::insert_vaults`].
    pub async fn insert_vaults(&self, vault: &NewVault) -> Result<i64> {
        let d = self.document()?;
        traced(d.name(), "insert_vaults", 0, d.insert_vaults(vault)).await
    }

    /// See [`storage_core::DocumentStorageBackend::get_vaults`].
    pub async fn get_vaults(&self, query: &VaultQuery) -> Result<Vec<Vault>> {
        let d = self.document()?;
        traced(d.name(), "get_vaults", 0, d.get_vaults(query)).await
    }

    /// See [`storage_core::DocumentStorageBackend::get_vault`].
    pub async fn get_vault(&self, vault_id: i64) -> Result<Option<Vault>> {
        let d = self.document()?;
        traced(d.name(), "get_vault", 0, d.get_vault(vault_id)).await
    }

    /// See [`storage_core::DocumentStorageBackend::update_vault`].
    pub async fn update_vault(&self, vault_id: i64, update: &VaultUpdate) -> Result<bool> {
        let d = self.document()?;
        traced(
            d.name(),
            "update_vault",
            0,
            d.update_vault(vault_id, update),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::get_reports`].
    pub async fn get_reports(
        &self,
        limit: u32,
        offset: u64,
        is_deleted: bool,
    ) -> Result<Vec<Vault>> {
        let d = self.document()?;
        traced(
            d.name(),
            "get_reports",
            0,
            d.get_reports(limit, offset, is_deleted),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::insert_todo`].
    pub async fn insert_todo(&self, todo: &NewTodo) -> Result<i64> {
        let d = self.document()?;
        traced(d.name(), "insert_todo", 0, d.insert_todo(todo)).await
    }

    /// See [`storage_core::DocumentStorageBackend::get_todos`].
    pub async fn get_todos(&self, query: &TodoQuery) -> Result<Vec<Todo>> {
        let d = self.document()?;
        traced(d.name(), "get_todos", 0, d.get_todos(query)).await
    }

    /// See [`storage_core::DocumentStorageBackend::update_todo_status`].
    pub async fn update_todo_status(
        &self,
        todo_id: i64,
        status: i64,
        end_time: Option<Timestamp>,
    ) -> Result<bool> {
        let d = self.document()?;
        traced(
            d.name(),
            "update_todo_status",
            0,
            d.update_todo_status(todo_id, status, end_time),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::insert_tip`].
    pub async fn insert_tip(&self, content: &str) -> Result<i64> {
        let d = self.document()?;
        traced(d.name(), "insert_tip", 0, d.insert_tip(content)).await
    }

    /// See [`storage_core::DocumentStorageBackend::get_tips`].
    pub async fn get_tips(&self, query: &TipQuery) -> Result<Vec<Tip>> {
        let d = self.document()?;
        traced(d.name(), "get_tips", 0, d.get_tips(query)).await
    }

    /// See [`storage_core::DocumentStorageBackend::upsert_profile`].
    pub async fn upsert_profile(&self, profile: &ProfileUpsert) -> Result<()> {
        let d = self.document()?;
        traced(d.name(), "upsert_profile", 0, d.upsert_profile(profile)).await
    }

    /// See [`storage_core::DocumentStorageBackend::get_profile`].
    pub async fn get_profile(&self, key: &TenantKey) -> Result<Option<Profile>> {
        let d = self.document()?;
        traced(d.name(), "get_profile", 0, d.get_profile(key)).await
    }

    /// See [`storage_core::DocumentStorageBackend::delete_profile`].
    pub async fn delete_profile(&self, key: &TenantKey) -> Result<bool> {
        let d = self.document()?;
        traced(d.name(), "delete_profile", 0, d.delete_profile(key)).await
    }

    /// See [`storage_core::DocumentStorageBackend::upsert_entity`].
    pub async fn upsert_entity(&self, entity: &EntityUpsert) -> Result<String> {
        let d = self.document()?;
        traced(d.name(), "upsert_entity", 0, d.upsert_entity(entity)).await
    }

    /// See [`storage_core::DocumentStorageBackend::get_entity`].
    pub async fn get_entity(&self, key: &TenantKey, entity_name: &str) -> Result<Option<Entity>> {
        let d = self.document()?;
        traced(d.name(), "get_entity", 0, d.get_entity(key, entity_name)).await
    }

    /// See [`storage_core::DocumentStorageBackend::list_entities`].
    pub async fn list_entities(&self, query: &EntityQuery) -> Result<Vec<Entity>> {
        let d = self.document()?;
        traced(d.name(), "list_entities", 0, d.list_entities(query)).await
    }

    /// See [`storage_core::DocumentStorageBackend::search_entities`].
    pub async fn search_entities(
        &self,
        key: &TenantKey,
        query_text: &str,
        limit: u32,
    ) -> Result<Vec<Entity>> {
        let d = self.document()?;
        traced(
            d.name(),
            "search_entities",
            0,
            d.search_entities(key, query_text, limit),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::delete_entity`].
    pub async fn delete_entity(&self, key: &TenantKey, entity_name: &str) -> Result<bool> {
        let d = self.document()?;
        traced(
            d.name(),
            "delete_entity",
            0,
            d.delete_entity(key, entity_name),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::save_monitoring_token_usage`].
    pub async fn save_monitoring_token_usage(&self, sample: &TokenUsageSample) -> Result<()> {
        let d = self.document()?;
        traced(
            d.name(),
            "save_monitoring_token_usage",
            0,
            d.save_monitoring_token_usage(sample),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::save_monitoring_stage_timing`].
    pub async fn save_monitoring_stage_timing(&self, sample: &StageTimingSample) -> Result<()> {
        let d = self.document()?;
        traced(
            d.name(),
            "save_monitoring_stage_timing",
            0,
            d.save_monitoring_stage_timing(sample),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::save_monitoring_data_stats`].
    pub async fn save_monitoring_data_stats(&self, sample: &DataStatsSample) -> Result<()> {
        let d = self.document()?;
        traced(
            d.name(),
            "save_monitoring_data_stats",
            0,
            d.save_monitoring_data_stats(sample),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::query_monitoring_token_usage`].
    pub async fn query_monitoring_token_usage(&self, hours: u32) -> Result<Vec<TokenUsageRecord>> {
        let d = self.document()?;
        traced(
            d.name(),
            "query_monitoring_token_usage",
            0,
            d.query_monitoring_token_usage(hours),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::query_monitoring_stage_timing`].
    pub async fn query_monitoring_stage_timing(
        &self,
        hours: u32,
    ) -> Result<Vec<StageTimingRecord>> {
        let d = self.document()?;
        traced(
            d.name(),
            "query_monitoring_stage_timing",
            0,
            d.query_monitoring_stage_timing(hours),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::query_monitoring_data_stats`].
    pub async fn query_monitoring_data_stats(&self, hours: u32) -> Result<Vec<DataStatsRecord>> {
        let d = self.document()?;
        traced(
            d.name(),
            "query_monitoring_data_stats",
            0,
            d.query_monitoring_data_stats(hours),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::query_monitoring_data_stats_by_range`].
    pub async fn query_monitoring_data_stats_by_range(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<DataStatsRecord>> {
        let d = self.document()?;
        traced(
            d.name(),
            "query_monitoring_data_stats_by_range",
            0,
            d.query_monitoring_data_stats_by_range(start, end),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::query_monitoring_data_stats_trend`].
    pub async fn query_monitoring_data_stats_trend(
        &self,
        hours: u32,
        interval_hours: u32,
    ) -> Result<Vec<DataStatsTrendRecord>> {
        let d = self.document()?;
        traced(
            d.name(),
            "query_monitoring_data_stats_trend",
            0,
            d.query_monitoring_data_stats_trend(hours, interval_hours),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::cleanup_old_monitoring_data`].
    pub async fn cleanup_old_monitoring_data(&self, days: u32) -> Result<MonitoringCleanup> {
        let d = self.document()?;
        traced(
            d.name(),
            "cleanup_old_monitoring_data",
            0,
            d.cleanup_old_monitoring_data(days),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::create_conversation`].
    pub async fn create_conversation(
        &self,
        conversation: &NewConversation,
    ) -> Result<Conversation> {
        let d = self.document()?;
        traced(
            d.name(),
            "create_conversation",
            0,
            d.create_conversation(conversation),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::get_conversation`].
    pub async fn get_conversation(&self, conversation_id: i64) -> Result<Option<Conversation>> {
        let d = self.document()?;
        traced(
            d.name(),
            "get_conversation",
            0,
            d.get_conversation(conversation_id),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::get_conversation_list`].
    pub async fn get_conversation_list(
        &self,
        query: &ConversationQuery,
    ) -> Result<ConversationPage> {
        let d = self.document()?;
        traced(
            d.name(),
            "get_conversation_list",
            0,
            d.get_conversation_list(query),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::update_conversation`].
    pub async fn update_conversation(
        &self,
        conversation_id: i64,
        update: &ConversationUpdate,
    ) -> Result<Option<Conversation>> {
        let d = self.document()?;
        traced(
            d.name(),
            "update_conversation",
            0,
            d.update_conversation(conversation_id, update),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::delete_conversation`].
    pub async fn delete_conversation(&self, conversation_id: i64) -> Result<bool> {
        let d = self.document()?;
        traced(
            d.name(),
            "delete_conversation",
            0,
            d.delete_conversation(conversation_id),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::get_message`].
    pub async fn get_message(
        &self,
        message_id: i64,
        include_thinking: bool,
    ) -> Result<Option<Message>> {
        let d = self.document()?;
        traced(
            d.name(),
            "get_message",
            0,
            d.get_message(message_id, include_thinking),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::create_message`].
    pub async fn create_message(&self, message: &NewMessage) -> Result<Message> {
        let d = self.document()?;
        traced(d.name(), "create_message", 0, d.create_message(message)).await
    }

    /// See [`storage_core::DocumentStorageBackend::create_streaming_message`].
    pub async fn create_streaming_message(
        &self,
        conversation_id: i64,
        role: &str,
        parent_message_id: Option<&str>,
        metadata: Option<&JsonMap>,
    ) -> Result<Message> {
        let d = self.document()?;
        traced(
            d.name(),
            "create_streaming_message",
            0,
            d.create_streaming_message(conversation_id, role, parent_message_id, metadata),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::update_message`].
    pub async fn update_message(
        &self,
        message_id: i64,
        update: &MessageUpdate,
    ) -> Result<Option<Message>> {
        let d = self.document()?;
        traced(
            d.name(),
            "update_message",
            0,
            d.update_message(message_id, update),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::append_message_content`].
    pub async fn append_message_content(
        &self,
        message_id: i64,
        content_chunk: &str,
        token_count: u64,
    ) -> Result<bool> {
        let d = self.document()?;
        traced(
            d.name(),
            "append_message_content",
            0,
            d.append_message_content(message_id, content_chunk, token_count),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::update_message_metadata`].
    pub async fn update_message_metadata(
        &self,
        message_id: i64,
        metadata: &JsonMap,
    ) -> Result<bool> {
        let d = self.document()?;
        traced(
            d.name(),
            "update_message_metadata",
            0,
            d.update_message_metadata(message_id, metadata),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::mark_message_finished`].
    pub async fn mark_message_finished(
        &self,
        message_id: i64,
        status: FinishStatus,
        error_message: Option<&str>,
    ) -> Result<bool> {
        let d = self.document()?;
        traced(
            d.name(),
            "mark_message_finished",
            0,
            d.mark_message_finished(message_id, status, error_message),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::interrupt_message`].
    pub async fn interrupt_message(&self, message_id: i64) -> Result<bool> {
        let d = self.document()?;
        traced(
            d.name(),
            "interrupt_message",
            0,
            d.interrupt_message(message_id),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::get_conversation_messages`].
    pub async fn get_conversation_messages(&self, conversation_id: i64) -> Result<Vec<Message>> {
        let d = self.document()?;
        traced(
            d.name(),
            "get_conversation_messages",
            0,
            d.get_conversation_messages(conversation_id),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::delete_message`].
    pub async fn delete_message(&self, message_id: i64) -> Result<bool> {
        let d = self.document()?;
        traced(d.name(), "delete_message", 0, d.delete_message(message_id)).await
    }

    /// See [`storage_core::DocumentStorageBackend::add_message_thinking`].
    pub async fn add_message_thinking(&self, thinking: &NewThinking) -> Result<i64> {
        let d = self.document()?;
        traced(
            d.name(),
            "add_message_thinking",
            0,
            d.add_message_thinking(thinking),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::get_message_thinking`].
    pub async fn get_message_thinking(&self, message_id: i64) -> Result<Vec<MessageThinking>> {
        let d = self.document()?;
        traced(
            d.name(),
            "get_message_thinking",
            0,
            d.get_message_thinking(message_id),
        )
        .await
    }

    /// See [`storage_core::DocumentStorageBackend::clear_message_thinking`].
    pub async fn clear_message_thinking(&self, message_id: i64) -> Result<u64> {
        let d = self.document()?;
        traced(
            d.name(),
            "clear_message_thinking",
            0,
            d.clear_message_thinking(message_id),
        )
        .await
    }
}
