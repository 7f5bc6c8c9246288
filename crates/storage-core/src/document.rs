//! The document (relational) backend trait. Owned by the SQLite work; see `storage-sqlite`.
