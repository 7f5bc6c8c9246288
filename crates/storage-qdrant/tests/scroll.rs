//! `scroll_processed_contexts` walks the native cursor: every matching context exactly once,
//! for any batch size; list paging with limit/offset covers the same set.
#![cfg(feature = "local")]

mod common;

use std::collections::HashSet;

use common::{ctx, open, vector};
use futures::TryStreamExt;
use storage_core::model::ContextType;
use storage_core::{ErrorKind, Filter, ListQuery, Scope, ScrollQuery, VectorStorageBackend};

const DIM: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_yields_every_context_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), DIM).await;
    let types = [
        ContextType::Event,
        ContextType::Knowledge,
        ContextType::Document,
    ];
    let mut expected = HashSet::new();
    for chunk in (0..3000u64).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|i| {
                let mut c = ctx(&format!("c-{i}"), types[(*i % 3) as usize], vector(DIM, *i));
                c.properties.user_id = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
                c.properties.time_bucket = Some(format!("2026-02-{:02}", 1 + i % 28));
                c
            })
            .collect();
        expected.extend(batch.iter().map(|c| c.id.clone()));
        store.batch_upsert_processed_context(&batch).await.unwrap();
    }

    for batch_size in [1, 7, 100] {
        let all: Vec<_> = store
            .scroll_processed_contexts(ScrollQuery {
                batch_size,
                ..ScrollQuery::default()
            })
            .try_collect()
            .await
            .unwrap();
        let seen: HashSet<_> = all.iter().map(|c| c.id.clone()).collect();
        assert_eq!(all.len(), 3000, "batch {batch_size}: duplicates or misses");
        assert_eq!(seen, expected, "batch {batch_size}");
    }

    // Filtered: scope natively, a string range in process; with vectors.
    let filtered: Vec<_> = store
        .scroll_processed_contexts(ScrollQuery {
            context_types: Some(vec![ContextType::Event]),
            batch_size: 7,
            filter: Some(Filter::between("time_bucket", "2026-02-10", "2026-02-12")),
            scope: Scope::user("even"),
            need_vector: true,
        })
        .try_collect()
        .await
        .unwrap();
    let want: HashSet<String> = (0..3000u64)
        .filter(|i| i % 3 == 0 && i % 2 == 0 && (9..=11).contains(&(i % 28)))
        .map(|i| format!("c-{i}"))
        .collect();
    assert_eq!(
        filtered
            .iter()
            .map(|c| c.id.clone())
            .collect::<HashSet<_>>(),
        want
    );
    assert!(
        filtered
            .iter()
            .all(|c| c.vectorize.vector.as_ref().is_some_and(|v| v.len() == DIM))
    );

    // Limit/offset paging over one type covers it exactly once.
    let mut paged = Vec::new();
    for page in 0.. {
        let q = ListQuery {
            context_types: Some(vec![ContextType::Knowledge]),
            limit: 333,
            offset: page * 333,
            ..ListQuery::default()
        };
        let mut got = store.get_all_processed_contexts(&q).await.unwrap();
        let Some(items) = got.remove(&ContextType::Knowledge) else {
            break;
        };
        paged.extend(items.into_iter().map(|c| c.id));
    }
    assert_eq!(paged.len(), 1000);
    assert_eq!(paged.iter().collect::<HashSet<_>>().len(), 1000);

    // Errors arrive as stream items.
    let err = store
        .scroll_processed_contexts(ScrollQuery {
            filter: Some(Filter::eq("keywords", "x")),
            ..ScrollQuery::default()
        })
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = store
        .scroll_processed_contexts(ScrollQuery {
            batch_size: 0,
            ..ScrollQuery::default()
        })
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
