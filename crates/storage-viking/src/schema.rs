//! The fields of the one VikingDB collection: names, VikingDB types and which carry a scalar
//! index (only indexed fields can be filtered on or sorted by).
//!
//! Context fields follow the flattened payload layout of `storage_core::payload`; internal
//! fields are `data_type` (`context` or `todo`, as the original), `scroll_key` (the cursor
//! of scrolls and list paging), `metadata_json` / `metadata_keys` (metadata that has no
//! declared field, and which declared metadata fields are set) and the todo fields
//! `todo_id` / `content`. Field types follow the data-plane docs
//! (<https://www.volcengine.com/docs/84313/1791127>): `string`, `int64`, `float32`, `bool`,
//! `vector`. `hierarchy_level` is `float32` as in the original, so it is matched with a range
//! whose bounds are equal.

use serde_json::{Value as Json, json};
use storage_core::payload::{JSON_ENCODED_FIELDS, is_reserved_key};
use storage_core::{Result, StorageError};

use crate::config::{MetadataField, MetadataFieldType};

/// Primary key field.
pub(crate) const FIELD_ID: &str = "id";
/// Dense vector field.
pub(crate) const FIELD_VECTOR: &str = "vector";
/// `context` or `todo`.
pub(crate) const FIELD_DATA_TYPE: &str = "data_type";
/// Cursor key: 63 bits of SHA-256 of the id.
pub(crate) const FIELD_SCROLL_KEY: &str = "scroll_key";
/// Undeclared metadata, one JSON object.
pub(crate) const FIELD_METADATA_JSON: &str = "metadata_json";
/// Names of declared metadata fields that are set, a JSON list.
pub(crate) const FIELD_METADATA_KEYS: &str = "metadata_keys";
/// Todo id (string, as the original).
pub(crate) const FIELD_TODO_ID: &str = "todo_id";
/// Todo text.
pub(crate) const FIELD_CONTENT: &str = "content";

pub(crate) const DATA_TYPE_CONTEXT: &str = "context";
pub(crate) const DATA_TYPE_TODO: &str = "todo";

/// A VikingDB scalar field type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Str,
    Int64,
    Float32,
    Bool,
}

impl FieldType {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            FieldType::Str => "string",
            FieldType::Int64 => "int64",
            FieldType::Float32 => "float32",
            FieldType::Bool => "bool",
        }
    }
}

/// (name, type, scalar-indexed)
const BUILTIN: &[(&str, FieldType, bool)] = &[
    (FIELD_DATA_TYPE, FieldType::Str, true),
    (FIELD_SCROLL_KEY, FieldType::Int64, true),
    ("context_type", FieldType::Str, true),
    ("user_id", FieldType::Str, true),
    ("device_id", FieldType::Str, true),
    ("agent_id", FieldType::Str, true),
    ("title", FieldType::Str, false),
    ("summary", FieldType::Str, false),
    ("keywords", FieldType::Str, false),
    ("entities", FieldType::Str, false),
    ("confidence", FieldType::Int64, true),
    ("importance", FieldType::Int64, true),
    ("raw_properties", FieldType::Str, false),
    ("create_time", FieldType::Str, false),
    ("event_time", FieldType::Str, false),
    ("update_time", FieldType::Str, false),
    ("last_call_time", FieldType::Str, false),
    ("create_time_ts", FieldType::Int64, true),
    ("event_time_ts", FieldType::Int64, true),
    ("update_time_ts", FieldType::Int64, true),
    ("last_call_time_ts", FieldType::Int64, true),
    ("is_processed", FieldType::Bool, true),
    ("has_compression", FieldType::Bool, true),
    ("enable_merge", FieldType::Bool, true),
    ("is_happend", FieldType::Bool, true),
    ("call_count", FieldType::Int64, true),
    ("merge_count", FieldType::Int64, true),
    ("duration_count", FieldType::Int64, true),
    ("file_path", FieldType::Str, true),
    ("raw_type", FieldType::Str, true),
    ("raw_id", FieldType::Str, true),
    ("hierarchy_level", FieldType::Float32, true),
    ("parent_id", FieldType::Str, true),
    ("children_ids", FieldType::Str, false),
    ("time_bucket", FieldType::Str, true),
    ("source_file_key", FieldType::Str, true),
    ("document", FieldType::Str, false),
    ("content_format", FieldType::Str, true),
    ("image_path", FieldType::Str, false),
    (FIELD_METADATA_JSON, FieldType::Str, false),
    (FIELD_METADATA_KEYS, FieldType::Str, false),
    (FIELD_TODO_ID, FieldType::Str, true),
    (FIELD_CONTENT, FieldType::Str, false),
];

/// Optional string fields: a real server returns `""` for an unset string field, so `""`
/// reads back as unset.
pub(crate) const OPTIONAL_STRINGS: &[&str] = &[
    "title",
    "summary",
    "keywords",
    "entities",
    "raw_properties",
    "children_ids",
    "last_call_time",
    "file_path",
    "raw_type",
    "raw_id",
    "user_id",
    "device_id",
    "agent_id",
    "parent_id",
    "time_bucket",
    "source_file_key",
    "document",
    "content_format",
    "image_path",
];

/// The collection's fields, built-in plus declared metadata.
#[derive(Clone, Debug)]
pub(crate) struct Schema {
    dimension: usize,
    fields: Vec<(String, FieldType, bool)>,
    metadata: Vec<MetadataField>,
}

impl Schema {
    pub(crate) fn new(dimension: usize, metadata: &[MetadataField]) -> Self {
        let mut fields: Vec<(String, FieldType, bool)> = BUILTIN
            .iter()
            .map(|(n, t, i)| ((*n).to_owned(), *t, *i))
            .collect();
        for m in metadata {
            let t = match m.field_type {
                MetadataFieldType::String => FieldType::Str,
                MetadataFieldType::Int64 => FieldType::Int64,
                MetadataFieldType::Float32 => FieldType::Float32,
                MetadataFieldType::Bool => FieldType::Bool,
            };
            fields.push((m.name.clone(), t, true));
        }
        Schema {
            dimension,
            fields,
            metadata: metadata.to_vec(),
        }
    }

    /// The type and indexed flag of a scalar field.
    pub(crate) fn field(&self, name: &str) -> Option<(FieldType, bool)> {
        self.fields
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, t, i)| (*t, *i))
    }

    /// Whether `name` is a declared metadata field.
    pub(crate) fn is_declared_metadata(&self, name: &str) -> bool {
        self.metadata.iter().any(|m| m.name == name)
    }

    /// Declared metadata field names.
    pub(crate) fn declared_metadata(&self) -> impl Iterator<Item = &str> {
        self.metadata.iter().map(|m| m.name.as_str())
    }

    /// Every field name including `id` and `vector` (the `output_fields` that return vectors).
    pub(crate) fn all_output_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = self.fields.iter().map(|(n, _, _)| n.clone()).collect();
        out.push(FIELD_VECTOR.into());
        out
    }

    /// The `Fields` of `CreateVikingdbCollection`.
    pub(crate) fn create_fields(&self) -> Json {
        let mut out = vec![
            json!({"FieldName": FIELD_ID, "FieldType": "string", "IsPrimaryKey": true}),
            json!({"FieldName": FIELD_VECTOR, "FieldType": "vector", "Dim": self.dimension}),
        ];
        out.extend(
            self.fields
                .iter()
                .map(|(n, t, _)| json!({"FieldName": n, "FieldType": t.wire()})),
        );
        Json::Array(out)
    }

    /// The `ScalarIndex` of `CreateVikingdbIndex`.
    pub(crate) fn scalar_index(&self) -> Json {
        Json::Array(
            self.fields
                .iter()
                .filter(|(_, _, i)| *i)
                .map(|(n, _, _)| Json::String(n.clone()))
                .collect(),
        )
    }

    /// Checks that `field` can be filtered on: a declared, indexed, non-JSON field.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Unsupported`] naming the field and why.
    pub(crate) fn filterable(&self, field: &str) -> Result<FieldType> {
        if JSON_ENCODED_FIELDS.contains(&field) {
            return Err(StorageError::unsupported(format!(
                "field '{field}' is stored as a JSON-encoded string; VikingDB cannot compare its elements"
            )));
        }
        match self.field(field) {
            Some((t, true)) => Ok(t),
            Some((_, false)) => Err(StorageError::unsupported(format!(
                "field '{field}' has no scalar index in the VikingDB collection, so it cannot be filtered on"
            ))),
            None => Err(StorageError::unsupported(format!(
                "field '{field}' is not a field of the VikingDB collection; declare metadata keys in `metadata_fields` to filter on them"
            ))),
        }
    }
}

/// Checks a declared metadata field.
///
/// # Errors
/// [`storage_core::ErrorKind::Config`] naming the field.
pub(crate) fn check_metadata_field(f: &MetadataField) -> Result<()> {
    let ok = f.name.len() <= 128
        && f.name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && f.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(StorageError::config(format!(
            "vikingdb metadata_fields name {:?} must match [A-Za-z_][A-Za-z0-9_]* (at most 128 bytes)",
            f.name
        )));
    }
    if is_reserved_key(&f.name) || BUILTIN.iter().any(|(n, _, _)| *n == f.name) {
        return Err(StorageError::config(format!(
            "vikingdb metadata_fields name '{}' is already a field of the collection",
            f.name
        )));
    }
    Ok(())
}
