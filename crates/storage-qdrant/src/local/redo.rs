//! The store's redo log: cheap durable writes.
//!
//! [`qdrant_edge::EdgeShard::load`] does not replay the engine's own write-ahead log, and the
//! engine can only make a write durable by flushing every segment of the shard (many fsyncs,
//! tens of milliseconds). Instead, every write call is encoded as one record, appended to
//! `redo.log` in the store directory and synced with **one** `fsync` (`File::sync_data`)
//! *before* it is applied to the engine, which is not flushed. When the call returns `Ok`, the
//! record is on disk; after a crash, [`RedoLog::open`] reads the records back and the backend
//! replays them into the shards in order.
//!
//! A checkpoint (when the log exceeds `redo_log_max_kb`, on close and on drop) flushes the
//! collections written since the last checkpoint and then empties the log.
//!
//! # Why replay is safe, also over already applied records
//!
//! A crash between a checkpoint's flush and the truncation of the log leaves records whose
//! effects are already on disk; a crash between two checkpoints leaves segment files that may
//! hold any part of the records' effects (the kernel writes pages back when it likes). Replay
//! applies every record again, in log order, on top of whatever state was loaded, and yields
//! the state of the last successful write in every case, because each logged operation is
//! idempotent and decides the state of the points it touches:
//!
//! * `Upsert` sets the whole point (vector and payload); `Delete` removes points by id. After
//!   the last such operation on a point, its state is the one of the original history,
//!   whatever it was before.
//! * `DeleteBySource` deletes the points whose payload matches. A point never upserted or
//!   deleted by id in the log keeps the payload it had at the checkpoint throughout the
//!   history, so the filter matches it at replay exactly when it matched originally (or it is
//!   already gone because that very deletion was persisted, with the same final result). A
//!   point upserted or deleted by id earlier in the log has, at that point of the replay, the
//!   state it had originally, so the filter again decides the same way.
//!
//! Replayed operations get new, higher engine operation numbers, so segments never skip them
//! as outdated (the engine's WAL numbering keeps growing: see `shard.rs`). Points untouched by
//! the log keep the flushed state of the last checkpoint. The `tests/redo.rs` test replays a
//! log over a fully flushed store and compares.
//!
//! # Format
//!
//! A sequence of frames: `magic (u32) | payload length (u32) | CRC-32 of the payload (u32) |
//! CRC-32 of the preceding 12 bytes (u32) | payload`, little endian. The payload is a
//! compact binary encoding of the operations: vectors as raw `f32` bits and payloads as a
//! tagged binary JSON encoding, so both read back bit for bit.
//!
//! At open, the first frame that fails validation ends the log. If no valid frame follows it
//! (searching for the magic), it is the torn tail of an append interrupted by a crash and is
//! dropped (its call never returned `Ok`, since the append is synced before returning);
//! otherwise the log is corrupt in the middle and opening fails with `DataCorrupted`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use qdrant_edge::PointId;
use serde_json::{Map, Number, Value as Json};
use storage_core::model::JsonMap;
use storage_core::{Result, StorageError};
use uuid::Uuid;

/// File name of the redo log in the store directory.
pub(crate) const REDO_FILE: &str = "redo.log";

const MAGIC: u32 = 0x4F43_524C; // "LRCO" little endian: OpenContext Redo Log
const HEADER: usize = 16;
const FORMAT_VERSION: u8 = 1;

/// One point of an upsert, exactly as written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LoggedPoint {
    /// The point id.
    pub id: PointId,
    /// The vector as given (the engine normalises it).
    pub vector: Vec<f32>,
    /// The payload.
    pub payload: JsonMap,
}

/// One engine operation on one collection.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    /// Insert or replace whole points.
    Upsert(Vec<LoggedPoint>),
    /// Delete points by id.
    Delete(Vec<PointId>),
    /// Delete the points whose `source_file_key` (and `user_id`, when given) match.
    DeleteBySource {
        /// `source_file_key` to match.
        key: String,
        /// `user_id` to match as well.
        user_id: Option<String>,
    },
}

/// An operation and the collection it applies to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    /// Collection name (`event`, `todo`, ...).
    pub collection: String,
    /// The operation.
    pub op: Op,
}

// ---------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected), table driven.

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 of `bytes`.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

// ---------------------------------------------------------------------------------------
// Encoding.

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: usize) {
        // Lengths are bounded by validated payload sizes and batch sizes.
        self.0.extend_from_slice(&(v as u32).to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn id(&mut self, id: &PointId) {
        match id {
            PointId::NumId(n) => {
                self.u8(0);
                self.u64(*n);
            }
            PointId::Uuid(u) => {
                self.u8(1);
                self.0.extend_from_slice(u.as_bytes());
            }
        }
    }
    fn json(&mut self, v: &Json) {
        match v {
            Json::Null => self.u8(0),
            Json::Bool(false) => self.u8(1),
            Json::Bool(true) => self.u8(2),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    self.u8(3);
                    self.u64(i as u64);
                } else if let Some(u) = n.as_u64() {
                    self.u8(4);
                    self.u64(u);
                } else {
                    self.u8(5);
                    self.u64(n.as_f64().unwrap_or(f64::NAN).to_bits());
                }
            }
            Json::String(s) => {
                self.u8(6);
                self.str(s);
            }
            Json::Array(items) => {
                self.u8(7);
                self.u32(items.len());
                items.iter().for_each(|i| self.json(i));
            }
            Json::Object(map) => {
                self.u8(8);
                self.map(map);
            }
        }
    }
    fn map(&mut self, map: &JsonMap) {
        self.u32(map.len());
        for (k, v) in map {
            self.str(k);
            self.json(v);
        }
    }
}

/// The framed record of one write call.
pub(crate) fn encode_record(entries: &[Entry]) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(4096));
    e.0.resize(HEADER, 0);
    e.u8(FORMAT_VERSION);
    e.u32(entries.len());
    for entry in entries {
        e.str(&entry.collection);
        match &entry.op {
            Op::Upsert(points) => {
                e.u8(1);
                e.u32(points.len());
                for p in points {
                    e.id(&p.id);
                    e.u32(p.vector.len());
                    for x in &p.vector {
                        e.0.extend_from_slice(&x.to_bits().to_le_bytes());
                    }
                    e.map(&p.payload);
                }
            }
            Op::Delete(ids) => {
                e.u8(2);
                e.u32(ids.len());
                ids.iter().for_each(|id| e.id(id));
            }
            Op::DeleteBySource { key, user_id } => {
                e.u8(3);
                e.str(key);
                match user_id {
                    Some(u) => {
                        e.u8(1);
                        e.str(u);
                    }
                    None => e.u8(0),
                }
            }
        }
    }
    let mut buf = e.0;
    let len = (buf.len() - HEADER) as u32;
    let payload_crc = crc32(&buf[HEADER..]);
    buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    buf[4..8].copy_from_slice(&len.to_le_bytes());
    buf[8..12].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32(&buf[0..12]);
    buf[12..16].copy_from_slice(&header_crc.to_le_bytes());
    buf
}

// ---------------------------------------------------------------------------------------
// Decoding.

struct Dec<'a> {
    bytes: &'a [u8],
    pos: usize,
}

type DecResult<T> = std::result::Result<T, &'static str>;

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> DecResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let out = self.bytes.get(self.pos..end).ok_or("truncated record")?;
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> DecResult<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> DecResult<usize> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u64(&mut self) -> DecResult<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self) -> DecResult<String> {
        let n = self.u32()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "invalid UTF-8")
    }
    fn id(&mut self) -> DecResult<PointId> {
        match self.u8()? {
            0 => Ok(PointId::NumId(self.u64()?)),
            1 => {
                let b = self.take(16)?;
                Ok(PointId::Uuid(Uuid::from_slice(b).map_err(|_| "bad uuid")?))
            }
            _ => Err("bad point id tag"),
        }
    }
    /// A count of items that each take at least `min` bytes (guards allocations).
    fn count(&mut self, min: usize) -> DecResult<usize> {
        let n = self.u32()?;
        if n.saturating_mul(min) > self.bytes.len() - self.pos {
            return Err("count exceeds the record");
        }
        Ok(n)
    }
    fn json(&mut self, depth: usize) -> DecResult<Json> {
        if depth > 256 {
            return Err("nesting too deep");
        }
        Ok(match self.u8()? {
            0 => Json::Null,
            1 => Json::Bool(false),
            2 => Json::Bool(true),
            3 => Json::from(self.u64()? as i64),
            4 => Json::from(self.u64()?),
            5 => Json::Number(
                Number::from_f64(f64::from_bits(self.u64()?)).ok_or("non-finite number")?,
            ),
            6 => Json::String(self.str()?),
            7 => {
                let n = self.count(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.json(depth + 1)?);
                }
                Json::Array(items)
            }
            8 => Json::Object(self.map(depth + 1)?),
            _ => return Err("bad value tag"),
        })
    }
    fn map(&mut self, depth: usize) -> DecResult<JsonMap> {
        let n = self.count(5)?;
        let mut map = Map::new();
        for _ in 0..n {
            let k = self.str()?;
            let v = self.json(depth)?;
            map.insert(k, v);
        }
        Ok(map)
    }
}

fn decode_payload(bytes: &[u8]) -> DecResult<Vec<Entry>> {
    let mut d = Dec { bytes, pos: 0 };
    if d.u8()? != FORMAT_VERSION {
        return Err("unknown record format version");
    }
    let n = d.count(6)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let collection = d.str()?;
        let op = match d.u8()? {
            1 => {
                let n = d.count(9)?;
                let mut points = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = d.id()?;
                    let dim = d.count(4)?;
                    let raw = d.take(dim * 4)?;
                    let vector = raw
                        .chunks_exact(4)
                        .map(|b| f32::from_bits(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                        .collect();
                    let payload = d.map(0)?;
                    points.push(LoggedPoint {
                        id,
                        vector,
                        payload,
                    });
                }
                Op::Upsert(points)
            }
            2 => {
                let n = d.count(9)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(d.id()?);
                }
                Op::Delete(ids)
            }
            3 => {
                let key = d.str()?;
                let user_id = match d.u8()? {
                    0 => None,
                    1 => Some(d.str()?),
                    _ => return Err("bad option tag"),
                };
                Op::DeleteBySource { key, user_id }
            }
            _ => return Err("bad operation tag"),
        };
        entries.push(Entry { collection, op });
    }
    if d.pos != bytes.len() {
        return Err("trailing bytes in record");
    }
    Ok(entries)
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The payload range of a valid frame at `at`, if there is one.
fn valid_frame(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let h = bytes.get(at..at + HEADER)?;
    if le32(&h[0..4]) != MAGIC || le32(&h[12..16]) != crc32(&h[0..12]) {
        return None;
    }
    let start = at + HEADER;
    let end = start.checked_add(le32(&h[4..8]) as usize)?;
    let payload = bytes.get(start..end)?;
    (crc32(payload) == le32(&h[8..12])).then_some((start, end))
}

/// What [`parse_log`] found.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// The records, in order.
    pub records: Vec<Vec<Entry>>,
    /// Bytes of a torn tail that were dropped.
    pub dropped: usize,
}

/// Parses the content of a redo log (see the module docs for torn tails and corruption).
pub(crate) fn parse_log(bytes: &[u8], path: &Path) -> Result<Parsed> {
    let mut out = Parsed::default();
    let mut at = 0;
    while at < bytes.len() {
        match valid_frame(bytes, at) {
            Some((start, end)) => {
                let entries = decode_payload(&bytes[start..end]).map_err(|why| {
                    StorageError::data_corrupted(format!(
                        "redo log {}: record at byte {at} has a valid checksum but cannot be \
                         decoded ({why})",
                        path.display()
                    ))
                })?;
                out.records.push(entries);
                at = end;
            }
            None => {
                let later = (at + 1..bytes.len().saturating_sub(HEADER - 1)).find(|&i| {
                    bytes[i..i + 4] == MAGIC.to_le_bytes() && valid_frame(bytes, i).is_some()
                });
                if let Some(next) = later {
                    return Err(StorageError::data_corrupted(format!(
                        "redo log {}: record at byte {at} is corrupt and a valid record follows \
                         at byte {next}; refusing to replay a log with a hole",
                        path.display()
                    )));
                }
                out.dropped = bytes.len() - at;
                break;
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The file.

fn io_err(what: &str, path: &Path, err: io::Error) -> StorageError {
    StorageError::backend(format!("{what} {}: {err}", path.display())).with_source(err)
}

/// The open redo log of a store.
#[derive(Debug)]
pub(crate) struct RedoLog {
    path: PathBuf,
    file: File,
    /// Bytes of valid records in the file.
    len: u64,
    /// Bytes known to be on disk (synced).
    synced: u64,
    /// Checkpoint threshold.
    max_bytes: u64,
    /// Set after an I/O error: the tail of the file is in doubt until the store is reopened.
    broken: Option<String>,
}

impl RedoLog {
    /// Opens (creating) the log at `dir/redo.log` and returns the records it holds.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<(RedoLog, Parsed)> {
        let path = dir.join(REDO_FILE);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err("cannot open redo log", &path, e))?;
        if !existed {
            sync_dir(dir)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| io_err("cannot read redo log", &path, e))?;
        let parsed = parse_log(&bytes, &path)?;
        if parsed.dropped > 0 {
            tracing::warn!(
                path = %path.display(),
                bytes = parsed.dropped,
                "dropping the torn tail of the redo log (a write interrupted by a crash)"
            );
        }
        let len = (bytes.len() - parsed.dropped) as u64;
        Ok((
            RedoLog {
                path,
                file,
                len,
                synced: len,
                max_bytes,
                broken: None,
            },
            parsed,
        ))
    }

    /// Appends a record (from [`encode_record`]) and syncs it: when this returns `Ok`, the
    /// record survives a crash.
    pub(crate) fn append(&mut self, record: &[u8]) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(StorageError::backend(format!(
                "redo log {} is unusable after an earlier I/O error ({why}); reopen the store",
                self.path.display()
            )));
        }
        let written = self
            .file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(record));
        let result = written.and_then(|()| self.sync());
        if let Err(e) = result {
            // Cut the partial record so that later records do not follow a hole; if even that
            // fails, refuse further writes.
            if let Err(e2) = self.file.set_len(self.len) {
                self.broken = Some(format!("{e}; then {e2}"));
            }
            return Err(io_err("cannot append to redo log", &self.path, e));
        }
        Ok(())
    }

    /// Syncs the file and records how much is durable. The only place that calls `sync_data`
    /// on appends: the kill test's simulated power loss (see
    /// [`RedoLog::discard_unsynced`]) fails if it is not called.
    fn sync(&mut self) -> io::Result<()> {
        let end = self.file.stream_position()?;
        self.file.sync_data()?;
        self.len = end;
        self.synced = end;
        Ok(())
    }

    /// Whether the log has grown past the checkpoint threshold.
    pub(crate) fn is_full(&self) -> bool {
        self.len > self.max_bytes
    }

    /// Empties the log (after a checkpoint has flushed everything it holds).
    pub(crate) fn reset(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io_err("cannot truncate redo log", &self.path, e))?;
        self.len = 0;
        self.synced = 0;
        self.broken = None;
        Ok(())
    }

    /// Test support: cuts the file to what was synced, as a power loss would lose the rest.
    pub(crate) fn discard_unsynced(&mut self) -> Result<()> {
        self.file
            .set_len(self.synced)
            .map_err(|e| io_err("cannot truncate redo log", &self.path, e))
    }
}

/// Syncs a directory so that a newly created file's entry survives a power loss.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("cannot sync directory", dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use storage_core::ErrorKind;

    fn entries() -> Vec<Entry> {
        let payload = json!({
            "s": "x", "i": -5, "u": u64::MAX, "f": 0.1, "tiny": 5e-324, "b": true, "n": null,
            "a": [1, "two", [3.5], {"k": false}], "o": {"nested": {"deep": 1}}
        });
        vec![
            Entry {
                collection: "event".into(),
                op: Op::Upsert(vec![
                    LoggedPoint {
                        id: PointId::Uuid(Uuid::from_u128(
                            0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
                        )),
                        vector: vec![0.1, -0.0, f32::MIN_POSITIVE, 1.0e-40, 3.4e38],
                        payload: payload.as_object().unwrap().clone(),
                    },
                    LoggedPoint {
                        id: PointId::NumId(7),
                        vector: vec![],
                        payload: JsonMap::new(),
                    },
                ]),
            },
            Entry {
                collection: "todo".into(),
                op: Op::Delete(vec![PointId::NumId(u64::MAX), PointId::Uuid(Uuid::nil())]),
            },
            Entry {
                collection: "document".into(),
                op: Op::DeleteBySource {
                    key: "src".into(),
                    user_id: Some("ü".into()),
                },
            },
            Entry {
                collection: "entity".into(),
                op: Op::DeleteBySource {
                    key: String::new(),
                    user_id: None,
                },
            },
        ]
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_round_trip_bit_for_bit() {
        let e = entries();
        let mut bytes = encode_record(&e);
        bytes.extend(encode_record(&e[1..2]));
        let parsed = parse_log(&bytes, Path::new("x")).unwrap();
        assert_eq!(parsed.dropped, 0);
        assert_eq!(parsed.records, vec![e.clone(), e[1..2].to_vec()]);
        let Op::Upsert(points) = &parsed.records[0][0].op else {
            panic!("upsert expected")
        };
        let bits: Vec<u32> = points[0].vector.iter().map(|x| x.to_bits()).collect();
        let Op::Upsert(orig) = &e[0].op else {
            unreachable!()
        };
        assert_eq!(
            bits,
            orig[0]
                .vector
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_torn_tail_is_dropped_at_every_cut() {
        let e = entries();
        let first = encode_record(&e[..1]);
        let second = encode_record(&e);
        let mut all = first.clone();
        all.extend(&second);
        for cut in first.len()..all.len() {
            let parsed = parse_log(&all[..cut], Path::new("x")).unwrap();
            assert_eq!(parsed.records.len(), 1, "cut at {cut}");
            assert_eq!(parsed.dropped, cut - first.len());
        }
        // A zero-filled tail (a power loss after the size was updated) is torn too.
        let mut zeros = all.clone();
        zeros.extend([0u8; 100]);
        assert_eq!(parse_log(&zeros, Path::new("x")).unwrap().dropped, 100);
        // So is a complete last record whose payload was not fully written.
        let mut bad_last = all.clone();
        let n = bad_last.len();
        bad_last[n - 3] ^= 0xFF;
        let parsed = parse_log(&bad_last, Path::new("x")).unwrap();
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.dropped, second.len());
    }

    #[test]
    fn corruption_in_the_middle_is_an_error() {
        let e = entries();
        let mut all = encode_record(&e);
        let first_len = all.len();
        all.extend(encode_record(&e[..1]));
        for at in [1, 5, 13, HEADER + 3, first_len - 1] {
            let mut bad = all.clone();
            bad[at] ^= 0x40;
            let err = parse_log(&bad, Path::new("x")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DataCorrupted, "flip at {at}: {err}");
        }
    }

    #[test]
    fn the_file_appends_resets_and_discards_unsynced_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, parsed) = RedoLog::open(dir.path(), 100).unwrap();
        assert!(parsed.records.is_empty() && log.len == 0);
        let rec = encode_record(&entries());
        log.append(&rec).unwrap();
        assert!(log.is_full());
        drop(log);
        let (mut log, parsed) = RedoLog::open(dir.path(), 100).unwrap();
        assert_eq!(parsed.records, vec![entries()]);
        // Bytes written but never synced are what a power loss may take.
        log.file.seek(SeekFrom::End(0)).unwrap();
        log.file.write_all(&rec).unwrap();
        log.discard_unsynced().unwrap();
        drop(log);
        let (mut log, parsed) = RedoLog::open(dir.path(), 100).unwrap();
        assert_eq!(parsed.records.len(), 1);
        log.reset().unwrap();
        drop(log);
        let (log, parsed) = RedoLog::open(dir.path(), 100).unwrap();
        assert!(parsed.records.is_empty() && log.len == 0);
    }

    /// The reader never panics (nor allocates without bound) whatever the file holds: random
    /// bytes, and records whose payload was mutated or cut and then given valid checksums, so
    /// that the decoder itself (not only the checksum) meets every malformed structure.
    mod never_panic {
        use std::cell::Cell;

        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        use super::*;

        const CASES: u32 = 3000;

        /// A frame around `payload` with valid checksums.
        fn frame(payload: &[u8]) -> Vec<u8> {
            let mut buf = vec![0u8; HEADER];
            buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
            buf[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            buf[8..12].copy_from_slice(&crc32(payload).to_le_bytes());
            let header_crc = crc32(&buf[0..12]);
            buf[12..16].copy_from_slice(&header_crc.to_le_bytes());
            buf.extend_from_slice(payload);
            buf
        }

        fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> bool) {
            let mut runner = TestRunner::new(Config {
                cases: CASES,
                failure_persistence: None,
                ..Config::default()
            });
            let (ran, accepted) = (Cell::new(0u32), Cell::new(0u32));
            runner
                .run(&strategy, |value| {
                    ran.set(ran.get() + 1);
                    if test(value) {
                        accepted.set(accepted.get() + 1);
                    }
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            println!(
                "{name}: {} cases, no panic ({} read, {} refused)",
                ran.get(),
                accepted.get(),
                ran.get() - accepted.get()
            );
        }

        #[test]
        fn arbitrary_bytes() {
            run(
                "redo parse_log(arbitrary bytes)",
                prop::collection::vec(any::<u8>(), 0..2048),
                |bytes| parse_log(&bytes, Path::new("redo.log")).is_ok(),
            );
        }

        #[test]
        fn mutated_records_with_valid_checksums() {
            let good = encode_record(&entries());
            let payload = good[HEADER..].to_vec();
            let n = payload.len();
            let strategy = (
                prop::collection::vec((0..n, any::<u8>()), 0..6),
                prop_oneof![3 => Just(n), 1 => 0..n],
                prop_oneof![3 => Just(false), 1 => Just(true)],
            );
            run(
                "redo parse_log(mutated records, valid checksums)",
                strategy,
                |(flips, cut, twice)| {
                    let mut p = payload.clone();
                    for (at, byte) in flips {
                        p[at] = byte;
                    }
                    p.truncate(cut);
                    let mut log = frame(&p);
                    if twice {
                        log.extend(frame(&p));
                    }
                    parse_log(&log, Path::new("redo.log")).is_ok()
                },
            );
        }
    }
}
