//! One collection: an on-disk [`EdgeShard`] with serialised writes, payload indexes and a
//! bounded write-ahead log.
//!
//! Three properties of qdrant-edge 0.7.0 shape this file:
//!
//! * [`EdgeShard::load`] does not replay the WAL, so the engine makes a write durable only by
//!   a flush of the whole shard. Writes are made durable by the store's redo log instead
//!   (`redo.rs`): they are applied here without a flush, and a checkpoint flushes the shards
//!   that are dirty before the log is emptied.
//! * The WAL is never truncated by the engine. Because everything in it is either flushed or
//!   covered by the redo log, the WAL holds nothing we need, except its position: segments
//!   skip operations whose sequence number is below a point's stored version, so the next WAL
//!   index must keep growing. Deleting the whole WAL would restart numbering at 0 and make
//!   later overwrites and deletes silently do nothing. So we delete only the *older* closed
//!   WAL segments and keep the newest one, which is exactly what the engine's own
//!   `prefix_truncate` would do. This is done with the shard closed (and so flushed): at
//!   open, and when the WAL grows past the configured bound (the shard is dropped, trimmed
//!   and reloaded under the write lock).
//! * [`EdgeShard::flush`] panics (`try_lock().expect(..)`) if it runs while an update holds
//!   the WAL. All updates, flushes and optimisations of a shard run under one mutex.
//!
//! Payload indexes (keyword/integer, `storage_core::payload::INDEXED_FIELDS`; `todo_id` for
//! todos) are created with the shard and, idempotently, at every load, so shards created
//! before them get them too. Segments the optimisers build keep the indexes of their sources.

use std::fs;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{
    Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError,
};

use qdrant_edge::{
    CountRequest, CreateIndex, Distance, EdgeConfig, EdgeOptimizersConfig, EdgeShard,
    EdgeVectorParams, FieldIndexOperations, Filter as EdgeFilter, JsonPath, OperationError,
    PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations, PointOperations,
    PointStruct, UpdateOperation, WalOptions,
};
use serde_json::Value as Json;
use storage_core::payload::FieldType;
use storage_core::{ErrorKind, Result, StorageError};

use super::condition::to_edge_filter;
use super::records::retrieve;
use super::redo::Op;
use crate::config::QdrantLocalConfig;

const WAL_DIR: &str = "wal";
const CONFIG_FILE: &str = "edge_config.json";

/// Maps an engine error.
pub(crate) fn engine_err(err: OperationError) -> StorageError {
    StorageError::backend(format!("qdrant engine: {err}"))
}

fn io_err(what: &str, path: &Path, err: io::Error) -> StorageError {
    StorageError::backend(format!("{what} {}: {err}", path.display())).with_source(err)
}

enum Slot {
    /// No data written yet; the directory does not exist.
    Absent,
    Open(Box<EdgeShard>),
    /// Reopening after WAL maintenance failed; the message says why.
    Failed(String),
    Closed,
}

/// Per-shard write state, behind the shard's writer mutex: holding a `&mut WriteState`
/// proves the caller serialises its engine updates and flushes.
pub(crate) struct WriteState {
    /// Points deleted or overwritten since the optimisers last ran.
    changes: usize,
    /// Updates applied since the last flush (the redo log still covers them).
    dirty: bool,
}

/// One collection's shard.
pub(crate) struct Shard {
    name: &'static str,
    path: PathBuf,
    config: EdgeConfig,
    indexes: Vec<(&'static str, PayloadSchemaType)>,
    wal_max_bytes: u64,
    vacuum_after: usize,
    writer: Mutex<WriteState>,
    slot: RwLock<Slot>,
    /// Held while the engine's optimisers run on this shard. Lock order: `writer`, then this.
    /// The background optimiser takes only this one, so writes go on while it runs; a flush
    /// (which the engine must not run concurrently with an optimiser's segment swap) and the
    /// WAL trim try it and are put off while it is held; close waits for it.
    optimizing: Mutex<()>,
    /// Set when enough points changed for the optimisers to be worth a run.
    optimize_wanted: AtomicBool,
    /// The background optimiser changed the segments since the last flush.
    optimized_unflushed: AtomicBool,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}
fn lock<T>(l: &Mutex<T>) -> MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}
fn try_lock<T>(l: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match l.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Flushes WAL and segments; the engine panics on failure, which we turn into an error.
fn flush(edge: &EdgeShard) -> Result<()> {
    catch_unwind(AssertUnwindSafe(|| edge.flush())).map_err(|_| {
        StorageError::backend(
            "flushing the shard to disk failed; the last write may not be durable",
        )
    })
}

/// Drops a shard (which flushes it), turning a panic in the flush into an error.
fn close_edge(edge: EdgeShard) -> Result<()> {
    catch_unwind(AssertUnwindSafe(move || drop(edge)))
        .map_err(|_| StorageError::backend("flushing the shard on close failed"))
}

/// The engine schema of a field type.
fn schema_type(t: FieldType) -> PayloadSchemaType {
    match t {
        FieldType::Keyword => PayloadSchemaType::Keyword,
        FieldType::Integer => PayloadSchemaType::Integer,
        FieldType::Bool => PayloadSchemaType::Bool,
    }
}

/// Creates the payload indexes (a no-op in segments that have them). Returns whether the
/// shard's index summary changed, i.e. whether a flush is worth it.
fn create_indexes(edge: &EdgeShard, indexes: &[(&'static str, PayloadSchemaType)]) -> Result<bool> {
    let summary = |edge: &EdgeShard| {
        let mut s: Vec<(String, usize)> = edge
            .info()
            .payload_schema
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.points))
            .collect();
        s.sort_unstable();
        s
    };
    let before = summary(edge);
    for (field, schema) in indexes {
        edge.update(UpdateOperation::FieldIndexOperation(
            FieldIndexOperations::CreateIndex(CreateIndex {
                field_name: JsonPath {
                    first_key: (*field).to_owned(),
                    rest: Vec::new(),
                },
                field_schema: Some(PayloadFieldSchema::FieldType(*schema)),
            }),
        ))
        .map_err(engine_err)?;
    }
    Ok(summary(edge) != before)
}

/// The `source_file_key` (and `user_id`) filter of [`Op::DeleteBySource`].
pub(crate) fn source_filter(key: &str, user_id: Option<&str>) -> Result<EdgeFilter> {
    to_edge_filter(&crate::query::source_file_filter(key, user_id)?)
}

impl Shard {
    /// Opens the collection `name` under `root`, loading it when its directory exists, and
    /// makes sure the loaded shard has the payload indexes of `indexes`.
    pub(crate) fn open(
        root: &Path,
        name: &'static str,
        cfg: &QdrantLocalConfig,
        indexes: &[(&'static str, FieldType)],
    ) -> Result<Shard> {
        let path = root.join(name);
        let optimizers = EdgeOptimizersConfig {
            // 0 tells the engine never to build an HNSW index (exact search at every size).
            indexing_threshold: Some(cfg.indexing_threshold_kb.unwrap_or(0)),
            ..EdgeOptimizersConfig::default()
        };
        let wal = WalOptions {
            segment_capacity: cfg.wal_segment_kb * 1024,
            ..WalOptions::default()
        };
        let config = EdgeConfig::builder()
            .vector(
                "",
                EdgeVectorParams::builder(cfg.vector_size, Distance::Cosine).build(),
            )
            .optimizers(optimizers)
            .wal_options(wal)
            .build();
        let indexes: Vec<_> = indexes.iter().map(|(f, t)| (*f, schema_type(*t))).collect();
        let slot = if path.join(CONFIG_FILE).exists() || path.join("segments").exists() {
            trim_wal(&path.join(WAL_DIR))?;
            let edge = EdgeShard::load(&path, Some(config.clone())).map_err(|e| {
                let msg = e.to_string();
                if msg.contains("incompatible") {
                    StorageError::config(format!(
                        "collection '{name}' at {} was created with another vector size or distance \
                         (configured: {} dimensions, cosine): {msg}",
                        path.display(),
                        cfg.vector_size
                    ))
                } else {
                    engine_err(e)
                }
            })?;
            // Shards created before the indexes existed (or segments created since without
            // them) get them now; the flush makes the one-time build durable.
            if create_indexes(&edge, &indexes)? {
                flush(&edge)?;
            }
            Slot::Open(Box::new(edge))
        } else {
            Slot::Absent
        };
        Ok(Shard {
            name,
            path,
            config,
            indexes,
            wal_max_bytes: cfg.wal_max_kb as u64 * 1024,
            vacuum_after: cfg.vacuum_after_changes.max(1),
            writer: Mutex::new(WriteState {
                changes: 0,
                dirty: false,
            }),
            slot: RwLock::new(slot),
            optimizing: Mutex::new(()),
            optimize_wanted: AtomicBool::new(false),
            optimized_unflushed: AtomicBool::new(false),
        })
    }

    /// The collection name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    fn unusable(&self, slot: &Slot) -> Option<StorageError> {
        match slot {
            Slot::Closed => Some(StorageError::new(
                ErrorKind::NotInitialized,
                "the store is closed",
            )),
            Slot::Failed(msg) => Some(StorageError::backend(format!(
                "collection '{}' could not be reopened after maintenance: {msg}",
                self.name
            ))),
            Slot::Absent | Slot::Open(_) => None,
        }
    }

    /// Runs a read. `Ok(None)` when the collection has no data yet.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&EdgeShard) -> Result<T>) -> Result<Option<T>> {
        let guard = read(&self.slot);
        if let Some(e) = self.unusable(&guard) {
            return Err(e);
        }
        match &*guard {
            Slot::Open(edge) => f(edge).map(Some),
            _ => Ok(None),
        }
    }

    /// Takes the shard's writer lock. Writers of several shards lock them in store order.
    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, WriteState> {
        lock(&self.writer)
    }

    /// Fails when the shard is closed or broken.
    pub(crate) fn check_usable(&self) -> Result<()> {
        match self.unusable(&read(&self.slot)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Creates the collection (with its payload indexes, flushed) if it has no data yet.
    fn ensure_created(&self, _state: &mut WriteState) -> Result<()> {
        if !matches!(*read(&self.slot), Slot::Absent) {
            return Ok(());
        }
        let mut slot = write(&self.slot);
        if matches!(*slot, Slot::Absent) {
            fs::create_dir_all(&self.path).map_err(|e| io_err("cannot create", &self.path, e))?;
            let edge = EdgeShard::new(&self.path, self.config.clone()).map_err(engine_err)?;
            create_indexes(&edge, &self.indexes)?;
            flush(&edge)?;
            *slot = Slot::Open(Box::new(edge));
        }
        Ok(())
    }

    /// Applies one logged operation to the engine, without flushing (the redo log holds it).
    /// Upserts create a missing collection; deletes on one do nothing. Returns how many
    /// existing points it deleted.
    pub(crate) fn apply(&self, state: &mut WriteState, op: Op) -> Result<u64> {
        if matches!(op, Op::Upsert(_)) {
            self.ensure_created(state)?;
        }
        let guard = read(&self.slot);
        if let Some(e) = self.unusable(&guard) {
            return Err(e);
        }
        let Slot::Open(edge) = &*guard else {
            return Ok(0);
        };
        state.dirty = true;
        let (changes, deleted) = match op {
            Op::Upsert(points) => {
                let ids: Vec<PointId> = points.iter().map(|p| p.id).collect();
                let existing = retrieve(edge, &ids, false, false)?.len();
                let structs = points
                    .into_iter()
                    .map(|p| PointStruct::new(p.id, p.vector, Json::Object(p.payload)).into())
                    .collect();
                edge.update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(structs)),
                ))
                .map_err(engine_err)?;
                (existing, 0)
            }
            Op::Delete(ids) => {
                let existing: Vec<PointId> = retrieve(edge, &ids, false, false)?
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                let n = existing.len();
                if n > 0 {
                    edge.update(UpdateOperation::PointOperation(
                        PointOperations::DeletePoints { ids: existing },
                    ))
                    .map_err(engine_err)?;
                }
                (n, n as u64)
            }
            Op::DeleteBySource { key, user_id } => {
                let filter = source_filter(&key, user_id.as_deref())?;
                let n = edge
                    .count(CountRequest {
                        filter: Some(filter.clone()),
                        exact: true,
                    })
                    .map_err(engine_err)?;
                if n > 0 {
                    edge.update(UpdateOperation::PointOperation(
                        PointOperations::DeletePointsByFilter(filter),
                    ))
                    .map_err(engine_err)?;
                }
                (n, n as u64)
            }
        };
        state.changes += changes;
        Ok(deleted)
    }

    /// Upkeep after writes: asks for an optimiser run after `vacuum_after_changes` deletions
    /// or overwrites (returns `true` then; the caller starts the background optimiser), and
    /// trims the engine's WAL when it has grown past its bound (put off while an optimiser
    /// runs). Never runs the optimisers itself.
    pub(crate) fn maintain(&self, state: &mut WriteState) -> Result<bool> {
        let mut wanted = false;
        if state.changes >= self.vacuum_after {
            state.changes = 0;
            if matches!(*read(&self.slot), Slot::Open(_)) {
                self.optimize_wanted.store(true, Ordering::Release);
                wanted = true;
            }
        }
        if dir_size(&self.path.join(WAL_DIR)) > self.wal_max_bytes
            && let Some(_idle) = try_lock(&self.optimizing)
        {
            self.reload_trimmed(state)?;
        }
        Ok(wanted)
    }

    /// Whether an optimiser run was asked for and has not started.
    pub(crate) fn wants_optimize(&self) -> bool {
        self.optimize_wanted.load(Ordering::Acquire)
    }

    /// The background optimiser's work on this shard: runs the engine's optimisers if a run
    /// was asked for, without the writer lock (the engine's optimisers work on proxies of
    /// the segments, so updates and searches go on). Returns whether it ran. Not flushed:
    /// the next checkpoint flushes (the redo log covers every write meanwhile).
    pub(crate) fn background_optimize(&self) -> Result<bool> {
        if !self.optimize_wanted.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        let _running = lock(&self.optimizing);
        let guard = read(&self.slot);
        let Slot::Open(edge) = &*guard else {
            return Ok(false);
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| edge.optimize()))
            .map_err(|_| StorageError::backend("the engine's optimiser panicked"))?;
        self.optimized_unflushed.store(true, Ordering::Release);
        outcome.map_err(engine_err)?;
        Ok(true)
    }

    /// Flushes the shard if updates were applied (or the background optimiser ran) since its
    /// last flush. Returns `false` when it had to put the flush off because an optimiser is
    /// running; the redo log must then be kept.
    pub(crate) fn flush_if_dirty(&self, state: &mut WriteState) -> Result<bool> {
        if !state.dirty && !self.optimized_unflushed.load(Ordering::Acquire) {
            return Ok(true);
        }
        let Some(_idle) = try_lock(&self.optimizing) else {
            return Ok(false);
        };
        let guard = read(&self.slot);
        if let Slot::Open(edge) = &*guard {
            flush(edge)?;
        }
        state.dirty = false;
        self.optimized_unflushed.store(false, Ordering::Release);
        Ok(true)
    }

    /// Drops the shard, removes old WAL segments and loads it again.
    fn reload_trimmed(&self, state: &mut WriteState) -> Result<()> {
        let mut slot = write(&self.slot);
        let Slot::Open(edge) = std::mem::replace(&mut *slot, Slot::Absent) else {
            return Ok(());
        };
        let outcome = close_edge(*edge)
            .and_then(|()| trim_wal(&self.path.join(WAL_DIR)))
            .and_then(|()| {
                EdgeShard::load(&self.path, Some(self.config.clone())).map_err(engine_err)
            });
        match outcome {
            Ok(edge) => {
                state.dirty = false;
                *slot = Slot::Open(Box::new(edge));
                Ok(())
            }
            Err(e) => {
                *slot = Slot::Failed(e.to_string());
                Err(e)
            }
        }
    }

    /// Runs the engine's optimisers (merge, vacuum, HNSW indexing above the threshold) until
    /// they have nothing left to do, then flushes.
    pub(crate) fn optimize(&self) -> Result<bool> {
        let mut state = lock(&self.writer);
        let _running = lock(&self.optimizing);
        self.optimize_wanted.store(false, Ordering::Release);
        let guard = read(&self.slot);
        if let Some(e) = self.unusable(&guard) {
            return Err(e);
        }
        let Slot::Open(edge) = &*guard else {
            return Ok(false);
        };
        let optimized = edge.optimize().map_err(engine_err)?;
        flush(edge)?;
        state.changes = 0;
        state.dirty = false;
        self.optimized_unflushed.store(false, Ordering::Release);
        Ok(optimized)
    }

    /// Flushes and releases the shard; later calls fail with `NotInitialized`.
    pub(crate) fn close(&self, state: &mut WriteState) -> Result<()> {
        // A background optimiser run finishes first.
        let _idle = lock(&self.optimizing);
        self.optimize_wanted.store(false, Ordering::Release);
        let mut slot = write(&self.slot);
        state.dirty = false;
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Open(edge) => close_edge(*edge),
            _ => Ok(()),
        }
    }

    /// Bytes allocated on disk by the shard's directory.
    pub(crate) fn disk_bytes(&self) -> u64 {
        allocated_size(&self.path)
    }
}

/// Total apparent size of the files in `dir` (not recursive; 0 when missing). The WAL's
/// segment files are preallocated, so this is what the log reserves.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Bytes allocated on disk under `dir`, recursively. The engine creates large sparse files
/// (32 MiB vector chunks and payload pages), so apparent sizes overstate disk use.
pub(crate) fn allocated_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => allocated_size(&e.path()),
            Ok(m) => allocated(&m),
            Err(_) => 0,
        })
        .sum()
}

/// Bytes allocated on disk by one file (0 when missing).
pub(crate) fn allocated_size_of(file: &Path) -> u64 {
    fs::metadata(file).map_or(0, |m| allocated(&m))
}

#[cfg(unix)]
fn allocated(m: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.blocks() * 512
}

#[cfg(not(unix))]
fn allocated(m: &fs::Metadata) -> u64 {
    m.len()
}

/// Removes every closed WAL segment but the newest. The newest one carries the WAL's
/// position (its file name is its first index), which must survive (see the module docs).
fn trim_wal(wal_dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(wal_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("cannot read", wal_dir, e)),
    };
    let mut closed: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let start = name.strip_prefix("closed-")?.parse::<u64>().ok()?;
            Some((start, e.path()))
        })
        .collect();
    closed.sort_unstable();
    closed.pop();
    for (_, path) in closed {
        fs::remove_file(&path).map_err(|e| io_err("cannot remove old WAL segment", &path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::redo::LoggedPoint;
    use storage_core::payload::INDEXED_FIELDS;

    fn indexed(shard: &Shard) -> Vec<String> {
        let mut fields: Vec<String> = shard
            .read(|edge| Ok(edge.info().payload_schema))
            .unwrap()
            .unwrap()
            .into_keys()
            .map(|k| k.to_string())
            .collect();
        fields.sort_unstable();
        fields
    }

    fn expected() -> Vec<String> {
        let mut fields: Vec<String> = INDEXED_FIELDS.iter().map(|(f, _)| f.to_string()).collect();
        fields.sort_unstable();
        fields
    }

    fn point(n: u64) -> LoggedPoint {
        let payload = serde_json::json!({"user_id": format!("u{}", n % 2), "hierarchy_level": 1});
        LoggedPoint {
            id: PointId::NumId(n),
            vector: vec![1.0, n as f32],
            payload: payload.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn new_collections_get_the_payload_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = QdrantLocalConfig::new(dir.path(), 2);
        let shard = Shard::open(dir.path(), "event", &cfg, INDEXED_FIELDS).unwrap();
        let mut w = shard.lock_writer();
        shard
            .apply(&mut w, Op::Upsert((0..10).map(point).collect()))
            .unwrap();
        assert_eq!(indexed(&shard), expected());
        shard.close(&mut w).unwrap();
    }

    /// A shard written before the indexes existed gets them when it is opened.
    #[test]
    fn shards_without_indexes_get_them_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = QdrantLocalConfig::new(dir.path(), 2);
        let path = dir.path().join("event");
        fs::create_dir_all(&path).unwrap();
        {
            let config = EdgeConfig::builder()
                .vector("", EdgeVectorParams::builder(2, Distance::Cosine).build())
                .build();
            let edge = EdgeShard::new(&path, config).unwrap();
            let points = (0..10)
                .map(|n| {
                    let p = point(n);
                    PointStruct::new(p.id, p.vector, Json::Object(p.payload)).into()
                })
                .collect();
            edge.update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
            ))
            .unwrap();
            assert!(edge.info().payload_schema.is_empty());
        }
        let shard = Shard::open(dir.path(), "event", &cfg, INDEXED_FIELDS).unwrap();
        assert_eq!(indexed(&shard), expected());
        let users = shard
            .read(|edge| {
                edge.count(CountRequest {
                    filter: Some(source_filter("none", None)?),
                    exact: true,
                })
                .map_err(engine_err)
            })
            .unwrap();
        assert_eq!(users, Some(0));
        let per_user = shard
            .read(|edge| Ok(edge.info().payload_schema))
            .unwrap()
            .unwrap();
        let user_index = per_user
            .iter()
            .find(|(k, _)| k.to_string() == "user_id")
            .map(|(_, v)| v.points);
        assert_eq!(user_index, Some(10), "all points indexed");
        shard.close(&mut shard.lock_writer()).unwrap();
        // Idempotent: a second open finds them and changes nothing.
        let shard = Shard::open(dir.path(), "event", &cfg, INDEXED_FIELDS).unwrap();
        assert_eq!(indexed(&shard), expected());
    }
}
