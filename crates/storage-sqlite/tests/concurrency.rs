//! Concurrent writers: no `database is locked`, no lost row.

use std::sync::Arc;

use storage_core::*;
use storage_sqlite::{SqliteBackend, SqliteConfig, Synchronous};

const TASKS: usize = 16;
const PER_TASK: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writer_tasks_on_two_handles_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path().join("app.db"));
    config.synchronous = Synchronous::Normal;
    // Two independent backends on one file behave like two processes: their writer
    // connections compete for the file lock, which busy_timeout must absorb.
    let a = Arc::new(SqliteBackend::open(config.clone()).await.unwrap());
    let b = Arc::new(SqliteBackend::open(config.clone()).await.unwrap());

    let mut handles = Vec::new();
    for t in 0..TASKS {
        let backend = if t % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        handles.push(tokio::spawn(async move {
            let key = TenantKey::new(format!("user-{t}"), "dev", "agent");
            for i in 0..PER_TASK {
                backend
                    .insert_todo(&NewTodo::new(format!("t{t}-{i}")))
                    .await?;
                backend
                    .upsert_entity(&EntityUpsert::new(
                        key.clone(),
                        format!("e{i}"),
                        format!("entity {t}/{i}"),
                    ))
                    .await?;
                if i % 10 == 0 {
                    backend.search_entities(&key, "entity", 5).await?;
                }
            }
            Result::<()>::Ok(())
        }));
    }
    for h in handles {
        h.await
            .unwrap()
            .expect("no write may fail (database is locked?)");
    }

    let todos = a
        .get_todos(&TodoQuery {
            limit: MAX_LIST_LIMIT,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(todos.len(), TASKS * PER_TASK, "lost or duplicated todos");
    let distinct: std::collections::BTreeSet<_> =
        todos.iter().filter_map(|t| t.content.clone()).collect();
    assert_eq!(distinct.len(), TASKS * PER_TASK);
    for t in 0..TASKS {
        let key = TenantKey::new(format!("user-{t}"), "dev", "agent");
        let q = EntityQuery {
            limit: 1000,
            ..EntityQuery::new(key.clone())
        };
        assert_eq!(b.list_entities(&q).await.unwrap().len(), PER_TASK);
        assert_eq!(
            a.search_entities(&key, "entity", 1000).await.unwrap().len(),
            PER_TASK
        );
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig::new(dir.path().join("app.db"));
    assert_eq!(config.synchronous, Synchronous::Full, "durable by default");
    let backend = SqliteBackend::open(config.clone()).await.unwrap();
    let id = backend.insert_tip("persist me").await.unwrap();
    // Dropped without close: committed data must still be there.
    drop(backend);
    let backend = SqliteBackend::open(config).await.unwrap();
    let tips = backend.get_tips(&TipQuery::default()).await.unwrap();
    assert_eq!(
        (tips[0].id, tips[0].content.as_deref()),
        (id, Some("persist me"))
    );
}

/// On a current-thread runtime the backend falls back to the blocking pool; concurrent tasks
/// still interleave and nothing is lost.
#[tokio::test(flavor = "current_thread")]
async fn works_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path().join("app.db"));
    config.synchronous = Synchronous::Normal;
    let backend = Arc::new(SqliteBackend::open(config).await.unwrap());
    let mut handles = Vec::new();
    for t in 0..4 {
        let b = Arc::clone(&backend);
        handles.push(tokio::spawn(async move {
            for i in 0..25 {
                b.insert_tip(&format!("{t}/{i}")).await?;
            }
            Result::<()>::Ok(())
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let tips = backend.get_tips(&TipQuery::default()).await.unwrap();
    assert_eq!(tips.len(), 100);
    backend.close().await.unwrap();
}
