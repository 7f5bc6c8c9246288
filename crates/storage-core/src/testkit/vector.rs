//! Vector backend conformance kit.
//!
//! A backend's test file implements [`VectorKitHarness`] and invokes
//! [`crate::vector_conformance_tests!`], which expands to one `#[tokio::test]` per case:
//!
//! ```text
//! struct Harness;
//! #[async_trait::async_trait]
//! impl storage_core::testkit::vector::VectorKitHarness for Harness {
//!     async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> { ... }
//! }
//! storage_core::vector_conformance_tests!(Harness);
//! ```
//!
//! Cases gate on [`crate::VectorCapabilities`]: where a backend does not claim a feature, the
//! case checks that the call fails with [`crate::ErrorKind::Unsupported`] instead.

use std::sync::Arc;

use async_trait::async_trait;

use crate::backend::VectorStorageBackend;

/// What a case needs from a fresh backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KitSpec {
    /// Vector dimension of the backend.
    pub dimension: usize,
    /// Whether todo embeddings (the `todo` collection) are enabled.
    pub todo_embeddings: bool,
}

/// Creates empty backends for the kit's cases.
#[async_trait]
pub trait VectorKitHarness: Send + Sync {
    /// A new, empty backend configured as `spec` says. Each call must return a backend that
    /// shares no data with any other (a fresh temp directory, a unique collection prefix...).
    async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend>;
}

/// Expands to one `#[tokio::test]` per conformance case, each calling
/// `storage_core::testkit::vector::cases::<case>(&harness)`. The calling crate needs `tokio`
/// (features `macros`, `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! vector_conformance_tests {
    ($harness:expr) => {
        $crate::for_each_vector_case!($crate::__vector_cases; $harness);
    };
}

/// Calls `$callback!($($args)* ; case_a, case_b, ...)` with the name of every vector
/// conformance case (functions of [`cases`]): the one list of the kit, for backends that wrap
/// each case themselves (for example to skip when their server is absent):
///
/// ```ignore
/// macro_rules! kit { ($($case:ident),*) => { $( #[tokio::test] async fn $case() { ... } )* } }
/// storage_core::for_each_vector_case!(kit);
/// ```
#[macro_export]
macro_rules! for_each_vector_case {
    (@list $callback:path; $($args:tt)*) => {
        $callback!(
            $($args)*
            round_trips_every_field,
            upsert_is_idempotent,
            batch_upsert_returns_ids_in_order,
            missing_ids_are_absent_not_errors,
            get_by_ids_keeps_order_across_types,
            search_ranks_by_cosine_similarity,
            search_merges_types_and_honours_top_k_and_threshold,
            filter_equality_and_membership,
            filter_numeric_ranges,
            filter_or_and_negation,
            filter_string_range,
            filter_on_json_list_field_is_refused,
            tenant_scope_isolates,
            hierarchy_search_by_day_week_and_month,
            delete_by_source_file_respects_user,
            scroll_yields_everything_once,
            list_pages_are_disjoint_and_complete,
            counts_per_type,
            bad_input_is_refused_and_writes_nothing,
            bad_arguments_leave_the_store_as_it_was,
            overwrite_replaces_the_whole_record,
            ties_rank_by_id,
            todo_embeddings,
            collection_names,
            close_then_calls_fail,
        );
    };
    ($callback:ident) => {
        $crate::for_each_vector_case!(@list $callback; );
    };
    ($callback:path; $($args:tt)*) => {
        $crate::for_each_vector_case!(@list $callback; $($args)* ;);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vector_cases {
    ($harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::testkit::vector::cases::$case(&$harness).await;
            }
        )*
    };
}

/// The cases. Each takes the harness and panics with a message on failure.
pub mod cases {
    use std::collections::{BTreeMap, HashSet};

    use futures::TryStreamExt;
    use serde_json::json;

    use super::{KitSpec, VectorKitHarness};
    use crate::backend::{
        HierarchyQuery, ListQuery, ScrollQuery, SearchQuery, VectorStorageBackend,
    };
    use crate::error::ErrorKind;
    use crate::filter::{Filter, Scope};
    use crate::model::{
        ContentFormat, ContextSource, ContextType, ProcessedContext, RawContextProperties,
    };
    use crate::time::parse_timestamp;

    const DIM: usize = 8;

    fn spec() -> KitSpec {
        KitSpec {
            dimension: DIM,
            todo_embeddings: false,
        }
    }

    /// A deterministic unit vector for `seed`.
    pub fn unit_vector(seed: u64, dim: usize) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                x ^= x >> 33;
                x = x.wrapping_mul(0xff51afd7ed558ccd);
                x ^= x >> 33;
                ((x % 2000) as f32 / 1000.0) - 1.0
            })
            .collect();
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        if norm == 0.0 {
            v[0] = 1.0;
            return v;
        }
        v.iter_mut().for_each(|a| *a /= norm);
        v
    }

    fn axis(i: usize) -> Vec<f32> {
        let mut v = vec![0.0; DIM];
        v[i % DIM] = 1.0;
        v
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (na * nb)
    }

    /// A minimal context of `t` with a unit vector from `seed`.
    pub fn context(id: &str, t: ContextType, seed: u64) -> ProcessedContext {
        let mut c = ProcessedContext::new(t, format!("text of {id}"));
        c.id = id.to_owned();
        let ts = parse_timestamp("2026-02-21T10:00:00+00:00").expect("timestamp");
        c.properties.create_time = ts;
        c.properties.event_time = ts;
        c.properties.update_time = ts;
        c.vectorize.vector = Some(unit_vector(seed, DIM));
        c
    }

    fn with_user(mut c: ProcessedContext, user: &str) -> ProcessedContext {
        c.properties.user_id = Some(user.to_owned());
        c
    }

    fn full_context() -> ProcessedContext {
        let t = parse_timestamp("2026-02-21T09:30:00.5+08:00").expect("timestamp");
        let mut c = context("full-1", ContextType::Event, 42);
        c.properties.create_time = t;
        c.properties.event_time = parse_timestamp("2026-02-22T01:02:03+00:00").expect("ts");
        c.properties.update_time = t;
        c.properties.last_call_time = Some(t);
        c.properties.is_processed = true;
        c.properties.has_compression = true;
        c.properties.call_count = 3;
        c.properties.merge_count = 2;
        c.properties.duration_count = 5;
        c.properties.enable_merge = true;
        c.properties.is_happened = true;
        c.properties.file_path = Some("/notes/a.md".into());
        c.properties.raw_type = Some("vaults".into());
        c.properties.raw_id = Some("17".into());
        c.properties.user_id = Some("u1".into());
        c.properties.device_id = Some("d1".into());
        c.properties.agent_id = Some("a1".into());
        c.properties.hierarchy_level = 1;
        c.properties.parent_id = Some("p1".into());
        c.properties.children_ids = vec!["c1".into(), "c2".into()];
        c.properties.time_bucket = Some("2026-02-21".into());
        c.properties.source_file_key = Some("u1:/notes/a.md".into());
        c.properties.raw_properties.push(RawContextProperties {
            content_format: ContentFormat::Text,
            source: ContextSource::ChatLog,
            create_time: t,
            object_id: "o1".into(),
            content_path: Some("/tmp/x".into()),
            content_type: Some("text".into()),
            content_text: Some("raw \"quoted\" text, 中文".into()),
            filter_path: Some("/f".into()),
            additional_info: Some(
                json!({"k": [1, 2], "n": null})
                    .as_object()
                    .cloned()
                    .expect("map"),
            ),
            enable_merge: false,
            user_id: Some("u1".into()),
            device_id: Some("d1".into()),
            agent_id: Some("a1".into()),
        });
        c.extracted_data.title = Some("[WIP] standup: 'quotes' & \"more\"".into());
        c.extracted_data.summary = Some("summary\nwith newline".into());
        c.extracted_data.keywords = vec!["team".into(), "meeting".into()];
        c.extracted_data.entities = vec!["Alice".into()];
        c.extracted_data.confidence = 8;
        c.extracted_data.importance = 6;
        c.vectorize.text = Some("met the team; 中文 text; emoji 🦀".into());
        c.metadata.insert("project".into(), json!("alpha"));
        c.metadata
            .insert("nested".into(), json!({"a": [1, {"b": true}]}));
        c.metadata.insert("count".into(), json!(7));
        c
    }

    fn assert_same(actual: &ProcessedContext, expected: &ProcessedContext, with_vector: bool) {
        let mut a = actual.clone();
        let mut e = expected.clone();
        if with_vector {
            let av = a
                .vectorize
                .vector
                .take()
                .expect("vector requested but not returned");
            let ev = e.vectorize.vector.take().expect("expected vector");
            assert_eq!(av.len(), ev.len(), "vector dimension");
            for (x, y) in av.iter().zip(&ev) {
                assert!((x - y).abs() < 1e-5, "vector differs: {av:?} vs {ev:?}");
            }
        } else {
            assert!(
                a.vectorize.vector.is_none(),
                "vector returned although not requested"
            );
            e.vectorize.vector = None;
        }
        assert_eq!(a, e);
    }

    fn ids_of(items: Vec<ProcessedContext>) -> Vec<String> {
        items.into_iter().map(|c| c.id).collect()
    }

    fn expect_kind<T: std::fmt::Debug>(r: crate::Result<T>, kind: ErrorKind, what: &str) {
        match r {
            Err(e) => assert_eq!(e.kind(), kind, "{what}: wrong error kind: {e}"),
            Ok(v) => panic!("{what}: expected a {kind} error, got Ok({v:?})"),
        }
    }

    async fn search_ids(
        b: &dyn VectorStorageBackend,
        q: SearchQuery,
    ) -> crate::Result<Vec<String>> {
        Ok(b.search(&q)
            .await?
            .into_iter()
            .map(|s| s.context.id)
            .collect())
    }

    async fn scroll_ids(
        b: &dyn VectorStorageBackend,
        q: ScrollQuery,
    ) -> crate::Result<Vec<String>> {
        let items: Vec<ProcessedContext> = b.scroll_processed_contexts(q).try_collect().await?;
        Ok(ids_of(items))
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Every field of a fully populated context survives upsert and get, with and without
    /// the vector.
    pub async fn round_trips_every_field(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let c = full_context();
        let id = b.upsert_processed_context(&c).await.expect("upsert");
        assert_eq!(id, c.id);
        let got = b
            .get_processed_context(&c.id, ContextType::Event, true)
            .await
            .expect("get");
        assert_same(&got.expect("stored context"), &c, true);
        let got = b
            .get_processed_context(&c.id, ContextType::Event, false)
            .await
            .expect("get");
        assert_same(&got.expect("stored context"), &c, false);
        let by_ids = b
            .get_by_ids(std::slice::from_ref(&c.id), None)
            .await
            .expect("get_by_ids");
        assert_eq!(by_ids.len(), 1);
        assert_same(&by_ids[0], &c, false);

        // Microsecond precision everywhere: nanoseconds are truncated, never rounded.
        let mut fine = context("fine-1", ContextType::Event, 43);
        let nanos = parse_timestamp("2026-02-21T09:30:00.123456789+08:00").expect("ts");
        fine.properties.create_time = nanos;
        fine.properties.update_time = nanos;
        b.upsert_processed_context(&fine).await.expect("upsert");
        let got = b
            .get_processed_context(&fine.id, ContextType::Event, false)
            .await
            .expect("get")
            .expect("stored");
        let want = crate::time::truncate_to_micros(&nanos);
        assert_eq!(want.to_rfc3339(), "2026-02-21T09:30:00.123456+08:00");
        assert_eq!(
            got.properties.create_time, want,
            "create_time to the microsecond"
        );
        assert_eq!(
            got.properties.update_time, want,
            "update_time to the microsecond"
        );
    }

    /// Upserting the same id twice keeps one context, with the latest content.
    pub async fn upsert_is_idempotent(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let mut c = context("same", ContextType::Knowledge, 1);
        b.upsert_processed_context(&c).await.expect("upsert");
        b.upsert_processed_context(&c).await.expect("upsert again");
        assert_eq!(
            b.get_processed_context_count(ContextType::Knowledge)
                .await
                .expect("count"),
            1
        );
        c.extracted_data.title = Some("changed".into());
        c.vectorize.vector = Some(unit_vector(2, DIM));
        b.upsert_processed_context(&c)
            .await
            .expect("upsert changed");
        let got = b
            .get_processed_context("same", ContextType::Knowledge, true)
            .await
            .expect("get");
        assert_same(&got.expect("present"), &c, true);
        assert_eq!(
            b.get_processed_context_count(ContextType::Knowledge)
                .await
                .expect("count"),
            1
        );
    }

    /// Batch upsert returns ids in input order, across types.
    pub async fn batch_upsert_returns_ids_in_order(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let batch = vec![
            context("b", ContextType::Event, 1),
            context("a", ContextType::Knowledge, 2),
            context("c", ContextType::Document, 3),
            context("d", ContextType::Event, 4),
        ];
        let ids = b
            .batch_upsert_processed_context(&batch)
            .await
            .expect("batch");
        assert_eq!(ids, strings(&["b", "a", "c", "d"]));
        assert!(
            b.batch_upsert_processed_context(&[])
                .await
                .expect("empty batch")
                .is_empty()
        );
        let counts = b.get_all_processed_context_counts().await.expect("counts");
        assert_eq!(counts.get(&ContextType::Event), Some(&2));
        assert_eq!(counts.get(&ContextType::Knowledge), Some(&1));
        assert_eq!(counts.get(&ContextType::Document), Some(&1));
    }

    /// Missing ids give `None`, `false` or are skipped; they are not errors.
    pub async fn missing_ids_are_absent_not_errors(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        assert!(
            b.get_processed_context("nope", ContextType::Event, false)
                .await
                .expect("get")
                .is_none()
        );
        b.upsert_processed_context(&context("x", ContextType::Event, 1))
            .await
            .expect("upsert");
        assert!(
            b.get_processed_context("x", ContextType::Knowledge, false)
                .await
                .expect("get")
                .is_none(),
            "a context is found only under its own type"
        );
        assert!(
            !b.delete_processed_context("nope", ContextType::Event)
                .await
                .expect("delete")
        );
        let n = b
            .delete_contexts(&strings(&["x", "nope"]), ContextType::Event)
            .await
            .expect("delete_contexts");
        assert_eq!(n, 1);
        assert!(
            b.get_processed_context("x", ContextType::Event, false)
                .await
                .expect("get")
                .is_none()
        );
        assert!(
            !b.delete_processed_context("x", ContextType::Event)
                .await
                .expect("delete again")
        );
        assert!(
            b.get_by_ids(&strings(&["nope"]), None)
                .await
                .expect("get_by_ids")
                .is_empty()
        );
    }

    /// `get_by_ids` returns contexts in input order, skipping missing ones, with or without a
    /// type.
    pub async fn get_by_ids_keeps_order_across_types(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        b.batch_upsert_processed_context(&[
            context("e1", ContextType::Event, 1),
            context("k1", ContextType::Knowledge, 2),
            context("e2", ContextType::Event, 3),
        ])
        .await
        .expect("batch");
        let got = b
            .get_by_ids(&strings(&["e2", "missing", "k1", "e1"]), None)
            .await
            .expect("get");
        assert_eq!(ids_of(got), strings(&["e2", "k1", "e1"]));
        let got = b
            .get_by_ids(&strings(&["e2", "k1", "e1"]), Some(ContextType::Event))
            .await
            .expect("get typed");
        assert_eq!(ids_of(got), strings(&["e2", "e1"]));
    }

    /// Search returns the nearest contexts best first, with cosine similarity scores.
    pub async fn search_ranks_by_cosine_similarity(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let batch: Vec<ProcessedContext> = (0..40)
            .map(|i| context(&format!("k{i:02}"), ContextType::Knowledge, 100 + i))
            .collect();
        b.batch_upsert_processed_context(&batch)
            .await
            .expect("batch");
        let query = unit_vector(7, DIM);
        let mut expected: Vec<(String, f32)> = batch
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    cosine(&query, c.vectorize.vector.as_deref().expect("v")),
                )
            })
            .collect();
        expected.sort_by(|a, b| b.1.total_cmp(&a.1));
        let hits = b
            .search(
                &SearchQuery::new(query.clone())
                    .top_k(5)
                    .context_types([ContextType::Knowledge]),
            )
            .await
            .expect("search");
        assert_eq!(hits.len(), 5);
        for (hit, (id, score)) in hits.iter().zip(&expected) {
            assert_eq!(&hit.context.id, id, "rank order");
            assert!(
                (hit.score - score).abs() < 1e-4,
                "score {} vs cosine {score}",
                hit.score
            );
            assert!(hit.context.vectorize.vector.is_none());
        }
        // A scaled query has the same cosine similarities.
        let scaled: Vec<f32> = query.iter().map(|x| x * 3.0).collect();
        let hits2 = b
            .search(&SearchQuery::new(scaled).top_k(5))
            .await
            .expect("search scaled");
        assert_eq!(
            hits2.iter().map(|h| &h.context.id).collect::<Vec<_>>(),
            hits.iter().map(|h| &h.context.id).collect::<Vec<_>>()
        );
        let mut with_vec = SearchQuery::new(query).top_k(1);
        with_vec.need_vector = true;
        let hit = &b.search(&with_vec).await.expect("search with vector")[0];
        assert_eq!(
            hit.context.vectorize.vector.as_ref().map(Vec::len),
            Some(DIM)
        );
    }

    /// Results of several types merge by score; `top_k` and `score_threshold` apply to the
    /// merged list; an empty store answers with no results.
    pub async fn search_merges_types_and_honours_top_k_and_threshold(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        assert!(
            b.search(&SearchQuery::new(axis(0)))
                .await
                .expect("empty search")
                .is_empty()
        );
        b.batch_upsert_processed_context(&[
            {
                let mut c = context("e-x", ContextType::Event, 0);
                c.vectorize.vector = Some(axis(0));
                c
            },
            {
                let mut c = context("k-x", ContextType::Knowledge, 0);
                c.vectorize.vector = Some(vec![0.9, 0.435_889_9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
                c
            },
            {
                let mut c = context("d-y", ContextType::Document, 0);
                c.vectorize.vector = Some(axis(1));
                c
            },
        ])
        .await
        .expect("batch");
        let hits = b
            .search(&SearchQuery::new(axis(0)).top_k(10))
            .await
            .expect("search");
        assert_eq!(
            hits.iter()
                .map(|h| h.context.id.as_str())
                .collect::<Vec<_>>(),
            vec!["e-x", "k-x", "d-y"]
        );
        assert!((hits[0].score - 1.0).abs() < 1e-4);
        assert!((hits[1].score - 0.9).abs() < 1e-4);
        assert!(hits[2].score.abs() < 1e-4);
        let top2 = search_ids(&*b, SearchQuery::new(axis(0)).top_k(2))
            .await
            .expect("top2");
        assert_eq!(top2, strings(&["e-x", "k-x"]));
        let mut q = SearchQuery::new(axis(0)).top_k(10);
        q.score_threshold = Some(0.5);
        assert_eq!(
            search_ids(&*b, q).await.expect("threshold"),
            strings(&["e-x", "k-x"])
        );
        let only = search_ids(
            &*b,
            SearchQuery::new(axis(0))
                .context_types([ContextType::Document, ContextType::Knowledge]),
        )
        .await
        .expect("typed");
        assert_eq!(only, strings(&["k-x", "d-y"]));
    }

    async fn filter_fixture(b: &dyn VectorKitHarness) -> std::sync::Arc<dyn VectorStorageBackend> {
        let backend = b.fresh(spec()).await;
        let mut batch = Vec::new();
        for i in 0..12u64 {
            let mut c = context(&format!("f{i:02}"), ContextType::Event, i + 1);
            c.properties.user_id = Some(format!("u{}", i % 3));
            c.properties.device_id = Some(if i % 2 == 0 { "laptop" } else { "phone" }.into());
            c.properties.agent_id = Some("default".into());
            c.extracted_data.importance = i.min(10) as u8;
            c.properties.hierarchy_level = (i % 4) as u8;
            c.properties.time_bucket = Some(format!("2026-02-{:02}", i + 1));
            let t = parse_timestamp(&format!("2026-02-{:02}T00:00:00+00:00", i + 1)).expect("ts");
            c.properties.create_time = t;
            c.metadata.insert(
                "project".into(),
                json!(if i < 6 { "alpha" } else { "beta" }),
            );
            batch.push(c);
        }
        backend
            .batch_upsert_processed_context(&batch)
            .await
            .expect("fixture");
        backend
    }

    /// Checks one filter three ways: scroll, list and search (top_k = everything).
    async fn check_filter(b: &dyn VectorStorageBackend, filter: Filter, expected: &[String]) {
        let what = format!("{filter:?}");
        let got = scroll_ids(
            b,
            ScrollQuery {
                filter: Some(filter.clone()),
                ..ScrollQuery::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("scroll with {what}: {e}"));
        assert_eq!(sorted(got), sorted(expected.to_vec()), "scroll with {what}");
        let listed = b
            .get_all_processed_contexts(&ListQuery {
                filter: Some(filter.clone()),
                limit: 100,
                ..ListQuery::default()
            })
            .await
            .unwrap_or_else(|e| panic!("list with {what}: {e}"));
        let listed: Vec<String> = listed.into_values().flatten().map(|c| c.id).collect();
        assert_eq!(
            sorted(listed),
            sorted(expected.to_vec()),
            "list with {what}"
        );
        let found = search_ids(b, SearchQuery::new(axis(0)).top_k(100).filter(filter))
            .await
            .unwrap_or_else(|e| panic!("search with {what}: {e}"));
        assert_eq!(
            sorted(found),
            sorted(expected.to_vec()),
            "search with {what}"
        );
    }

    fn ids_where(pred: impl Fn(usize) -> bool) -> Vec<String> {
        (0..12)
            .filter(|i| pred(*i))
            .map(|i| format!("f{i:02}"))
            .collect()
    }

    /// `eq` and `in` on strings, integers and metadata fields; combined with `and`.
    pub async fn filter_equality_and_membership(h: &dyn VectorKitHarness) {
        let b = filter_fixture(h).await;
        check_filter(
            &*b,
            Filter::eq("device_id", "laptop"),
            &ids_where(|i| i % 2 == 0),
        )
        .await;
        check_filter(
            &*b,
            Filter::eq("hierarchy_level", 2),
            &ids_where(|i| i % 4 == 2),
        )
        .await;
        check_filter(&*b, Filter::eq("project", "beta"), &ids_where(|i| i >= 6)).await;
        check_filter(
            &*b,
            Filter::is_in("user_id", ["u0", "u2"]),
            &ids_where(|i| i % 3 != 1),
        )
        .await;
        check_filter(
            &*b,
            Filter::is_in("importance", [1, 3]),
            &ids_where(|i| i == 1 || i == 3),
        )
        .await;
        check_filter(&*b, Filter::eq("user_id", "nobody"), &[]).await;
        check_filter(
            &*b,
            Filter::eq("device_id", "phone").and(Filter::eq("project", "alpha")),
            &ids_where(|i| i % 2 == 1 && i < 6),
        )
        .await;
        let f = Filter::from_loose_json(&json!({"user_id": "u1", "device_id": ["phone"]}))
            .expect("loose")
            .expect("some");
        check_filter(&*b, f, &ids_where(|i| i % 3 == 1 && i % 2 == 1)).await;
    }

    /// Numeric ranges with every bound, on payload integers and `_ts` fields.
    pub async fn filter_numeric_ranges(h: &dyn VectorKitHarness) {
        let b = filter_fixture(h).await;
        check_filter(&*b, Filter::gte("importance", 8), &ids_where(|i| i >= 8)).await;
        check_filter(&*b, Filter::gt("importance", 8), &ids_where(|i| i > 8)).await;
        check_filter(&*b, Filter::lt("importance", 2), &ids_where(|i| i < 2)).await;
        check_filter(
            &*b,
            Filter::between("importance", 3, 5),
            &ids_where(|i| (3..=5).contains(&i)),
        )
        .await;
        let feb5 = parse_timestamp("2026-02-05T00:00:00+00:00")
            .expect("ts")
            .timestamp();
        let f = Filter::from_loose_json(&json!({"create_time_ts": {"$gte": feb5}}))
            .expect("loose")
            .expect("some");
        check_filter(&*b, f, &ids_where(|i| i >= 4)).await;
    }

    /// `or`, `not`, `ne` and `not in`, or `Unsupported` where the backend does not claim them.
    pub async fn filter_or_and_negation(h: &dyn VectorKitHarness) {
        let b = filter_fixture(h).await;
        let caps = b.capabilities();
        let or = Filter::eq("user_id", "u0").or(Filter::gte("importance", 10));
        if caps.filter_or {
            check_filter(&*b, or, &ids_where(|i| i % 3 == 0 || i >= 10)).await;
        } else {
            expect_kind(
                search_ids(&*b, SearchQuery::new(axis(0)).filter(or)).await,
                ErrorKind::Unsupported,
                "or",
            );
        }
        let negations = [
            (Filter::ne("device_id", "laptop"), ids_where(|i| i % 2 == 1)),
            (
                Filter::not_in("user_id", ["u0", "u1"]),
                ids_where(|i| i % 3 == 2),
            ),
            (Filter::eq("project", "alpha").not(), ids_where(|i| i >= 6)),
        ];
        for (f, expected) in negations {
            if caps.filter_negation {
                check_filter(&*b, f, &expected).await;
            } else {
                expect_kind(
                    search_ids(&*b, SearchQuery::new(axis(0)).filter(f)).await,
                    ErrorKind::Unsupported,
                    "negation",
                );
            }
        }
    }

    /// A range with string bounds is exact (never silently empty) or refused as
    /// `Unsupported`.
    pub async fn filter_string_range(h: &dyn VectorKitHarness) {
        let b = filter_fixture(h).await;
        let f = Filter::between("time_bucket", "2026-02-03", "2026-02-05");
        if b.capabilities().string_ranges {
            check_filter(&*b, f, &ids_where(|i| (2..=4).contains(&i))).await;
        } else {
            expect_kind(
                scroll_ids(
                    &*b,
                    ScrollQuery {
                        filter: Some(f),
                        ..ScrollQuery::default()
                    },
                )
                .await,
                ErrorKind::Unsupported,
                "string range",
            );
        }
    }

    /// Lists stored as JSON strings cannot be compared element-wise: refused, not weakened.
    pub async fn filter_on_json_list_field_is_refused(h: &dyn VectorKitHarness) {
        let b = filter_fixture(h).await;
        let f = Filter::eq("keywords", "team");
        let r = search_ids(&*b, SearchQuery::new(axis(0)).filter(f)).await;
        expect_kind(r, ErrorKind::Unsupported, "filter on keywords");
        let bad = Filter::eq("x' OR '1'='1", 1);
        let r = search_ids(&*b, SearchQuery::new(axis(0)).filter(bad)).await;
        expect_kind(
            r,
            ErrorKind::InvalidInput,
            "filter key that is not a field name",
        );
    }

    /// The tenant scope restricts search, scroll and list to one user, device or agent.
    pub async fn tenant_scope_isolates(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let mut batch = Vec::new();
        for (i, (u, d, a)) in [
            ("u1", "d1", "a1"),
            ("u1", "d2", "a1"),
            ("u2", "d1", "a1"),
            ("u1", "d1", "a2"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut c = context(&format!("t{i}"), ContextType::Knowledge, i as u64);
            c.properties.user_id = Some(u.into());
            c.properties.device_id = Some(d.into());
            c.properties.agent_id = Some(a.into());
            batch.push(c);
        }
        b.batch_upsert_processed_context(&batch)
            .await
            .expect("batch");
        let cases = [
            (Scope::user("u1"), strings(&["t0", "t1", "t3"])),
            (Scope::user("u2"), strings(&["t2"])),
            (Scope::tenant("u1", "d1", "a1"), strings(&["t0"])),
            (
                Scope {
                    agent_id: Some("a2".into()),
                    ..Scope::default()
                },
                strings(&["t3"]),
            ),
            (Scope::user("nobody"), vec![]),
        ];
        for (scope, expected) in cases {
            let found = search_ids(
                &*b,
                SearchQuery::new(axis(0)).top_k(10).scope(scope.clone()),
            )
            .await
            .expect("search");
            assert_eq!(sorted(found), expected, "search in {scope:?}");
            let scrolled = scroll_ids(
                &*b,
                ScrollQuery {
                    scope: scope.clone(),
                    ..ScrollQuery::default()
                },
            )
            .await
            .expect("scroll");
            assert_eq!(sorted(scrolled), expected, "scroll in {scope:?}");
            let listed = b
                .get_all_processed_contexts(&ListQuery {
                    scope: scope.clone(),
                    ..ListQuery::default()
                })
                .await
                .expect("list");
            let listed: Vec<String> = listed.into_values().flatten().map(|c| c.id).collect();
            assert_eq!(sorted(listed), expected, "list in {scope:?}");
        }
    }

    /// `search_by_hierarchy` with day, ISO week and month buckets, bounds inclusive, ordered
    /// by bucket, restricted by user and level; invalid bounds are refused.
    pub async fn hierarchy_search_by_day_week_and_month(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let mut batch = Vec::new();
        let buckets = [
            (
                1u8,
                [
                    "2026-02-19",
                    "2026-02-20",
                    "2026-02-21",
                    "2026-02-22",
                    "2026-03-01",
                ],
            ),
            (
                2u8,
                ["2025-W52", "2026-W01", "2026-W08", "2026-W09", "2026-W10"],
            ),
            (3u8, ["2025-12", "2026-01", "2026-02", "2026-03", "2026-10"]),
        ];
        for (level, list) in buckets {
            for (i, tb) in list.iter().enumerate() {
                for user in ["u1", "u2"] {
                    let mut c = with_user(
                        context(
                            &format!("h{level}-{tb}-{user}"),
                            ContextType::Event,
                            i as u64,
                        ),
                        user,
                    );
                    c.properties.hierarchy_level = level;
                    c.properties.time_bucket = Some((*tb).into());
                    batch.push(c);
                }
            }
        }
        // Level 0 originals in the same buckets must not leak into summary queries.
        let mut original = with_user(context("h0-orig", ContextType::Event, 9), "u1");
        original.properties.time_bucket = Some("2026-02-21".into());
        batch.push(original);
        b.batch_upsert_processed_context(&batch)
            .await
            .expect("batch");

        let q = |level: u8, start: Option<&str>, end: Option<&str>, user: Option<&str>| {
            HierarchyQuery {
                context_type: ContextType::Event,
                hierarchy_level: level,
                time_bucket_start: start.map(str::to_owned),
                time_bucket_end: end.map(str::to_owned),
                user_id: user.map(str::to_owned),
                top_k: 20,
            }
        };
        let run = |query: HierarchyQuery| {
            let b = b.clone();
            async move {
                let hits = b
                    .search_by_hierarchy(&query)
                    .await
                    .expect("search_by_hierarchy");
                for h in &hits {
                    assert!((h.score - 1.0).abs() < 1e-6, "hierarchy scores are 1.0");
                }
                hits.into_iter().map(|h| h.context.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(
            run(q(1, Some("2026-02-20"), Some("2026-02-22"), Some("u1"))).await,
            strings(&["h1-2026-02-20-u1", "h1-2026-02-21-u1", "h1-2026-02-22-u1"])
        );
        assert_eq!(
            run(q(2, Some("2026-W01"), Some("2026-W09"), Some("u2"))).await,
            strings(&["h2-2026-W01-u2", "h2-2026-W08-u2", "h2-2026-W09-u2"])
        );
        assert_eq!(
            run(q(3, Some("2026-01"), Some("2026-03"), Some("u1"))).await,
            strings(&["h3-2026-01-u1", "h3-2026-02-u1", "h3-2026-03-u1"])
        );
        assert_eq!(
            run(q(3, None, Some("2025-12"), Some("u1"))).await,
            strings(&["h3-2025-12-u1"])
        );
        assert_eq!(
            run(q(2, Some("2026-W10"), None, Some("u1"))).await,
            strings(&["h2-2026-W10-u1"])
        );
        assert_eq!(
            run(q(1, None, None, None)).await.len(),
            10,
            "both users, one level"
        );
        let mut limited = q(1, None, None, Some("u2"));
        limited.top_k = 2;
        assert_eq!(
            run(limited).await,
            strings(&["h1-2026-02-19-u2", "h1-2026-02-20-u2"])
        );
        assert!(
            run(q(3, Some("2027-01"), Some("2027-12"), None))
                .await
                .is_empty()
        );
        for (s, e) in [
            (Some("2026-W01"), Some("2026-02")),
            (Some("2026-03"), Some("2026-01")),
            (Some("last week"), None),
        ] {
            let r = b.search_by_hierarchy(&q(1, s, e, None)).await;
            expect_kind(r, ErrorKind::InvalidInput, "bad time bucket bounds");
        }
    }

    /// `delete_by_source_file` removes every chunk of one source (any type), for one user
    /// when given, and reports the count.
    pub async fn delete_by_source_file_respects_user(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let mut batch = Vec::new();
        for (i, (key, user, t)) in [
            ("u1:a.md", "u1", ContextType::Document),
            ("u1:a.md", "u1", ContextType::Document),
            ("u1:a.md", "u1", ContextType::Knowledge),
            ("u1:a.md", "u2", ContextType::Document),
            ("u1:b.md", "u1", ContextType::Document),
        ]
        .into_iter()
        .enumerate()
        {
            let mut c = with_user(context(&format!("s{i}"), t, i as u64), user);
            c.properties.source_file_key = Some(key.into());
            batch.push(c);
        }
        b.batch_upsert_processed_context(&batch)
            .await
            .expect("batch");
        let n = b
            .delete_by_source_file("u1:a.md", Some("u1"))
            .await
            .expect("delete");
        assert_eq!(n, 3);
        let left = b
            .get_by_ids(&strings(&["s0", "s1", "s2", "s3", "s4"]), None)
            .await
            .expect("get");
        assert_eq!(ids_of(left), strings(&["s3", "s4"]));
        assert_eq!(
            b.delete_by_source_file("u1:a.md", None)
                .await
                .expect("delete rest"),
            1
        );
        assert_eq!(
            b.delete_by_source_file("nothing", None)
                .await
                .expect("delete none"),
            0
        );
        assert_eq!(
            b.get_processed_context_count(ContextType::Document)
                .await
                .expect("count"),
            1
        );
    }

    /// Scrolling yields every matching context exactly once, for any batch size.
    pub async fn scroll_yields_everything_once(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let mut batch = Vec::new();
        for i in 0..230u64 {
            let t = [
                ContextType::Event,
                ContextType::Knowledge,
                ContextType::Document,
            ][(i % 3) as usize];
            batch.push(with_user(
                context(&format!("s{i:03}"), t, i),
                if i % 5 == 0 { "u5" } else { "u" },
            ));
        }
        b.batch_upsert_processed_context(&batch)
            .await
            .expect("batch");
        let all: Vec<String> = batch.iter().map(|c| c.id.clone()).collect();
        for batch_size in [1, 7, 100, 1000] {
            let got = scroll_ids(
                &*b,
                ScrollQuery {
                    batch_size,
                    ..ScrollQuery::default()
                },
            )
            .await
            .expect("scroll");
            assert_eq!(
                got.len(),
                all.len(),
                "no duplicates or gaps with batch_size {batch_size}"
            );
            assert_eq!(sorted(got), sorted(all.clone()), "batch_size {batch_size}");
        }
        let filtered = scroll_ids(
            &*b,
            ScrollQuery {
                batch_size: 3,
                context_types: Some(vec![ContextType::Event]),
                scope: Scope::user("u5"),
                need_vector: false,
                ..ScrollQuery::default()
            },
        )
        .await
        .expect("filtered scroll");
        let expected: Vec<String> = (0..230u64)
            .filter(|i| i % 3 == 0 && i % 5 == 0)
            .map(|i| format!("s{i:03}"))
            .collect();
        assert_eq!(sorted(filtered), expected);
        let with_vectors: Vec<ProcessedContext> = b
            .scroll_processed_contexts(ScrollQuery {
                need_vector: true,
                batch_size: 50,
                ..ScrollQuery::default()
            })
            .try_collect()
            .await
            .expect("scroll with vectors");
        assert!(
            with_vectors
                .iter()
                .all(|c| c.vectorize.vector.as_ref().map(Vec::len) == Some(DIM))
        );
    }

    /// `get_all_processed_contexts` pages per type with limit/offset: disjoint, complete.
    pub async fn list_pages_are_disjoint_and_complete(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let batch: Vec<ProcessedContext> = (0..25)
            .map(|i| context(&format!("l{i:02}"), ContextType::Knowledge, i))
            .collect();
        b.batch_upsert_processed_context(&batch)
            .await
            .expect("batch");
        b.upsert_processed_context(&context("ev", ContextType::Event, 99))
            .await
            .expect("upsert");
        let mut seen = Vec::new();
        for page in 0..4 {
            let got = b
                .get_all_processed_contexts(&ListQuery {
                    context_types: Some(vec![ContextType::Knowledge]),
                    limit: 10,
                    offset: page * 10,
                    ..ListQuery::default()
                })
                .await
                .expect("list");
            assert!(got.keys().all(|t| *t == ContextType::Knowledge));
            let ids: Vec<String> = got.into_values().flatten().map(|c| c.id).collect();
            assert!(ids.len() <= 10);
            seen.extend(ids);
        }
        assert_eq!(seen.len(), 25, "no duplicates across pages");
        assert_eq!(
            sorted(seen),
            sorted(batch.iter().map(|c| c.id.clone()).collect())
        );
        let all: BTreeMap<ContextType, Vec<ProcessedContext>> = b
            .get_all_processed_contexts(&ListQuery::default())
            .await
            .expect("list all");
        assert_eq!(all.get(&ContextType::Event).map(Vec::len), Some(1));
        assert_eq!(all.get(&ContextType::Knowledge).map(Vec::len), Some(25));
    }

    /// Counts are exact per type and follow deletes.
    pub async fn counts_per_type(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        for t in ContextType::ALL {
            assert_eq!(b.get_processed_context_count(t).await.expect("count"), 0);
        }
        let batch: Vec<ProcessedContext> = (0..9)
            .map(|i| context(&format!("c{i}"), ContextType::ALL[i % 5], i as u64))
            .collect();
        b.batch_upsert_processed_context(&batch)
            .await
            .expect("batch");
        let counts = b.get_all_processed_context_counts().await.expect("counts");
        for t in ContextType::ALL {
            let expected = batch.iter().filter(|c| c.context_type() == t).count() as u64;
            assert_eq!(counts.get(&t).copied().unwrap_or(0), expected, "{t}");
        }
        b.delete_contexts(&strings(&["c0", "c5"]), ContextType::Profile)
            .await
            .expect("delete");
        assert_eq!(
            b.get_processed_context_count(ContextType::Profile)
                .await
                .expect("count"),
            0
        );
    }

    /// Bad input fails with `InvalidInput` and leaves the store unchanged.
    pub async fn bad_input_is_refused_and_writes_nothing(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        b.upsert_processed_context(&context("keep", ContextType::Event, 1))
            .await
            .expect("upsert");
        let good = context("good", ContextType::Event, 2);
        let mut bad_batches: Vec<(&str, ProcessedContext)> = Vec::new();
        let mut c = context("dim", ContextType::Event, 3);
        c.vectorize.vector = Some(vec![1.0; DIM + 1]);
        bad_batches.push(("dimension mismatch", c));
        let mut c = context("nan", ContextType::Event, 3);
        c.vectorize.vector.as_mut().expect("v")[2] = f32::NAN;
        bad_batches.push(("NaN component", c));
        let mut c = context("inf", ContextType::Event, 3);
        c.vectorize.vector.as_mut().expect("v")[0] = f32::INFINITY;
        bad_batches.push(("infinite component", c));
        bad_batches.push(("empty id", context("", ContextType::Event, 3)));
        let mut c = context("novec", ContextType::Event, 3);
        c.vectorize.vector = None;
        bad_batches.push(("missing vector", c));
        let mut c = context("shadow", ContextType::Event, 3);
        c.metadata.insert("user_id".into(), json!("x"));
        bad_batches.push(("metadata shadowing a field", c));
        let mut c = context("huge", ContextType::Event, 3);
        c.vectorize.text = Some("x".repeat(crate::validate::MAX_PAYLOAD_BYTES + 1));
        bad_batches.push(("oversized payload", c));
        let mut c = context("year10000", ContextType::Event, 3);
        c.properties.event_time = parse_timestamp("9999-12-31T23:59:59-12:00").expect("timestamp");
        bad_batches.push(("a time no backend can hold", c));
        let mut c = context("leap", ContextType::Event, 3);
        c.properties.create_time = parse_timestamp("2016-12-31T23:59:60+00:00").expect("ts");
        bad_batches.push(("a leap second", c));
        for (what, bad) in bad_batches {
            let r = b.batch_upsert_processed_context(&[good.clone(), bad]).await;
            expect_kind(r, ErrorKind::InvalidInput, what);
        }
        let r = b
            .batch_upsert_processed_context(&[good.clone(), good.clone()])
            .await;
        expect_kind(r, ErrorKind::InvalidInput, "duplicate ids in one batch");
        assert!(
            b.get_processed_context("good", ContextType::Event, false)
                .await
                .expect("get")
                .is_none(),
            "a refused batch writes nothing"
        );
        assert_eq!(
            b.get_processed_context_count(ContextType::Event)
                .await
                .expect("count"),
            1
        );

        expect_kind(
            b.search(&SearchQuery::new(vec![1.0; DIM - 1])).await,
            ErrorKind::InvalidInput,
            "short query",
        );
        let mut nan = axis(0);
        nan[1] = f32::NAN;
        expect_kind(
            b.search(&SearchQuery::new(nan)).await,
            ErrorKind::InvalidInput,
            "NaN query",
        );
        expect_kind(
            b.search(&SearchQuery::new(axis(0)).filter(Filter::eq("bad key!", 1)))
                .await,
            ErrorKind::InvalidInput,
            "bad filter key",
        );
        expect_kind(
            b.search(&SearchQuery::new(axis(0)).filter(Filter::gte("importance", f64::NAN)))
                .await,
            ErrorKind::InvalidInput,
            "NaN filter value",
        );
        expect_kind(
            b.get_by_ids(&strings(&[""]), None).await,
            ErrorKind::InvalidInput,
            "empty id lookup",
        );
    }

    /// Every class of bad argument of the bad-input issue is refused with `InvalidInput`, and
    /// the store reads back exactly as before (records and counts).
    pub async fn bad_arguments_leave_the_store_as_it_was(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let mut keep = full_context();
        keep.id = "keep-1".into();
        let other = with_user(context("keep-2", ContextType::Knowledge, 5), "u2");
        b.batch_upsert_processed_context(&[keep.clone(), other.clone()])
            .await
            .expect("upsert");
        let counts = b.get_all_processed_context_counts().await.expect("counts");

        let mut bad: Vec<(&str, ProcessedContext)> = Vec::new();
        let mut c = context("huge-norm", ContextType::Event, 3);
        c.vectorize.vector = Some(vec![1e38; DIM]);
        bad.push(("a norm that overflows f32", c));
        let mut c = context("tiny-norm", ContextType::Event, 3);
        c.vectorize.vector = Some(vec![1e-30; DIM]);
        bad.push(("a norm that underflows f32", c));
        for (key, value) in [
            ("foo_ts", json!(1)),
            ("null_value", serde_json::Value::Null),
            ("json_text", json!("[1, 2]")),
        ] {
            let mut c = context("meta", ContextType::Event, 3);
            c.metadata.insert(key.into(), value);
            bad.push((key, c));
        }
        let mut deep = json!(1);
        for _ in 0..=crate::validate::MAX_JSON_DEPTH {
            deep = json!([deep]);
        }
        let mut c = context("deep", ContextType::Event, 3);
        c.metadata.insert("deep".into(), deep);
        bad.push(("metadata nested too deep", c));
        // An overwrite of an existing record that is refused must not touch it.
        let mut c = keep.clone();
        c.metadata.insert("bad_ts".into(), json!(2));
        bad.push(("a refused overwrite", c));
        for (what, c) in bad {
            let r = b.batch_upsert_processed_context(&[c]).await;
            expect_kind(r, ErrorKind::InvalidInput, what);
        }

        let mut deep_filter = Filter::eq("user_id", "u1");
        for _ in 0..crate::filter::MAX_FILTER_DEPTH {
            deep_filter = deep_filter.not();
        }
        expect_kind(
            b.search(&SearchQuery::new(axis(0)).filter(deep_filter))
                .await,
            ErrorKind::InvalidInput,
            "a filter nested past the limit",
        );
        let mut q = SearchQuery::new(axis(0));
        q.score_threshold = Some(f32::NAN);
        expect_kind(b.search(&q).await, ErrorKind::InvalidInput, "NaN threshold");
        expect_kind(
            b.search(&SearchQuery::new(vec![1e-30; DIM])).await,
            ErrorKind::InvalidInput,
            "a query vector that cannot be normalised",
        );
        expect_kind(
            b.delete_contexts(&strings(&[""]), ContextType::Event).await,
            ErrorKind::InvalidInput,
            "deleting an empty id",
        );
        expect_kind(
            b.delete_by_source_file("", None).await,
            ErrorKind::InvalidInput,
            "an empty source_file_key",
        );
        expect_kind(
            b.delete_by_source_file("u1:/notes/a.md", Some("")).await,
            ErrorKind::InvalidInput,
            "an empty user_id",
        );

        assert_eq!(
            b.get_all_processed_context_counts().await.expect("counts"),
            counts,
            "counts after the refused calls"
        );
        let back = b
            .get_processed_context("keep-1", ContextType::Event, true)
            .await
            .expect("get")
            .expect("still there");
        assert_same(&back, &keep, true);
        let back = b
            .get_processed_context("keep-2", ContextType::Knowledge, true)
            .await
            .expect("get")
            .expect("still there");
        assert_same(&back, &other, true);
    }

    /// An upsert replaces the whole stored record: fields and metadata the new version leaves
    /// unset are gone, on every read path (get, scoped search, delete by source file).
    pub async fn overwrite_replaces_the_whole_record(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let mut first = with_user(context("z1", ContextType::Event, 9), "alice");
        first.properties.source_file_key = Some("alice:/old.md".into());
        first.properties.parent_id = Some("p-old".into());
        first.properties.time_bucket = Some("2026-02-21".into());
        first.extracted_data.summary = Some("old summary".into());
        first
            .metadata
            .insert("secret_note".into(), json!("old value"));
        b.upsert_processed_context(&first).await.expect("upsert");

        let second = context("z1", ContextType::Event, 9);
        b.upsert_processed_context(&second)
            .await
            .expect("overwrite");
        let back = b
            .get_processed_context("z1", ContextType::Event, true)
            .await
            .expect("get")
            .expect("present");
        assert_same(&back, &second, true);
        let hits = b
            .search(&SearchQuery::new(unit_vector(9, DIM)).scope(Scope::user("alice")))
            .await
            .expect("search");
        assert!(
            hits.is_empty(),
            "a search scoped to the old user still finds the overwritten record"
        );
        assert_eq!(
            b.delete_by_source_file("alice:/old.md", None)
                .await
                .expect("delete by old key"),
            0,
            "the old source_file_key still matches"
        );
        assert_eq!(
            b.get_processed_context_count(ContextType::Event)
                .await
                .expect("count"),
            1
        );
    }

    /// Hits with equal scores are ordered by id (the rule: score descending, then id).
    pub async fn ties_rank_by_id(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        let ids: Vec<String> = (0..12)
            .map(|i| format!("tie-{:02}", (i * 7) % 12))
            .collect();
        let batch: Vec<_> = ids
            .iter()
            .map(|id| {
                let mut c = context(id, ContextType::Event, 0);
                c.vectorize.vector = Some(axis(3));
                c
            })
            .collect();
        b.batch_upsert_processed_context(&batch)
            .await
            .expect("upsert");
        let mut sorted = ids.clone();
        sorted.sort();
        for _ in 0..3 {
            let hits = b
                .search(&SearchQuery::new(axis(3)).top_k(12))
                .await
                .expect("search");
            let got: Vec<_> = hits.iter().map(|h| h.context.id.clone()).collect();
            assert_eq!(got, sorted, "equal scores are ordered by id, every time");
        }
        // With fewer hits than ties, the returned ones are still in id order.
        let hits = b
            .search(&SearchQuery::new(axis(3)).top_k(5))
            .await
            .expect("search");
        assert_eq!(hits.len(), 5);
        assert!(
            hits.windows(2).all(|w| w[0].context.id < w[1].context.id),
            "ties in id order"
        );
    }

    /// Todo embeddings: upsert, similarity search with threshold, delete; `Unsupported` when
    /// disabled.
    pub async fn todo_embeddings(h: &dyn VectorKitHarness) {
        let off = h.fresh(spec()).await;
        expect_kind(
            off.upsert_todo_embedding(1, "buy milk", &axis(0), None)
                .await,
            ErrorKind::Unsupported,
            "todo embeddings disabled",
        );
        expect_kind(
            off.search_similar_todos(&axis(0), 5, 0.5).await,
            ErrorKind::Unsupported,
            "todo search disabled",
        );

        let b = h
            .fresh(KitSpec {
                dimension: DIM,
                todo_embeddings: true,
            })
            .await;
        assert!(b.capabilities().todo_embeddings);
        expect_kind(
            b.upsert_todo_embedding(-1, "negative id", &axis(0), None)
                .await,
            ErrorKind::InvalidInput,
            "a negative todo id",
        );
        expect_kind(
            b.search_similar_todos(&axis(0), 5, f32::NAN).await,
            ErrorKind::InvalidInput,
            "a NaN similarity threshold",
        );
        expect_kind(
            b.delete_todo_embedding(-1).await,
            ErrorKind::InvalidInput,
            "deleting a negative todo id",
        );
        let meta = json!({"urgency": 2}).as_object().cloned().expect("map");
        b.upsert_todo_embedding(1, "buy milk", &axis(0), Some(&meta))
            .await
            .expect("todo 1");
        b.upsert_todo_embedding(
            2,
            "buy bread",
            &[0.8, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            None,
        )
        .await
        .expect("todo 2");
        b.upsert_todo_embedding(3, "call mom", &axis(1), None)
            .await
            .expect("todo 3");
        let hits = b
            .search_similar_todos(&axis(0), 10, 0.5)
            .await
            .expect("search");
        assert_eq!(
            hits.iter().map(|t| t.todo_id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(hits[0].content, "buy milk");
        assert!((hits[1].score - 0.8).abs() < 1e-4);
        b.upsert_todo_embedding(1, "buy oat milk", &axis(0), None)
            .await
            .expect("replace");
        let hits = b
            .search_similar_todos(&axis(0), 1, 0.0)
            .await
            .expect("search");
        assert_eq!(hits[0].content, "buy oat milk");
        assert!(b.delete_todo_embedding(1).await.expect("delete"));
        assert!(!b.delete_todo_embedding(1).await.expect("delete again"));
        let hits = b
            .search_similar_todos(&axis(0), 10, 0.5)
            .await
            .expect("search");
        assert_eq!(hits.iter().map(|t| t.todo_id).collect::<Vec<_>>(), vec![2]);
        expect_kind(
            b.upsert_todo_embedding(4, "x", &[1.0, 2.0], None).await,
            ErrorKind::InvalidInput,
            "todo vector dimension",
        );
        let counts = b.get_all_processed_context_counts().await.expect("counts");
        assert!(counts.values().all(|n| *n == 0), "todos are not contexts");
    }

    /// Collection names cover the context types, plus `todo` when enabled.
    pub async fn collection_names(h: &dyn VectorKitHarness) {
        let b = h
            .fresh(KitSpec {
                dimension: DIM,
                todo_embeddings: true,
            })
            .await;
        b.upsert_processed_context(&context("x", ContextType::Event, 1))
            .await
            .expect("upsert");
        let names: HashSet<String> = b
            .get_collection_names()
            .await
            .expect("names")
            .into_iter()
            .collect();
        assert!(names.iter().any(|n| n.contains("event")), "{names:?}");
        assert!(names.iter().any(|n| n.contains("todo")), "{names:?}");
        assert_eq!(b.dimension(), DIM);
        b.health_check().await.expect("healthy");
    }

    /// After `close`, calls fail with `NotInitialized`; closing twice is harmless.
    pub async fn close_then_calls_fail(h: &dyn VectorKitHarness) {
        let b = h.fresh(spec()).await;
        b.upsert_processed_context(&context("x", ContextType::Event, 1))
            .await
            .expect("upsert");
        b.close().await.expect("close");
        b.close().await.expect("close twice");
        expect_kind(
            b.get_processed_context("x", ContextType::Event, false)
                .await,
            ErrorKind::NotInitialized,
            "get after close",
        );
        expect_kind(
            b.upsert_processed_context(&context("y", ContextType::Event, 2))
                .await,
            ErrorKind::NotInitialized,
            "upsert after close",
        );
    }
}
