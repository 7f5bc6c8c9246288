//! Point ids: the original's mapping from string context ids to Qdrant point UUIDs.
//!
//! Qdrant keys points by unsigned integer or UUID. The original (`qdrant_backend.py`) derives
//! `uuid5(NAMESPACE_DNS, id)` from the string id and keeps the string in the payload field
//! `original_id`; we do the same, so points written by either read back in the other. Todo
//! embeddings use the integer `todo_id` directly.

use storage_core::Result;
use storage_core::StorageError;
use uuid::Uuid;

/// The point UUID of a context id: UUID v5 of the id's UTF-8 bytes in the DNS namespace.
pub(crate) fn point_uuid(id: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_DNS, id.as_bytes())
}

/// The point number of a todo id.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] for a negative id (point numbers are unsigned).
pub(crate) fn todo_point_num(todo_id: i64) -> Result<u64> {
    u64::try_from(todo_id).map_err(|_| {
        StorageError::invalid_input(format!(
            "todo_id {todo_id} is negative; todo ids must be >= 0"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_uuid5_dns() {
        // python: str(uuid.uuid5(uuid.NAMESPACE_DNS, "python.org"))
        assert_eq!(
            point_uuid("python.org").to_string(),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
        assert_eq!(point_uuid("ctx-1"), point_uuid("ctx-1"));
        assert_ne!(point_uuid("ctx-1"), point_uuid("ctx-2"));
        assert_eq!(point_uuid("").get_version_num(), 5);
    }

    #[test]
    fn todo_ids_must_be_non_negative() {
        assert_eq!(todo_point_num(7).unwrap(), 7);
        assert_eq!(
            todo_point_num(-1).unwrap_err().kind(),
            storage_core::ErrorKind::InvalidInput
        );
    }
}
