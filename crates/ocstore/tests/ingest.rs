//! `ocstore ingest` checks the whole input before the first write: any bad line (a rule of
//! the library's upsert validators, a duplicate id anywhere in the file, bad UTF-8, a vector
//! file that does not line up) gives an error naming the file and line, a non-zero exit, and
//! an empty store. Valid lines come from the bundled corpus; each test breaks one thing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DIM: usize = 384;

fn ocstore(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocstore"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run ocstore")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The bundled corpus, where `ocstore` looks for it by default (`default_corpus_dir`).
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/context-corpus")
}

/// A temporary directory with the embedded default backends (local Qdrant + SQLite) in a
/// configuration file, and the first `n` lines of the bundled corpus with their vector rows.
struct Fixture {
    dir: tempfile::TempDir,
    lines: Vec<String>,
    vectors: Vec<u8>,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = fs::read_to_string(corpus_dir().join("contexts.jsonl")).unwrap();
        let lines: Vec<String> = text.lines().take(n).map(str::to_owned).collect();
        assert_eq!(lines.len(), n, "the bundled corpus has at least {n} lines");
        let vectors = fs::read(corpus_dir().join("vectors.f32")).unwrap()[..n * DIM * 4].to_vec();
        fs::write(
            dir.path().join("store.yaml"),
            format!(
                "storage:\n  backends:\n    - name: v\n      storage_type: vector_db\n      backend: qdrant\n      config:\n        path: {0}/qdrant\n        vector_size: {DIM}\n    - name: d\n      storage_type: document_db\n      backend: sqlite\n      config:\n        path: {0}/app.db\n",
                dir.path().display()
            ),
        )
        .unwrap();
        Fixture {
            dir,
            lines,
            vectors,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Changes field `key` of 1-based line `line` to `value`.
    fn set(&mut self, line: usize, key: &str, value: serde_json::Value) {
        let mut v: serde_json::Value = serde_json::from_str(&self.lines[line - 1]).unwrap();
        v[key] = value;
        self.lines[line - 1] = serde_json::to_string(&v).unwrap();
    }

    fn id(&self, line: usize) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.lines[line - 1]).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// Sets component `i` of the vector row of 1-based line `line`.
    fn set_component(&mut self, line: usize, i: usize, x: f32) {
        let at = (line - 1) * DIM * 4 + i * 4;
        self.vectors[at..at + 4].copy_from_slice(&x.to_le_bytes());
    }

    /// Writes the lines (each ending in `\n`) and the vectors.
    fn write(&self) {
        let text: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        fs::write(self.path("contexts.jsonl"), text).unwrap();
        fs::write(self.path("vectors.f32"), &self.vectors).unwrap();
    }

    fn ingest(&self, extra: &[&str]) -> Output {
        let contexts = self.path("contexts.jsonl");
        let vectors = self.path("vectors.f32");
        let config = self.path("store.yaml");
        let mut args = vec![
            "ingest",
            "--config",
            config.to_str().unwrap(),
            "--contexts",
            contexts.to_str().unwrap(),
            "--vectors",
            vectors.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ocstore(&args, self.dir.path())
    }

    /// Contexts in the store, from `ocstore stats`.
    fn stored(&self) -> u64 {
        let config = self.path("store.yaml");
        let out = ocstore(
            &["stats", "--config", config.to_str().unwrap()],
            self.dir.path(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let total = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("total"))
            .unwrap_or_else(|| panic!("no total in {text}"));
        total.trim().parse().unwrap()
    }

    /// Runs ingest, expects a failure whose message contains every needle, and an empty store.
    fn refused(&self, extra: &[&str], needles: &[&str]) -> String {
        let out = self.ingest(extra);
        let err = stderr(&out);
        assert!(!out.status.success(), "ingest succeeded: {}", stdout(&out));
        assert_eq!(self.stored(), 0, "nothing is written: {err}");
        for n in needles {
            assert!(err.contains(n), "{n:?} not in: {err}");
        }
        err
    }
}

#[test]
fn importance_11_on_the_last_of_300_lines_writes_nothing() {
    let mut f = Fixture::new(300);
    f.set(300, "importance", 11.into());
    f.write();
    let err = f.refused(
        &[],
        &["contexts.jsonl:300: importance is 11, the range is 0 to 10"],
    );
    assert!(!err.contains("contexts["), "no batch index: {err}");

    // The same file with the line fixed goes in whole: the store works.
    f.set(300, "importance", 10.into());
    f.write();
    let out = f.ingest(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(f.stored(), 300);
}

#[test]
fn an_empty_id_names_the_line() {
    let mut f = Fixture::new(20);
    f.set(13, "id", "".into());
    f.write();
    let err = f.refused(
        &["--batch", "10"],
        &["contexts.jsonl:13: id must not be empty"],
    );
    assert!(!err.contains("contexts["), "no batch index: {err}");
}

#[test]
fn a_bad_time_bucket_names_the_line() {
    let mut f = Fixture::new(20);
    f.set(
        17,
        "time_bucket",
        serde_json::json!({"day": "last week", "week": "2024-W01", "month": "2024-01"}),
    );
    f.write();
    f.refused(
        &["--batch", "10"],
        &[
            "contexts.jsonl:17: time_bucket 'last week' is not a time bucket",
            "expected a day",
        ],
    );
}

#[test]
fn a_zero_vector_names_the_vector_file_row_and_line() {
    let mut f = Fixture::new(20);
    for i in 0..DIM {
        f.set_component(12, i, 0.0);
    }
    f.write();
    f.refused(
        &["--batch", "10"],
        &[
            "vectors.f32: row 12 (for ",
            "contexts.jsonl:12)",
            "zero vector",
        ],
    );
}

#[test]
fn a_nan_component_names_the_vector_file_row_and_line() {
    let mut f = Fixture::new(20);
    f.set_component(15, 7, f32::NAN);
    f.write();
    f.refused(
        &["--batch", "10"],
        &[
            "vectors.f32: row 15 (for ",
            "contexts.jsonl:15)",
            "vector[7] is NaN",
        ],
    );
}

#[test]
fn duplicate_ids_in_different_batches_are_refused_naming_both_lines() {
    let mut f = Fixture::new(30);
    let first = f.id(3);
    f.set(25, "id", first.clone().into());
    f.write();
    f.refused(
        &["--batch", "10"],
        &["contexts.jsonl:25: id '", &first, "already used on line 3"],
    );
}

#[test]
fn a_utf8_byte_order_mark_is_accepted() {
    let f = Fixture::new(5);
    f.write();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(fs::read(f.path("contexts.jsonl")).unwrap());
    fs::write(f.path("contexts.jsonl"), bytes).unwrap();
    let out = f.ingest(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(f.stored(), 5);
}

#[test]
fn blank_lines_are_skipped_and_crlf_accepted() {
    let f = Fixture::new(5);
    let mut text = String::new();
    for (i, l) in f.lines.iter().enumerate() {
        text.push_str(l);
        text.push_str("\r\n");
        if i == 1 {
            text.push_str("\n   \n");
        }
    }
    text.push('\n');
    fs::write(f.path("contexts.jsonl"), text).unwrap();
    fs::write(f.path("vectors.f32"), &f.vectors).unwrap();
    let out = f.ingest(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(f.stored(), 5);
}

#[test]
fn invalid_utf8_names_the_line() {
    let f = Fixture::new(6);
    let mut bytes = Vec::new();
    for (i, l) in f.lines.iter().enumerate() {
        if i == 3 {
            // A Latin-1 "é" inside the title.
            let (head, tail) = l.split_at(l.find("\"title\": \"").unwrap() + 10);
            bytes.extend_from_slice(head.as_bytes());
            bytes.push(0xE9);
            bytes.extend_from_slice(tail.as_bytes());
        } else {
            bytes.extend_from_slice(l.as_bytes());
        }
        bytes.push(b'\n');
    }
    fs::write(f.path("contexts.jsonl"), bytes).unwrap();
    fs::write(f.path("vectors.f32"), &f.vectors).unwrap();
    f.refused(&[], &["contexts.jsonl:4: not valid UTF-8"]);
}

#[test]
fn a_short_vector_file_names_the_line_without_a_row() {
    let mut f = Fixture::new(5);
    f.vectors.truncate(4 * DIM * 4);
    f.write();
    f.refused(
        &[],
        &["vectors.f32: holds 4 rows", "contexts.jsonl:5 has no row"],
    );

    // Half a row short: not a whole number of rows.
    let mut f = Fixture::new(5);
    f.vectors.truncate(4 * DIM * 4 + DIM * 2);
    f.write();
    f.refused(
        &[],
        &[
            "vectors.f32: ",
            "row 5 (for ",
            "contexts.jsonl:5) has only 768 bytes",
            "wrong dimension",
        ],
    );

    // A row too many.
    let mut f = Fixture::new(5);
    f.vectors.extend_from_slice(&[0; DIM * 4]);
    f.write();
    f.refused(&[], &["vectors.f32: holds 6 rows", "has 5 contexts"]);
}
