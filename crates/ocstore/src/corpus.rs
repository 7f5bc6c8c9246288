//! Reading the context corpus format (`data/context-corpus/README.md`): JSON lines plus
//! little-endian `f32` vector files, with errors that name the file and line.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use opencontext_storage::time::parse_timestamp;
use opencontext_storage::{ContextType, ProcessedContext};
use serde::Deserialize;

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

/// Reads a JSON-lines file; every line must parse as `T` (blank lines are refused too, so
/// line numbers always match vector rows).
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: malformed line", path.display(), i + 1))
        })
        .collect()
}

/// Reads `rows` vectors of `dim` little-endian `f32` from `path`, checking the size and that
/// every component is finite.
pub fn read_vectors(path: &Path, rows: usize, dim: usize) -> Result<Vec<Vec<f32>>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let row_bytes = dim * 4;
    if bytes.len() % row_bytes != 0 {
        bail!(
            "{}: {} bytes is not a whole number of {dim}-dimensional f32 rows ({row_bytes} bytes each); wrong dimension?",
            path.display(),
            bytes.len()
        );
    }
    let found = bytes.len() / row_bytes;
    if found != rows {
        bail!(
            "{}: holds {found} vectors but the JSON-lines file has {rows} lines",
            path.display()
        );
    }
    bytes
        .chunks_exact(row_bytes)
        .enumerate()
        .map(|(row, chunk)| {
            let v: Vec<f32> = chunk
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                bail!(
                    "{}: row {} (line {}) component {i} is not finite",
                    path.display(),
                    row,
                    row + 1
                );
            }
            Ok(v)
        })
        .collect()
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

/// Reads and converts every corpus record, validating the whole file before anything is
/// written anywhere.
pub fn load_contexts(contexts: &Path, vectors: &Path) -> Result<Vec<ProcessedContext>> {
    let records: Vec<CorpusRecord> = read_jsonl(contexts)?;
    let vectors = read_vectors(vectors, records.len(), DIMENSION)?;
    records
        .into_iter()
        .zip(vectors)
        .enumerate()
        .map(|(i, (r, v))| {
            to_context(r, v)
                .with_context(|| format!("{}:{}: invalid record", contexts.display(), i + 1))
        })
        .collect()
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

/// Reads a query set; every query must have a ground-truth line and a vector row.
pub fn load_queries(queries: &Path, query_vectors: &Path, ground_truth: &Path) -> Result<QuerySet> {
    let qs: Vec<Query> = read_jsonl(queries)?;
    let vectors = read_vectors(query_vectors, qs.len(), DIMENSION)?;
    let truth: Vec<Truth> = read_jsonl(ground_truth)?;
    let truth: BTreeMap<String, Truth> =
        truth.into_iter().map(|t| (t.query_id.clone(), t)).collect();
    for (i, q) in qs.iter().enumerate() {
        q.context_type
            .parse::<ContextType>()
            .with_context(|| format!("{}:{}: invalid query", queries.display(), i + 1))?;
        if !truth.contains_key(&q.id) {
            bail!(
                "{}:{}: query '{}' has no line in {}",
                queries.display(),
                i + 1,
                q.id,
                ground_truth.display()
            );
        }
    }
    Ok(QuerySet {
        queries: qs,
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
}
