//! Adversarial tests (review) against a real Chroma server (see `common`): odd ids, hostile
//! `where` values and keys, bad vectors and batches, payloads at and over the limit, huge
//! batches and `top_k`, concurrent upserts of one id, scrolling while deleting, a killed
//! server in the middle of a scroll, a server that never answers, and the documented YAML
//! configuration. Bad input must fail with a clear `InvalidInput` naming the field and bound,
//! and must never lose or corrupt stored data.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ChromaProcess;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use storage_chroma::{ChromaBackend, ChromaConfig};
use storage_core::testkit::vector::cases::{context, unit_vector};
use storage_core::validate::{MAX_ID_LEN, MAX_PAYLOAD_BYTES};
use storage_core::{
    ContextType, ErrorKind, Filter, ProcessedContext, Scope, ScrollQuery, SearchQuery,
    StorageBackend, StorageType, VectorStorageBackend,
};

const DIM: usize = 8;

fn ctx(id: &str, seed: u64) -> ProcessedContext {
    context(id, ContextType::Knowledge, seed)
}

/// Chroma may return a component one f32 ulp away from what was written.
fn assert_close(got: &Option<Vec<f32>>, want: &[f32]) {
    let got = got.as_ref().expect("vector");
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-6, "{got:?} vs {want:?}");
    }
}

fn assert_invalid<T: std::fmt::Debug>(r: storage_core::Result<T>, needles: &[&str]) {
    let e = r.expect_err("expected InvalidInput");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} should name {n:?}");
    }
}

async fn open(tag: &str) -> Option<(ChromaBackend, common::Cleanup)> {
    let url = common::shared_url().await?;
    let (config, cleanup) = common::config(&url, DIM, tag);
    Some((ChromaBackend::open(config).await.expect("open"), cleanup))
}

async fn count(b: &ChromaBackend) -> u64 {
    b.get_processed_context_count(ContextType::Knowledge)
        .await
        .unwrap()
}

/// Ids Chroma has no trouble with (Unicode, spaces, slashes, URL and JSON specials, the
/// longest accepted length) round-trip through upsert, get, get_by_ids, search, scroll and
/// delete; longer ids and ids with control characters are refused before any write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_ids_round_trip_or_are_refused() {
    let Some((b, _cleanup)) = open("advid").await else {
        return;
    };
    let good: Vec<String> = vec![
        "中文 🦀 ünïcödé".into(),
        "has space".into(),
        "a/b/../c".into(),
        "/".into(),
        "?x=1&y=2#frag".into(),
        "%2F%00".into(),
        "\"quoted\" 'single' \\back".into(),
        "$eq".into(),
        "{\"$ne\": 1}".into(),
        " ".into(),
        "x".repeat(MAX_ID_LEN),
        "é".repeat(MAX_ID_LEN / 2),
    ];
    let batch: Vec<_> = good
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut c = ctx(id, i as u64 + 1);
            c.id = id.clone();
            c
        })
        .collect();
    b.batch_upsert_processed_context(&batch).await.unwrap();
    for (i, id) in good.iter().enumerate() {
        let got = b
            .get_processed_context(id, ContextType::Knowledge, true)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id:?} not found"));
        assert_eq!(&got.id, id);
        assert_close(&got.vectorize.vector, &unit_vector(i as u64 + 1, DIM));
        let hit = b
            .search(
                &SearchQuery::new(unit_vector(i as u64 + 1, DIM))
                    .top_k(1)
                    .context_types([ContextType::Knowledge]),
            )
            .await
            .unwrap();
        assert_eq!(&hit[0].context.id, id);
    }
    let by_ids: BTreeSet<String> = b
        .get_by_ids(&good, None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(by_ids, good.iter().cloned().collect());
    let scrolled: BTreeSet<String> = b
        .scroll_processed_contexts(ScrollQuery {
            batch_size: 5,
            ..ScrollQuery::default()
        })
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(scrolled, good.iter().cloned().collect());

    let too_long = "x".repeat(MAX_ID_LEN + 1);
    for bad in ["", too_long.as_str(), "a\0b", "a\nb", "\u{7f}"] {
        let mut c = ctx("y", 99);
        c.id = bad.to_owned();
        let r = b
            .batch_upsert_processed_context(&[ctx("fresh", 98), c])
            .await;
        assert_invalid(r, &["contexts[1].id"]);
        assert_invalid(
            b.get_processed_context(bad, ContextType::Knowledge, false)
                .await,
            &["id"],
        );
        assert_invalid(
            b.delete_contexts(&[good[0].clone(), bad.to_owned()], ContextType::Knowledge)
                .await,
            &["id"],
        );
        assert_invalid(b.get_by_ids(&[bad.to_owned()], None).await, &["id"]);
    }
    assert_eq!(
        count(&b).await,
        good.len() as u64,
        "nothing written or deleted"
    );
    // Deleting one odd id deletes exactly it.
    assert_eq!(
        b.delete_contexts(&["/".into()], ContextType::Knowledge)
            .await
            .unwrap(),
        1
    );
    assert_eq!(count(&b).await, good.len() as u64 - 1);
}

/// `where` values that look like operators, JSON or injections are compared literally:
/// each selects exactly its own record, in search, scroll and delete_by_source_file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_looking_values_are_literal() {
    let Some((b, _cleanup)) = open("advwhere").await else {
        return;
    };
    let values = [
        "$ne",
        "$and",
        "{\"$ne\": \"x\"}",
        "[\"a\", \"b\"]",
        "' OR 1=1 --",
        "a\0b",
        "\u{202e}rtl",
        "",
        "\\\"",
        "🦀",
    ];
    let mut batch: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut c = ctx(&format!("w{i}"), i as u64 + 1);
            c.properties.user_id = Some((*v).to_owned());
            c.properties.source_file_key = Some((*v).to_owned());
            c
        })
        .collect();
    let mut victim = ctx("victim", 50);
    victim.properties.user_id = Some("victim".into());
    victim.properties.source_file_key = Some("victim".into());
    batch.push(victim);
    b.batch_upsert_processed_context(&batch).await.unwrap();
    for (i, v) in values.iter().enumerate() {
        let want = vec![format!("w{i}")];
        let hits: Vec<String> = b
            .search(
                &SearchQuery::new(unit_vector(7, DIM))
                    .top_k(50)
                    .scope(Scope::user(*v)),
            )
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.context.id)
            .collect();
        assert_eq!(hits, want, "search user_id={v:?}");
        let scrolled: Vec<String> = b
            .scroll_processed_contexts(ScrollQuery {
                filter: Some(Filter::eq("user_id", *v)),
                batch_size: 3,
                ..ScrollQuery::default()
            })
            .map_ok(|c| c.id)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(scrolled, want, "scroll user_id={v:?}");
        let got = b
            .get_processed_context(&want[0], ContextType::Knowledge, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.properties.user_id.as_deref(), Some(*v), "round trip");
    }
    // Values in $in lists and mixed-type lists.
    let hits = b
        .search(
            &SearchQuery::new(unit_vector(7, DIM))
                .top_k(50)
                .filter(Filter::is_in("user_id", ["$ne", "$and"])),
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    // delete_by_source_file with an operator-looking key deletes only its record.
    let deleted = b.delete_by_source_file("$ne", None).await;
    match deleted {
        Ok(n) => assert_eq!(n, 1),
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}"),
    }
    assert!(count(&b).await >= values.len() as u64);
    assert!(
        b.get_processed_context("victim", ContextType::Knowledge, false)
            .await
            .unwrap()
            .is_some()
    );
}

/// Keys that are operators or not field names are refused with `InvalidInput` naming the key;
/// `id` and `document` filters are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_and_bogus_filter_keys() {
    let Some((b, _cleanup)) = open("advkeys").await else {
        return;
    };
    b.batch_upsert_processed_context(&[ctx("k1", 1), ctx("k2", 2)])
        .await
        .unwrap();
    for key in [
        "$and",
        "$or",
        "$where",
        "#document",
        "",
        "a b",
        "user_id\"",
        "chroma:document",
    ] {
        let e = b
            .search(&SearchQuery::new(unit_vector(1, DIM)).filter(Filter::eq(key, "x")))
            .await
            .expect_err(key);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{key:?}: {e}");
    }
    // A key that is a field name but no record has: matches nothing (eq) / everything (ne).
    let none = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).filter(Filter::eq("no_such_field", "x")))
        .await
        .unwrap();
    assert!(none.is_empty());
    let all = b
        .search(
            &SearchQuery::new(unit_vector(1, DIM))
                .top_k(10)
                .filter(Filter::ne("no_such_field", "x")),
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let by_id = b
        .search(
            &SearchQuery::new(unit_vector(1, DIM))
                .top_k(10)
                .filter(Filter::eq("id", "k2")),
        )
        .await
        .unwrap();
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0].context.id, "k2");
}

/// NaN/inf components, wrong dimensions, zero or missing vectors, duplicate ids, scores out of
/// range and bad metadata keys are refused before any write; stored data is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_vectors_and_batches_write_nothing() {
    let Some((b, _cleanup)) = open("advvec").await else {
        return;
    };
    b.upsert_processed_context(&ctx("keep", 1)).await.unwrap();
    type Breaker = Box<dyn Fn(&mut ProcessedContext)>;
    let cases: Vec<(Breaker, Vec<&str>)> = vec![
        (
            Box::new(|c| c.vectorize.vector.as_mut().unwrap()[2] = f32::NAN),
            vec!["[2]", "finite"],
        ),
        (
            Box::new(|c| c.vectorize.vector.as_mut().unwrap()[0] = f32::INFINITY),
            vec!["[0]"],
        ),
        (
            Box::new(|c| c.vectorize.vector = Some(vec![0.1; DIM * 2])),
            vec!["16", "8"],
        ),
        (
            Box::new(|c| c.vectorize.vector = Some(vec![])),
            vec!["0", "8"],
        ),
        (
            Box::new(|c| c.vectorize.vector = Some(vec![0.0; DIM])),
            vec!["zero"],
        ),
        (Box::new(|c| c.vectorize.vector = None), vec!["no vector"]),
        (
            Box::new(|c| c.extracted_data.confidence = 200),
            vec!["confidence", "10"],
        ),
        (
            Box::new(|c| {
                c.metadata.insert("$where".into(), json!(1));
            }),
            vec!["$where"],
        ),
        (
            Box::new(|c| {
                c.metadata.insert("user_id".into(), json!("spoof"));
            }),
            vec!["user_id"],
        ),
    ];
    for (break_it, needles) in &cases {
        let mut bad = ctx("keep", 77);
        bad.vectorize.text = Some("corrupted".into());
        break_it(&mut bad);
        assert_invalid(
            b.batch_upsert_processed_context(&[ctx("other", 3), bad])
                .await,
            needles,
        );
    }
    assert_invalid(
        b.batch_upsert_processed_context(&[ctx("d", 1), ctx("d", 2)])
            .await,
        &["'d'", "twice"],
    );
    for v in [vec![f32::NAN; DIM], vec![1.0; DIM + 1]] {
        assert_invalid(
            b.search(&SearchQuery::new(v.clone())).await,
            &["query vector"],
        );
    }
    let mut th = SearchQuery::new(unit_vector(1, DIM));
    th.score_threshold = Some(f32::NAN);
    assert_invalid(b.search(&th).await, &["score_threshold"]);
    assert_eq!(count(&b).await, 1);
    let kept = b
        .get_processed_context("keep", ContextType::Knowledge, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.vectorize.text.as_deref(), Some("text of keep"));
    assert_close(&kept.vectorize.vector, &unit_vector(1, DIM));
    assert_eq!(b.pending_records(), 0);
}

/// Metadata values Chroma cannot store as a scalar (an integer beyond i64) must be refused
/// before any request, even in a later chunk of a split batch; no chunk may be written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstorable_metadata_in_a_later_chunk_writes_nothing() {
    let Some(url) = common::shared_url().await else {
        return;
    };
    let (mut config, _cleanup) = common::config(&url, DIM, "advmeta");
    config.max_batch_size = Some(10);
    let b = ChromaBackend::open(config).await.expect("open");
    let mut batch: Vec<_> = (0..25).map(|i| ctx(&format!("m{i}"), i + 1)).collect();
    batch[22].metadata.insert("big".into(), json!(u64::MAX));
    let r = b.batch_upsert_processed_context(&batch).await;
    let e = r.expect_err("u64::MAX is not a Chroma integer");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("m22"), "names the context: {e}");
    assert!(e.to_string().contains("'big'"), "names the key: {e}");
    assert_eq!(count(&b).await, 0, "no chunk written: {e}");
    assert_eq!(b.pending_records(), 0);

    // The extremes Chroma does store exactly round-trip exactly.
    batch[22].metadata.insert("big".into(), json!(i64::MAX));
    batch[21].metadata.insert("small".into(), json!(i64::MIN));
    batch[20].metadata.insert("huge".into(), json!(1e300));
    batch[19].metadata.insert("tiny".into(), json!(-5e-324));
    batch[18].metadata.insert("empty".into(), json!(""));
    batch[17].metadata.insert("nul".into(), json!("a\u{0}b"));
    b.batch_upsert_processed_context(&batch).await.unwrap();
    assert_eq!(count(&b).await, 25);
    for want in &batch[17..=22] {
        let got = b
            .get_processed_context(&want.id, ContextType::Knowledge, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.metadata, want.metadata, "{}", want.id);
    }
}

/// A payload just under the limit (multi-byte text) is stored and read back exactly; one
/// over is refused naming the id and the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_at_and_over_the_limit() {
    let Some((b, _cleanup)) = open("advsize").await else {
        return;
    };
    let mut big = ctx("big", 1);
    let text: String = "é".repeat((MAX_PAYLOAD_BYTES - 4096) / 2);
    big.vectorize.text = Some(text.clone());
    b.upsert_processed_context(&big).await.unwrap();
    let got = b
        .get_processed_context("big", ContextType::Knowledge, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.vectorize.text, Some(text));

    let mut over = ctx("over", 2);
    over.extracted_data.summary = Some("x".repeat(MAX_PAYLOAD_BYTES));
    assert_invalid(
        b.batch_upsert_processed_context(&[ctx("small", 3), over])
            .await,
        &["'over'", &MAX_PAYLOAD_BYTES.to_string()],
    );
    assert_eq!(count(&b).await, 1);
}

/// A batch far above the server's `max_batch_size` is split, not failed; a `top_k` far above
/// the collection size answers what there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_batch_and_huge_top_k() {
    let Some((b, _cleanup)) = open("advhuge").await else {
        return;
    };
    let n = b.batch_size() * 2 + 17;
    let batch: Vec<_> = (0..n)
        .map(|i| ctx(&format!("h{i:05}"), i as u64 + 1))
        .collect();
    b.batch_upsert_processed_context(&batch).await.unwrap();
    assert_eq!(count(&b).await, n as u64);
    for top_k in [n + 1, 100_000] {
        let r = b
            .search(
                &SearchQuery::new(unit_vector(3, DIM))
                    .top_k(top_k)
                    .context_types([ContextType::Knowledge]),
            )
            .await;
        match r {
            Ok(hits) => assert_eq!(hits.len(), n, "top_k {top_k}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "top_k {top_k}: {e}");
                assert!(e.to_string().contains("top_k"), "{e}");
            }
        }
    }
}

/// Concurrent upserts of one id: exactly one record, and it is one whole version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_of_one_id() {
    let Some((b, _cleanup)) = open("advconc").await else {
        return;
    };
    let b = Arc::new(b);
    let tasks: Vec<_> = (0..16u64)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                let mut c = ctx("same", i + 1);
                c.vectorize.text = Some(format!("version {i}"));
                c.extracted_data.summary = Some(format!("summary {i}"));
                b.upsert_processed_context(&c).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(count(&b).await, 1);
    let got = b
        .get_processed_context("same", ContextType::Knowledge, true)
        .await
        .unwrap()
        .unwrap();
    let v: u64 = got.vectorize.text.as_deref().unwrap()["version ".len()..]
        .parse()
        .unwrap();
    assert_eq!(got.extracted_data.summary, Some(format!("summary {v}")));
    assert_close(&got.vectorize.vector, &unit_vector(v + 1, DIM));
}

/// Scrolling while another task deletes: no id twice, every yielded record whole, every
/// record never deleted yielded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_while_deleting() {
    let Some((b, _cleanup)) = open("advscroll").await else {
        return;
    };
    let all: Vec<_> = (0..200).map(|i| ctx(&format!("s{i:03}"), i + 1)).collect();
    b.batch_upsert_processed_context(&all).await.unwrap();
    let b = Arc::new(b);
    let deleted: Vec<String> = (0..200).step_by(2).map(|i| format!("s{i:03}")).collect();
    let mut stream = b.scroll_processed_contexts(ScrollQuery {
        batch_size: 7,
        ..ScrollQuery::default()
    });
    let mut seen = Vec::new();
    // Take the first page before the deletes start.
    seen.push(stream.next().await.unwrap().unwrap());
    let deleter = {
        let b = b.clone();
        let deleted = deleted.clone();
        tokio::spawn(async move {
            for chunk in deleted.chunks(9) {
                b.delete_contexts(chunk, ContextType::Knowledge)
                    .await
                    .unwrap();
            }
        })
    };
    while let Some(c) = stream.next().await {
        seen.push(c.unwrap());
    }
    drop(stream);
    deleter.await.unwrap();
    let mut ids = HashSet::new();
    for c in &seen {
        assert!(ids.insert(c.id.clone()), "{} twice", c.id);
        assert_eq!(
            c.vectorize.text.as_deref(),
            Some(format!("text of {}", c.id).as_str())
        );
    }
    let deleted: HashSet<_> = deleted.into_iter().collect();
    for c in &all {
        if !deleted.contains(&c.id) {
            assert!(ids.contains(&c.id), "{} missing", c.id);
        }
    }
    assert_eq!(count(&b).await, 100);
}

/// A server killed in the middle of a scroll: the stream yields an error, it does not end
/// quietly as if the collection were exhausted; deletes fail with `Unavailable`; after a
/// restart every record is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_scroll_and_delete() {
    if !common::chroma_installed() {
        common::skip("the `chroma` command is not installed; this test kills its own server");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = ChromaProcess::start(dir.path(), None).await;
    // The server is this test's own, in a temp directory: no cleanup guard.
    let (mut config, _) = common::config(&server.url, DIM, "advkill");
    config.max_retries = 1;
    config.timeout_secs = 3.0;
    config.connect_timeout_secs = 1.0;
    config.close_timeout_secs = 2.0;
    let b = ChromaBackend::open(config.clone()).await.expect("open");
    let all: Vec<_> = (0..40).map(|i| ctx(&format!("k{i:02}"), i + 1)).collect();
    b.batch_upsert_processed_context(&all).await.unwrap();

    let mut stream = b.scroll_processed_contexts(ScrollQuery {
        batch_size: 10,
        ..ScrollQuery::default()
    });
    let mut got = 0;
    for _ in 0..10 {
        stream.next().await.unwrap().unwrap();
        got += 1;
    }
    server.kill().await;
    let mut error = None;
    while let Some(r) = stream.next().await {
        match r {
            Ok(_) => got += 1,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    drop(stream);
    let e = error.unwrap_or_else(|| panic!("scroll ended quietly after {got} of 40"));
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    let e = b
        .delete_contexts(&["k00".into()], ContextType::Knowledge)
        .await
        .expect_err("server down");
    assert!(e.is_retryable(), "{e}");

    let _server = ChromaProcess::start(dir.path(), Some(server.port)).await;
    let b2 = ChromaBackend::open(config).await.expect("reopen");
    assert_eq!(
        b2.get_processed_context_count(ContextType::Knowledge)
            .await
            .unwrap(),
        40
    );
    b2.close().await.unwrap();
    b.close().await.unwrap();
}

/// A server that accepts connections but never answers: `open` fails with `Timeout` within
/// about `(max_retries + 1) * timeout_secs` plus backoff, naming the operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = ChromaConfig::new(format!("http://127.0.0.1:{port}"), DIM);
    config.timeout_secs = 0.3;
    config.max_retries = 1;
    config.retry_backoff_ms = 10;
    let start = Instant::now();
    let e = ChromaBackend::open(config)
        .await
        .expect_err("never answers");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    drop(listener);
}

/// The documented YAML (`examples/ocstore-chroma.yaml`) parses and opens the backend as the
/// umbrella's factory does; bad values give `Config` errors naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_yaml_config_works_and_bad_values_are_clear() {
    let Some(url) = common::shared_url().await else {
        return;
    };
    let port = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ocstore-chroma.yaml"
    ))
    .unwrap();
    let prefix = common::unique_prefix("advyaml");
    let env = |k: &str| match k {
        "CHROMA_PORT" => Some(port.clone()),
        "CHROMA_HOST" => Some("127.0.0.1".into()),
        "CHROMA_PREFIX" => Some(prefix.clone()),
        "CHROMA_DATABASE" => Some("opencontext_test".into()),
        _ => None,
    };
    let app = storage_core::config::parse_config(&yaml, env).expect("example parses");
    let entry = app
        .storage
        .backends
        .iter()
        .find(|b| b.storage_type == StorageType::VectorDb)
        .unwrap();
    assert_eq!(entry.backend, "chromadb");
    let config: ChromaConfig = entry.parse().expect("chroma config");
    let _cleanup = common::Cleanup::collections(&config);
    assert_eq!(config.vector_size, 384);
    let b = ChromaBackend::open(config.clone())
        .await
        .expect("open from the example");
    b.health_check().await.unwrap();
    b.close().await.unwrap();

    for (key, value) in [
        ("vector_size", json!("many")),
        ("port", json!(70000)),
        ("timeout_secs", json!(-1)),
        ("mode", json!("local")),
        ("tenant", json!("a/b")),
    ] {
        let mut entry = entry.clone();
        entry.config.insert(key.into(), value.clone());
        let r: storage_core::Result<ChromaConfig> = entry.parse();
        let e = match r {
            Err(e) => e,
            Ok(c) => ChromaBackend::open(c).await.expect_err(key),
        };
        assert_eq!(e.kind(), ErrorKind::Config, "{key}={value}: {e}");
        assert!(e.to_string().contains(key), "{key}={value}: {e}");
    }
}

/// Todo embeddings: bad vectors and unstorable metadata are refused before any write; the
/// todo stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_todo_input_is_refused() {
    let Some(url) = common::shared_url().await else {
        return;
    };
    let (config, _cleanup) = common::config(&url, DIM, "advtodo");
    let config = config.with_todo_embeddings(true);
    let b = ChromaBackend::open(config).await.expect("open");
    let v = unit_vector(1, DIM);
    b.upsert_todo_embedding(1, "first", &v, None).await.unwrap();
    let mut meta = storage_core::model::JsonMap::new();
    meta.insert("n".into(), json!(u64::MAX));
    assert_invalid(
        b.upsert_todo_embedding(1, "second", &v, Some(&meta)).await,
        &["todo", "'n'"],
    );
    assert_invalid(
        b.upsert_todo_embedding(1, "third", &[f32::NAN; DIM], None)
            .await,
        &["todo embedding"],
    );
    let mut meta = storage_core::model::JsonMap::new();
    meta.insert("content".into(), json!("spoof"));
    assert_invalid(
        b.upsert_todo_embedding(1, "fourth", &v, Some(&meta)).await,
        &["content"],
    );
    assert_invalid(
        b.upsert_todo_embedding(1, &"x".repeat(MAX_PAYLOAD_BYTES + 1), &v, None)
            .await,
        &["todo 1", &MAX_PAYLOAD_BYTES.to_string()],
    );
    // A NaN threshold is not "no threshold".
    assert_invalid(
        b.search_similar_todos(&v, 5, f32::NAN).await,
        &["similarity_threshold"],
    );
    let hits = b.search_similar_todos(&v, 5, 0.5).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].content, "first");
}

/// Tenant, database and prefix values that pass a character check but are not valid Chroma
/// names (or are URL path segments like `..`, which would address another path) are
/// `Config` errors naming the key, never requests to another endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_like_names_are_config_errors() {
    let Some(url) = common::shared_url().await else {
        return;
    };
    type Set = fn(&mut ChromaConfig);
    let cases: [(&str, Set); 5] = [
        ("database", |c| c.database = "..".into()),
        ("database", |c| c.database = ".".into()),
        ("tenant", |c| c.tenant = "..".into()),
        ("tenant", |c| c.tenant = ".".into()),
        ("collection_prefix", |c| c.collection_prefix = "a..b".into()),
    ];
    for (key, set) in cases {
        let (mut c, _cleanup) = common::config(&url, DIM, "advpath");
        set(&mut c);
        let shown = format!("{}/{}/{}", c.tenant, c.database, c.collection_prefix);
        let e = ChromaBackend::open(c).await.expect_err(&shown);
        assert_eq!(e.kind(), ErrorKind::Config, "{shown}: {e}");
        assert!(e.to_string().contains(key), "{shown}: {e}");
    }
}

/// Extreme `limit`, `offset` and `top_k` values: either a correct answer or an
/// `InvalidInput` naming the parameter, never a server error or a wrong page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_limits_offsets_and_top_k() {
    let Some((b, _cleanup)) = open("advlim").await else {
        return;
    };
    let batch: Vec<_> = (0..5).map(|i| ctx(&format!("l{i}"), i + 1)).collect();
    b.batch_upsert_processed_context(&batch).await.unwrap();
    let cases = [
        (usize::MAX, 0, 5),
        (10, usize::MAX, 0),
        (u32::MAX as usize + 1, 2, 3),
    ];
    for (limit, offset, want) in cases {
        let q = storage_core::ListQuery {
            context_types: Some(vec![ContextType::Knowledge]),
            limit,
            offset,
            ..storage_core::ListQuery::default()
        };
        match b.get_all_processed_contexts(&q).await {
            Ok(m) => assert_eq!(
                m.get(&ContextType::Knowledge).map_or(0, Vec::len),
                want,
                "limit {limit} offset {offset}"
            ),
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    ErrorKind::InvalidInput,
                    "limit {limit} offset {offset}: {e}"
                );
                let m = e.to_string();
                assert!(m.contains("limit") || m.contains("offset"), "{m}");
            }
        }
    }
    for top_k in [usize::MAX, u32::MAX as usize + 1] {
        match b
            .search(
                &SearchQuery::new(unit_vector(1, DIM))
                    .top_k(top_k)
                    .context_types([ContextType::Knowledge]),
            )
            .await
        {
            Ok(hits) => assert_eq!(hits.len(), 5),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "top_k {top_k}: {e}");
                assert!(e.to_string().contains("top_k"), "{e}");
            }
        }
    }
}

/// Edge values that pass validation must be stored by Chroma and read back exactly (a
/// server refusal here would fail a later chunk of a split batch after earlier ones were
/// written): an empty text, the longest field-name metadata key, dotted and underscored
/// keys, booleans, floats, empty strings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_values_round_trip() {
    let Some(url) = common::shared_url().await else {
        return;
    };
    let (mut config, _cleanup) = common::config(&url, DIM, "advedge");
    config.max_batch_size = Some(2);
    let b = ChromaBackend::open(config).await.expect("open");
    let long_key = format!(
        "k{}",
        "x".repeat(storage_core::filter::MAX_FIELD_NAME_LEN - 1)
    );
    let mut cs: Vec<_> = (0..6).map(|i| ctx(&format!("e{i}"), i + 1)).collect();
    cs[0].vectorize.text = Some(String::new());
    cs[1].metadata.insert(long_key.clone(), json!("long key"));
    cs[2].metadata.insert("a.b.c".into(), json!(true));
    cs[3].metadata.insert("_x".into(), json!(-0.0));
    cs[4].metadata.insert("empty".into(), json!(""));
    cs[5].metadata.insert("f".into(), json!(0.1));
    b.batch_upsert_processed_context(&cs).await.unwrap();
    for want in &cs {
        let got = b
            .get_processed_context(&want.id, ContextType::Knowledge, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.metadata, want.metadata, "{}", want.id);
        assert_eq!(got.vectorize.text, want.vectorize.text, "{}", want.id);
    }
    let hits = b
        .search(
            &SearchQuery::new(unit_vector(1, DIM))
                .top_k(10)
                .filter(Filter::eq(long_key.as_str(), "long key")),
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}

/// Credentials in the URL's userinfo (`http://user:password@host`) are secrets: never in
/// `Debug` output nor in error messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_credentials_are_not_printed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = ChromaConfig::new(format!("http://admin:hunter2secret@127.0.0.1:{port}"), DIM);
    config.max_retries = 0;
    config.connect_timeout_secs = 0.5;
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2secret"), "{debug}");
    let e = ChromaBackend::open(config)
        .await
        .expect_err("nothing listens");
    let shown = format!("{e} / {e:?}");
    assert!(!shown.contains("hunter2secret"), "{shown}");
}

/// The server is killed while a large split batch is being written: the call fails with
/// `Unavailable` and keeps the unsent chunks; after a restart `close()` flushes them and
/// every context of the batch is stored whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_in_the_middle_of_a_split_batch() {
    if !common::chroma_installed() {
        common::skip("the `chroma` command is not installed; this test kills its own server");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = ChromaProcess::start(dir.path(), None).await;
    // The server is this test's own, in a temp directory: no cleanup guard.
    let (mut config, _) = common::config(&server.url, DIM, "advmid");
    config.max_batch_size = Some(20);
    config.max_retries = 1;
    config.timeout_secs = 5.0;
    config.connect_timeout_secs = 1.0;
    config.close_timeout_secs = 60.0;
    let b = Arc::new(ChromaBackend::open(config.clone()).await.expect("open"));
    let batch: Vec<_> = (0..2000).map(|i| ctx(&format!("b{i:04}"), i + 1)).collect();
    let writer = {
        let b = b.clone();
        let batch = batch.clone();
        tokio::spawn(async move { b.batch_upsert_processed_context(&batch).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.kill().await;
    let r = writer.await.unwrap();
    let pending = b.pending_records();
    match r {
        Ok(_) => eprintln!("the batch finished before the kill; nothing to check mid-batch"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
            assert!(e.is_retryable());
            assert!(pending > 0 && pending <= 2000, "pending {pending}");
            assert!(e.to_string().contains("kept pending"), "{e}");
        }
    }
    let _server = ChromaProcess::start(dir.path(), Some(server.port)).await;
    b.close().await.expect("close flushes");
    assert_eq!(b.pending_records(), 0);
    let reader = ChromaBackend::open(config).await.expect("reopen");
    assert_eq!(
        reader
            .get_processed_context_count(ContextType::Knowledge)
            .await
            .unwrap(),
        2000
    );
    let ids: Vec<String> = batch.iter().map(|c| c.id.clone()).collect();
    let got = reader.get_by_ids(&ids, None).await.unwrap();
    assert_eq!(got.len(), 2000);
    for (g, w) in got.iter().zip(&batch) {
        assert_eq!(g.id, w.id);
        assert_eq!(g.vectorize.text, w.vectorize.text);
    }
    reader.close().await.unwrap();
}

/// Type confusion in filters (a number against a boolean or string field, a boolean against
/// a number, an integral float against an integer): Chroma's answer equals
/// `Filter::matches` on the stored payload, in search and scroll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_confused_filters_agree_with_the_reference() {
    let Some((b, _cleanup)) = open("advtype").await else {
        return;
    };
    let mut cs: Vec<_> = (0..4).map(|i| ctx(&format!("t{i}"), i + 1)).collect();
    cs[0].properties.is_processed = true;
    cs[0].extracted_data.importance = 1;
    cs[1].extracted_data.importance = 5;
    cs[1].metadata.insert("code".into(), json!("5"));
    cs[2].metadata.insert("code".into(), json!(5));
    cs[3].metadata.insert("code".into(), json!(5.0));
    cs[3].metadata.insert("a.b".into(), json!(true));
    b.batch_upsert_processed_context(&cs).await.unwrap();
    let filters = [
        Filter::eq("is_processed", 1),
        Filter::eq("is_processed", true),
        Filter::eq("importance", true),
        Filter::eq("importance", 1.0),
        Filter::eq("importance", "5"),
        Filter::eq("code", 5),
        Filter::eq("code", "5"),
        Filter::eq("code", 5.0),
        Filter::ne("code", 5),
        Filter::is_in(
            "code",
            [json!(5), json!("5")].map(|v| match v {
                serde_json::Value::String(s) => storage_core::Value::Str(s),
                other => storage_core::Value::Int(other.as_i64().unwrap()),
            }),
        ),
        Filter::eq("a.b", true),
        Filter::gt("code", 4.5),
    ];
    for f in filters {
        let want: BTreeSet<String> = cs
            .iter()
            .filter(|c| {
                let mut p = storage_core::payload::to_payload(c).unwrap();
                p.insert("document".into(), json!(c.vectorize.text));
                f.matches(&p)
            })
            .map(|c| c.id.clone())
            .collect();
        let hits: BTreeSet<String> = b
            .search(
                &SearchQuery::new(unit_vector(1, DIM))
                    .top_k(10)
                    .filter(f.clone()),
            )
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.context.id)
            .collect();
        assert_eq!(hits, want, "search {f:?}");
        let scrolled: BTreeSet<String> = b
            .scroll_processed_contexts(ScrollQuery {
                filter: Some(f.clone()),
                ..ScrollQuery::default()
            })
            .map_ok(|c| c.id)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(scrolled, want, "scroll {f:?}");
    }
}
