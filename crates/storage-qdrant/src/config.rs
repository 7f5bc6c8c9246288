//! Configuration of the Qdrant backend's local (embedded) mode.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use storage_core::Result;
use storage_core::StorageError;

/// Configuration of [`crate::QdrantLocalBackend`] (the `qdrant` backend when `path` is set).
///
/// In YAML, under a `storage.backends` entry with `backend: qdrant`:
///
/// ```yaml
/// config:
///   path: ./persist/qdrant     # directory holding one shard per collection
///   vector_size: 1024          # embedding dimension (the original's key)
/// ```
///
/// Unknown keys (for example a remote `host`) are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QdrantLocalConfig {
    /// Directory of the store: one sub-directory per collection (`event/`, `todo/`, ...) and a
    /// lock file. Created if missing.
    pub path: PathBuf,
    /// Dimension of every stored vector (the original's `vector_size`).
    #[serde(deserialize_with = "storage_core::config::lenient")]
    pub vector_size: usize,
    /// Whether the `todo` collection exists (the factory sets it from the original's
    /// `consumption.enabled`). When false, the todo methods return `Unsupported`.
    #[serde(default, deserialize_with = "storage_core::config::lenient")]
    pub todo_embeddings: bool,
    /// Capacity of one write-ahead-log segment file, in KiB (default 1024). The engine
    /// preallocates each segment file; a record larger than this gets a segment of its own.
    #[serde(
        default = "default_wal_segment_kb",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub wal_segment_kb: usize,
    /// When a collection's write-ahead log exceeds this many KiB, old log segments are
    /// removed (default 8192; the shard is flushed first). The engine's log is never replayed:
    /// durability comes from the store's redo log (see the crate docs).
    #[serde(
        default = "default_wal_max_kb",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub wal_max_kb: usize,
    /// Size in KiB of vector data above which a segment gets an HNSW index when optimised.
    /// Unset or 0 (the default): no HNSW index is built, and every search is an exact scan,
    /// so recall is 1.0 at every size (at 100 000 contexts of 384 dimensions a scan of one
    /// collection takes about 14 ms on two cores). Set it (for example 20 000, about 13 000
    /// vectors of 384 dimensions) to trade exactness for speed: indexed segments are searched
    /// approximately with a beam of [`QdrantLocalConfig::hnsw_ef`]; how close the results
    /// come to the exact top-k depends on the data (embeddings of real text cluster and are
    /// found well; unstructured random vectors are not).
    #[serde(default, deserialize_with = "storage_core::config::lenient_opt")]
    pub indexing_threshold_kb: Option<usize>,
    /// Beam width of a search in an HNSW-indexed segment (Qdrant's `hnsw_ef`; at least
    /// `top_k` is used). Only matters when `indexing_threshold_kb` is set. Default 256,
    /// 1 to 65 536.
    #[serde(
        default = "default_hnsw_ef",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub hnsw_ef: usize,
    /// Number of deleted or overwritten points in a collection after which the engine's
    /// optimisers (vacuum, merge, and HNSW indexing when enabled) are started (default 1000).
    /// They run on a background thread of the store, never inside the write call that
    /// triggered them; searches and writes go on meanwhile. [`crate::QdrantLocalBackend::optimize`]
    /// runs them in the foreground.
    #[serde(
        default = "default_vacuum_after_changes",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub vacuum_after_changes: usize,
    /// Size in KiB of the store's redo log above which a checkpoint runs: the collections
    /// written since the last checkpoint are flushed and the log is emptied (default 4096).
    /// Every write is appended to the log and synced before it is applied, so a larger value
    /// means fewer flushes and a longer replay after a crash.
    #[serde(
        default = "default_redo_log_max_kb",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub redo_log_max_kb: usize,
}

fn default_wal_segment_kb() -> usize {
    1024
}
fn default_wal_max_kb() -> usize {
    8192
}
fn default_hnsw_ef() -> usize {
    256
}
fn default_vacuum_after_changes() -> usize {
    1000
}
fn default_redo_log_max_kb() -> usize {
    4096
}

/// Largest accepted `vector_size`.
pub const MAX_VECTOR_SIZE: usize = 65_536;

impl QdrantLocalConfig {
    /// A configuration with the given directory and dimension and defaults for the rest.
    pub fn new(path: impl Into<PathBuf>, vector_size: usize) -> Self {
        QdrantLocalConfig {
            path: path.into(),
            vector_size,
            todo_embeddings: false,
            wal_segment_kb: default_wal_segment_kb(),
            wal_max_kb: default_wal_max_kb(),
            indexing_threshold_kb: None,
            hnsw_ef: default_hnsw_ef(),
            vacuum_after_changes: default_vacuum_after_changes(),
            redo_log_max_kb: default_redo_log_max_kb(),
        }
    }

    /// Sets `todo_embeddings`.
    pub fn with_todo_embeddings(mut self, enabled: bool) -> Self {
        self.todo_embeddings = enabled;
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(StorageError::config(
                "qdrant local: 'path' must not be empty",
            ));
        }
        if self.vector_size == 0 || self.vector_size > MAX_VECTOR_SIZE {
            return Err(StorageError::config(format!(
                "qdrant local: 'vector_size' is {}, expected 1 to {MAX_VECTOR_SIZE}",
                self.vector_size
            )));
        }
        if self.wal_segment_kb < 64 {
            return Err(StorageError::config(format!(
                "qdrant local: 'wal_segment_kb' is {}, the minimum is 64",
                self.wal_segment_kb
            )));
        }
        if self.wal_max_kb < 2 * self.wal_segment_kb {
            return Err(StorageError::config(format!(
                "qdrant local: 'wal_max_kb' ({}) must be at least twice 'wal_segment_kb' ({})",
                self.wal_max_kb, self.wal_segment_kb
            )));
        }
        if self.hnsw_ef == 0 || self.hnsw_ef > 65_536 {
            return Err(StorageError::config(format!(
                "qdrant local: 'hnsw_ef' is {}, expected 1 to 65536",
                self.hnsw_ef
            )));
        }
        if self.redo_log_max_kb == 0 {
            return Err(StorageError::config(
                "qdrant local: 'redo_log_max_kb' must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserialises_with_defaults_and_ignores_remote_keys() {
        let c: QdrantLocalConfig =
            serde_json::from_str(r#"{"path": "/tmp/q", "vector_size": 384, "host": "x"}"#).unwrap();
        assert_eq!(c, QdrantLocalConfig::new("/tmp/q", 384));
        assert!(c.validate().is_ok());
        assert!(QdrantLocalConfig::new("/tmp/q", 0).validate().is_err());
        assert!(QdrantLocalConfig::new("", 3).validate().is_err());
        let mut small = QdrantLocalConfig::new("/tmp/q", 3);
        small.wal_max_kb = small.wal_segment_kb;
        assert_eq!(
            small.validate().unwrap_err().kind(),
            storage_core::ErrorKind::Config
        );
    }

    /// `${VAR:default}` substitution yields strings: numbers and booleans accept them.
    #[test]
    fn numbers_and_booleans_may_be_strings() {
        let c: QdrantLocalConfig = serde_json::from_str(
            r#"{"path": "/tmp/q", "vector_size": "384", "todo_embeddings": "true",
                "wal_segment_kb": "128", "wal_max_kb": " 512 ", "indexing_threshold_kb": "20",
                "vacuum_after_changes": "10", "redo_log_max_kb": "64"}"#,
        )
        .unwrap();
        let mut expected = QdrantLocalConfig::new("/tmp/q", 384).with_todo_embeddings(true);
        expected.wal_segment_kb = 128;
        expected.wal_max_kb = 512;
        expected.indexing_threshold_kb = Some(20);
        expected.vacuum_after_changes = 10;
        expected.redo_log_max_kb = 64;
        assert_eq!(c, expected);
        let c: QdrantLocalConfig = serde_json::from_str(
            r#"{"path": "/tmp/q", "vector_size": 8, "indexing_threshold_kb": ""}"#,
        )
        .unwrap();
        assert_eq!(c.indexing_threshold_kb, None);
        let e = serde_json::from_str::<QdrantLocalConfig>(r#"{"path": "/q", "vector_size": "x"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("cannot parse"), "{e}");
    }
}
