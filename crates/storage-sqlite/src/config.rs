//! Configuration of the SQLite backend.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage_core::config::lenient;
use storage_core::{Result, StorageError};

/// Default database file, as in the original (`./persist/sqlite/app.db`).
pub const DEFAULT_PATH: &str = "./persist/sqlite/app.db";

/// How hard SQLite syncs to disk on commit (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// `FULL`: every commit is fsynced before it returns; a committed write survives a power
    /// loss. The default.
    #[default]
    Full,
    /// `NORMAL`: in WAL mode, commits are fsynced at checkpoints only. A committed write
    /// survives an application crash but the last commits may be lost on power loss; much
    /// faster writes.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Configuration of [`crate::SqliteBackend`]: the `config:` map of a `sqlite` entry of the
/// original's `storage.backends` list (`config: {path: ./persist/sqlite/app.db}`), plus our
/// knobs. Unknown keys are ignored, so the original's YAML loads unchanged. Numeric fields
/// also accept strings (`readers: "${SQLITE_READERS:4}"`), as `${VAR:default}` substitution
/// yields strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SqliteConfig {
    /// Database file. Its parent directory is created when missing. Must be valid UTF-8 and
    /// must not be `:memory:` (the backend opens several connections to the same file; use a
    /// temporary directory instead). Default `./persist/sqlite/app.db`.
    pub path: PathBuf,
    /// Number of read-only connections serving reads in parallel with the writer (at least 1,
    /// at most 64). Default 4.
    #[serde(deserialize_with = "lenient")]
    pub readers: usize,
    /// How long a statement waits for a lock held by another process before failing with a
    /// retryable error, in milliseconds (`PRAGMA busy_timeout`). Default 5000.
    #[serde(deserialize_with = "lenient")]
    pub busy_timeout_ms: u64,
    /// Commit durability, see [`Synchronous`]. Default `full`.
    pub synchronous: Synchronous,
    /// Page cache size per connection, in KiB (`PRAGMA cache_size = -N`). Default 8192 (8 MiB).
    #[serde(deserialize_with = "lenient")]
    pub cache_size_kib: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            path: PathBuf::from(DEFAULT_PATH),
            readers: 4,
            busy_timeout_ms: 5000,
            synchronous: Synchronous::Full,
            cache_size_kib: 8192,
        }
    }
}

impl SqliteConfig {
    /// The default configuration with `path` set.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            ..Self::default()
        }
    }

    /// The busy timeout as a [`Duration`].
    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }

    /// Checks the values and returns the path as UTF-8.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key and the bound.
    pub fn validate(&self) -> Result<&str> {
        let path = self.path.to_str().ok_or_else(|| {
            StorageError::config(format!(
                "sqlite config.path {:?} is not valid UTF-8",
                self.path
            ))
        })?;
        if path.is_empty() {
            return Err(StorageError::config("sqlite config.path must not be empty"));
        }
        if path == ":memory:" || path.starts_with("file:") {
            return Err(StorageError::config(format!(
                "sqlite config.path {path:?} is not a file path; the backend opens several \
                 connections to one file, use a file in a temporary directory instead"
            )));
        }
        if !(1..=64).contains(&self.readers) {
            return Err(StorageError::config(format!(
                "sqlite config.readers is {}, the range is 1 to 64",
                self.readers
            )));
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_originals_config_map() {
        let c: SqliteConfig =
            serde_json::from_value(serde_json::json!({"path": "/tmp/x/app.db"})).unwrap();
        assert_eq!(c.path, PathBuf::from("/tmp/x/app.db"));
        assert_eq!(c.readers, 4);
        assert_eq!(c.synchronous, Synchronous::Full);
        let c: SqliteConfig = serde_json::from_value(
            serde_json::json!({"path": "a.db", "synchronous": "normal", "readers": 2}),
        )
        .unwrap();
        assert_eq!(c.synchronous, Synchronous::Normal);
        assert_eq!(c.readers, 2);
    }

    #[test]
    fn numbers_may_be_strings_from_substitution() {
        let c: SqliteConfig = serde_json::from_value(serde_json::json!({
            "readers": "2", "busy_timeout_ms": "100", "cache_size_kib": " 4096 "
        }))
        .unwrap();
        assert_eq!(
            (c.readers, c.busy_timeout_ms, c.cache_size_kib),
            (2, 100, 4096)
        );
        assert_eq!(
            c.path,
            PathBuf::from(DEFAULT_PATH),
            "missing keys keep their defaults"
        );
        let e = serde_json::from_value::<SqliteConfig>(serde_json::json!({"readers": "two"}))
            .unwrap_err();
        assert!(e.to_string().contains("two"), "{e}");
        assert!(
            serde_json::from_value::<SqliteConfig>(serde_json::json!({"readers": "-1"})).is_err()
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(SqliteConfig::new(":memory:").validate().is_err());
        assert!(SqliteConfig::new("").validate().is_err());
        let mut c = SqliteConfig::new("a.db");
        c.readers = 0;
        assert!(c.validate().unwrap_err().to_string().contains("readers"));
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let bad = std::ffi::OsStr::from_bytes(b"/tmp/\xff.db");
            let e = SqliteConfig::new(bad).validate().unwrap_err();
            assert!(e.to_string().contains("UTF-8"), "{e}");
        }
    }
}
