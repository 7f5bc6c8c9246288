//! `search_entities` against a brute-force reference, over every plan of the search (trigram
//! candidates, 1- and 2-character prefix terms, recency scan, the entity scan for separator
//! and NUL queries), plus stale search rows and the rebuild.

use rusqlite::Connection;
use storage_core::*;
use storage_sqlite::{SqliteBackend, SqliteConfig, Synchronous};

const WORDS: [&str; 8] = [
    "apollo", "Gemini", "mercury", "vostok", "soyuz", "shenzhou", "ARTEMIS", "voyager",
];

fn entity(key: &TenantKey, i: u64) -> EntityUpsert {
    let mut e = EntityUpsert::new(
        key.clone(),
        format!("Entity {i:04} {}", WORDS[(i % 8) as usize]),
        format!(
            "Person {i} on {} with team {} likes topic-{} 100%_done{}",
            WORDS[(i * 7 % 8) as usize],
            i % 97,
            i % 300,
            if i.is_multiple_of(50) {
                " \u{1f}sep\u{0}nul"
            } else {
                ""
            }
        ),
    );
    e.aliases = vec![format!("alias-{i}"), format!("Nick{}", i % 250)];
    if i.is_multiple_of(3) {
        e.aliases.push("北京人 \"quoted\"".into());
    }
    e
}

/// The trait's semantics, spelled out: ASCII case-insensitive literal substring of the name,
/// the content or one alias; most recently updated first; `limit`.
fn reference(all: &[Entity], query: &str, limit: usize) -> Vec<String> {
    let q = query.to_ascii_lowercase();
    let has = |s: &str| s.to_ascii_lowercase().contains(&q);
    all.iter()
        .filter(|e| has(&e.entity_name) || has(&e.content) || e.aliases.iter().any(|a| has(a)))
        .take(limit)
        .map(|e| e.id.clone())
        .collect()
}

async fn all_of(b: &SqliteBackend, key: &TenantKey) -> Vec<Entity> {
    let mut q = EntityQuery::new(key.clone());
    q.limit = MAX_LIST_LIMIT;
    b.list_entities(&q).await.unwrap()
}

const QUERIES: [&str; 26] = [
    "alias-1234",
    "ALIAS-12",
    "nick12",
    "nick1",
    "person",
    "entity 0042 ",
    "topic-29",
    "zzz-none",
    "100%_d",
    "%",
    "_",
    "e",
    "q",
    "42",
    "zq",
    "ni",
    "北京",
    "北",
    "\"quoted\"",
    "人 \"",
    "\u{1f}sep",
    "\u{0}nul",
    "p\u{1f}",
    "apollo",
    "gemini",
    "artemis with",
];

async fn check_all(b: &SqliteBackend, key: &TenantKey, what: &str) {
    let all = all_of(b, key).await;
    for query in QUERIES {
        for limit in [1, 20, 500] {
            let got: Vec<String> = b
                .search_entities(key, query, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(
                got,
                reference(&all, query, limit as usize),
                "{what}: query {query:?}, limit {limit}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_plan_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path().join("app.db"));
    config.synchronous = Synchronous::Normal;
    let b = SqliteBackend::open(config.clone()).await.unwrap();
    let key = TenantKey::new("u1", "d1", "a1");
    let other = TenantKey::new("u2", "d1", "a1");
    for i in 0..3000 {
        b.upsert_entity(&entity(&key, i)).await.unwrap();
        if i.is_multiple_of(3) {
            b.upsert_entity(&entity(&other, i)).await.unwrap();
        }
    }
    check_all(&b, &key, "fresh").await;

    // Updates move entities to the front and change their text; deletes remove them.
    for i in (0..3000).step_by(7) {
        let mut e = entity(&key, i);
        e.content = format!("rewritten {i} now about kepler");
        b.upsert_entity(&e).await.unwrap();
    }
    for i in (1..3000).step_by(11) {
        b.delete_entity(&key, &entity(&key, i).entity_name)
            .await
            .unwrap();
    }
    check_all(&b, &key, "after updates").await;
    let found = b.search_entities(&key, "KEPLER", 500).await.unwrap();
    assert_eq!(
        found.len(),
        reference(&all_of(&b, &key).await, "kepler", 500).len()
    );
    assert!(found.len() > 300);

    b.optimize_entity_search_index().await.unwrap();
    check_all(&b, &key, "after optimize").await;
    // The other tenant sees only its own rows.
    let theirs = b.search_entities(&other, "entity", 500).await.unwrap();
    assert_eq!(theirs.len(), 500);
    assert!(theirs.iter().all(|e| e.user_id == "u2"));
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_search_rows_never_leak_and_rebuild_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let b = SqliteBackend::open(SqliteConfig::new(&path)).await.unwrap();
    let key = TenantKey::user("u1");
    let other = TenantKey::user("u2");
    for i in 0..300 {
        b.upsert_entity(&entity(&key, i)).await.unwrap();
        b.upsert_entity(&entity(&other, i)).await.unwrap();
    }
    // Another writer replaces rows with INSERT OR REPLACE (no delete trigger fires without
    // recursive triggers), and the search table is garbled behind our back (rows claimed by
    // the wrong tenant, texts of other rows).
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT OR REPLACE INTO entities (id, user_id, device_id, agent_id, entity_name, content, aliases, updated_at)
             SELECT id, user_id, device_id, agent_id, entity_name, 'replaced ' || content, aliases, updated_at
             FROM entities WHERE rowid % 5 = 0;
             UPDATE entity_search SET user_id = 'u2' WHERE user_id = 'u1' AND rid % 2 = 0;
             UPDATE entity_search SET text = coalesce(
                 (SELECT o.text FROM entity_search AS o WHERE o.rid = entity_search.rid + 1), text)
             WHERE rid % 4 = 0;",
        )
        .unwrap();
    }
    for query in ["entity", "alias-12", "replaced", "nick4", "q", "42"] {
        for k in [&key, &other] {
            let got = b.search_entities(k, query, 500).await.unwrap();
            assert!(got.iter().all(|e| e.user_id == k.user_id), "{query}");
            let all = all_of(&b, k).await;
            let want = reference(&all, query, 500);
            assert!(
                got.iter().all(|e| want.contains(&e.id)),
                "no false hits for {query:?}"
            );
        }
    }
    b.rebuild_entity_search_index().await.unwrap();
    check_all(&b, &key, "after rebuild").await;
    check_all(&b, &other, "after rebuild, other tenant").await;
    b.close().await.unwrap();
}
