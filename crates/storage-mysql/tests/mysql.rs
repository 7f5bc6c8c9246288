//! MySQL-specific behaviour beyond the conformance kit: transactions leave no partial rows,
//! hostile values and near-identical keys stay distinct, secrets stay out of `Debug` and
//! errors, concurrent writers lose nothing, an exhausted pool gives a retryable `Timeout`, and
//! migrations are versioned. Needs a server at `MYSQL_URL` (skipped without one unless `CI`).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{server_url, with_databases};
use sqlx::{Connection, Executor, Row};
use storage_core::config::Secret;
use storage_core::*;
use storage_mysql::{MysqlBackend, MysqlConfig, SCHEMA_VERSION};

async fn raw(backend: &MysqlBackend) -> sqlx::MySqlConnection {
    sqlx::MySqlConnection::connect(&format!("{}/{}", server_url(), backend.database()))
        .await
        .expect("raw connection")
}

async fn count(c: &mut sqlx::MySqlConnection, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

/// A failure in the second statement of `create_message` (the conversation touch) rolls the
/// message insert back: no partial rows, and the error is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_multi_statement_write_leaves_no_partial_rows() {
    with_databases(
        "failed_multi_statement_write_leaves_no_partial_rows",
        |dbs| async move {
            let b = dbs.open().await;
            let conv = b
                .create_conversation(&NewConversation::new("home"))
                .await
                .unwrap();
            let mut c = raw(&b).await;
            c.execute(
                "CREATE TRIGGER fail_touch BEFORE UPDATE ON conversations FOR EACH ROW
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'",
            )
            .await
            .unwrap();
            let e = b
                .create_message(&NewMessage::new(conv.id, "user", "must not stay"))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("injected failure"), "{e}");
            assert_eq!(count(&mut c, "SELECT COUNT(*) FROM messages").await, 0);
            // Same for an entity upsert whose read-back fails: nothing is left behind.
            c.execute(
                "CREATE TRIGGER fail_entity AFTER INSERT ON entities FOR EACH ROW
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'entity insert refused'",
            )
            .await
            .unwrap();
            b.upsert_entity(&EntityUpsert::new(TenantKey::user("u"), "E", "x"))
                .await
                .unwrap_err();
            assert_eq!(count(&mut c, "SELECT COUNT(*) FROM entities").await, 0);
            c.execute("DROP TRIGGER fail_touch").await.unwrap();
            c.execute("DROP TRIGGER fail_entity").await.unwrap();
            let m = b
                .create_message(&NewMessage::new(conv.id, "user", "now it works"))
                .await
                .unwrap();
            assert_eq!(
                b.get_conversation_messages(conv.id).await.unwrap()[0].id,
                m.id
            );
            c.close().await.unwrap();
        },
    )
    .await;
}

/// SQL-looking text, LIKE wildcards, quotes and backslashes are data; keys differing only in
/// case, trailing spaces or accents are different keys (as in SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_like_values_round_trip_literally() {
    with_databases(
        "injection_like_values_round_trip_literally",
        |dbs| async move {
            let b = dbs.open().await;
            let tricky = [
                "x' OR '1'='1",
                "`; DROP DATABASE mysql; --",
                "\\'; SELECT SLEEP(5); -- \\",
                "100%_!done",
                "sp here \"quoted\" \\n",
                "Bob",
                "bob",
                "Bob ",
                "Böb",
            ];
            for (i, t) in tricky.iter().enumerate() {
                let key = TenantKey::new(*t, *t, *t);
                let mut p = ProfileUpsert::new(key.clone(), *t);
                p.keywords = vec![t.to_string()];
                p.metadata.insert(t.to_string(), serde_json::json!(t));
                b.upsert_profile(&p).await.unwrap();
                let mut e = EntityUpsert::new(key.clone(), *t, format!("content {i}"));
                e.aliases = vec![format!("alias {t}")];
                e.entity_type = Some(t.to_string());
                b.upsert_entity(&e).await.unwrap();
            }
            for (i, t) in tricky.iter().enumerate() {
                let key = TenantKey::new(*t, *t, *t);
                let p = b.get_profile(&key).await.unwrap().expect("profile");
                assert_eq!((p.user_id.as_str(), p.content.as_str()), (*t, *t));
                assert_eq!(p.keywords, vec![t.to_string()]);
                assert_eq!(p.metadata[*t], serde_json::json!(t));
                let e = b.get_entity(&key, t).await.unwrap().expect("entity");
                assert_eq!(e.content, format!("content {i}"), "{t:?}");
                let q = EntityQuery {
                    entity_type: Some(t.to_string()),
                    ..EntityQuery::new(key.clone())
                };
                assert_eq!(b.list_entities(&q).await.unwrap().len(), 1, "{t:?}");
                // Searching the alias text (quotes and backslashes take the alias fallback path).
                let found = b
                    .search_entities(&key, &format!("alias {t}"), 5)
                    .await
                    .unwrap();
                assert_eq!(found.len(), 1, "search {t:?}");
            }
            assert_eq!(
                b.list_entities(&EntityQuery::new(TenantKey::new("Bob", "Bob", "Bob")))
                    .await
                    .unwrap()
                    .len(),
                1,
                "Bob, bob, `Bob ` and Böb are four tenants"
            );
            // Wildcards are literal in search; a backslash is a character.
            let k = TenantKey::user("wild");
            b.upsert_entity(&EntityUpsert::new(k.clone(), "a", "50% off"))
                .await
                .unwrap();
            b.upsert_entity(&EntityUpsert::new(k.clone(), "b", "500 off"))
                .await
                .unwrap();
            b.upsert_entity(&EntityUpsert::new(k.clone(), "c", "C:\\dir\\file"))
                .await
                .unwrap();
            let names = |v: Vec<Entity>| v.into_iter().map(|e| e.entity_name).collect::<Vec<_>>();
            assert_eq!(names(b.search_entities(&k, "0%", 10).await.unwrap()), ["a"]);
            assert_eq!(
                names(b.search_entities(&k, "5_0", 10).await.unwrap()),
                Vec::<String>::new()
            );
            assert_eq!(
                names(b.search_entities(&k, "\\DIR\\", 10).await.unwrap()),
                ["c"]
            );
            // Control characters in aliases are JSON-escaped in storage but match literally.
            let mut e = EntityUpsert::new(k.clone(), "t", "no tab here");
            e.aliases = vec!["col1\tcol2".into(), "other".into()];
            b.upsert_entity(&e).await.unwrap();
            assert_eq!(
                names(b.search_entities(&k, "1\tC", 10).await.unwrap()),
                ["t"]
            );
            assert!(
                b.search_entities(&k, "col2\",\"oth", 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "no match across aliases"
            );
            // Non-ASCII case is not folded (as in SQLite): É does not match é.
            b.upsert_entity(&EntityUpsert::new(k.clone(), "d", "École"))
                .await
                .unwrap();
            assert!(b.search_entities(&k, "école", 10).await.unwrap().is_empty());
            assert_eq!(
                names(b.search_entities(&k, "ÉCOLE", 10).await.unwrap()),
                ["d"],
                "ASCII letters fold"
            );
            assert_eq!(
                names(b.search_entities(&k, "École", 10).await.unwrap()),
                ["d"]
            );
            assert_eq!(
                names(b.search_entities(&k, "cole", 10).await.unwrap()),
                ["d"]
            );
        },
    )
    .await;
}

/// Passwords never appear in `Debug` of the config or the backend, nor in connection errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_redacted() {
    let mut c = MysqlConfig::from_url("mysql://root:hunter2-url@127.0.0.1:1/db");
    c.password = Secret::new("hunter2-field");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(dbg.contains("127.0.0.1:1"), "{dbg}");
    // Nothing listens on port 1: the error must not carry the password either.
    c.acquire_timeout_ms = 2000;
    let e = MysqlBackend::open(c).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");

    with_databases("secrets_are_redacted", |dbs| async move {
        let b = dbs.open().await;
        let dbg = format!("{b:?}");
        assert!(dbg.contains(b.database()), "{dbg}");
        // Wrong credentials: PermissionDenied, password not echoed.
        let server = server_url();
        let rest = server.split_once("://").map_or(server.as_str(), |(_, r)| r);
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let url = format!("mysql://oc_nobody:hunter2-wrong@{host}/x");
        let e = MysqlBackend::open(MysqlConfig::from_url(url))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
    })
    .await;
}

/// 16 writers on shared rows: thinking sequence numbers stay unique, counters exact, no row
/// lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_lose_nothing() {
    with_databases("sixteen_writers_lose_nothing", |dbs| async move {
        const TASKS: usize = 16;
        const PER_TASK: usize = 25;
        let b = Arc::new(dbs.open().await);
        let conv = b
            .create_conversation(&NewConversation::new("home"))
            .await
            .unwrap();
        let msg = b
            .create_message(&NewMessage::new(conv.id, "assistant", ""))
            .await
            .unwrap();
        let mut handles = Vec::new();
        for t in 0..TASKS {
            let b = Arc::clone(&b);
            handles.push(tokio::spawn(async move {
                for i in 0..PER_TASK {
                    b.add_message_thinking(&NewThinking::new(msg.id, format!("{t}/{i}")))
                        .await?;
                    b.create_message(&NewMessage::new(conv.id, "user", format!("{t}/{i}")))
                        .await?;
                    b.append_message_content(msg.id, "x", 1).await?;
                    b.save_monitoring_data_stats(&DataStatsSample {
                        data_type: "ctx".into(),
                        count: 1,
                        context_type: None,
                        metadata: None,
                        at: None,
                    })
                    .await?;
                    b.save_monitoring_token_usage(&TokenUsageSample {
                        model: "m".into(),
                        prompt_tokens: 1,
                        completion_tokens: 2,
                        total_tokens: 3,
                        at: None,
                    })
                    .await?;
                }
                Result::<()>::Ok(())
            }));
        }
        for h in handles {
            h.await.expect("task").expect("write");
        }
        let n = TASKS * PER_TASK;
        let th = b.get_message_thinking(msg.id).await.unwrap();
        let seqs: BTreeSet<i64> = th.iter().map(|t| t.sequence).collect();
        assert_eq!(seqs, (0..n as i64).collect(), "unique, gapless sequences");
        let all = b.get_conversation_messages(conv.id).await.unwrap();
        assert_eq!(all.len(), n + 1);
        let m = b.get_message(msg.id, false).await.unwrap().unwrap();
        assert_eq!((m.content.len(), m.token_count), (n, n as i64));
        let ds = b.query_monitoring_data_stats(1).await.unwrap();
        assert_eq!(ds.iter().map(|r| r.count).sum::<i64>(), n as i64);
        let tu = b.query_monitoring_token_usage(1).await.unwrap();
        assert_eq!(tu.iter().map(|r| r.total_tokens).sum::<i64>(), 3 * n as i64);
    })
    .await;
}

/// With every connection busy, a call waits `acquire_timeout_ms` and fails with a retryable
/// `Timeout`; the blocked call completes once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_gives_retryable_timeout() {
    with_databases("exhausted_pool_gives_retryable_timeout", |dbs| async move {
        let mut config = dbs.config();
        config.pool_size = 1;
        config.max_overflow = 0;
        config.acquire_timeout_ms = 300;
        let b = Arc::new(MysqlBackend::open(config).await.unwrap());
        let key = TenantKey::user("busy");
        b.upsert_profile(&ProfileUpsert::new(key.clone(), "v0"))
            .await
            .unwrap();
        // Another session locks the row, so our only connection waits inside the upsert.
        let mut locker = raw(&b).await;
        locker.execute("BEGIN").await.unwrap();
        locker
            .execute("SELECT * FROM profiles FOR UPDATE")
            .await
            .unwrap();
        let blocked = {
            let (b, key) = (Arc::clone(&b), key.clone());
            tokio::spawn(async move { b.upsert_profile(&ProfileUpsert::new(key, "v1")).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let e = b.get_profile(&key).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(e.is_retryable(), "{e:?}");
        assert!(e.to_string().contains("acquire_timeout_ms"), "{e}");
        assert!(started.elapsed() >= Duration::from_millis(250));
        locker.execute("ROLLBACK").await.unwrap();
        blocked.await.unwrap().unwrap();
        assert_eq!(b.get_profile(&key).await.unwrap().unwrap().content, "v1");
        locker.close().await.unwrap();
    })
    .await;
}

/// Opening twice migrates once; a database from a newer schema version is refused; rows
/// written by others with NULL or empty JSON columns read as empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_versioned_and_foreign_rows_read() {
    with_databases("migrations_are_versioned_and_foreign_rows_read", |dbs| async move {
        let config = dbs.config();
        let b = MysqlBackend::open(config.clone()).await.unwrap();
        let again = MysqlBackend::open(config.clone()).await.unwrap();
        let mut c = raw(&b).await;
        assert_eq!(
            count(&mut c, "SELECT MAX(version) FROM opencontext_schema_migrations").await,
            SCHEMA_VERSION
        );
        assert_eq!(
            count(&mut c, "SELECT COUNT(*) FROM opencontext_schema_migrations").await,
            SCHEMA_VERSION
        );
        c.execute(
            "INSERT INTO profiles (user_id, device_id, agent_id, content, keywords, entities, metadata, created_at, updated_at)
             VALUES ('legacy', 'default', 'default', 'old row', NULL, '[]', '{}', '2025-03-01 10:00:00', '2025-03-01 10:00:00')",
        )
        .await
        .unwrap();
        let p = again
            .get_profile(&TenantKey::user("legacy"))
            .await
            .unwrap()
            .unwrap();
        assert!(p.keywords.is_empty() && p.entities.is_empty() && p.metadata.is_empty());
        assert_eq!(p.created_at, time::parse_timestamp("2025-03-01T10:00:00Z").unwrap());
        c.execute(
            "INSERT INTO opencontext_schema_migrations VALUES (99, 'future', UTC_TIMESTAMP(6))",
        )
        .await
        .unwrap();
        let e = MysqlBackend::open(config).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        c.close().await.unwrap();
        b.close().await.unwrap();
        again.close().await.unwrap();
    })
    .await;
}

/// `ssl_mode: required` either gets TLS (MySQL 8 enables it by default) or fails with a clear
/// `Unavailable` error (a server without TLS, like a default MariaDB); never plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_required_is_enforced() {
    with_databases("ssl_required_is_enforced", |dbs| async move {
        let mut config = dbs.config();
        config.ssl_mode = storage_mysql::SslMode::Required;
        match MysqlBackend::open(config).await {
            Ok(b) => {
                b.health_check().await.unwrap();
                eprintln!("server supports TLS; connected with ssl_mode required");
            }
            Err(e) => {
                eprintln!("server without TLS: {e}");
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                assert!(e.to_string().contains("TLS"), "{e}");
            }
        }
    })
    .await;
}

/// A test that fails leaves no database behind: `Databases` drops its databases when it is
/// dropped, without `drop_all` (here: a task that panics while holding it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_leaves_no_database() {
    if !common::server_available("a_failing_test_leaves_no_database").await {
        return;
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let failed = tokio::spawn(async move {
        let dbs = common::Databases::default();
        let b = dbs.open().await;
        tx.send(b.database().to_owned()).unwrap();
        b.close().await.unwrap();
        panic!("the test body fails");
    })
    .await;
    assert!(failed.is_err(), "the task panicked");
    let name = rx.await.unwrap();
    let mut c = sqlx::MySqlConnection::connect(&server_url()).await.unwrap();
    let left: i64 =
        sqlx::query("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?")
            .bind(&name)
            .fetch_one(&mut c)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
    c.close().await.unwrap();
    assert_eq!(
        left, 0,
        "database {name} of the failed test was not dropped"
    );
}
