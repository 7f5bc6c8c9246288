//! The exclusive lock on a store directory.
//!
//! Taken with [`File::try_lock`] (an OS advisory lock, `flock` on Unix) before anything else
//! touches the directory, so that WAL maintenance at open is safe and a second open (in this
//! or another process) fails cleanly instead of corrupting the shards. The OS releases the
//! lock when the file is closed, also when the process dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use storage_core::Result;
use storage_core::{ErrorKind, StorageError};

/// Name of the lock file in the store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (which must exist).
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when another handle holds the lock;
    /// [`ErrorKind::Unavailable`] when the lock file cannot be created.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| {
                StorageError::new(
                    ErrorKind::Unavailable,
                    format!("cannot create lock file {}: {e}", path.display()),
                )
                .with_source(e)
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(StorageError::new(
                ErrorKind::Conflict,
                format!(
                    "the store at {} is already open (lock file {} is held by another process or \
                     another open backend in this process); close it first",
                    dir.display(),
                    path.display()
                ),
            )),
            Err(TryLockError::Error(e)) => Err(StorageError::new(
                ErrorKind::Unavailable,
                format!("cannot lock {}: {e}", path.display()),
            )
            .with_source(e)),
        }
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
