//! Relational records: profiles, entities, vaults, todos, tips, conversations, messages,
//! message thinking and monitoring.
//!
//! Field names are the column names of the original's tables
//! (`opencontext/storage/backends/sqlite_backend.py`, `_create_tables` and
//! `_migrate_schema_v2`), so a row written by the original maps onto these structs one to one,
//! and the JSON form of a record is the dict the original returned.
//!
//! Timestamps are timezone-aware [`Timestamp`]s. The original wrote naive local times
//! (`str(datetime.now())`) and SQLite's `CURRENT_TIMESTAMP` (naive UTC); both are read as UTC
//! (see [`crate::time::parse_timestamp`]).
//!
//! Besides the records themselves, this module holds the request types of the
//! [`crate::DocumentStorageBackend`] operations (`NewTodo`, `VaultQuery`, `ProfileUpsert`, ...),
//! which replace the original's long keyword-argument lists.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};
use crate::model::JsonMap;
use crate::time::{Timestamp, serde_ts, serde_ts_opt, validate_opt_timestamp};

/// The value the original uses for `device_id` and `agent_id` when the caller gives none.
pub const DEFAULT_TENANT_PART: &str = "default";

/// Largest accepted `limit` of a list or search operation.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// Largest accepted text field (content, summary, JSON-encoded lists and metadata), in bytes
/// (16 MiB).
pub const MAX_TEXT_BYTES: usize = 16 << 20;

fn default_part() -> String {
    DEFAULT_TENANT_PART.to_owned()
}

// ---------------------------------------------------------------------------------------------
// Tenant key
// ---------------------------------------------------------------------------------------------

/// The tenant triple that keys profiles and entities: `(user_id, device_id, agent_id)`.
///
/// All three are required by every profile/entity operation (the original's
/// `device_id`/`agent_id` default to `"default"`; use [`TenantKey::user`] for that).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TenantKey {
    /// User identifier (non-empty).
    pub user_id: String,
    /// Device identifier (`"default"` when the caller has none).
    #[serde(default = "default_part")]
    pub device_id: String,
    /// Agent identifier (`"default"` when the caller has none).
    #[serde(default = "default_part")]
    pub agent_id: String,
}

impl TenantKey {
    /// A key from its three parts.
    pub fn new(
        user_id: impl Into<String>,
        device_id: impl Into<String>,
        agent_id: impl Into<String>,
    ) -> Self {
        TenantKey {
            user_id: user_id.into(),
            device_id: device_id.into(),
            agent_id: agent_id.into(),
        }
    }

    /// A key for `user_id` with the default device and agent (`"default"`).
    pub fn user(user_id: impl Into<String>) -> Self {
        Self::new(user_id, DEFAULT_TENANT_PART, DEFAULT_TENANT_PART)
    }
}

impl fmt::Display for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "({}, {}, {})",
            self.user_id, self.device_id, self.agent_id
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Profiles and entities
// ---------------------------------------------------------------------------------------------

/// A row of `profiles`: the user's profile for one tenant triple (primary key).
///
/// `keywords`, `entities` and `metadata` are JSON text columns (`json.dumps(..., ensure_ascii=False)`
/// in the original); `NULL` reads as empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// User identifier.
    pub user_id: String,
    /// Device identifier.
    pub device_id: String,
    /// Agent identifier.
    pub agent_id: String,
    /// The profile text.
    pub content: String,
    /// Short summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Names of related entities.
    #[serde(default)]
    pub entities: Vec<String>,
    /// Importance (0 to 10 by convention).
    #[serde(default)]
    pub importance: i64,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: JsonMap,
    /// When the row was first written.
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    /// When the row was last written.
    #[serde(with = "serde_ts")]
    pub updated_at: Timestamp,
}

impl Profile {
    /// The tenant triple of this profile.
    pub fn key(&self) -> TenantKey {
        TenantKey::new(&self.user_id, &self.device_id, &self.agent_id)
    }
}

/// Arguments of [`crate::DocumentStorageBackend::upsert_profile`]: every column but the
/// timestamps. An upsert replaces all of them (the original's `ON CONFLICT DO UPDATE`) and keeps
/// `created_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileUpsert {
    /// The tenant triple (primary key).
    #[serde(flatten)]
    pub key: TenantKey,
    /// The profile text (may be empty).
    pub content: String,
    /// Short summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Names of related entities.
    #[serde(default)]
    pub entities: Vec<String>,
    /// Importance, 0 to 10.
    #[serde(default)]
    pub importance: i64,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: JsonMap,
}

impl ProfileUpsert {
    /// A profile with `content` and every optional field empty.
    pub fn new(key: TenantKey, content: impl Into<String>) -> Self {
        ProfileUpsert {
            key,
            content: content.into(),
            summary: None,
            keywords: Vec::new(),
            entities: Vec::new(),
            importance: 0,
            metadata: JsonMap::new(),
        }
    }
}

/// A row of `entities`: a person, project, team or organisation known to one tenant, unique by
/// `(user_id, device_id, agent_id, entity_name)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Entity id (a UUID v4 string generated on first insert, kept by later upserts).
    pub id: String,
    /// User identifier.
    pub user_id: String,
    /// Device identifier.
    pub device_id: String,
    /// Agent identifier.
    pub agent_id: String,
    /// Name, unique within the tenant.
    pub entity_name: String,
    /// Kind of entity (`person`, `project`, ...), free text.
    #[serde(default)]
    pub entity_type: Option<String>,
    /// Description text.
    pub content: String,
    /// Short summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Other names of the entity.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: JsonMap,
    /// When the row was first written.
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    /// When the row was last written.
    #[serde(with = "serde_ts")]
    pub updated_at: Timestamp,
}

/// Arguments of [`crate::DocumentStorageBackend::upsert_entity`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityUpsert {
    /// The tenant triple.
    #[serde(flatten)]
    pub key: TenantKey,
    /// Name, unique within the tenant (non-empty).
    pub entity_name: String,
    /// Description text (may be empty).
    pub content: String,
    /// Kind of entity.
    #[serde(default)]
    pub entity_type: Option<String>,
    /// Short summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Other names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: JsonMap,
}

impl EntityUpsert {
    /// An entity with a name, content and every optional field empty.
    pub fn new(key: TenantKey, entity_name: impl Into<String>, content: impl Into<String>) -> Self {
        EntityUpsert {
            key,
            entity_name: entity_name.into(),
            content: content.into(),
            entity_type: None,
            summary: None,
            keywords: Vec::new(),
            aliases: Vec::new(),
            metadata: JsonMap::new(),
        }
    }
}

/// Arguments of [`crate::DocumentStorageBackend::list_entities`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityQuery {
    /// The tenant triple.
    pub key: TenantKey,
    /// Only entities of this type.
    pub entity_type: Option<String>,
    /// Page size, at most [`MAX_LIST_LIMIT`] (the original's default is 100).
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
}

impl EntityQuery {
    /// The first 100 entities of a tenant, any type.
    pub fn new(key: TenantKey) -> Self {
        EntityQuery {
            key,
            entity_type: None,
            limit: 100,
            offset: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Vaults
// ---------------------------------------------------------------------------------------------

/// A row of `vaults`: a document, note, report or folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vault {
    /// Row id (autoincrement).
    pub id: i64,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Body (markdown).
    #[serde(default)]
    pub content: Option<String>,
    /// Tags, comma-separated as the original writes them (`"guide,welcome"`).
    #[serde(default)]
    pub tags: Option<String>,
    /// Parent folder id.
    #[serde(default)]
    pub parent_id: Option<i64>,
    /// Whether this row is a folder.
    #[serde(default)]
    pub is_folder: bool,
    /// Soft-delete flag.
    #[serde(default)]
    pub is_deleted: bool,
    /// When the row was created.
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    /// When the row was last updated.
    #[serde(with = "serde_ts")]
    pub updated_at: Timestamp,
    /// Kind of document (`"vaults"` by default, `"Note"`, `"Report"`, ...).
    pub document_type: String,
    /// Position among siblings.
    #[serde(default)]
    pub sort_order: i64,
}

/// Arguments of [`crate::DocumentStorageBackend::insert_vaults`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVault {
    /// Title.
    pub title: String,
    /// Summary.
    pub summary: String,
    /// Body.
    pub content: String,
    /// Kind of document (non-empty; `"vaults"` is the original's default).
    pub document_type: String,
    /// Comma-separated tags.
    #[serde(default)]
    pub tags: Option<String>,
    /// Parent folder id; must exist.
    #[serde(default)]
    pub parent_id: Option<i64>,
    /// Whether this row is a folder.
    #[serde(default)]
    pub is_folder: bool,
}

impl NewVault {
    /// A document of type `document_type` with no tags, parent or folder flag.
    pub fn new(
        title: impl Into<String>,
        summary: impl Into<String>,
        content: impl Into<String>,
        document_type: impl Into<String>,
    ) -> Self {
        NewVault {
            title: title.into(),
            summary: summary.into(),
            content: content.into(),
            document_type: document_type.into(),
            tags: None,
            parent_id: None,
            is_folder: false,
        }
    }
}

/// Arguments of [`crate::DocumentStorageBackend::get_vaults`]. Time bounds are inclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultQuery {
    /// Page size, at most [`MAX_LIST_LIMIT`] (default 100).
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
    /// Soft-deleted rows (`true`) or live rows (`false`, the default).
    pub is_deleted: bool,
    /// Only this document type.
    pub document_type: Option<String>,
    /// `created_at >= created_after`.
    pub created_after: Option<Timestamp>,
    /// `created_at <= created_before`.
    pub created_before: Option<Timestamp>,
    /// `updated_at >= updated_after`.
    pub updated_after: Option<Timestamp>,
    /// `updated_at <= updated_before`.
    pub updated_before: Option<Timestamp>,
}

impl Default for VaultQuery {
    fn default() -> Self {
        VaultQuery {
            limit: 100,
            offset: 0,
            is_deleted: false,
            document_type: None,
            created_after: None,
            created_before: None,
            updated_after: None,
            updated_before: None,
        }
    }
}

/// Arguments of [`crate::DocumentStorageBackend::update_vault`]: `Some` fields are written,
/// `None` fields are left alone. For the nullable columns, `Some(None)` writes `NULL`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultUpdate {
    /// New title.
    pub title: Option<String>,
    /// New summary.
    pub summary: Option<String>,
    /// New body.
    pub content: Option<String>,
    /// New tags (`Some(None)` clears them).
    pub tags: Option<Option<String>>,
    /// New parent (`Some(None)` moves the row to the root).
    pub parent_id: Option<Option<i64>>,
    /// New folder flag.
    pub is_folder: Option<bool>,
    /// New soft-delete flag.
    pub is_deleted: Option<bool>,
}

impl VaultUpdate {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.summary.is_none()
            && self.content.is_none()
            && self.tags.is_none()
            && self.parent_id.is_none()
            && self.is_folder.is_none()
            && self.is_deleted.is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// Todos and tips
// ---------------------------------------------------------------------------------------------

/// Todo status values the original writes in `todo.status` (an integer column).
pub mod todo_status {
    /// Not done yet (the default).
    pub const PENDING: i64 = 0;
    /// Done; `update_todo_status` stamps `end_time` when none is given.
    pub const COMPLETED: i64 = 1;

    /// Whether `status` is a value this layer writes.
    pub fn is_known(status: i64) -> bool {
        matches!(status, PENDING | COMPLETED)
    }
}

/// A row of `todo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Todo {
    /// Row id (autoincrement).
    pub id: i64,
    /// What to do.
    #[serde(default)]
    pub content: Option<String>,
    /// When the row was created.
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    /// When the todo starts (defaults to the insert time).
    #[serde(default, with = "serde_ts_opt")]
    pub start_time: Option<Timestamp>,
    /// When it ended or is due.
    #[serde(default, with = "serde_ts_opt")]
    pub end_time: Option<Timestamp>,
    /// Status, see [`todo_status`]. Values written by other software are returned as stored.
    #[serde(default)]
    pub status: i64,
    /// Urgency (higher is more urgent; lists are ordered by it).
    #[serde(default)]
    pub urgency: i64,
    /// Who should do it.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Why it was created.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Arguments of [`crate::DocumentStorageBackend::insert_todo`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTodo {
    /// What to do.
    pub content: String,
    /// Start time; `None` means now.
    #[serde(default, with = "serde_ts_opt")]
    pub start_time: Option<Timestamp>,
    /// End or due time.
    #[serde(default, with = "serde_ts_opt")]
    pub end_time: Option<Timestamp>,
    /// Status, one of [`todo_status`] (default pending).
    #[serde(default)]
    pub status: i64,
    /// Urgency, `>= 0`.
    #[serde(default)]
    pub urgency: i64,
    /// Who should do it.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Why it was created.
    #[serde(default)]
    pub reason: Option<String>,
}

impl NewTodo {
    /// A pending todo starting now, urgency 0.
    pub fn new(content: impl Into<String>) -> Self {
        NewTodo {
            content: content.into(),
            start_time: None,
            end_time: None,
            status: todo_status::PENDING,
            urgency: 0,
            assignee: None,
            reason: None,
        }
    }
}

/// Arguments of [`crate::DocumentStorageBackend::get_todos`]. Ordered by urgency, then
/// creation time, both descending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TodoQuery {
    /// Only this status.
    pub status: Option<i64>,
    /// Page size, at most [`MAX_LIST_LIMIT`] (default 100).
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
    /// `start_time >= start_time`.
    pub start_time: Option<Timestamp>,
    /// `end_time <= end_time`.
    pub end_time: Option<Timestamp>,
}

impl Default for TodoQuery {
    fn default() -> Self {
        TodoQuery {
            status: None,
            limit: 100,
            offset: 0,
            start_time: None,
            end_time: None,
        }
    }
}

/// A row of `tips`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tip {
    /// Row id (autoincrement).
    pub id: i64,
    /// The tip text.
    #[serde(default)]
    pub content: Option<String>,
    /// When it was created.
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
}

/// Arguments of [`crate::DocumentStorageBackend::get_tips`]; newest first, bounds inclusive on
/// `created_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TipQuery {
    /// `created_at >= start_time`.
    pub start_time: Option<Timestamp>,
    /// `created_at <= end_time`.
    pub end_time: Option<Timestamp>,
    /// Page size, at most [`MAX_LIST_LIMIT`] (default 100).
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
}

impl Default for TipQuery {
    fn default() -> Self {
        TipQuery {
            start_time: None,
            end_time: None,
            limit: 100,
            offset: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conversations, messages, thinking
// ---------------------------------------------------------------------------------------------

/// Status of a conversation (`conversations.status`, `VARCHAR(20)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Visible (the default).
    Active,
    /// Soft-deleted by `delete_conversation`.
    Deleted,
}

impl ConversationStatus {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Active => "active",
            ConversationStatus::Deleted => "deleted",
        }
    }
}

impl FromStr for ConversationStatus {
    type Err = StorageError;

    /// Parses `active` or `deleted` (and the original API's misspelling `delected`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(ConversationStatus::Active),
            "deleted" | "delected" => Ok(ConversationStatus::Deleted),
            other => Err(StorageError::invalid_input(format!(
                "unknown conversation status {other:?} (expected active or deleted)"
            ))),
        }
    }
}

/// A row of `conversations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Row id (autoincrement).
    pub id: i64,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Owner.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The UI page the conversation belongs to (`"home"` by default).
    pub page_name: String,
    /// `"active"` or `"deleted"` (other values written by other software are returned as stored).
    pub status: String,
    /// Free-form metadata (JSON column, `'{}'` by default).
    #[serde(default)]
    pub metadata: JsonMap,
    /// When it was created.
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    /// When it or one of its messages last changed.
    #[serde(with = "serde_ts")]
    pub updated_at: Timestamp,
}

/// Arguments of [`crate::DocumentStorageBackend::create_conversation`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewConversation {
    /// UI page (non-empty, at most 20 characters: the column is `VARCHAR(20)`).
    pub page_name: String,
    /// Owner.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: JsonMap,
}

impl NewConversation {
    /// A conversation on `page_name` with no owner, title or metadata.
    pub fn new(page_name: impl Into<String>) -> Self {
        NewConversation {
            page_name: page_name.into(),
            user_id: None,
            title: None,
            metadata: JsonMap::new(),
        }
    }
}

/// Arguments of [`crate::DocumentStorageBackend::get_conversation_list`]; ordered by
/// `updated_at` descending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationQuery {
    /// Page size, at most [`MAX_LIST_LIMIT`] (default 20).
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
    /// Only this page.
    pub page_name: Option<String>,
    /// Only this owner.
    pub user_id: Option<String>,
    /// Only this status (default `Some(Active)`; `None` means any).
    pub status: Option<ConversationStatus>,
}

impl Default for ConversationQuery {
    fn default() -> Self {
        ConversationQuery {
            limit: 20,
            offset: 0,
            page_name: None,
            user_id: None,
            status: Some(ConversationStatus::Active),
        }
    }
}

/// One page of conversations and the total number matching the query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationPage {
    /// The page.
    pub items: Vec<Conversation>,
    /// How many conversations match, over all pages.
    pub total: u64,
}

/// Arguments of [`crate::DocumentStorageBackend::update_conversation`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationUpdate {
    /// New title.
    pub title: Option<String>,
    /// New status.
    pub status: Option<ConversationStatus>,
}

/// Message status values the original writes in `messages.status`.
pub mod message_status {
    /// Created, no content yet (the column default).
    pub const PENDING: &str = "pending";
    /// Content is being appended.
    pub const STREAMING: &str = "streaming";
    /// Finished normally.
    pub const COMPLETED: &str = "completed";
    /// Finished with an error.
    pub const FAILED: &str = "failed";
    /// Interrupted.
    pub const CANCELLED: &str = "cancelled";
}

/// How a message finished (argument of
/// [`crate::DocumentStorageBackend::mark_message_finished`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishStatus {
    /// Finished normally.
    Completed,
    /// Finished with an error.
    Failed,
    /// Interrupted by the user.
    Cancelled,
}

impl FinishStatus {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishStatus::Completed => message_status::COMPLETED,
            FinishStatus::Failed => message_status::FAILED,
            FinishStatus::Cancelled => message_status::CANCELLED,
        }
    }
}

impl FromStr for FinishStatus {
    type Err = StorageError;

    /// Parses `completed`, `failed` or `cancelled`; anything else is
    /// [`crate::ErrorKind::InvalidInput`] (the original silently used `completed`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "completed" => Ok(FinishStatus::Completed),
            "failed" => Ok(FinishStatus::Failed),
            "cancelled" => Ok(FinishStatus::Cancelled),
            other => Err(StorageError::invalid_input(format!(
                "unknown message status {other:?} (expected completed, failed or cancelled)"
            ))),
        }
    }
}

/// A row of `messages`, with its thinking records when they were requested.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Row id (autoincrement).
    pub id: i64,
    /// The conversation it belongs to (deleting the conversation deletes it).
    pub conversation_id: i64,
    /// Id of the message it answers (free text in the original).
    #[serde(default)]
    pub parent_message_id: Option<String>,
    /// `user`, `assistant`, `system`, ...
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// See [`message_status`].
    pub status: String,
    /// Tokens in `content`.
    #[serde(default)]
    pub token_count: i64,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: JsonMap,
    /// Generation latency in milliseconds.
    #[serde(default)]
    pub latency_ms: i64,
    /// Error text when the message failed (`""` otherwise).
    #[serde(default)]
    pub error_message: String,
    /// When it finished.
    #[serde(default, with = "serde_ts_opt")]
    pub completed_at: Option<Timestamp>,
    /// When it was created.
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    /// When it last changed.
    #[serde(with = "serde_ts")]
    pub updated_at: Timestamp,
    /// Its thinking records by sequence (empty when not requested).
    #[serde(default)]
    pub thinking: Vec<MessageThinking>,
}

/// Arguments of [`crate::DocumentStorageBackend::create_message`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    /// The conversation (must exist).
    pub conversation_id: i64,
    /// `user`, `assistant`, ... (non-empty).
    pub role: String,
    /// The text.
    pub content: String,
    /// `true`: status `completed` with `completed_at` set; `false`: status `streaming`.
    pub is_complete: bool,
    /// Tokens in `content`.
    #[serde(default)]
    pub token_count: u64,
    /// Id of the message it answers.
    #[serde(default)]
    pub parent_message_id: Option<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: JsonMap,
}

impl NewMessage {
    /// A complete message with no tokens, parent or metadata.
    pub fn new(conversation_id: i64, role: impl Into<String>, content: impl Into<String>) -> Self {
        NewMessage {
            conversation_id,
            role: role.into(),
            content: content.into(),
            is_complete: true,
            token_count: 0,
            parent_message_id: None,
            metadata: JsonMap::new(),
        }
    }
}

/// Arguments of [`crate::DocumentStorageBackend::update_message`]: the content is replaced
/// (not appended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageUpdate {
    /// The new content.
    pub new_content: String,
    /// `Some(true)`: mark completed now; `Some(false)`: back to streaming; `None`: keep status.
    pub is_complete: Option<bool>,
    /// New token count.
    pub token_count: Option<u64>,
}

/// A row of `message_thinking`: one step of the reasoning shown while a message is generated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageThinking {
    /// Row id (autoincrement).
    pub id: i64,
    /// The message (deleting it deletes its thinking).
    pub message_id: i64,
    /// The text.
    pub content: String,
    /// Workflow stage (`intent_analysis`, `context_gathering`, ...).
    #[serde(default)]
    pub stage: Option<String>,
    /// Progress from 0.0 to 1.0.
    #[serde(default)]
    pub progress: f64,
    /// Order within the message.
    #[serde(default)]
    pub sequence: i64,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: JsonMap,
    /// When it was created.
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
}

/// Arguments of [`crate::DocumentStorageBackend::add_message_thinking`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewThinking {
    /// The message (must exist).
    pub message_id: i64,
    /// The text.
    pub content: String,
    /// Workflow stage.
    #[serde(default)]
    pub stage: Option<String>,
    /// Progress, finite, 0.0 to 1.0.
    #[serde(default)]
    pub progress: f64,
    /// Order within the message; `None` means one more than the current maximum (0 first).
    #[serde(default)]
    pub sequence: Option<i64>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: JsonMap,
}

impl NewThinking {
    /// A thinking step with no stage, progress 0, the next sequence number and no metadata.
    pub fn new(message_id: i64, content: impl Into<String>) -> Self {
        NewThinking {
            message_id,
            content: content.into(),
            stage: None,
            progress: 0.0,
            sequence: None,
            metadata: JsonMap::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

/// Format of the hourly `time_bucket` of the monitoring tables (`2025-03-01 10:00:00`).
pub const MONITORING_BUCKET_FORMAT: &str = "%Y-%m-%d %H:00:00";

/// The hourly monitoring bucket of `t`: its wall-clock hour in the process's naive zone
/// ([`crate::time::default_naive_zone`], the machine's local zone by default), as the
/// original's `datetime.now().strftime(...)` wrote it.
pub fn monitoring_bucket(t: &Timestamp) -> String {
    crate::time::default_naive_zone()
        .to_naive(t)
        .format(MONITORING_BUCKET_FORMAT)
        .to_string()
}

/// Arguments of [`crate::DocumentStorageBackend::save_monitoring_token_usage`]: added to the
/// row of `(hour bucket, model)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUsageSample {
    /// Model name (non-empty).
    pub model: String,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
    /// When it happened (selects the hour bucket); `None` means now.
    pub at: Option<Timestamp>,
}

/// Arguments of [`crate::DocumentStorageBackend::save_monitoring_stage_timing`]: folded into
/// the row of `(hour bucket, stage_name)` (count, total, min, max, average, successes, errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageTimingSample {
    /// Stage name (non-empty).
    pub stage_name: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Whether the stage succeeded (the original's `status == "success"`).
    pub success: bool,
    /// Free text stored with the first sample of the bucket.
    pub metadata: Option<String>,
    /// When it happened; `None` means now.
    pub at: Option<Timestamp>,
}

/// Arguments of [`crate::DocumentStorageBackend::save_monitoring_data_stats`]: `count` is added
/// to the row of `(hour bucket, data_type, context_type)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataStatsSample {
    /// What was counted (non-empty).
    pub data_type: String,
    /// How many (default 1 in the original).
    pub count: u64,
    /// Context type, when the data is a context.
    pub context_type: Option<String>,
    /// Free text stored with the first sample of the bucket.
    pub metadata: Option<String>,
    /// When it happened; `None` means now.
    pub at: Option<Timestamp>,
}

/// A row of `monitoring_token_usage` as returned by
/// [`crate::DocumentStorageBackend::query_monitoring_token_usage`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsageRecord {
    /// Model name.
    pub model: String,
    /// Prompt tokens in the bucket.
    pub prompt_tokens: i64,
    /// Completion tokens in the bucket.
    pub completion_tokens: i64,
    /// Total tokens in the bucket.
    pub total_tokens: i64,
    /// Hour bucket, [`MONITORING_BUCKET_FORMAT`].
    pub time_bucket: String,
}

/// A row of `monitoring_stage_timing`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTimingRecord {
    /// Stage name.
    pub stage_name: String,
    /// Samples in the bucket.
    pub count: i64,
    /// Sum of durations, ms.
    pub total_duration_ms: i64,
    /// Shortest duration, ms.
    pub min_duration_ms: i64,
    /// Longest duration, ms.
    pub max_duration_ms: i64,
    /// `total_duration_ms / count`, rounded down, ms.
    pub avg_duration_ms: i64,
    /// Successful samples.
    pub success_count: i64,
    /// Failed samples.
    pub error_count: i64,
    /// Free text of the bucket's first sample.
    #[serde(default)]
    pub metadata: Option<String>,
    /// Hour bucket, [`MONITORING_BUCKET_FORMAT`].
    pub time_bucket: String,
}

/// Data statistics summed over a time range, per `(data_type, context_type)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataStatsRecord {
    /// What was counted.
    pub data_type: String,
    /// Sum of counts.
    pub count: i64,
    /// Context type, when the data is a context.
    #[serde(default)]
    pub context_type: Option<String>,
}

/// Data statistics per time interval, per `(data_type, context_type)`
/// ([`crate::DocumentStorageBackend::query_monitoring_data_stats_trend`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataStatsTrendRecord {
    /// Start of the interval, [`MONITORING_BUCKET_FORMAT`].
    pub timestamp: String,
    /// What was counted.
    pub data_type: String,
    /// Sum of counts in the interval.
    pub count: i64,
    /// Context type, when the data is a context.
    #[serde(default)]
    pub context_type: Option<String>,
}

/// Rows removed by [`crate::DocumentStorageBackend::cleanup_old_monitoring_data`], per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitoringCleanup {
    /// Rows removed from `monitoring_token_usage`.
    pub token_usage: u64,
    /// Rows removed from `monitoring_stage_timing`.
    pub stage_timing: u64,
    /// Rows removed from `monitoring_data_stats`.
    pub data_stats: u64,
}

// ---------------------------------------------------------------------------------------------
// Validation (shared by every document backend, run before anything is written)
// ---------------------------------------------------------------------------------------------

/// Checks a text field against [`MAX_TEXT_BYTES`].
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field`, its size and the bound.
pub fn validate_text(field: &str, text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(StorageError::invalid_input(format!(
            "{field} is {} bytes long, the limit is {MAX_TEXT_BYTES}",
            text.len()
        )));
    }
    Ok(())
}

fn validate_opt_text(field: &str, text: Option<&str>) -> Result<()> {
    text.map_or(Ok(()), |t| validate_text(field, t))
}

/// Checks a record's free-form metadata: it nests at most
/// [`crate::validate::MAX_JSON_DEPTH`] levels (the map itself is the first), so that every
/// document backend stores it and reads it back (MariaDB refuses deeper JSON, serde_json
/// stops reading at 128), and it serialises to at most
/// [`MAX_TEXT_BYTES`].
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field` and the bound.
pub fn validate_metadata(field: &str, metadata: &JsonMap) -> Result<()> {
    let depth = 1 + metadata
        .values()
        .map(crate::validate::json_depth)
        .max()
        .unwrap_or(0);
    if depth > crate::validate::MAX_JSON_DEPTH {
        return Err(StorageError::invalid_input(format!(
            "{field} nests {depth} levels deep, the limit is {}",
            crate::validate::MAX_JSON_DEPTH
        )));
    }
    let bytes = serde_json::to_vec(metadata).map_or(usize::MAX, |v| v.len());
    if bytes > MAX_TEXT_BYTES {
        return Err(StorageError::invalid_input(format!(
            "{field} is {bytes} bytes as JSON, the limit is {MAX_TEXT_BYTES}"
        )));
    }
    Ok(())
}

fn validate_list(field: &str, items: &[String]) -> Result<()> {
    let total: usize = items.iter().map(|s| s.len() + 4).sum();
    if total > MAX_TEXT_BYTES {
        return Err(StorageError::invalid_input(format!(
            "{field} has {} items totalling about {total} bytes, the limit is {MAX_TEXT_BYTES}",
            items.len()
        )));
    }
    Ok(())
}

/// Checks a page request: `limit` at most [`MAX_LIST_LIMIT`], `offset` at most `i64::MAX`.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the bound.
pub fn validate_page(limit: u32, offset: u64) -> Result<()> {
    if limit > MAX_LIST_LIMIT {
        return Err(StorageError::invalid_input(format!(
            "limit is {limit}, the maximum is {MAX_LIST_LIMIT}"
        )));
    }
    if offset > i64::MAX as u64 {
        return Err(StorageError::invalid_input(format!(
            "offset is {offset}, the maximum is {}",
            i64::MAX
        )));
    }
    Ok(())
}

/// Checks a counter that is stored in a signed 64-bit column.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field` when `value > i64::MAX`.
pub fn validate_count(field: &str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| {
        StorageError::invalid_input(format!("{field} is {value}, the maximum is {}", i64::MAX))
    })
}

fn validate_name(field: &str, value: &str, max_chars: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(StorageError::invalid_input(format!(
            "{field} must not be empty"
        )));
    }
    let n = value.chars().count();
    if n > max_chars {
        return Err(StorageError::invalid_input(format!(
            "{field} is {n} characters long, the limit is {max_chars}"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(StorageError::invalid_input(format!(
            "{field} {value:?} contains a control character"
        )));
    }
    Ok(())
}

impl TenantKey {
    /// Checks the three parts with [`crate::validate::validate_id`] (non-empty, at most
    /// [`crate::validate::MAX_ID_LEN`] bytes, no control characters).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the part.
    pub fn validate(&self) -> Result<()> {
        crate::validate::validate_id("user_id", &self.user_id)?;
        crate::validate::validate_id("device_id", &self.device_id)?;
        crate::validate::validate_id("agent_id", &self.agent_id)
    }
}

/// Checks an entity name like an id (non-empty, bounded, no control characters).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `entity_name`.
pub fn validate_entity_name(entity_name: &str) -> Result<()> {
    crate::validate::validate_id("entity_name", entity_name)
}

impl ProfileUpsert {
    /// Checks the key, the sizes, `importance` (0 to 10) and the metadata
    /// ([`validate_metadata`]).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        self.key.validate()?;
        validate_text("content", &self.content)?;
        validate_opt_text("summary", self.summary.as_deref())?;
        validate_list("keywords", &self.keywords)?;
        validate_list("entities", &self.entities)?;
        validate_metadata("metadata", &self.metadata)?;
        if !(0..=10).contains(&self.importance) {
            return Err(StorageError::invalid_input(format!(
                "importance is {}, the range is 0 to 10",
                self.importance
            )));
        }
        Ok(())
    }
}

impl EntityUpsert {
    /// Checks the key, the name, the sizes and the metadata ([`validate_metadata`]).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        self.key.validate()?;
        validate_entity_name(&self.entity_name)?;
        validate_text("content", &self.content)?;
        validate_opt_text("summary", self.summary.as_deref())?;
        if let Some(t) = &self.entity_type {
            validate_name("entity_type", t, 256)?;
        }
        validate_list("keywords", &self.keywords)?;
        validate_list("aliases", &self.aliases)?;
        validate_metadata("metadata", &self.metadata)
    }
}

impl EntityQuery {
    /// Checks the key and the page.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        self.key.validate()?;
        validate_page(self.limit, self.offset)
    }
}

impl NewVault {
    /// Checks `document_type` (non-empty, at most 64 characters) and the sizes.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        validate_name("document_type", &self.document_type, 64)?;
        validate_text("title", &self.title)?;
        validate_text("summary", &self.summary)?;
        validate_text("content", &self.content)?;
        validate_opt_text("tags", self.tags.as_deref())
    }
}

impl VaultQuery {
    /// Checks the page.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the bound.
    pub fn validate(&self) -> Result<()> {
        validate_opt_timestamp("created_after", self.created_after.as_ref())?;
        validate_opt_timestamp("created_before", self.created_before.as_ref())?;
        validate_opt_timestamp("updated_after", self.updated_after.as_ref())?;
        validate_opt_timestamp("updated_before", self.updated_before.as_ref())?;
        validate_page(self.limit, self.offset)
    }
}

impl VaultUpdate {
    /// Checks that some field is set and the sizes.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when nothing is set or a text is too long.
    pub fn validate(&self) -> Result<()> {
        if self.is_empty() {
            return Err(StorageError::invalid_input(
                "the vault update sets no field (title, summary, content, tags, parent_id, is_folder, is_deleted)",
            ));
        }
        validate_opt_text("title", self.title.as_deref())?;
        validate_opt_text("summary", self.summary.as_deref())?;
        validate_opt_text("content", self.content.as_deref())?;
        validate_opt_text("tags", self.tags.as_ref().and_then(|t| t.as_deref()))
    }
}

/// Checks a todo status value against [`todo_status`].
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the value and the accepted ones.
pub fn validate_todo_status(status: i64) -> Result<()> {
    if !todo_status::is_known(status) {
        return Err(StorageError::invalid_input(format!(
            "todo status is {status}, expected 0 (pending) or 1 (completed)"
        )));
    }
    Ok(())
}

/// Checks the arguments of [`crate::DocumentStorageBackend::update_todo_status`]: a known
/// status and a storable `end_time`.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
pub fn validate_todo_status_update(status: i64, end_time: Option<&Timestamp>) -> Result<()> {
    validate_todo_status(status)?;
    validate_opt_timestamp("end_time", end_time)
}

/// Checks a time range: both ends storable and `end` not before `start`.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the bound.
pub fn validate_time_range(start: &Timestamp, end: &Timestamp) -> Result<()> {
    crate::time::validate_timestamp("start", start)?;
    crate::time::validate_timestamp("end", end)?;
    if end < start {
        return Err(StorageError::invalid_input(format!(
            "end {end} is before start {start}"
        )));
    }
    Ok(())
}

impl NewTodo {
    /// Checks status, urgency (`>= 0`) and sizes.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        validate_text("content", &self.content)?;
        validate_todo_status(self.status)?;
        if self.urgency < 0 {
            return Err(StorageError::invalid_input(format!(
                "urgency is {}, it must be >= 0",
                self.urgency
            )));
        }
        validate_opt_text("assignee", self.assignee.as_deref())?;
        validate_opt_text("reason", self.reason.as_deref())?;
        validate_opt_timestamp("start_time", self.start_time.as_ref())?;
        validate_opt_timestamp("end_time", self.end_time.as_ref())
    }
}

impl TodoQuery {
    /// Checks the page and the status filter.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the bound.
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = self.status {
            validate_todo_status(s)?;
        }
        validate_opt_timestamp("start_time", self.start_time.as_ref())?;
        validate_opt_timestamp("end_time", self.end_time.as_ref())?;
        validate_page(self.limit, self.offset)
    }
}

impl TipQuery {
    /// Checks the page and the time bounds.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the bound.
    pub fn validate(&self) -> Result<()> {
        validate_opt_timestamp("start_time", self.start_time.as_ref())?;
        validate_opt_timestamp("end_time", self.end_time.as_ref())?;
        validate_page(self.limit, self.offset)
    }
}

/// Longest `page_name`, in characters (the column is `VARCHAR(20)`).
pub const MAX_PAGE_NAME_CHARS: usize = 20;

impl NewConversation {
    /// Checks `page_name` (non-empty, at most [`MAX_PAGE_NAME_CHARS`]), sizes and the metadata
    /// ([`validate_metadata`]).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        validate_name("page_name", &self.page_name, MAX_PAGE_NAME_CHARS)?;
        if let Some(u) = &self.user_id {
            crate::validate::validate_id("user_id", u)?;
        }
        validate_opt_text("title", self.title.as_deref())?;
        validate_metadata("metadata", &self.metadata)
    }
}

impl ConversationQuery {
    /// Checks the page.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the bound.
    pub fn validate(&self) -> Result<()> {
        validate_page(self.limit, self.offset)
    }
}

impl NewMessage {
    /// Checks `role` (non-empty, at most 64 characters), sizes, the token count and the
    /// metadata ([`validate_metadata`]).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        validate_name("role", &self.role, 64)?;
        validate_text("content", &self.content)?;
        validate_count("token_count", self.token_count)?;
        validate_opt_text("parent_message_id", self.parent_message_id.as_deref())?;
        validate_metadata("metadata", &self.metadata)
    }
}

impl NewThinking {
    /// Checks `progress` (finite, 0.0 to 1.0), `sequence` (`>= 0`), sizes and the metadata
    /// ([`validate_metadata`]).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        validate_text("content", &self.content)?;
        if !self.progress.is_finite() || !(0.0..=1.0).contains(&self.progress) {
            return Err(StorageError::invalid_input(format!(
                "progress is {}, the range is 0.0 to 1.0",
                self.progress
            )));
        }
        if let Some(seq) = self.sequence
            && seq < 0
        {
            return Err(StorageError::invalid_input(format!(
                "sequence is {seq}, it must be >= 0"
            )));
        }
        validate_opt_text("stage", self.stage.as_deref())?;
        validate_metadata("metadata", &self.metadata)
    }
}

impl TokenUsageSample {
    /// Checks `model` and the counts.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        validate_name("model", &self.model, 256)?;
        validate_count("prompt_tokens", self.prompt_tokens)?;
        validate_count("completion_tokens", self.completion_tokens)?;
        validate_count("total_tokens", self.total_tokens)?;
        validate_opt_timestamp("at", self.at.as_ref())
    }
}

impl StageTimingSample {
    /// Checks `stage_name` and the duration.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        validate_name("stage_name", &self.stage_name, 256)?;
        validate_count("duration_ms", self.duration_ms)?;
        validate_opt_timestamp("at", self.at.as_ref())?;
        validate_opt_text("metadata", self.metadata.as_deref())
    }
}

impl DataStatsSample {
    /// Checks `data_type`, `context_type` and the count.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field and the bound.
    pub fn validate(&self) -> Result<()> {
        validate_name("data_type", &self.data_type, 256)?;
        if let Some(c) = &self.context_type {
            validate_name("context_type", c, 256)?;
        }
        validate_count("count", self.count)?;
        validate_opt_timestamp("at", self.at.as_ref())?;
        validate_opt_text("metadata", self.metadata.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_timestamp;

    #[test]
    fn profile_reads_the_originals_dict() {
        // The dict the original's get_profile returned, with a naive CURRENT_TIMESTAMP value.
        let json = serde_json::json!({
            "user_id": "u", "device_id": "default", "agent_id": "default",
            "content": "likes tea", "summary": null, "keywords": ["tea"], "entities": [],
            "importance": 3, "metadata": {"k": 1},
            "created_at": "2025-03-01 10:00:00", "updated_at": "2025-03-01 10:00:00.123456"
        });
        let p: Profile = serde_json::from_value(json).unwrap();
        assert_eq!(p.key(), TenantKey::user("u"));
        // Naive: read in the process's naive zone (the machine's, in unit tests).
        assert_eq!(
            p.created_at,
            crate::time::default_naive_zone().from_naive(
                &chrono::NaiveDate::from_ymd_opt(2025, 3, 1)
                    .unwrap()
                    .and_hms_opt(10, 0, 0)
                    .unwrap()
            )
        );
        assert_eq!(p.keywords, vec!["tea"]);
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(
            back["created_at"],
            crate::time::format_timestamp(&p.created_at),
            "written back with its offset"
        );
        assert!(
            back["created_at"]
                .as_str()
                .unwrap()
                .starts_with("2025-03-01T10:00:00")
        );
    }

    #[test]
    fn statuses_parse_strictly() {
        assert_eq!(
            "delected".parse::<ConversationStatus>().unwrap(),
            ConversationStatus::Deleted
        );
        assert!("archived".parse::<ConversationStatus>().is_err());
        assert_eq!(
            "failed".parse::<FinishStatus>().unwrap(),
            FinishStatus::Failed
        );
        assert!(
            "done"
                .parse::<FinishStatus>()
                .unwrap_err()
                .to_string()
                .contains("done")
        );
        assert!(todo_status::is_known(1) && !todo_status::is_known(7));
    }

    #[test]
    fn monitoring_bucket_is_the_hour_in_the_naive_zone() {
        let t = parse_timestamp("2025-03-01T10:59:59+08:00").unwrap();
        let wall = crate::time::default_naive_zone().to_naive(&t);
        assert_eq!(
            monitoring_bucket(&t),
            wall.format("%Y-%m-%d %H:00:00").to_string()
        );
        let shanghai = crate::time::NaiveZone::parse("+08:00").unwrap();
        assert_eq!(
            shanghai
                .to_naive(&t)
                .format(MONITORING_BUCKET_FORMAT)
                .to_string(),
            "2025-03-01 10:00:00"
        );
    }
}
