//! A directory written by qdrant-client's Python local mode (`QdrantClient(path=...)`, the
//! original's default Qdrant store) is refused with a `Config` error before anything is
//! written into it. The fixture `tests/fixtures/qdrant-client-local` was made by
//! `tests/fixtures/make_qdrant_client_local.py` with qdrant-client 1.20.0; the test reads only
//! the committed files.
#![cfg(feature = "local")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use storage_core::ErrorKind;
use storage_qdrant::{QdrantLocalBackend, QdrantLocalConfig};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qdrant-client-local")
}

/// Every file under `dir` (relative path) with its bytes; directories too (as `None`).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                todo.push(p);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        match bytes {
            None => std::fs::create_dir_all(to.join(rel)).unwrap(),
            Some(b) => {
                std::fs::create_dir_all(to.join(&rel).parent().unwrap()).unwrap();
                std::fs::write(to.join(rel), b).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_local_mode_store_is_refused_and_left_untouched() {
    let fixture = fixture();
    assert!(fixture.join("meta.json").is_file(), "fixture missing");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("persist/qdrant");
    copy_tree(&fixture, &dir);
    let before = tree(&dir);
    assert_eq!(before, tree(&fixture));

    for todo in [false, true] {
        let config = QdrantLocalConfig::new(&dir, 4).with_todo_embeddings(todo);
        let e = QdrantLocalBackend::open(config).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        let text = e.to_string();
        for needle in [
            "qdrant-client's Python local mode",
            "meta.json",
            "storage.sqlite",
            "collections: event, knowledge",
            "nothing was written",
            "migrate(QdrantClient(url=",
            "remote mode",
        ] {
            assert!(text.contains(needle), "{needle:?} not in: {text}");
        }
        assert!(text.contains(&dir.display().to_string()), "{text}");
        assert!(!e.is_retryable());
        // Byte-identical, and no file or folder appeared (no LOCK, no redo.log, no shard).
        assert_eq!(tree(&dir), before);
    }
}
