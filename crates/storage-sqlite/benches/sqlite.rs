//! Throughput of the SQLite backend against bare rusqlite running the same statements with
//! the same pragmas, plus entity search at 10k entities.
//!
//! Run with `cargo bench -p storage-sqlite`; results are printed and written to
//! `target/bench-results/sqlite.txt`. Set `BENCH_SECS` to change the time per measurement
//! (default 2).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use storage_core::*;
use storage_sqlite::bench_support::{
    GET_PROFILE_SQL, INSERT_TODO_SQL, UPSERT_PROFILE_SQL, configure_for_bench,
};
use storage_sqlite::{SqliteBackend, SqliteConfig, Synchronous};

fn secs() -> Duration {
    let s: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

/// Runs `f` repeatedly for the configured time; returns operations per second.
fn run_sync(mut f: impl FnMut(u64)) -> f64 {
    for i in 0..50 {
        f(u64::MAX - i);
    }
    let budget = secs();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..16 {
            f(n);
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn run_async<F, Fut>(concurrency: usize, f: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    for i in 0..50 {
        f(u64::MAX - i).await;
    }
    let budget = secs();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let f = Arc::clone(&f);
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < budget {
                f((t as u64) << 40 | n).await;
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn now_sql() -> String {
    storage_core::time::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

fn profile(i: u64) -> ProfileUpsert {
    let mut p = ProfileUpsert::new(
        TenantKey::user(format!("user-{}", i % 1000)),
        "likes tea and long walks",
    );
    p.keywords = vec!["tea".into(), "walks".into()];
    p.entities = vec!["Bob".into()];
    p.importance = 5;
    p.metadata.insert("source".into(), "bench".into());
    p
}

/// Bare rusqlite `upsert_profile`: same statement, same encodings, same transaction mode.
fn bare_upsert_profile(conn: &mut Connection, p: &ProfileUpsert) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    tx.prepare_cached(UPSERT_PROFILE_SQL)
        .unwrap()
        .execute(params![
            p.key.user_id,
            p.key.device_id,
            p.key.agent_id,
            p.content,
            p.summary,
            serde_json::to_string(&p.keywords).unwrap(),
            serde_json::to_string(&p.entities).unwrap(),
            p.importance,
            serde_json::to_string(&p.metadata).unwrap(),
            now_sql(),
        ])
        .unwrap();
    tx.commit().unwrap();
}

/// Bare rusqlite `get_profile`, decoding the same fields.
fn bare_get_profile(conn: &Connection, k: &TenantKey) -> Option<Profile> {
    conn.prepare_cached(GET_PROFILE_SQL)
        .unwrap()
        .query_row(params![k.user_id, k.device_id, k.agent_id], |r| {
            let json = |i: usize| r.get::<_, Option<String>>(i).map(|s| s.unwrap_or_default());
            let ts = |i: usize| {
                r.get::<_, String>(i)
                    .map(|s| storage_core::time::parse_timestamp(&s).expect("timestamp"))
            };
            Ok(Profile {
                user_id: r.get(0)?,
                device_id: r.get(1)?,
                agent_id: r.get(2)?,
                content: r.get(3)?,
                summary: r.get(4)?,
                keywords: serde_json::from_str(&json(5)?).unwrap_or_default(),
                entities: serde_json::from_str(&json(6)?).unwrap_or_default(),
                importance: r.get(7)?,
                metadata: serde_json::from_str(&json(8)?).unwrap_or_default(),
                created_at: ts(9)?,
                updated_at: ts(10)?,
            })
        })
        .optional()
        .unwrap()
}

fn bare_insert_todo(conn: &mut Connection, t: &NewTodo) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let now = now_sql();
    tx.prepare_cached(INSERT_TODO_SQL)
        .unwrap()
        .execute(params![
            t.content,
            now,
            None::<String>,
            t.status,
            t.urgency,
            t.assignee,
            t.reason,
            now
        ])
        .unwrap();
    tx.commit().unwrap();
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

struct Report(String);

impl Report {
    fn line(&mut self, s: String) {
        println!("{s}");
        self.0.push_str(&s);
        self.0.push('\n');
    }

    fn pair(&mut self, name: &str, ours: f64, bare: f64) {
        let overhead = (bare / ours - 1.0) * 100.0;
        self.line(format!(
            "{name:<28} ours {ours:>10.0} ops/s   bare rusqlite {bare:>10.0} ops/s   ratio ours/bare {:.3}  (overhead {overhead:+.1}%)",
            ours / bare
        ));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = std::env::args().any(|a| a == "--test" || a == "--list")
        || std::env::args().all(|a| a != "--bench");
    if quick && std::env::var("BENCH_SECS").is_err() {
        // SAFETY: single-threaded at this point; no other thread reads the environment.
        unsafe { std::env::set_var("BENCH_SECS", "0.05") };
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir_in(target_dir()).unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let mut report = Report(String::new());
    report.line(format!(
        "storage-sqlite benchmark ({} s per measurement, {} cores, database in {})",
        secs().as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        dir.path().display()
    ));

    // BENCH_ONLY=search skips the profile/todo section (for iterating on search).
    let syncs: &[Synchronous] = if std::env::var("BENCH_ONLY").as_deref() == Ok("search") {
        &[]
    } else {
        &[Synchronous::Full, Synchronous::Normal]
    };
    for &sync in syncs {
        let tag = format!("{sync:?}").to_lowercase();
        let mut config = SqliteConfig::new(dir.path().join(format!("ours-{tag}.db")));
        config.synchronous = sync;
        let ours = Arc::new(rt.block_on(SqliteBackend::open(config.clone())).unwrap());
        // Bare rusqlite on a second file with our schema (created by opening it once).
        let bare_path = dir.path().join(format!("bare-{tag}.db"));
        let mut bare_cfg = config.clone();
        bare_cfg.path = bare_path.clone();
        rt.block_on(async {
            SqliteBackend::open(bare_cfg.clone())
                .await
                .unwrap()
                .close()
                .await
                .unwrap()
        });
        let mut bare = Connection::open(&bare_path).unwrap();
        configure_for_bench(&bare, &bare_cfg).unwrap();
        bare.set_prepared_statement_cache_capacity(96);

        report.line(format!("-- synchronous={tag}"));
        let o = {
            let b = Arc::clone(&ours);
            rt.block_on(run_async(1, move |i| {
                let b = Arc::clone(&b);
                async move { b.upsert_profile(&profile(i)).await.unwrap() }
            }))
        };
        let r = run_sync(|i| bare_upsert_profile(&mut bare, &profile(i)));
        report.pair("upsert_profile", o, r);
        // Make sure every key read below exists in both files.
        rt.block_on(async {
            for i in 0..1000 {
                ours.upsert_profile(&profile(i)).await.unwrap();
            }
        });
        for i in 0..1000 {
            bare_upsert_profile(&mut bare, &profile(i));
        }

        let o = {
            let b = Arc::clone(&ours);
            rt.block_on(run_async(1, move |i| {
                let b = Arc::clone(&b);
                async move {
                    let key = TenantKey::user(format!("user-{}", i % 1000));
                    assert!(b.get_profile(&key).await.unwrap().is_some());
                }
            }))
        };
        let r = run_sync(|i| {
            let key = TenantKey::user(format!("user-{}", i % 1000));
            assert!(bare_get_profile(&bare, &key).is_some());
        });
        report.pair("get_profile", o, r);
        let o4 = {
            let b = Arc::clone(&ours);
            rt.block_on(run_async(4, move |i| {
                let b = Arc::clone(&b);
                async move {
                    let key = TenantKey::user(format!("user-{}", i % 1000));
                    assert!(b.get_profile(&key).await.unwrap().is_some());
                }
            }))
        };
        report.line(format!(
            "{:<28} ours {o4:>10.0} ops/s   (4 concurrent callers)",
            "get_profile x4"
        ));

        let o = {
            let b = Arc::clone(&ours);
            rt.block_on(run_async(1, move |i| {
                let b = Arc::clone(&b);
                async move {
                    b.insert_todo(&NewTodo::new(format!("todo {i}")))
                        .await
                        .unwrap();
                }
            }))
        };
        let r = run_sync(|i| bare_insert_todo(&mut bare, &NewTodo::new(format!("todo {i}"))));
        report.pair("insert_todo", o, r);
        rt.block_on(ours.close()).unwrap();
    }

    search_section(&rt, dir.path(), &mut report);

    let out = target_dir().join("bench-results");
    std::fs::create_dir_all(&out).unwrap();
    let mut text = report.0;
    let _ = writeln!(text);
    std::fs::write(out.join("sqlite.txt"), text).unwrap();
    println!("written to {}", out.join("sqlite.txt").display());
}

/// Entities of the search benchmark: `n` per tenant, names, contents and aliases with words
/// of varied frequency.
fn entity(key: &TenantKey, i: u64) -> EntityUpsert {
    const WORDS: [&str; 8] = [
        "apollo", "gemini", "mercury", "vostok", "soyuz", "shenzhou", "artemis", "voyager",
    ];
    let mut e = EntityUpsert::new(
        key.clone(),
        format!("Entity {i:05} {}", WORDS[(i % 8) as usize]),
        format!(
            "Person number {i} who worked on the {} programme with team {} and likes topic-{}",
            WORDS[(i * 7 % 8) as usize],
            i % 97,
            i % 1000
        ),
    );
    e.aliases = vec![format!("alias-{i}"), format!("nick{}", i % 500)];
    e.entity_type = Some("person".into());
    e
}

/// The queries of the search benchmark: label, query text.
const SEARCH_QUERIES: [(&str, &str); 9] = [
    ("selective (1 hit)", "alias-4242"),
    ("mixed case (1 hit)", "ENTITY 04242"),
    ("220 hits", "nick42"),
    ("dense (every row)", "person"),
    ("no hit (8 chars)", "xyz-none"),
    ("2 chars, no hit", "zq"),
    ("2 chars, 11% rows", "42"),
    ("2 chars, dense", "ni"),
    ("1 char, no hit", "q"),
];

/// The original's statement: LIKE over the three columns, sorted, no index help.
const ORIGINAL_LIKE_SQL: &str = "SELECT id FROM entities WHERE user_id = ?1 AND device_id = ?2 AND agent_id = ?3
     AND (entity_name LIKE ?4 OR content LIKE ?4 OR aliases LIKE ?4) ORDER BY updated_at DESC LIMIT 20";

/// Variants measured through bare rusqlite on the same file (ids only, no row decoding).
const VARIANTS: [(&str, &str); 3] = [
    (
        "v2: LIKE, tenant newest first",
        "SELECT e.id FROM entities AS e INDEXED BY idx_entities_tenant_updated
         WHERE e.user_id = ?1 AND e.device_id = ?2 AND e.agent_id = ?3
         AND (e.entity_name LIKE ?4 ESCAPE '\\' OR e.content LIKE ?4 ESCAPE '\\' OR e.aliases LIKE ?4 ESCAPE '\\')
         ORDER BY e.updated_at DESC, e.rowid DESC LIMIT 20",
    ),
    (
        "v3 scan only: instr(search text)",
        "SELECT rid FROM entity_search WHERE user_id = ?1 AND device_id = ?2 AND agent_id = ?3
         AND instr(text, lower(?5)) > 0 ORDER BY updated_at DESC, rid DESC LIMIT 20",
    ),
    (
        "v3 trigram only: all candidates",
        "SELECT s.rid FROM entity_search_fts AS f CROSS JOIN entity_search AS s ON s.rid = f.rowid
         WHERE f.entity_search_fts MATCH ?6 AND s.user_id = ?1 AND s.device_id = ?2 AND s.agent_id = ?3
         ORDER BY s.updated_at DESC, s.rid DESC LIMIT 20",
    ),
];

fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn search_section(rt: &tokio::runtime::Runtime, dir: &std::path::Path, report: &mut Report) {
    const PER_TENANT: u64 = 10_000;
    let mut config = SqliteConfig::new(dir.join("search.db"));
    config.synchronous = Synchronous::Normal;
    let ours = Arc::new(rt.block_on(SqliteBackend::open(config.clone())).unwrap());
    let key = TenantKey::user("searcher");
    let other = TenantKey::new("someone-else", "phone", "agent");
    let load = Instant::now();
    rt.block_on(async {
        for i in 0..PER_TENANT {
            ours.upsert_entity(&entity(&key, i)).await.unwrap();
            // A second tenant with the same texts: results must stay tenant-scoped.
            ours.upsert_entity(&entity(&other, i)).await.unwrap();
        }
    });
    let load = load.elapsed().as_secs_f64();
    report.line(format!(
        "-- search_entities, {PER_TENANT} entities per tenant, 2 tenants, limit 20 \
         (load: {:.0} upserts/s with the search triggers)",
        2.0 * PER_TENANT as f64 / load
    ));

    // Expected hit counts, from the original's LIKE scan (plus the per-alias semantics check).
    let bare = Connection::open(&config.path).unwrap();
    configure_for_bench(&bare, &config).unwrap();
    let expected = |q: &str| -> usize {
        let mut stmt = bare
            .prepare_cached(&ORIGINAL_LIKE_SQL.replace("LIKE ?4", "LIKE ?4 ESCAPE '\\'"))
            .unwrap();
        stmt.query_map(
            params![key.user_id, key.device_id, key.agent_id, like_pattern(q)],
            |r| r.get::<_, String>(0),
        )
        .unwrap()
        .count()
    };
    let measure = |label: &str, report: &mut Report| {
        for (name, query) in SEARCH_QUERIES {
            let want = expected(query);
            let got = rt.block_on(ours.search_entities(&key, query, 20)).unwrap();
            assert_eq!(got.len(), want, "hits of {query:?}");
            assert!(got.iter().all(|e| e.user_id == key.user_id));
            assert!(got.windows(2).all(|w| w[0].updated_at >= w[1].updated_at));
            let o = {
                let b = Arc::clone(&ours);
                let key = key.clone();
                rt.block_on(run_async(1, move |_| {
                    let b = Arc::clone(&b);
                    let key = key.clone();
                    async move {
                        b.search_entities(&key, query, 20).await.unwrap();
                    }
                }))
            };
            report.line(format!(
                "search {name:<22} ours {o:>10.0} ops/s   {want:>2} returned   query {query:?} ({label})"
            ));
        }
    };
    measure("index segments as written", report);
    rt.block_on(ours.optimize_entity_search_index()).unwrap();
    measure("after optimize_entity_search_index", report);

    report.line("-- search variants through bare rusqlite on the same file (ids only)".into());
    let mut variants = vec![("original: LIKE scan", ORIGINAL_LIKE_SQL)];
    variants.extend(VARIANTS);
    for (variant, sql) in variants {
        for (name, query) in [SEARCH_QUERIES[0], SEARCH_QUERIES[2], SEARCH_QUERIES[5]] {
            let phrase = format!("\"{}\"", query.to_ascii_lowercase().replace('"', "\"\""));
            let r = run_sync(|_| {
                let mut stmt = bare.prepare_cached(sql).unwrap();
                let all = params![
                    key.user_id,
                    key.device_id,
                    key.agent_id,
                    like_pattern(query),
                    query,
                    phrase
                ];
                let n = stmt.parameter_count();
                let n = stmt
                    .query_map(&all[..n], |r| r.get::<_, rusqlite::types::Value>(0))
                    .unwrap()
                    .count();
                std::hint::black_box(n);
            });
            report.line(format!(
                "search {name:<22} bare {r:>10.0} ops/s   {variant} (query {query:?})"
            ));
        }
    }
    rt.block_on(ours.close()).unwrap();
}
