//! `search_by_hierarchy`: level and user natively, time bucket ranges (days, ISO weeks,
//! months) compared as strings in process, ordered by bucket then id.
#![cfg(feature = "local")]

mod common;

use common::{ctx, open, vector};
use storage_core::model::ContextType;
use storage_core::{ErrorKind, HierarchyQuery, VectorStorageBackend};

const DIM: usize = 8;

fn summary(id: &str, level: u8, bucket: &str, user: &str) -> storage_core::ProcessedContext {
    let mut c = ctx(
        id,
        ContextType::Event,
        vector(DIM, id.len() as u64 * 31 + level as u64),
    );
    c.properties.hierarchy_level = level;
    c.properties.time_bucket = Some(bucket.to_owned());
    c.properties.user_id = Some(user.to_owned());
    c
}

fn query(level: u8, start: Option<&str>, end: Option<&str>) -> HierarchyQuery {
    HierarchyQuery {
        context_type: ContextType::Event,
        hierarchy_level: level,
        time_bucket_start: start.map(str::to_owned),
        time_bucket_end: end.map(str::to_owned),
        user_id: None,
        top_k: 20,
    }
}

fn ids(hits: &[storage_core::ScoredContext]) -> Vec<&str> {
    hits.iter().map(|h| h.context.id.as_str()).collect()
}

#[tokio::test]
async fn ranges_of_days_weeks_and_months() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), DIM).await;
    let mut all = vec![
        summary("d-0219", 1, "2026-02-19", "u1"),
        summary("d-0220", 1, "2026-02-20", "u1"),
        summary("d-0221", 1, "2026-02-21", "u1"),
        summary("d-0221b", 1, "2026-02-21", "u2"),
        summary("d-0301", 1, "2026-03-01", "u1"),
        summary("w-07", 2, "2026-W07", "u1"),
        summary("w-08", 2, "2026-W08", "u1"),
        summary("w-09", 2, "2026-W09", "u1"),
        summary("m-01", 3, "2026-01", "u1"),
        summary("m-02", 3, "2026-02", "u1"),
        summary("m-12", 3, "2025-12", "u1"),
    ];
    let mut raw = ctx("raw", ContextType::Event, vector(DIM, 5));
    raw.properties.hierarchy_level = 0;
    all.push(raw);
    store.batch_upsert_processed_context(&all).await.unwrap();

    // Days: inclusive bounds, ordered by bucket then id.
    let hits = store
        .search_by_hierarchy(&query(1, Some("2026-02-20"), Some("2026-02-21")))
        .await
        .unwrap();
    assert_eq!(ids(&hits), ["d-0220", "d-0221", "d-0221b"]);
    assert!(hits.iter().all(|h| h.score == 1.0));
    let mut q = query(1, Some("2026-02-21"), Some("2026-02-21"));
    q.user_id = Some("u2".into());
    assert_eq!(
        ids(&store.search_by_hierarchy(&q).await.unwrap()),
        ["d-0221b"]
    );
    assert_eq!(
        ids(&store
            .search_by_hierarchy(&query(1, Some("2026-02-21"), None))
            .await
            .unwrap()),
        ["d-0221", "d-0221b", "d-0301"]
    );

    // ISO weeks.
    let hits = store
        .search_by_hierarchy(&query(2, Some("2026-W08"), Some("2026-W09")))
        .await
        .unwrap();
    assert_eq!(ids(&hits), ["w-08", "w-09"]);
    assert_eq!(
        ids(&store
            .search_by_hierarchy(&query(2, None, Some("2026-W07")))
            .await
            .unwrap()),
        ["w-07"]
    );

    // Months, across a year boundary.
    let hits = store
        .search_by_hierarchy(&query(3, Some("2025-12"), Some("2026-01")))
        .await
        .unwrap();
    assert_eq!(ids(&hits), ["m-12", "m-01"]);
    assert_eq!(
        store
            .search_by_hierarchy(&query(3, None, None))
            .await
            .unwrap()
            .len(),
        3
    );

    // top_k keeps the earliest buckets.
    let mut q = query(1, None, None);
    q.top_k = 2;
    assert_eq!(
        ids(&store.search_by_hierarchy(&q).await.unwrap()),
        ["d-0219", "d-0220"]
    );

    // Empty results, not errors, for a valid range without data.
    assert!(
        store
            .search_by_hierarchy(&query(2, Some("2020-W01"), Some("2020-W53")))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn bad_bounds_are_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), DIM).await;
    for (s, e) in [
        (Some("2026-W01"), Some("2026-02")),
        (Some("2026-03"), Some("2026-02")),
        (Some("2026-02-30"), None),
        (None, Some("last week")),
    ] {
        let err = store
            .search_by_hierarchy(&query(1, s, e))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{s:?}..{e:?}: {err}");
    }
}
