//! The context model: what vector backends store.
//!
//! Field names and JSON shapes are those of the original's pydantic models
//! (`opencontext/models/context.py` and `enums.py`), so JSON written by the original
//! (`ProcessedContext.model_dump_json()`) deserialises unchanged, and ours reads there.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::{Result, StorageError};
use crate::time::{Timestamp, serde_ts, serde_ts_opt};

/// JSON object used for free-form metadata (`Dict[str, Any]` in the original).
pub type JsonMap = Map<String, Value>;

/// The five kinds of context. Document, event and knowledge contexts live in the vector
/// database; profiles and entities live in the relational store (the original's
/// `CONTEXT_STORAGE_BACKENDS`), although vector backends accept all five.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextType {
    /// The user's own profile (overwritten on update).
    Profile,
    /// A person, project, team or organisation other than the user (overwritten per entity).
    Entity,
    /// A chunk of an uploaded document (replaced when the source is re-uploaded).
    Document,
    /// An immutable record of something that happened; rolled up into summaries.
    Event,
    /// Reusable knowledge; similar entries are merged.
    Knowledge,
}

impl ContextType {
    /// All context types, in the original's declaration order.
    pub const ALL: [ContextType; 5] = [
        ContextType::Profile,
        ContextType::Entity,
        ContextType::Document,
        ContextType::Event,
        ContextType::Knowledge,
    ];

    /// The wire name (`"event"`), also the collection name of per-type backends.
    pub fn as_str(self) -> &'static str {
        match self {
            ContextType::Profile => "profile",
            ContextType::Entity => "entity",
            ContextType::Document => "document",
            ContextType::Event => "event",
            ContextType::Knowledge => "knowledge",
        }
    }
}

impl fmt::Display for ContextType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContextType {
    type Err = StorageError;

    /// Parses the wire name exactly (`"event"`); anything else is an
    /// [`crate::ErrorKind::InvalidInput`] error listing the valid names.
    fn from_str(s: &str) -> Result<Self> {
        ContextType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                StorageError::invalid_input(format!(
                    "unknown context type '{s}' (expected one of profile, entity, document, event, knowledge)"
                ))
            })
    }
}

/// How the content of a context is represented.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentFormat {
    /// Plain text (the default).
    #[default]
    Text,
    /// An image, referenced by path.
    Image,
    /// A file, referenced by path.
    File,
}

/// Where raw context came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextSource {
    /// A vault document (notes, reports).
    Vault,
    /// A file on the local disk.
    LocalFile,
    /// A web page.
    WebLink,
    /// Direct user input.
    Input,
    /// A chat transcript.
    ChatLog,
}

fn default_true() -> bool {
    true
}

fn default_one() -> i64 {
    1
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Deserialises `null` as the default value (pydantic accepts `None` for defaulted fields
/// written by some of the original's code paths).
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Properties of one piece of raw input a context was extracted from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawContextProperties {
    /// Format of the raw content.
    pub content_format: ContentFormat,
    /// Where it came from.
    pub source: ContextSource,
    /// When the raw input was created.
    #[serde(with = "serde_ts")]
    pub create_time: Timestamp,
    /// Identifier of the raw object (a random UUID by default).
    #[serde(default = "new_uuid")]
    pub object_id: String,
    /// File path when the format is image or file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_path: Option<String>,
    /// Content type, e.g. `"text"`, `"image"`, `"video"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The text, when the format is text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_text: Option<String>,
    /// Path used by filters of the capture pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_path: Option<String>,
    /// Anything else the capture step recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<JsonMap>,
    /// Whether this input may be merged with others.
    #[serde(default = "default_true")]
    pub enable_merge: bool,
    /// Tenant: user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Tenant: device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Tenant: agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// What was extracted from the raw input (title, summary, keywords, type, scores).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtractedData {
    /// Short title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Summary text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Keywords.
    #[serde(default, deserialize_with = "null_as_default")]
    pub keywords: Vec<String>,
    /// Names of entities mentioned.
    #[serde(default, deserialize_with = "null_as_default")]
    pub entities: Vec<String>,
    /// The context type (selects the collection).
    pub context_type: ContextType,
    /// Extraction confidence, 0 to 10.
    #[serde(default)]
    pub confidence: u8,
    /// Importance, 0 to 10.
    #[serde(default)]
    pub importance: u8,
}

impl ExtractedData {
    /// Empty extracted data of the given type.
    pub fn new(context_type: ContextType) -> Self {
        ExtractedData {
            title: None,
            summary: None,
            keywords: Vec::new(),
            entities: Vec::new(),
            context_type,
            confidence: 0,
            importance: 0,
        }
    }
}

/// Properties of a processed context: times, counters, tenant, hierarchy and source tracking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextProperties {
    /// The raw inputs this context was built from.
    #[serde(default, deserialize_with = "null_as_default")]
    pub raw_properties: Vec<RawContextProperties>,
    /// When the context was created.
    #[serde(with = "serde_ts")]
    pub create_time: Timestamp,
    /// When the event happened (may be in the future).
    #[serde(with = "serde_ts")]
    pub event_time: Timestamp,
    /// Whether processing has finished.
    #[serde(default)]
    pub is_processed: bool,
    /// Whether the context has been compressed.
    #[serde(default)]
    pub has_compression: bool,
    /// When the context was last updated.
    #[serde(with = "serde_ts")]
    pub update_time: Timestamp,
    /// How often online services used this context.
    #[serde(default)]
    pub call_count: i64,
    /// How often it was merged.
    #[serde(default)]
    pub merge_count: i64,
    /// Duration count (1 by default).
    #[serde(default = "default_one")]
    pub duration_count: i64,
    /// Whether it may be merged.
    #[serde(default)]
    pub enable_merge: bool,
    /// Whether the event has happened.
    ///
    /// Stored under the original's spelling `is_happend` (sic) in every payload, metadata
    /// record and JSON form, so data written by the original reads back and the original reads
    /// ours; `is_happened` (what earlier versions of this library wrote) is accepted on read.
    #[serde(default, rename = "is_happend", alias = "is_happened")]
    pub is_happened: bool,
    /// When online services last used it.
    #[serde(
        default,
        with = "serde_ts_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_call_time: Option<Timestamp>,
    /// File path (documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// Raw record type, e.g. `"vaults"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_type: Option<String>,
    /// Raw record id (e.g. the id in the vaults table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_id: Option<String>,
    /// Tenant: user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Tenant: device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Tenant: agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// 0 = original, 1 = daily summary, 2 = weekly summary, 3 = monthly summary.
    #[serde(default)]
    pub hierarchy_level: u8,
    /// Id of the summary this context rolls up into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Ids of the contexts this summary covers.
    #[serde(default, deserialize_with = "null_as_default")]
    pub children_ids: Vec<String>,
    /// Time bucket of a summary: a day `2026-02-21`, an ISO week `2026-W08` or a month `2026-02`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_bucket: Option<String>,
    /// Identifies the source document (`"user_id:file_path"`); all chunks of one upload share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_file_key: Option<String>,
}

impl ContextProperties {
    /// Properties with all three times set to `time` and every other field at its default.
    pub fn at(time: Timestamp) -> Self {
        ContextProperties {
            raw_properties: Vec::new(),
            create_time: time,
            event_time: time,
            is_processed: false,
            has_compression: false,
            update_time: time,
            call_count: 0,
            merge_count: 0,
            duration_count: 1,
            enable_merge: false,
            is_happened: false,
            last_call_time: None,
            file_path: None,
            raw_type: None,
            raw_id: None,
            user_id: None,
            device_id: None,
            agent_id: None,
            hierarchy_level: 0,
            parent_id: None,
            children_ids: Vec::new(),
            time_bucket: None,
            source_file_key: None,
        }
    }
}

/// The text (or image path) to embed, and the embedding once computed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vectorize {
    /// What is embedded.
    #[serde(default)]
    pub content_format: ContentFormat,
    /// Image path when the format is image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_path: Option<String>,
    /// Text when the format is text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The embedding. `None` until computed; the storage facade asks its
    /// [`crate::Embedder`] for it when a context arrives without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

impl Vectorize {
    /// Text content without a vector yet.
    pub fn text(text: impl Into<String>) -> Self {
        Vectorize {
            text: Some(text.into()),
            ..Vectorize::default()
        }
    }

    /// A precomputed vector (a search query, say).
    pub fn vector(vector: Vec<f32>) -> Self {
        Vectorize {
            vector: Some(vector),
            ..Vectorize::default()
        }
    }

    /// The content to embed: the text for text, the image path for images, nothing for files.
    pub fn vectorize_content(&self) -> Option<&str> {
        match self.content_format {
            ContentFormat::Text => self.text.as_deref(),
            ContentFormat::Image => self.image_path.as_deref(),
            ContentFormat::File => None,
        }
    }
}

/// A processed, embeddable context: the unit that vector backends store as one point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessedContext {
    /// Caller-chosen string id (a random UUID by default in the original).
    #[serde(default = "new_uuid")]
    pub id: String,
    /// Times, counters, tenant, hierarchy.
    pub properties: ContextProperties,
    /// Title, summary, keywords, type, scores.
    pub extracted_data: ExtractedData,
    /// Text and embedding.
    pub vectorize: Vectorize,
    /// Free-form metadata, stored flattened next to the other fields.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: JsonMap,
}

impl ProcessedContext {
    /// A context of `context_type` with `text` to embed, created now, with a random id.
    pub fn new(context_type: ContextType, text: impl Into<String>) -> Self {
        ProcessedContext {
            id: new_uuid(),
            properties: ContextProperties::at(crate::time::now()),
            extracted_data: ExtractedData::new(context_type),
            vectorize: Vectorize::text(text),
            metadata: JsonMap::new(),
        }
    }

    /// The context type (shorthand for `extracted_data.context_type`).
    pub fn context_type(&self) -> ContextType {
        self.extracted_data.context_type
    }
}

/// A search hit: the context and its similarity score (higher is more similar; for cosine
/// similarity the range is `[-1, 1]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredContext {
    /// The stored context (with its vector only when the query asked for it).
    pub context: ProcessedContext,
    /// Similarity score, higher is better.
    pub score: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON as the original's `ProcessedContext.model_dump_json(exclude_none=True)` writes it.
    const ORIGINAL_JSON: &str = r#"{
        "id": "ctx-1",
        "properties": {
            "raw_properties": [{"content_format": "text", "source": "chat_log",
                "create_time": "2025-03-01T10:00:00", "object_id": "o1",
                "content_text": "hi", "enable_merge": true, "user_id": "u1"}],
            "create_time": "2025-03-01T10:00:00+08:00",
            "event_time": "2025-03-01T10:00:00.250000+08:00",
            "is_processed": true, "has_compression": false,
            "update_time": "2025-03-01T10:00:00+08:00",
            "call_count": 2, "merge_count": 0, "duration_count": 1,
            "enable_merge": false, "is_happend": true,
            "user_id": "u1", "device_id": "d1", "agent_id": "a1",
            "hierarchy_level": 1, "children_ids": ["c1", "c2"],
            "time_bucket": "2025-03-01", "source_file_key": "u1:notes.md"
        },
        "extracted_data": {"title": "T", "keywords": ["k"], "entities": [],
            "context_type": "event", "confidence": 7, "importance": 5},
        "vectorize": {"content_format": "text", "text": "hello", "vector": [0.5, 0.25]},
        "metadata": {"project": "x"}
    }"#;

    #[test]
    fn original_json_deserialises_and_round_trips() {
        let ctx: ProcessedContext = serde_json::from_str(ORIGINAL_JSON).unwrap();
        assert_eq!(ctx.context_type(), ContextType::Event);
        assert_eq!(ctx.properties.hierarchy_level, 1);
        assert_eq!(ctx.properties.children_ids, vec!["c1", "c2"]);
        assert_eq!(
            ctx.properties.raw_properties[0].source,
            ContextSource::ChatLog
        );
        assert_eq!(ctx.vectorize.vector.as_deref(), Some(&[0.5, 0.25][..]));
        let again: ProcessedContext =
            serde_json::from_str(&serde_json::to_string(&ctx).unwrap()).unwrap();
        assert_eq!(again, ctx);
    }

    #[test]
    fn unknown_context_type_is_a_clear_error() {
        let err = "memo".parse::<ContextType>().unwrap_err();
        assert!(err.to_string().contains("unknown context type 'memo'"));
        assert_eq!(
            "knowledge".parse::<ContextType>().unwrap(),
            ContextType::Knowledge
        );
    }

    #[test]
    fn null_metadata_reads_as_empty() {
        let json = ORIGINAL_JSON.replace(r#"{"project": "x"}"#, "null");
        let ctx: ProcessedContext = serde_json::from_str(&json).unwrap();
        assert!(ctx.metadata.is_empty());
    }
}
