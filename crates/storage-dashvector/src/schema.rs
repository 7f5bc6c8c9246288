//! The collections' declared fields (`fields_schema` at creation) and collection names.
//!
//! DashVector is schema-free for writes, but this backend only lets filters name declared
//! fields: the declared type decides how a filter value is written (quoted string, number,
//! boolean), so a value of the wrong type is refused instead of silently matching nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use storage_core::{ContextType, Result, StorageError, payload};

/// A field type of DashVector's `fields_schema`
/// ([create a collection](https://www.alibabacloud.com/help/en/vrs/latest/new-collection-1)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FieldKind {
    /// UTF-8 string; compared with `=` and `!=` only.
    String,
    /// 32-bit signed integer.
    Int,
    /// 64-bit signed integer.
    Long,
    /// 32-bit float.
    Float,
    /// Boolean.
    Bool,
}

impl FieldKind {
    /// The schema type name sent to DashVector.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::String => "STRING",
            FieldKind::Int => "INT",
            FieldKind::Long => "LONG",
            FieldKind::Float => "FLOAT",
            FieldKind::Bool => "BOOL",
        }
    }

    /// Whether the type is numeric.
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldKind::Int | FieldKind::Long | FieldKind::Float)
    }

    /// Whether DashVector stores `v` in a field of this type: a string for `STRING`, a
    /// boolean for `BOOL`, an integer within 32 bits for `INT`, within 64 bits for `LONG`,
    /// a number for `FLOAT`. `null` (unset) fits every type.
    pub(crate) fn accepts(self, v: &serde_json::Value) -> bool {
        if v.is_null() {
            return true;
        }
        match self {
            FieldKind::String => v.is_string(),
            FieldKind::Bool => v.is_boolean(),
            FieldKind::Int => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            FieldKind::Long => v.as_i64().is_some(),
            FieldKind::Float => v.is_number(),
        }
    }
}

/// Field holding the context id (the original's `original_id`; the doc id is the same string).
pub(crate) const FIELD_ORIGINAL_ID: &str = payload::FIELD_ORIGINAL_ID;

/// Field holding the scroll cursor key: a 31-bit FNV-1a hash of the id (see `scroll.rs`).
pub(crate) const FIELD_SCROLL_KEY: &str = "dv_scroll_key";

/// Fields of every context collection, with their types.
pub(crate) const CONTEXT_FIELDS: &[(&str, FieldKind)] = &[
    (FIELD_ORIGINAL_ID, FieldKind::String),
    (FIELD_SCROLL_KEY, FieldKind::Int),
    ("document", FieldKind::String),
    ("title", FieldKind::String),
    ("summary", FieldKind::String),
    ("keywords", FieldKind::String),
    ("entities", FieldKind::String),
    ("context_type", FieldKind::String),
    ("confidence", FieldKind::Int),
    ("importance", FieldKind::Int),
    ("raw_properties", FieldKind::String),
    ("create_time", FieldKind::String),
    ("event_time", FieldKind::String),
    ("update_time", FieldKind::String),
    ("last_call_time", FieldKind::String),
    ("create_time_ts", FieldKind::Long),
    ("event_time_ts", FieldKind::Long),
    ("update_time_ts", FieldKind::Long),
    ("last_call_time_ts", FieldKind::Long),
    ("is_processed", FieldKind::Bool),
    ("has_compression", FieldKind::Bool),
    ("enable_merge", FieldKind::Bool),
    ("is_happend", FieldKind::Bool),
    ("call_count", FieldKind::Long),
    ("merge_count", FieldKind::Long),
    ("duration_count", FieldKind::Long),
    ("file_path", FieldKind::String),
    ("raw_type", FieldKind::String),
    ("raw_id", FieldKind::String),
    ("user_id", FieldKind::String),
    ("device_id", FieldKind::String),
    ("agent_id", FieldKind::String),
    ("hierarchy_level", FieldKind::Int),
    ("parent_id", FieldKind::String),
    ("children_ids", FieldKind::String),
    ("time_bucket", FieldKind::String),
    ("source_file_key", FieldKind::String),
    ("content_format", FieldKind::String),
    ("image_path", FieldKind::String),
];

/// Fields of the `todo` collection.
pub(crate) const TODO_FIELDS: &[(&str, FieldKind)] = &[
    ("todo_id", FieldKind::Long),
    ("content", FieldKind::String),
    ("created_at", FieldKind::String),
    ("created_at_ts", FieldKind::Long),
    ("metadata", FieldKind::String),
];

/// Name of the todo collection, without prefix.
pub(crate) const TODO_COLLECTION: &str = "todo";

/// Checks a configured extra field name: a field name, not a context field.
pub(crate) fn check_extra_field(name: &str) -> Result<()> {
    storage_core::filter::validate_field_name(name).map_err(|e| {
        StorageError::config(format!("dashvector config.extra_fields: {}", e.message()))
    })?;
    if payload::is_reserved_key(name) || name == FIELD_SCROLL_KEY {
        return Err(StorageError::config(format!(
            "dashvector config.extra_fields: '{name}' is a context field and is declared already"
        )));
    }
    Ok(())
}

/// The declared fields of the context collections: [`CONTEXT_FIELDS`] plus the configured
/// extra fields.
#[derive(Clone, Debug)]
pub(crate) struct Schema {
    fields: BTreeMap<String, FieldKind>,
}

impl Schema {
    pub(crate) fn new(extra: &BTreeMap<String, FieldKind>) -> Self {
        let mut fields: BTreeMap<String, FieldKind> = CONTEXT_FIELDS
            .iter()
            .map(|(n, k)| ((*n).to_owned(), *k))
            .collect();
        fields.extend(extra.iter().map(|(n, k)| (n.clone(), *k)));
        Schema { fields }
    }

    pub(crate) fn kind(&self, field: &str) -> Option<FieldKind> {
        self.fields.get(field).copied()
    }

    /// Checks that every declared field of a doc's `fields` holds a value of its declared
    /// type, so that DashVector cannot refuse the doc (code -2017) after earlier chunks of a
    /// split batch were written. Metadata entries named like an `extra_fields` key are
    /// checked against the declared type.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::InvalidInput`] naming the context id, the field, its
    /// declared type and the value.
    pub(crate) fn check_fields(
        &self,
        id: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        for (name, value) in fields {
            if let Some(kind) = self.kind(name)
                && !kind.accepts(value)
            {
                let mut shown = value.to_string();
                if shown.len() > 80 {
                    let cut = (0..=80)
                        .rev()
                        .find(|i| shown.is_char_boundary(*i))
                        .unwrap_or(0);
                    shown.truncate(cut);
                    shown.push_str("...");
                }
                let range = match kind {
                    FieldKind::Int => " (32-bit integer)",
                    FieldKind::Long => " (64-bit integer)",
                    _ => "",
                };
                return Err(StorageError::invalid_input(format!(
                    "context '{id}' field '{name}' is declared {}{range} in the DashVector \
                     schema (config.extra_fields) but holds {shown}",
                    kind.as_str()
                )));
            }
        }
        Ok(())
    }

    /// The `fields_schema` object of a create-collection request.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.fields
                .iter()
                .map(|(n, k)| (n.clone(), serde_json::Value::from(k.as_str())))
                .collect(),
        )
    }
}

/// `fields_schema` of the todo collection.
pub(crate) fn todo_schema_json() -> serde_json::Value {
    serde_json::Value::Object(
        TODO_FIELDS
            .iter()
            .map(|(n, k)| ((*n).to_owned(), serde_json::Value::from(k.as_str())))
            .collect(),
    )
}

/// Collection names: `<prefix><context_type>` and `<prefix>todo`.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn context(&self, t: ContextType) -> String {
        format!("{}{}", self.prefix, t.as_str())
    }

    pub(crate) fn todo(&self) -> String {
        format!("{}{TODO_COLLECTION}", self.prefix)
    }
}
