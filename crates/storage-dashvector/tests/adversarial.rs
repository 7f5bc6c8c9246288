//! Adversarial tests (review): bad input, hostile filter values and keys, odd ids, oversized
//! payloads, faults in the middle of split batches, timeouts, concurrent writes of one id and
//! scrolling while deleting. Each bad input must fail with a clear `InvalidInput` (or
//! `Config`) naming the field and bound, before any request, and must never lose or corrupt
//! stored data.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::fake::{FakeDashVector, Fault};
use common::filter_lang::{Lit, comparisons};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use storage_core::testkit::vector::cases::{context, unit_vector};
use storage_core::validate::MAX_PAYLOAD_BYTES;
use storage_core::{
    ContextType, ErrorKind, Filter, ProcessedContext, Scope, ScrollQuery, SearchQuery,
    VectorStorageBackend,
};
use storage_dashvector::{DashVectorBackend, DashVectorConfig, FieldKind};

const DIM: usize = 8;
const KN: &str = "knowledge";

fn ctx(id: &str, seed: u64) -> ProcessedContext {
    context(id, ContextType::Knowledge, seed)
}

fn assert_invalid(r: storage_core::Result<impl std::fmt::Debug>, needles: &[&str]) {
    let e = r.expect_err("expected InvalidInput");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} should name {n:?}");
    }
}

async fn open_with(
    f: impl FnOnce(DashVectorConfig) -> DashVectorConfig,
) -> (FakeDashVector, DashVectorBackend) {
    let fake = FakeDashVector::start(common::TOKEN).await;
    let b = DashVectorBackend::open(f(common::config(&fake, DIM)))
        .await
        .expect("open");
    (fake, b)
}

/// A metadata value whose type differs from the declared `extra_fields` type is refused
/// before any request, even when it sits in a later chunk of a split batch: no chunk of the
/// batch may be written (the server would refuse that doc with -2017 after earlier chunks
/// were stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistyped_declared_metadata_is_refused_before_any_chunk_is_written() {
    let (fake, b) = open_with(|mut c| {
        c.batch_size = 10;
        c.with_extra_field("rank", FieldKind::Int)
    })
    .await;
    for (field, bad) in [
        ("project", json!(5)),
        ("project", json!(true)),
        ("rank", json!("7")),
        ("rank", json!(1.5)),
        ("rank", json!(1i64 << 40)),
    ] {
        let mut batch: Vec<_> = (0..25).map(|i| ctx(&format!("m{i}"), i)).collect();
        batch[22].metadata.insert(field.into(), bad.clone());
        let before = fake.requests();
        let r = b.batch_upsert_processed_context(&batch).await;
        assert_invalid(r, &[field, "m22"]);
        assert_eq!(fake.requests(), before, "{field}={bad}: no request");
        assert_eq!(fake.doc_count(KN), 0, "{field}={bad}: nothing written");
    }
    // Well-typed values are stored and read back.
    let mut c = ctx("ok", 1);
    c.metadata.insert("project".into(), json!("p"));
    c.metadata.insert("rank".into(), json!(3));
    b.upsert_processed_context(&c).await.unwrap();
    let got = b
        .get_processed_context("ok", ContextType::Knowledge, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.metadata["project"], json!("p"));
    assert_eq!(got.metadata["rank"], json!(3));
}

/// `dv_scroll_key` is this backend's own field: a metadata entry of that name would be
/// overwritten by the scroll key and dropped on read. It must be refused, not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_named_like_the_scroll_key_is_refused_not_lost() {
    let (fake, b) = common::open(DIM, false).await;
    let mut c = ctx("sk", 1);
    c.metadata.insert("dv_scroll_key".into(), json!(7));
    let before = fake.requests();
    assert_invalid(
        b.upsert_processed_context(&c).await,
        &["dv_scroll_key", "sk"],
    );
    assert_eq!(fake.requests(), before);
}

/// Ids DashVector's primary-key rule refuses are `InvalidInput` before any request, on every
/// operation taking ids; ids with every allowed special character round-trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_ids_are_refused_before_any_request_or_round_trip() {
    let (fake, b) = common::open(DIM, false).await;
    let long = "a".repeat(65);
    for bad in [
        "",
        long.as_str(),
        "has space",
        "a/b",
        "a,b",
        "a?b",
        "a&ids=b",
        "ünï",
        "a\0b",
        "a\nb",
        "a'b",
        "../x",
    ] {
        let before = fake.requests();
        let mut ok = ctx("fine", 1);
        let mut c = ctx("x", 2);
        c.id = bad.to_owned();
        ok.vectorize.text = Some("must not be written".into());
        assert_invalid(
            b.batch_upsert_processed_context(&[ok, c]).await,
            &["contexts[1].id"],
        );
        assert_invalid(
            b.get_processed_context(bad, ContextType::Knowledge, false)
                .await,
            &["id"],
        );
        assert_invalid(
            b.delete_contexts(&["fine".into(), bad.to_owned()], ContextType::Knowledge)
                .await,
            &["ids[1]"],
        );
        assert_invalid(b.get_by_ids(&[bad.to_owned()], None).await, &["ids[0]"]);
        assert_eq!(fake.requests(), before, "id {bad:?}: no request");
    }
    assert_eq!(
        fake.doc_count(KN),
        0,
        "the valid context of a refused batch"
    );

    let good: Vec<String> = [
        "a".repeat(64),
        "A_!@#$%+=.-z".into(),
        "%2C".into(),
        "+".into(),
        "#frag".into(),
        "1".into(),
    ]
    .into_iter()
    .collect();
    let batch: Vec<_> = good
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut c = ctx(id, i as u64);
            c.id = id.clone();
            c
        })
        .collect();
    b.batch_upsert_processed_context(&batch).await.unwrap();
    for id in &good {
        let got = b
            .get_processed_context(id, ContextType::Knowledge, true)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id:?} not found"));
        assert_eq!(&got.id, id);
    }
    let got: BTreeSet<String> = b
        .get_by_ids(&good, None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(got, good.iter().cloned().collect());
    // Deleting "%2C" must not delete "," (there is none) nor anything else.
    assert_eq!(
        b.delete_contexts(&["%2C".into()], ContextType::Knowledge)
            .await
            .unwrap(),
        1
    );
    assert_eq!(fake.doc_count(KN), good.len() - 1);
}

/// Vectors with NaN/inf, the wrong dimension, the zero vector, a missing vector, duplicate
/// ids and out-of-range scores fail before any request and write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_vectors_and_batches_write_nothing() {
    let (fake, b) = common::open(DIM, true).await;
    b.upsert_processed_context(&ctx("keep", 1)).await.unwrap();
    let before = fake.requests();
    type Breaker = Box<dyn Fn(&mut ProcessedContext)>;
    let cases: Vec<(Breaker, &[&str])> = vec![
        (
            Box::new(|c| c.vectorize.vector.as_mut().unwrap()[3] = f32::NAN),
            &["[3]", "finite"],
        ),
        (
            Box::new(|c| c.vectorize.vector.as_mut().unwrap()[0] = f32::INFINITY),
            &["[0]", "finite"],
        ),
        (
            Box::new(|c| c.vectorize.vector.as_mut().unwrap()[7] = f32::NEG_INFINITY),
            &["[7]"],
        ),
        (
            Box::new(|c| c.vectorize.vector = Some(vec![0.5; DIM + 1])),
            &["9", "8"],
        ),
        (
            Box::new(|c| c.vectorize.vector = Some(vec![0.0; DIM])),
            &["zero"],
        ),
        (Box::new(|c| c.vectorize.vector = None), &["no vector"]),
        (
            Box::new(|c| c.extracted_data.importance = 11),
            &["importance", "10"],
        ),
        (
            Box::new(|c| c.properties.time_bucket = Some("2026-13-45' or 1=1".into())),
            &["time_bucket"],
        ),
    ];
    for (i, (break_it, needles)) in cases.iter().enumerate() {
        let mut bad = ctx("keep", 100 + i as u64);
        bad.vectorize.text = Some("corrupted".into());
        break_it(&mut bad);
        let ok = ctx(&format!("other{i}"), i as u64);
        assert_invalid(b.batch_upsert_processed_context(&[ok, bad]).await, needles);
    }
    assert_invalid(
        b.batch_upsert_processed_context(&[ctx("d", 1), ctx("e", 2), ctx("d", 3)])
            .await,
        &["'d'", "twice"],
    );
    // Search and todo vectors too.
    for v in [vec![f32::NAN; DIM], vec![1.0; DIM - 1], vec![]] {
        assert_invalid(
            b.search(&SearchQuery::new(v.clone())).await,
            &["query vector"],
        );
        assert_invalid(b.search_similar_todos(&v, 5, 0.5).await, &[]);
    }
    assert_invalid(
        b.search(&SearchQuery::new(unit_vector(1, DIM)).top_k(1025))
            .await,
        &["top_k", "1024"],
    );
    assert_invalid(
        b.upsert_todo_embedding(1, "x", &[f32::NAN; DIM], None)
            .await,
        &["todo embedding"],
    );
    assert_eq!(fake.requests(), before, "no request for bad input");
    let kept = b
        .get_processed_context("keep", ContextType::Knowledge, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.vectorize.text.as_deref(), Some("text of keep"));
    assert_eq!(kept.vectorize.vector, Some(unit_vector(1, DIM)));
    assert_eq!(fake.doc_count(KN), 1);
}

/// A payload just under 1 MiB is stored and read back byte for byte; one over is refused
/// with the size and the limit, before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_at_and_over_the_limit() {
    let (fake, b) = common::open(DIM, false).await;
    let mut big = ctx("big", 1);
    big.vectorize.text = Some(String::new());
    let base = {
        let mut c = big.clone();
        c.extracted_data.summary = None;
        serde_json::to_vec(&storage_core::payload::to_payload(&c).unwrap())
            .unwrap()
            .len()
    };
    // original_id + dv_scroll_key add a few dozen bytes: leave 200 bytes of room.
    let text: String = "é".repeat((MAX_PAYLOAD_BYTES - base - 200) / 2);
    big.extracted_data.summary = Some(text.clone());
    b.upsert_processed_context(&big).await.unwrap();
    let got = b
        .get_processed_context("big", ContextType::Knowledge, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.extracted_data.summary, Some(text));

    let mut over = ctx("over", 2);
    over.extracted_data.summary = Some("x".repeat(MAX_PAYLOAD_BYTES));
    let before = fake.requests();
    assert_invalid(
        b.batch_upsert_processed_context(&[ctx("small", 3), over])
            .await,
        &["'over'", &MAX_PAYLOAD_BYTES.to_string()],
    );
    assert_eq!(fake.requests(), before);
    assert_eq!(fake.doc_count(KN), 1);
}

/// Filter keys that are not declared fields, and keys that look like injections, are
/// `InvalidInput` naming the key, before any request, on search, scroll, list and delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_keys_that_are_not_fields() {
    let (fake, b) = common::open(DIM, false).await;
    let before = fake.requests();
    for key in [
        "nope",
        "user_id = 'a' or 1",
        "$where",
        "user_id--",
        "id",
        "vector",
        "",
        "dv_scroll_key2",
    ] {
        let f = Filter::eq(key, "x");
        let e = b
            .search(
                &SearchQuery::new(unit_vector(1, DIM))
                    .filter(f.clone())
                    .top_k(3),
            )
            .await
            .expect_err(key);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{key}: {e}");
        let scroll: Vec<_> = b
            .scroll_processed_contexts(ScrollQuery {
                filter: Some(f),
                batch_size: 5,
                ..ScrollQuery::default()
            })
            .collect()
            .await;
        assert!(
            scroll.len() == 1
                && scroll[0]
                    .as_ref()
                    .is_err_and(|e| e.kind() == ErrorKind::InvalidInput),
            "{key}: scroll {scroll:?}"
        );
    }
    assert_eq!(fake.requests(), before);
}

/// Hostile values not covered by `tests/backend.rs`: NUL, other control characters, quotes
/// of other kinds, a value that is only a backslash, SQL comments, very long values. Each
/// either round-trips as exactly one comparison with the exact value, or is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_hostile_filter_values() {
    let (fake, b) = common::open(DIM, false).await;
    let long = "'".repeat(10_000);
    let values: Vec<&str> = vec![
        "a\0' or 1=1 or user_id='",
        "\\",
        "\\\\'",
        "\"double\" or 1=1",
        "`tick`",
        "-- comment",
        "/* c */ or true",
        "\r\n\t",
        "\u{2028}\u{202e}reversed",
        "%s %d {0}",
        long.as_str(),
    ];
    let mut batch: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut c = ctx(&format!("v{i}"), i as u64);
            c.properties.user_id = Some((*v).to_owned());
            c
        })
        .collect();
    let mut victim = ctx("victim", 99);
    victim.properties.user_id = Some("victim".into());
    batch.push(victim);
    b.batch_upsert_processed_context(&batch).await.unwrap();
    for (i, v) in values.iter().enumerate() {
        fake.clear_log();
        let hits = b
            .search(
                &SearchQuery::new(unit_vector(1, DIM))
                    .top_k(50)
                    .scope(Scope::user(*v)),
            )
            .await
            .unwrap();
        let ids: Vec<String> = hits.into_iter().map(|h| h.context.id).collect();
        assert_eq!(ids, vec![format!("v{i}")], "value {v:?}");
        let log = fake.log();
        let q = log.iter().find(|l| l.path.ends_with("/query")).unwrap();
        assert_eq!(
            comparisons(q.parsed_filter.as_ref().expect("parses")),
            vec![("user_id".into(), "=".into(), Lit::Str((*v).into()))]
        );
        // delete_by_source_file with the hostile value as user deletes nothing else.
        assert_eq!(
            b.delete_by_source_file("nothing", Some(v)).await.unwrap(),
            0
        );
    }
    assert_eq!(fake.doc_count(KN), values.len() + 1);
}

/// A server failure on the second chunk of a split batch: the call fails with a retryable
/// error naming the operation; retrying the whole batch converges to exactly the batch, and
/// nothing stored before is corrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_in_the_middle_of_a_split_batch() {
    let (fake, b) = open_with(|mut c| {
        c.batch_size = 10;
        c.max_retries = 1;
        c
    })
    .await;
    let batch: Vec<_> = (0..35).map(|i| ctx(&format!("f{i:02}"), i)).collect();
    let b = Arc::new(b);
    let runner = {
        let b = b.clone();
        let batch = batch.clone();
        let fake = fake.clone();
        tokio::spawn(async move {
            // Let the first chunk through, then fail the next two requests.
            b.batch_upsert_processed_context(&batch[..10])
                .await
                .unwrap();
            fake.fail_next([Fault::Status(500), Fault::Status(503)]);
            b.batch_upsert_processed_context(&batch[10..]).await
        })
    };
    let e = runner.await.unwrap().expect_err("second chunk fails");
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("500") || msg.contains("503"), "{msg}");
    assert_eq!(fake.doc_count(KN), 10);
    b.batch_upsert_processed_context(&batch).await.unwrap();
    assert_eq!(fake.doc_count(KN), 35);
    for c in &batch {
        let got = b
            .get_processed_context(&c.id, ContextType::Knowledge, true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.vectorize.vector, c.vectorize.vector);
        assert_eq!(got.vectorize.text, c.vectorize.text);
    }
}

/// A request slower than `timeout_secs` fails with `Timeout` after the retries, and nothing
/// is half-written by the slow request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_times_out() {
    let (fake, b) = open_with(|mut c| {
        c.timeout_secs = 0.2;
        c.max_retries = 1;
        c
    })
    .await;
    fake.fail_next([
        Fault::Delay(Duration::from_millis(800)),
        Fault::Delay(Duration::from_millis(800)),
    ]);
    let e = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).top_k(3))
        .await
        .expect_err("timeout");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
}

/// Timeouts too large for a `Duration` are a `Config` error, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_timeouts_are_config_errors_not_panics() {
    let fake = FakeDashVector::start(common::TOKEN).await;
    for (key, set) in [
        (
            "timeout_secs",
            (|c: &mut DashVectorConfig| c.timeout_secs = 1e20) as fn(&mut DashVectorConfig),
        ),
        ("connect_timeout_secs", |c| c.connect_timeout_secs = 1e300),
        ("collection_ready_timeout_secs", |c| {
            c.collection_ready_timeout_secs = 1e19
        }),
    ] {
        let mut c = common::config(&fake, DIM);
        set(&mut c);
        let r = tokio::spawn(DashVectorBackend::open(c)).await;
        let r = r.unwrap_or_else(|p| panic!("{key}: open panicked: {p}"));
        let e = r.expect_err(key);
        assert_eq!(e.kind(), ErrorKind::Config, "{key}: {e}");
        assert!(e.to_string().contains(key), "{e}");
    }
}

/// Many concurrent upserts of one id: one complete version wins, never a mix, one doc.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_of_one_id() {
    let (fake, b) = common::open(DIM, false).await;
    let b = Arc::new(b);
    let tasks: Vec<_> = (0..24u64)
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
    assert_eq!(fake.doc_count(KN), 1);
    let got = b
        .get_processed_context("same", ContextType::Knowledge, true)
        .await
        .unwrap()
        .unwrap();
    let v: u64 = got
        .vectorize
        .text
        .as_deref()
        .unwrap()
        .strip_prefix("version ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(got.extracted_data.summary, Some(format!("summary {v}")));
    assert_eq!(got.vectorize.vector, Some(unit_vector(v + 1, DIM)));
}

/// Scrolling while another task deletes: every yielded context is whole, no id twice, and
/// every context never deleted is yielded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_while_deleting() {
    let (_fake, b) = common::open(DIM, false).await;
    let all: Vec<_> = (0..300).map(|i| ctx(&format!("s{i:03}"), i)).collect();
    b.batch_upsert_processed_context(&all).await.unwrap();
    let b = Arc::new(b);
    let deleted: Vec<String> = (0..300).step_by(2).map(|i| format!("s{i:03}")).collect();
    let deleter = {
        let b = b.clone();
        let deleted = deleted.clone();
        tokio::spawn(async move {
            for chunk in deleted.chunks(7) {
                b.delete_contexts(chunk, ContextType::Knowledge)
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let seen: Vec<ProcessedContext> = b
        .scroll_processed_contexts(ScrollQuery {
            batch_size: 9,
            ..ScrollQuery::default()
        })
        .try_collect()
        .await
        .unwrap();
    deleter.await.unwrap();
    let mut ids = HashSet::new();
    for c in &seen {
        assert!(ids.insert(c.id.clone()), "{} yielded twice", c.id);
        assert_eq!(
            c.vectorize.text.as_deref(),
            Some(format!("text of {}", c.id).as_str())
        );
    }
    let deleted: HashSet<_> = deleted.into_iter().collect();
    for c in &all {
        if !deleted.contains(&c.id) {
            assert!(
                ids.contains(&c.id),
                "{} never deleted but not yielded",
                c.id
            );
        }
    }
    assert_eq!(
        b.get_processed_context_count(ContextType::Knowledge)
            .await
            .unwrap(),
        150
    );
}

/// Collection prefixes that would make a name DashVector refuses (over 32 characters, not
/// starting with a letter) are `Config` errors before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_that_break_collection_names_are_config_errors() {
    let fake = FakeDashVector::start(common::TOKEN).await;
    for bad in ["a".repeat(24), "1abc".into(), "_x".into(), "-x".into()] {
        let c = common::config(&fake, DIM).with_collection_prefix(bad.clone());
        let e = DashVectorBackend::open(c).await.expect_err(&bad);
        assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        assert!(e.to_string().contains("collection_prefix"), "{e}");
    }
    assert_eq!(fake.requests(), 0);
    let ok = common::config(&fake, DIM).with_collection_prefix("a".repeat(23));
    DashVectorBackend::open(ok).await.expect("23-byte prefix");
}

/// Todo embeddings: an oversized todo and a NaN threshold are refused before any request;
/// the stored todo is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_todo_input_is_refused() {
    let (fake, b) = common::open(DIM, true).await;
    let v = unit_vector(1, DIM);
    b.upsert_todo_embedding(7, "first", &v, None).await.unwrap();
    let before = fake.requests();
    assert_invalid(
        b.upsert_todo_embedding(7, &"x".repeat(MAX_PAYLOAD_BYTES + 1), &v, None)
            .await,
        &["todo 7", &MAX_PAYLOAD_BYTES.to_string()],
    );
    assert_invalid(
        b.upsert_todo_embedding(7, "x", &[f32::INFINITY; DIM], None)
            .await,
        &["todo embedding"],
    );
    assert_invalid(
        b.search_similar_todos(&v, 5, f32::NAN).await,
        &["similarity_threshold"],
    );
    assert_eq!(fake.requests(), before);
    let hits = b.search_similar_todos(&v, 5, 0.5).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].content, "first");
}

/// Extreme `limit` and `offset`: a correct answer, no overflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_limits_and_offsets() {
    let (_fake, b) = common::open(DIM, false).await;
    let batch: Vec<_> = (0..5).map(|i| ctx(&format!("l{i}"), i + 1)).collect();
    b.batch_upsert_processed_context(&batch).await.unwrap();
    for (limit, offset, want) in [(usize::MAX, 0, 5), (10, usize::MAX, 0), (usize::MAX, 3, 2)] {
        let q = storage_core::ListQuery {
            context_types: Some(vec![ContextType::Knowledge]),
            limit,
            offset,
            ..storage_core::ListQuery::default()
        };
        let m = b.get_all_processed_contexts(&q).await.unwrap();
        assert_eq!(
            m.get(&ContextType::Knowledge).map_or(0, Vec::len),
            want,
            "limit {limit} offset {offset}"
        );
    }
    assert_invalid(
        b.search(&SearchQuery::new(unit_vector(1, DIM)).top_k(usize::MAX))
            .await,
        &["top_k"],
    );
}

/// A server failing in the middle of a scroll: the stream yields the error (naming the
/// operation), it does not end quietly as if the collection were exhausted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_in_the_middle_of_a_scroll_is_an_error() {
    let (fake, b) = open_with(|mut c| {
        c.max_retries = 1;
        c
    })
    .await;
    let all: Vec<_> = (0..60).map(|i| ctx(&format!("r{i:02}"), i + 1)).collect();
    b.batch_upsert_processed_context(&all).await.unwrap();
    let mut stream = b.scroll_processed_contexts(ScrollQuery {
        batch_size: 5,
        context_types: Some(vec![ContextType::Knowledge]),
        ..ScrollQuery::default()
    });
    let mut got = 0;
    for _ in 0..5 {
        stream.next().await.unwrap().unwrap();
        got += 1;
    }
    fake.fail_next((0..8).map(|_| Fault::Status(503)));
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
    let e = error.unwrap_or_else(|| panic!("scroll ended quietly after {got} of 60"));
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("scroll"), "{e}");
}

/// Bad values in the documented YAML shape are `Config` errors naming the key (and never
/// echo the API key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_yaml_values_are_config_errors_naming_the_key() {
    let fake = FakeDashVector::start(common::TOKEN).await;
    let yaml = r#"
storage:
  backends:
    - name: vectors
      storage_type: vector_db
      backend: dashvector
      config:
        endpoint: ${DV_ENDPOINT}
        api_key: ${DV_KEY}
        vector_size: 8
        extra_fields: {project: STRING}
"#;
    let endpoint = fake.endpoint();
    let app = storage_core::config::parse_config(yaml, |k| match k {
        "DV_ENDPOINT" => Some(endpoint.clone()),
        "DV_KEY" => Some(common::TOKEN.to_owned()),
        _ => None,
    })
    .expect("config");
    let entry = &app.storage.backends[0];
    let cases = [
        ("extra_fields", json!({"project": "string"})),
        ("extra_fields", json!({"user_id": "STRING"})),
        ("extra_fields", json!({"bad name": "STRING"})),
        ("vector_size", json!("eight")),
        ("vector_size", json!(1)),
        ("vector_size", json!(20001)),
        ("batch_size", json!(2000)),
        ("fetch_batch_size", json!(0)),
        ("timeout_secs", json!("NaN")),
        ("max_retries", json!(-1)),
        ("endpoint", json!("")),
        ("api_key", json!("")),
    ];
    for (key, value) in cases {
        let mut entry = entry.clone();
        entry.config.insert(key.into(), value.clone());
        let e = match entry.parse::<DashVectorConfig>() {
            Err(e) => e,
            Ok(c) => DashVectorBackend::open(c).await.expect_err(key),
        };
        assert_eq!(e.kind(), ErrorKind::Config, "{key}={value}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(key), "{key}={value}: {msg}");
        assert!(!msg.contains(common::TOKEN), "{msg}");
    }
}

/// Every duration and retry setting is bounded: huge, NaN, negative and zero timeouts, too
/// many retries and huge backoffs are `Config` errors naming the key and the bound, before
/// any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_and_retry_settings_are_bounded() {
    let fake = FakeDashVector::start(common::TOKEN).await;
    type Edit = Box<dyn Fn(&mut DashVectorConfig) + Send>;
    let mut cases: Vec<(Edit, &str, &str)> = Vec::new();
    for v in [1e20, f64::NAN, f64::INFINITY, -1.0, 0.0] {
        cases.push((
            Box::new(move |c: &mut DashVectorConfig| c.timeout_secs = v),
            "timeout_secs",
            "86400",
        ));
        cases.push((
            Box::new(move |c: &mut DashVectorConfig| c.connect_timeout_secs = v),
            "connect_timeout_secs",
            "86400",
        ));
    }
    cases.push((
        Box::new(|c: &mut DashVectorConfig| c.max_retries = 11),
        "max_retries",
        "at most 10",
    ));
    cases.push((
        Box::new(|c: &mut DashVectorConfig| c.max_retries = u32::MAX),
        "max_retries",
        "at most 10",
    ));
    cases.push((
        Box::new(|c: &mut DashVectorConfig| c.retry_base_delay_ms = u64::MAX),
        "retry_base_delay_ms",
        "at most 60000",
    ));
    cases.push((
        Box::new(|c: &mut DashVectorConfig| c.retry_max_delay_ms = 60_001),
        "retry_max_delay_ms",
        "at most 60000",
    ));
    for (edit, key, bound) in cases {
        let mut c = common::config(&fake, DIM);
        edit(&mut c);
        let shown = format!("{c:?}");
        let e = DashVectorBackend::open(c).await.expect_err(key);
        assert_eq!(e.kind(), ErrorKind::Config, "{shown}: {e}");
        assert!(e.to_string().contains(key), "{key}: {e}");
        assert!(e.to_string().contains(bound), "{bound}: {e}");
    }
    assert_eq!(fake.requests(), 0);
    let mut c = common::config(&fake, DIM);
    c.max_retries = 10;
    c.retry_max_delay_ms = 60_000;
    DashVectorBackend::open(c)
        .await
        .expect("the bounds themselves are accepted");
}

/// A server that hangs (the fake's stall hook): `open`, `search` and upserts each return a
/// retryable `Timeout` within `timeout_secs` plus slack. An upsert or delete whose request
/// was sent has an unknown outcome (still retryable: both are idempotent); a read has not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_time_out_within_the_bound() {
    use std::time::Instant;
    use storage_core::WriteOutcome;
    let (fake, setup) = common::open(DIM, false).await;
    setup
        .upsert_processed_context(&ctx("kept", 1))
        .await
        .unwrap();
    let mut short = common::config(&fake, DIM);
    short.timeout_secs = 0.5;
    short.connect_timeout_secs = 0.5;
    short.max_retries = 0;
    let bound = Duration::from_secs_f64(short.timeout_secs) + Duration::from_secs(3);
    let stall = Duration::from_secs(30);

    for pattern in ["GET /v1/collections", "GET /v1/collections/knowledge"] {
        fake.stall(pattern, stall);
        let started = Instant::now();
        let e = DashVectorBackend::open(short.clone()).await.unwrap_err();
        assert!(
            started.elapsed() < bound,
            "open took {:?}",
            started.elapsed()
        );
        assert_eq!(e.kind(), ErrorKind::Timeout, "{pattern}: {e}");
        assert!(e.is_retryable());
        assert_eq!(e.outcome(), WriteOutcome::NotApplied);
        fake.stall(pattern, Duration::ZERO);
    }
    let b = DashVectorBackend::open(short.clone()).await.unwrap();

    fake.stall("POST /v1/collections/knowledge/query", stall);
    let started = Instant::now();
    let e = b
        .search(&SearchQuery::new(unit_vector(1, DIM)).top_k(3))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < bound,
        "search took {:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.outcome(), WriteOutcome::NotApplied);
    fake.stall("POST /v1/collections/knowledge/query", Duration::ZERO);

    fake.stall("/docs/upsert", stall);
    let started = Instant::now();
    let e = b
        .upsert_processed_context(&ctx("late", 2))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < bound,
        "upsert took {:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    assert!(e.is_retryable(), "an upsert by id is idempotent: {e}");
    assert!(
        e.to_string().contains("may or may not have been applied"),
        "{e}"
    );
    fake.stall("/docs/upsert", Duration::ZERO);

    fake.stall("DELETE /v1/collections/knowledge/docs", stall);
    let e = b
        .delete_contexts(&["kept".to_owned()], ContextType::Knowledge)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    fake.stall("DELETE /v1/collections/knowledge/docs", Duration::ZERO);

    // An answered failure was not applied.
    fake.fail_next([Fault::Status(400)]);
    let e = b
        .upsert_processed_context(&ctx("refused", 3))
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), WriteOutcome::NotApplied, "{e}");
}

/// An existing collection that does not fit (the last one checked, `knowledge`, under
/// another metric) is found before anything is created: `open` fails with `Config` and no
/// collection was created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misfit_collection_is_refused_before_any_collection_is_created() {
    let fake = FakeDashVector::start(common::TOKEN).await;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/collections", fake.endpoint()))
        .header("dashvector-auth-token", common::TOKEN)
        .json(&json!({"name": KN, "dimension": DIM, "metric": "dotproduct"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["code"], 0, "{answer}");
    fake.clear_log();
    let e = DashVectorBackend::open(common::config(&fake, DIM))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("metric dotproduct"), "{e}");
    let creates = fake
        .log()
        .into_iter()
        .filter(|l| l.method == "POST" && l.path == "/v1/collections")
        .count();
    assert_eq!(
        creates, 0,
        "collections were created before the misfit was found"
    );
    for t in ContextType::ALL {
        if t.as_str() != KN {
            assert!(fake.schema_of(t.as_str()).is_none(), "{t:?} was created");
        }
    }
}
