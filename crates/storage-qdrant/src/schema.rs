//! The collections of a Qdrant store and their payload indexes, shared by every mode.
//!
//! As the original (`qdrant_backend.py`): one collection per context type, named after the
//! type (`event`, `knowledge`, ...), plus `todo` when todo embeddings are enabled; cosine
//! distance, one unnamed dense vector of the configured size.

use storage_core::model::ContextType;
use storage_core::payload::{FieldType, INDEXED_FIELDS};

/// Name of the todo collection.
pub(crate) const TODO_COLLECTION: &str = "todo";

/// Payload indexes of the todo collection (`todo_id`, integer: lookups by id in filters).
pub(crate) const TODO_INDEXES: &[(&str, FieldType)] =
    &[(crate::points::TODO_FIELD_ID, FieldType::Integer)];

/// Payload indexes of a context collection: [`INDEXED_FIELDS`] (the tenant fields,
/// `context_type`, `hierarchy_level`, `time_bucket`, `source_file_key` and the `*_ts`
/// fields).
///
/// With `with_context_type` false, `context_type` is left out: it is the same for every
/// point of a collection, so its index selects everything or nothing. The embedded engine
/// skips it to save index files and flush time; on a server it is kept, as the
/// specification lists it and collections written by other tools may mix types.
pub(crate) fn context_indexes(with_context_type: bool) -> Vec<(&'static str, FieldType)> {
    INDEXED_FIELDS
        .iter()
        .filter(|(f, _)| with_context_type || *f != "context_type")
        .copied()
        .collect()
}

/// The position of `t` in [`ContextType::ALL`] (the order of the per-type collections).
pub(crate) fn type_index(t: ContextType) -> usize {
    ContextType::ALL
        .iter()
        .position(|x| *x == t)
        .expect("every type is in ALL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_cover_the_specified_fields() {
        let all: Vec<&str> = context_indexes(true).iter().map(|(f, _)| *f).collect();
        for f in [
            "user_id",
            "device_id",
            "agent_id",
            "context_type",
            "hierarchy_level",
            "time_bucket",
            "source_file_key",
            "create_time_ts",
            "event_time_ts",
            "update_time_ts",
        ] {
            assert!(all.contains(&f), "{f}");
        }
        let local: Vec<&str> = context_indexes(false).iter().map(|(f, _)| *f).collect();
        assert_eq!(local.len(), all.len() - 1);
        assert!(!local.contains(&"context_type"));
        for (i, t) in ContextType::ALL.into_iter().enumerate() {
            assert_eq!(type_index(t), i);
        }
    }
}
