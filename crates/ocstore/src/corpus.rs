//! Reading the context corpus format (`data/context-corpus/README.md`): JSON lines plus
//! little-endian `f32` vector files, with errors that name the file and line.
//!
//! Reading is done in two steps so that nothing is written before the whole input is known to
//! be good: [`load_contexts`] checks the format (UTF-8, JSON, unique ids, one vector row per
//! record), then [`Corpus::validate`] runs the library's upsert validators on every context
//! with the dimension of the store they are going to.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use opencontext_storage::time::parse_timestamp;
use opencontext_storage::{ContextType, ProcessedContext, StorageError, payload, validate};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The corpus' embedding dimension.
pub const DIMENSION: usize = 384;

/// One line of `contexts.jsonl`.
#[derive(Debug, Deserialize)]
pub struct CorpusRecord {
    pub id: String,
    pub context_type: String,
    pub title: String,
    pub text: String,
    pub user_id: String,
    pub device_id: String,
    pub agent_id: String,
    pub source_file_key: String,
    pub create_time: String,
    pub event_time: String,
    pub time_bucket: TimeBuckets,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub importance: u8,
}

/// The `time_bucket` object of a corpus record.
#[derive(Debug, Deserialize)]
pub struct TimeBuckets {
    pub day: String,
    pub week: String,
    pub month: String,
}

/// One line of `queries.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Query {
    pub id: String,
    pub text: String,
    pub context_type: String,
    pub user_id: Option<String>,
}

/// One ranked hit of the ground truth.
#[derive(Debug, Clone, Deserialize)]
pub struct TruthHit {
    pub id: String,
    pub score: f64,
}

/// A ranked list with the score gap between ranks 10 and 11.
#[derive(Debug, Clone, Deserialize)]
pub struct TruthList {
    pub top10: Vec<TruthHit>,
    pub gap_10_11: Option<f64>,
}

/// One line of `ground_truth.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    pub query_id: String,
    pub all: TruthList,
    pub filtered: TruthList,
}

/// The UTF-8 byte-order mark, accepted (and dropped) at the start of a JSON-lines file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a JSON-lines file (see [`parse_jsonl`]).
///
/// # Errors
/// When the file cannot be read, and as [`parse_jsonl`].
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<(usize, T)>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_jsonl(path, &bytes)
}

/// Parses the content of the JSON-lines file `path` (only used to name it in errors): one `T`
/// per line, returned with its 1-based line number. A UTF-8 byte-order mark at the start is
/// skipped, lines may end in `\n` or `\r\n`, and blank lines (spaces and tabs only) are
/// skipped, so the records are the non-blank lines in order.
///
/// # Errors
/// `PATH:LINE: ...` for a line that is not valid UTF-8 (with the byte of the line where it
/// stops being UTF-8), for a UTF-16 file, for a byte-order mark after the start, and for a
/// line that does not parse as `T`.
pub fn parse_jsonl<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, T)>> {
    let name = path.display();
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        bail!(
            "{name}:1: the file starts with a UTF-16 byte-order mark; JSON lines must be UTF-8 \
             (convert it, e.g. `iconv -f UTF-16 -t UTF-8`)"
        );
    }
    let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut out = Vec::new();
    for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|e| {
            anyhow!(
                "{name}:{line_no}: not valid UTF-8 (from byte {} of the line); the file must be UTF-8",
                e.valid_up_to() + 1
            )
        })?;
        if line.bytes().all(|b| b == b' ' || b == b'\t') {
            continue;
        }
        if line.starts_with('\u{feff}') {
            bail!(
                "{name}:{line_no}: the line starts with a byte-order mark (U+FEFF), which is only \
                 accepted at the start of the file (were files concatenated?)"
            );
        }
        let value = serde_json::from_str(line)
            .with_context(|| format!("{name}:{line_no}: malformed line"))?;
        out.push((line_no, value));
    }
    Ok(out)
}

/// Reads a vector file (see [`parse_vectors`]).
///
/// # Errors
/// When the file cannot be read, and as [`parse_vectors`].
pub fn read_vectors(
    path: &Path,
    dim: usize,
    jsonl: &Path,
    lines: &[usize],
) -> Result<Vec<Vec<f32>>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_vectors(path, &bytes, dim, jsonl, lines)
}

/// Decodes the content of the vector file `path`: rows of `dim` little-endian `f32`, no
/// header, row *k* (1-based) belonging to the *k*-th record of the JSON-lines file `jsonl`,
/// which is on line `lines[k - 1]`. The values are not checked here (see
/// [`Corpus::validate`]).
///
/// # Errors
/// `dim` of 0; a length that is not a whole number of rows (naming the cut row and its
/// line); a row count that differs from `lines.len()` (naming the first line without a row,
/// or the rows without a line).
pub fn parse_vectors(
    path: &Path,
    bytes: &[u8],
    dim: usize,
    jsonl: &Path,
    lines: &[usize],
) -> Result<Vec<Vec<f32>>> {
    let name = path.display();
    let row_bytes = dim.checked_mul(4).filter(|n| *n > 0).ok_or_else(|| {
        anyhow!("{name}: vector dimension {dim} is not usable (expected 1 or more)")
    })?;
    let rows = bytes.len() / row_bytes;
    let rest = bytes.len() % row_bytes;
    let line_of = |row: usize| match lines.get(row) {
        Some(l) => format!(" (for {}:{l})", jsonl.display()),
        None => format!(
            " (beyond the {} contexts of {})",
            lines.len(),
            jsonl.display()
        ),
    };
    if rest != 0 {
        bail!(
            "{name}: {} bytes is not a whole number of {dim}-dimensional f32 rows ({row_bytes} \
             bytes each): row {}{} has only {rest} bytes; wrong dimension or a truncated file?",
            bytes.len(),
            rows + 1,
            line_of(rows)
        );
    }
    if rows < lines.len() {
        bail!(
            "{name}: holds {rows} rows but {} has {} contexts (one row per non-blank line): {}:{} \
             has no row",
            jsonl.display(),
            lines.len(),
            jsonl.display(),
            lines[rows]
        );
    }
    if rows > lines.len() {
        bail!(
            "{name}: holds {rows} rows but {} has {} contexts (one row per non-blank line): rows \
             {} to {rows} have no line",
            jsonl.display(),
            lines.len(),
            lines.len() + 1
        );
    }
    Ok(bytes
        .chunks_exact(row_bytes)
        .map(|chunk| {
            chunk
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect())
}

/// The corpus files of a directory.
#[derive(Debug, Clone)]
pub struct CorpusFiles {
    pub contexts: PathBuf,
    pub vectors: PathBuf,
    pub queries: PathBuf,
    pub query_vectors: PathBuf,
    pub ground_truth: PathBuf,
}

impl CorpusFiles {
    pub fn in_dir(dir: &Path) -> Self {
        CorpusFiles {
            contexts: dir.join("contexts.jsonl"),
            vectors: dir.join("vectors.f32"),
            queries: dir.join("queries.jsonl"),
            query_vectors: dir.join("query_vectors.f32"),
            ground_truth: dir.join("ground_truth.jsonl"),
        }
    }
}

/// A corpus read and checked against its format, not yet against a store.
#[derive(Debug)]
pub struct Corpus {
    /// The contexts, in file order.
    pub contexts: Vec<ProcessedContext>,
    /// `lines[k]`: the 1-based line of [`Corpus::contexts_path`] that `contexts[k]` came from
    /// (its vector is row `k + 1` of [`Corpus::vectors_path`]).
    pub lines: Vec<usize>,
    /// The JSON-lines file, as named in errors.
    pub contexts_path: PathBuf,
    /// The vector file, as named in errors.
    pub vectors_path: PathBuf,
}

/// Reads and converts every corpus record (see [`parse_corpus`]).
///
/// # Errors
/// When a file cannot be read, and as [`parse_corpus`].
pub fn load_contexts(contexts: &Path, vectors: &Path) -> Result<Corpus> {
    let jsonl =
        fs::read(contexts).with_context(|| format!("cannot read {}", contexts.display()))?;
    let rows = fs::read(vectors).with_context(|| format!("cannot read {}", vectors.display()))?;
    parse_corpus(contexts, &jsonl, vectors, &rows)
}

/// Parses and converts the contents of a JSON-lines file and its vector file (the paths only
/// name them in errors): [`parse_jsonl`], every id checked with the library's
/// [`validate::validate_id`] and unique in the whole file, [`parse_vectors`] with
/// [`DIMENSION`], then [`to_context`].
///
/// # Errors
/// `PATH:LINE: ...` for the first bad line; a duplicate id names both lines.
pub fn parse_corpus(
    contexts_path: &Path,
    jsonl: &[u8],
    vectors_path: &Path,
    rows: &[u8],
) -> Result<Corpus> {
    let name = contexts_path.display();
    let records: Vec<(usize, CorpusRecord)> = parse_jsonl(contexts_path, jsonl)?;
    let mut first_line: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    for (line, r) in &records {
        validate::validate_id("id", &r.id)
            .map_err(|e| anyhow!("{name}:{line}: {}", e.message()))?;
        if let Some(first) = first_line.insert(r.id.as_str(), *line) {
            bail!(
                "{name}:{line}: id '{}' is already used on line {first}; ids must be unique in \
                 the file (the later line would replace the earlier one)",
                r.id
            );
        }
    }
    let lines: Vec<usize> = records.iter().map(|(line, _)| *line).collect();
    let vectors = parse_vectors(vectors_path, rows, DIMENSION, contexts_path, &lines)?;
    let contexts = records
        .into_iter()
        .zip(vectors)
        .map(|((line, r), v)| {
            to_context(r, v).with_context(|| format!("{name}:{line}: invalid record"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Corpus {
        contexts,
        lines,
        contexts_path: contexts_path.to_owned(),
        vectors_path: vectors_path.to_owned(),
    })
}

impl Corpus {
    /// Runs the checks the library makes on upsert on every context, so that a bad line
    /// anywhere stops the ingest before the first batch is written: each vector with
    /// [`validate::validate_vector`] against `dimension` (the store's), each context with
    /// [`validate::validate_context`], its payload size in the embedded Qdrant layout with
    /// [`validate::validate_payload_size`], and finally the whole file as one batch with
    /// [`validate::validate_contexts`].
    ///
    /// # Errors
    /// The library's message for the first bad context, located: `CONTEXTS:LINE: ...`, or
    /// `VECTORS: row K (for CONTEXTS:LINE): ...` for a vector.
    pub fn validate(&self, dimension: usize) -> Result<()> {
        for (k, c) in self.contexts.iter().enumerate() {
            if let Some(v) = c.vectorize.vector.as_deref() {
                validate::validate_vector("vector", v, dimension).map_err(|e| {
                    anyhow!(
                        "{}: row {} (for {}:{}): {}",
                        self.vectors_path.display(),
                        k + 1,
                        self.contexts_path.display(),
                        self.lines[k],
                        e.message()
                    )
                })?;
            }
            validate::validate_context(c, dimension).map_err(|e| self.at(k, &e))?;
            let mut p = payload::to_payload(c).map_err(|e| self.at(k, &e))?;
            p.insert(
                payload::FIELD_ORIGINAL_ID.into(),
                serde_json::Value::String(c.id.clone()),
            );
            let size = serde_json::to_vec(&p)?.len();
            validate::validate_payload_size(&c.id, size).map_err(|e| self.at(k, &e))?;
        }
        // The batch rule itself, in case it checks more than the per-context rules above.
        validate::validate_contexts(&self.contexts, dimension).map_err(|e| self.locate(&e))
    }

    /// The library's message about `contexts[k]`, prefixed with its file and line instead of
    /// the batch index (`contexts[k].`) or the id (`context '<id>' `) it starts with.
    fn at(&self, k: usize, e: &StorageError) -> anyhow::Error {
        let msg = e.message();
        let id_prefix = format!("context '{}' ", self.contexts[k].id);
        let index_prefix = format!("contexts[{k}].");
        let rest = msg
            .strip_prefix(id_prefix.as_str())
            .or_else(|| msg.strip_prefix(index_prefix.as_str()))
            .unwrap_or(msg);
        anyhow!("{}:{}: {rest}", self.contexts_path.display(), self.lines[k])
    }

    /// [`Corpus::at`] for a message about the whole batch: finds the context by its batch
    /// index or id.
    fn locate(&self, e: &StorageError) -> anyhow::Error {
        let msg = e.message();
        let by_index = msg
            .strip_prefix("contexts[")
            .and_then(|s| s.split_once("]."))
            .and_then(|(i, _)| i.parse::<usize>().ok())
            .filter(|k| *k < self.contexts.len());
        let k = by_index.or_else(|| {
            self.contexts
                .iter()
                .position(|c| msg.starts_with(&format!("context '{}' ", c.id)))
        });
        match k {
            Some(k) => self.at(k, e),
            None => anyhow!("{}: {msg}", self.contexts_path.display()),
        }
    }
}

/// Maps a corpus record to a context: text → `vectorize.text`, title, keywords and
/// importance → extracted data, tenant, times, day bucket and source key → properties,
/// the week and month buckets → metadata.
pub fn to_context(r: CorpusRecord, vector: Vec<f32>) -> Result<ProcessedContext> {
    let context_type: ContextType = r.context_type.parse()?;
    let mut c = ProcessedContext::new(context_type, r.text);
    c.id = r.id;
    let create_time = parse_timestamp(&r.create_time)?;
    c.properties.create_time = create_time;
    c.properties.update_time = create_time;
    c.properties.event_time = parse_timestamp(&r.event_time)?;
    c.properties.user_id = Some(r.user_id);
    c.properties.device_id = Some(r.device_id);
    c.properties.agent_id = Some(r.agent_id);
    c.properties.source_file_key = Some(r.source_file_key);
    c.properties.time_bucket = Some(r.time_bucket.day);
    c.extracted_data.title = Some(r.title);
    c.extracted_data.keywords = r.keywords;
    c.extracted_data.importance = r.importance;
    c.metadata.insert("week".into(), r.time_bucket.week.into());
    c.metadata
        .insert("month".into(), r.time_bucket.month.into());
    c.vectorize.vector = Some(vector);
    Ok(c)
}

/// Queries, their vectors and ground truth, checked to line up by id.
pub struct QuerySet {
    pub queries: Vec<Query>,
    pub vectors: Vec<Vec<f32>>,
    pub truth: BTreeMap<String, Truth>,
}

/// Reads a query set; every query must have a ground-truth line and a valid vector row.
///
/// # Errors
/// `PATH:LINE: ...` for the first bad line or row.
pub fn load_queries(queries: &Path, query_vectors: &Path, ground_truth: &Path) -> Result<QuerySet> {
    let qs: Vec<(usize, Query)> = read_jsonl(queries)?;
    let lines: Vec<usize> = qs.iter().map(|(line, _)| *line).collect();
    let vectors = read_vectors(query_vectors, DIMENSION, queries, &lines)?;
    let truth: Vec<(usize, Truth)> = read_jsonl(ground_truth)?;
    let truth: BTreeMap<String, Truth> = truth
        .into_iter()
        .map(|(_, t)| (t.query_id.clone(), t))
        .collect();
    for (k, ((line, q), v)) in qs.iter().zip(&vectors).enumerate() {
        q.context_type
            .parse::<ContextType>()
            .with_context(|| format!("{}:{line}: invalid query", queries.display()))?;
        validate::validate_vector("vector", v, DIMENSION).map_err(|e| {
            anyhow!(
                "{}: row {} (for {}:{line}): {}",
                query_vectors.display(),
                k + 1,
                queries.display(),
                e.message()
            )
        })?;
        if !truth.contains_key(&q.id) {
            bail!(
                "{}:{line}: query '{}' has no line in {}",
                queries.display(),
                q.id,
                ground_truth.display()
            );
        }
    }
    Ok(QuerySet {
        queries: qs.into_iter().map(|(_, q)| q).collect(),
        vectors,
        truth,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::File::create(&p).unwrap().write_all(data).unwrap();
        p
    }

    const LINE: &str = r#"{"id": "a", "context_type": "event", "title": "t", "text": "x", "user_id": "u", "device_id": "d", "agent_id": "default", "source_file_key": "u:f", "create_time": "2024-01-01T00:00:00+00:00", "event_time": "2024-01-01T00:00:00+08:00", "time_bucket": {"day": "2024-01-01", "week": "2024-W01", "month": "2024-01"}, "keywords": ["k"], "importance": 3}"#;

    #[test]
    fn errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = write(
            dir.path(),
            "c.jsonl",
            format!("{LINE}\n{{not json\n").as_bytes(),
        );
        let vec = write(dir.path(), "v.f32", &[0u8; 2 * DIMENSION * 4]);
        let err = format!("{:#}", load_contexts(&ctx, &vec).unwrap_err());
        assert!(err.contains("c.jsonl:2"), "{err}");

        let ctx = write(dir.path(), "c.jsonl", format!("{LINE}\n").as_bytes());
        let short = write(dir.path(), "v.f32", &[0u8; 100 * 4]);
        let err = format!("{:#}", load_contexts(&ctx, &short).unwrap_err());
        assert!(err.contains("wrong dimension"), "{err}");

        let bad_type = LINE.replace("\"event\"", "\"memo\"");
        let ctx = write(dir.path(), "c.jsonl", format!("{bad_type}\n").as_bytes());
        let vec = write(dir.path(), "v.f32", &[0u8; DIMENSION * 4]);
        let err = format!("{:#}", load_contexts(&ctx, &vec).unwrap_err());
        assert!(err.contains("c.jsonl:1") && err.contains("memo"), "{err}");

        let err = format!(
            "{:#}",
            load_contexts(&dir.path().join("missing.jsonl"), &vec).unwrap_err()
        );
        assert!(err.contains("missing.jsonl"), "{err}");
    }

    #[test]
    fn converts_a_record() {
        let r: CorpusRecord = serde_json::from_str(LINE).unwrap();
        let c = to_context(r, vec![1.0; DIMENSION]).unwrap();
        assert_eq!(c.context_type(), ContextType::Event);
        assert_eq!(c.properties.time_bucket.as_deref(), Some("2024-01-01"));
        assert_eq!(c.metadata["week"], "2024-W01");
        assert_eq!(c.properties.event_time.offset().local_minus_utc(), 8 * 3600);
    }

    #[test]
    fn jsonl_lines_keep_their_numbers() {
        let p = Path::new("c.jsonl");
        let text = format!("\u{feff}{LINE}\r\n\n  \t\n{LINE}\n");
        let lines: Vec<(usize, CorpusRecord)> = parse_jsonl(p, text.as_bytes()).unwrap();
        assert_eq!(lines.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1, 4]);

        let mut bytes = format!("{LINE}\n{LINE}\n").into_bytes();
        bytes.extend_from_slice(b"{\"id\": \"\xC3\x28\"}\n");
        let err = parse_jsonl::<CorpusRecord>(p, &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.jsonl:3: not valid UTF-8 (from byte 9"),
            "{err}"
        );

        let text = format!("{LINE}\n\u{feff}{LINE}\n");
        let err = parse_jsonl::<CorpusRecord>(p, text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.jsonl:2:") && err.contains("byte-order mark"),
            "{err}"
        );
    }

    #[test]
    fn library_messages_are_located_by_line() {
        let text = format!("{LINE}\n\n{}\n", LINE.replace("\"a\"", "\"b\""));
        let rows: Vec<u8> = [1.0f32; 2 * DIMENSION]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let corpus = parse_corpus(
            Path::new("c.jsonl"),
            text.as_bytes(),
            Path::new("v.f32"),
            &rows,
        )
        .unwrap();
        assert_eq!(corpus.lines, [1, 3]);
        corpus.validate(DIMENSION).unwrap();
        // A batch-relative message (`contexts[1].`) and an id-prefixed one name the line.
        let e = StorageError::invalid_input("contexts[1].id must not be empty");
        assert_eq!(
            corpus.locate(&e).to_string(),
            "c.jsonl:3: id must not be empty"
        );
        let e = StorageError::invalid_input("context 'b' importance is 11, the range is 0 to 10");
        assert_eq!(
            corpus.locate(&e).to_string(),
            "c.jsonl:3: importance is 11, the range is 0 to 10"
        );
        let err = corpus.validate(8).unwrap_err().to_string();
        assert_eq!(
            err,
            "v.f32: row 1 (for c.jsonl:1): vector has 384 components, expected 8"
        );
    }

    /// The readers never panic, whatever the bytes: they return the records or an error.
    mod never_panic {
        use std::cell::Cell;

        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        use super::super::*;
        use super::LINE;

        /// Cases per property (each property prints how many it ran).
        const CASES: u32 = 2000;

        /// Runs `test` on [`CASES`] values of `strategy`; `test` returns whether the input
        /// was accepted (counted, to show that both outcomes are reached).
        fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> bool) {
            let mut runner = TestRunner::new(Config {
                cases: CASES,
                failure_persistence: None,
                ..Config::default()
            });
            let (ran, accepted) = (Cell::new(0u32), Cell::new(0u32));
            let result = runner.run(&strategy, |value| {
                ran.set(ran.get() + 1);
                if test(value) {
                    accepted.set(accepted.get() + 1);
                }
                Ok(())
            });
            if let Err(e) = result {
                panic!("{name}: {e}");
            }
            assert!(ran.get() >= CASES, "{name}: ran {} cases", ran.get());
            println!(
                "{name}: {} cases, no panic ({} accepted, {} refused)",
                ran.get(),
                accepted.get(),
                ran.get() - accepted.get()
            );
        }

        /// A JSON-lines file of up to 6 lines: valid ones (random ids, some empty or repeated),
        /// cut ones, bad dates, importance up to 300, byte-order marks, blank lines and random
        /// bytes (invalid UTF-8 included), with LF, CRLF or doubled line ends. Paired with a
        /// vector file of arbitrary floats (NaN, infinities, zeros), usually one row per line,
        /// sometimes with stray bytes after the rows.
        fn corpus_bytes() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
            let with = |from: &'static str, to: String| LINE.replace(from, &to).into_bytes();
            let line = prop_oneof![
                8 => "[a-c0-9]{0,3}".prop_map(move |id| with("\"a\"", format!("\"{id}\""))),
                1 => (0..LINE.len()).prop_map(|cut| LINE.as_bytes()[..cut].to_vec()),
                1 => "[0-9W -]{0,12}".prop_map(move |d| with("2024-01-01\"", format!("{d}\""))),
                1 => (0u32..300).prop_map(move |i| with("\"importance\": 3", format!("\"importance\": {i}"))),
                1 => Just(b"\xEF\xBB\xBF{}".to_vec()),
                1 => Just(b"   \t".to_vec()),
                1 => prop::collection::vec(any::<u8>(), 0..40),
            ];
            let end = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\n\n"[..])];
            (
                prop::collection::vec((line, end), 0..6),
                prop_oneof![4 => Just(&b""[..]), 1 => Just(UTF8_BOM), 1 => Just(&b"\xFF\xFE"[..])],
            )
                .prop_flat_map(|(lines, start)| {
                    let n = lines.len();
                    let mut jsonl = start.to_vec();
                    for (l, e) in lines {
                        jsonl.extend(l);
                        jsonl.extend_from_slice(e);
                    }
                    (
                        Just(jsonl),
                        prop_oneof![4 => Just(n), 1 => 0usize..7],
                        prop::collection::vec(any::<f32>(), 1..8),
                        prop_oneof![4 => Just(Vec::new()), 1 => prop::collection::vec(any::<u8>(), 0..9)],
                    )
                })
                .prop_map(|(jsonl, rows, values, tail)| {
                    let mut vectors: Vec<u8> = values
                        .iter()
                        .cycle()
                        .take(rows * DIMENSION)
                        .flat_map(|x| x.to_le_bytes())
                        .collect();
                    vectors.extend(tail);
                    (jsonl, vectors)
                })
        }

        #[test]
        fn jsonl_reader_on_arbitrary_bytes() {
            run(
                "parse_jsonl(arbitrary bytes)",
                prop::collection::vec(any::<u8>(), 0..4096),
                |bytes| {
                    let p = Path::new("c.jsonl");
                    let _ = parse_jsonl::<CorpusRecord>(p, &bytes);
                    let _ = parse_jsonl::<Query>(p, &bytes);
                    parse_jsonl::<serde_json::Value>(p, &bytes).is_ok()
                },
            );
        }

        #[test]
        fn vector_reader_on_arbitrary_bytes() {
            run(
                "parse_vectors(arbitrary bytes)",
                (
                    prop_oneof![1usize..10, Just(0), Just(DIMENSION), Just(usize::MAX / 2)],
                    prop::collection::vec(1usize..1000, 0..8),
                )
                    .prop_flat_map(|(dim, lines)| {
                        // Half the time exactly one row per line, when that fits in 8 KiB.
                        let exact = dim
                            .checked_mul(4 * lines.len())
                            .filter(|n| *n <= 8192)
                            .unwrap_or(0);
                        let bytes = prop_oneof![
                            prop::collection::vec(any::<u8>(), 0..8192),
                            prop::collection::vec(any::<u8>(), exact..=exact),
                        ];
                        (bytes, Just(dim), Just(lines))
                    }),
                |(bytes, dim, lines)| {
                    let r = parse_vectors(
                        Path::new("v.f32"),
                        &bytes,
                        dim,
                        Path::new("c.jsonl"),
                        &lines,
                    );
                    let ok = r.is_ok();
                    if let Ok(rows) = r {
                        assert_eq!(rows.len(), lines.len());
                        assert!(rows.iter().all(|r| r.len() == dim));
                    }
                    ok
                },
            );
        }

        #[test]
        fn corpus_reader_and_validation_on_mixed_input() {
            run(
                "parse_corpus + Corpus::validate(mixed lines, arbitrary floats)",
                corpus_bytes(),
                |(jsonl, rows)| {
                    let r = parse_corpus(Path::new("c.jsonl"), &jsonl, Path::new("v.f32"), &rows);
                    match r {
                        Ok(corpus) => {
                            assert_eq!(corpus.lines.len(), corpus.contexts.len());
                            let _ = corpus.validate(3);
                            corpus.validate(DIMENSION).is_ok()
                        }
                        Err(_) => false,
                    }
                },
            );
        }
    }
}
