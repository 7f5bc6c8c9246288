//! Recognises store directories written by other programs, so that `open` refuses them before
//! it writes anything (no `LOCK`, no `redo.log`, no collection directories).
//!
//! The one known case is qdrant-client's Python **local mode** (`QdrantClient(path=...)`), the
//! original's default Qdrant configuration (`path: ${CONTEXT_PATH:.}/persist/qdrant`). Its
//! layout (qdrant-client 1.x, `qdrant_client/local/qdrant_local.py` and `persistence.py`):
//!
//! ```text
//! <path>/meta.json                         collections and their vector parameters (JSON)
//! <path>/.lock                             portalocker lock file ("tmp lock file")
//! <path>/collection/<name>/storage.sqlite  the points of one collection (pickled rows)
//! ```
//!
//! This crate's local mode stores the Qdrant engine's segment format instead
//! (`<path>/<collection>/...`, `LOCK`, `redo.log`); it cannot read the Python rows, and
//! opening such a directory used to report 0 contexts while adding its own files.

use std::path::Path;

use storage_core::{Result, StorageError};

/// The file qdrant-client's local mode writes at the root of its directory.
const PY_META: &str = "meta.json";
/// The folder of its collections.
const PY_COLLECTIONS: &str = "collection";
/// The file of one of its collections.
const PY_STORAGE: &str = "storage.sqlite";

/// Refuses `root` when it holds a store of qdrant-client's Python local mode. Only reads.
///
/// # Errors
/// [`storage_core::ErrorKind::Config`] that says what the directory is, which collections it
/// holds, and how to move its data.
pub(crate) fn refuse_python_local_store(root: &Path) -> Result<()> {
    let meta = root.join(PY_META);
    let mut collections = python_collections(root);
    if !meta.is_file() && collections.is_empty() {
        return Ok(());
    }
    if collections.is_empty() {
        collections = meta_collections(&meta);
    }
    let listed = if collections.is_empty() {
        "no collections".to_owned()
    } else {
        format!("collections: {}", collections.join(", "))
    };
    Err(StorageError::config(format!(
        "qdrant local: 'path' {} is a store of qdrant-client's Python local mode \
         (QdrantClient(path=...), the original's default; it has {PY_META} and \
         {PY_COLLECTIONS}/<name>/{PY_STORAGE}, {listed}). This backend's local mode uses the \
         Qdrant engine's own on-disk format and cannot read it; nothing was written there. To \
         keep the data, move it to a Qdrant server: start one (e.g. the qdrant/qdrant container), \
         then in Python run QdrantClient(path=\"{}\").migrate(QdrantClient(url=\"http://localhost:6333\")) \
         (or scroll and upload the points), and configure this backend's remote mode with that \
         'url'. Or point 'path' at a new, empty directory and ingest again.",
        root.display(),
        root.display(),
    )))
}

/// Names of `collection/<name>/` folders that hold a `storage.sqlite`, sorted.
fn python_collections(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join(PY_COLLECTIONS)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(PY_STORAGE).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The collection names listed in `meta.json` (empty when it cannot be read).
fn meta_collections(meta: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read(meta) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut names: Vec<String> = json
        .get("collections")
        .and_then(serde_json::Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_own_store_or_a_new_directory_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        assert!(refuse_python_local_store(dir.path()).is_ok());
        assert!(refuse_python_local_store(&dir.path().join("missing")).is_ok());
        std::fs::create_dir_all(dir.path().join("event/segments")).unwrap();
        std::fs::write(dir.path().join("LOCK"), b"").unwrap();
        assert!(refuse_python_local_store(dir.path()).is_ok());
        // A `collection` folder without sqlite files is not the Python layout.
        std::fs::create_dir_all(dir.path().join("collection/x")).unwrap();
        assert!(refuse_python_local_store(dir.path()).is_ok());
    }

    #[test]
    fn meta_json_alone_or_sqlite_collections_alone_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PY_META),
            br#"{"collections": {"event": {}}, "aliases": {}}"#,
        )
        .unwrap();
        let e = refuse_python_local_store(dir.path()).unwrap_err();
        assert!(e.message().contains("collections: event"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("collection/knowledge")).unwrap();
        std::fs::write(dir.path().join("collection/knowledge/storage.sqlite"), b"").unwrap();
        let e = refuse_python_local_store(dir.path()).unwrap_err();
        assert!(e.message().contains("collections: knowledge"), "{e}");
    }
}
