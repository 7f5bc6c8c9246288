//! The `ocstore` binary as a user runs it: bad input gives a clear error naming the file and
//! line and a non-zero exit; a small corpus goes through `demo`, `stats`, `search` and `eval`.

use std::fs;
use std::io::Write;
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

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/context-corpus")
}

/// A corpus of the first `n` contexts and the first `q` queries of the bundled one.
fn small_corpus(dir: &Path, n: usize, q: usize) {
    fs::create_dir_all(dir).unwrap();
    let src = corpus_dir();
    let lines = |name: &str, k: usize| -> String {
        let text = fs::read_to_string(src.join(name)).unwrap();
        text.lines().take(k).map(|l| format!("{l}\n")).collect()
    };
    let bytes = |name: &str, k: usize| -> Vec<u8> {
        fs::read(src.join(name)).unwrap()[..k * DIM * 4].to_vec()
    };
    fs::write(dir.join("contexts.jsonl"), lines("contexts.jsonl", n)).unwrap();
    fs::write(dir.join("vectors.f32"), bytes("vectors.f32", n)).unwrap();
    fs::write(dir.join("queries.jsonl"), lines("queries.jsonl", q)).unwrap();
    fs::write(dir.join("query_vectors.f32"), bytes("query_vectors.f32", q)).unwrap();
    fs::write(
        dir.join("ground_truth.jsonl"),
        lines("ground_truth.jsonl", q),
    )
    .unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn demo_stats_search_and_eval_on_a_small_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("corpus");
    small_corpus(&data, 60, 3);
    let store = tmp.path().join("store");
    let out = ocstore(
        &[
            "demo",
            "--dir",
            store.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("recall@10="), "{last}");
    assert!(
        last.contains(" queries=3 contexts=60 ingest_per_s="),
        "{last}"
    );
    assert!(
        last.contains(" search_p50_ms=") && last.contains(" search_p99_ms="),
        "{last}"
    );
    assert!(text.contains("ingested 60/60"), "{text}");

    let config = store.join("ocstore.yaml");
    let cfg = config.to_str().unwrap();
    let out = ocstore(&["stats", "--config", cfg], tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("total      60"), "{}", stdout(&out));

    let first_id: String = {
        let line = fs::read_to_string(data.join("contexts.jsonl")).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        v["id"].as_str().unwrap().to_owned()
    };
    let out = ocstore(
        &[
            "search", "--config", cfg, "--like", &first_id, "--top-k", "2",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1. [1.000]"),
        "a context is its own nearest neighbour: {}",
        stdout(&out)
    );

    let q = |f: &str| data.join(f).to_str().unwrap().to_owned();
    let out = ocstore(
        &[
            "eval",
            "--config",
            cfg,
            "--queries",
            &q("queries.jsonl"),
            "--query-vectors",
            &q("query_vectors.f32"),
            "--ground-truth",
            &q("ground_truth.jsonl"),
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let last = stdout(&out).lines().last().unwrap().to_owned();
    assert!(
        last.contains("queries=3 contexts=60 ingest_per_s=n/a"),
        "{last}"
    );

    // A rerun over the same store repairs nothing and duplicates nothing.
    let out = ocstore(
        &[
            "demo",
            "--dir",
            store.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .lines()
            .last()
            .unwrap()
            .contains("contexts=60 ")
    );
}

#[test]
fn bad_input_names_the_file_and_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("corpus");
    small_corpus(&data, 5, 1);
    let store = tmp.path().join("store");
    let run_demo = || {
        ocstore(
            &[
                "demo",
                "--dir",
                store.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
            ],
            tmp.path(),
        )
    };

    // A malformed third line.
    let good = fs::read_to_string(data.join("contexts.jsonl")).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines[2] = "{\"id\": \"broken\"";
    fs::write(data.join("contexts.jsonl"), lines.join("\n") + "\n").unwrap();
    let out = run_demo();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("contexts.jsonl:3"), "{err}");
    assert!(
        !store.exists(),
        "nothing is written before the input is validated"
    );

    // Vectors of the wrong dimension.
    fs::write(data.join("contexts.jsonl"), &good).unwrap();
    fs::write(data.join("vectors.f32"), vec![0u8; 5 * 100 * 4]).unwrap();
    let out = run_demo();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("vectors.f32") && err.contains("wrong dimension"),
        "{err}"
    );

    // A missing file.
    let out = ocstore(
        &[
            "demo",
            "--data",
            tmp.path().join("nowhere").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));

    // A missing config file.
    let out = ocstore(&["stats", "--config", "missing.yaml"], tmp.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("missing.yaml"), "{}", stderr(&out));

    // A config naming an unknown backend.
    let mut f = fs::File::create(tmp.path().join("bad.yaml")).unwrap();
    writeln!(
        f,
        "storage:\n  backends:\n    - {{storage_type: vector_db, backend: nosuch}}"
    )
    .unwrap();
    let out = ocstore(&["stats", "--config", "bad.yaml"], tmp.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nosuch"), "{}", stderr(&out));
}

/// `demo --config` runs the demo against the backends a configuration file names (here the
/// embedded ones at explicit paths); a missing file is a clear error.
#[test]
fn demo_runs_against_a_given_config() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("corpus");
    small_corpus(&data, 40, 2);
    let config = tmp.path().join("custom.yaml");
    fs::write(
        &config,
        format!(
            "storage:\n  backends:\n    - name: v\n      storage_type: vector_db\n      backend: qdrant\n      config:\n        path: {0}/q\n        vector_size: 384\n    - name: d\n      storage_type: document_db\n      backend: sqlite\n      config:\n        path: {0}/app.db\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let out = ocstore(
        &[
            "demo",
            "--config",
            config.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("vector backend: qdrant, document backend: sqlite"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("queries=2 contexts=40 "),
        "{text}"
    );
    assert!(tmp.path().join("app.db").exists());
    assert!(
        !tmp.path().join("ocstore-data").exists(),
        "the embedded default store is not created"
    );

    let out = ocstore(&["demo", "--config", "nope.yaml"], tmp.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope.yaml"), "{}", stderr(&out));
}
