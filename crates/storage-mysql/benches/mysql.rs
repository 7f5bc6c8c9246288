//! Throughput of the MySQL backend against bare sqlx running the same statements (same
//! pool settings, same transactions, same encodings), on profiles whose content comes from
//! `data/context-corpus/contexts.jsonl`.
//!
//! Run with `cargo bench -p storage-mysql` against `MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306`); results are printed and written to
//! `target/bench-results/mysql.txt`. `BENCH_SECS` sets the time per measurement (default 2).
//! Two scratch databases are created and dropped.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{Connection, Executor, Row};
use storage_core::*;
use storage_mysql::bench_support::{GET_PROFILE_SQL, UPSERT_PROFILE_SQL};
use storage_mysql::{MysqlBackend, MysqlConfig};

fn secs() -> Duration {
    let s: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

fn server_url() -> String {
    std::env::var("MYSQL_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306".into())
        .trim_end_matches('/')
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Texts of the corpus (profile contents).
fn corpus_texts() -> Vec<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/context-corpus/contexts.jsonl");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect()
}

/// `concurrency` tasks call `f` for the configured time; returns operations per second.
async fn run<F, Fut>(concurrency: usize, f: F) -> f64
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

fn profile(texts: &[String], i: u64) -> ProfileUpsert {
    let mut p = ProfileUpsert::new(
        TenantKey::user(format!("user-{}", i % 1000)),
        texts[(i % texts.len() as u64) as usize].clone(),
    );
    p.keywords = vec!["tea".into(), "walks".into()];
    p.entities = vec!["Bob".into()];
    p.importance = 5;
    p.metadata.insert("source".into(), "bench".into());
    p
}

fn now_sql() -> chrono::NaiveDateTime {
    storage_core::time::now().naive_utc()
}

/// Bare sqlx `upsert_profile`: same statement, same encodings, autocommit (as the backend).
async fn bare_upsert_profile(pool: &MySqlPool, p: &ProfileUpsert) {
    let now = now_sql();
    let keywords = serde_json::to_string(&p.keywords).unwrap();
    let entities = serde_json::to_string(&p.entities).unwrap();
    let metadata = serde_json::to_string(&p.metadata).unwrap();
    sqlx::query(UPSERT_PROFILE_SQL)
        .bind(&p.key.user_id)
        .bind(&p.key.device_id)
        .bind(&p.key.agent_id)
        .bind(&p.content)
        .bind(&p.summary)
        .bind(&keywords)
        .bind(&entities)
        .bind(p.importance)
        .bind(&metadata)
        .bind(now)
        .bind(now)
        .execute(pool)
        .await
        .unwrap();
}

/// Bare sqlx `get_profile`, decoding the same fields.
async fn bare_get_profile(pool: &MySqlPool, k: &TenantKey) -> Option<Profile> {
    let row: Option<MySqlRow> = sqlx::query(GET_PROFILE_SQL)
        .bind(&k.user_id)
        .bind(&k.device_id)
        .bind(&k.agent_id)
        .fetch_optional(pool)
        .await
        .unwrap();
    row.map(|r| {
        let s = |i: usize| -> Option<String> {
            r.try_get_unchecked::<Option<&[u8]>, _>(i)
                .unwrap()
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
        };
        let ts = |i: usize| {
            let n: chrono::NaiveDateTime = r.try_get(i).unwrap();
            chrono::TimeZone::from_utc_datetime(&chrono::Utc, &n).fixed_offset()
        };
        Profile {
            user_id: s(0).unwrap(),
            device_id: s(1).unwrap(),
            agent_id: s(2).unwrap(),
            content: s(3).unwrap_or_default(),
            summary: s(4),
            keywords: serde_json::from_str(&s(5).unwrap_or_default()).unwrap_or_default(),
            entities: serde_json::from_str(&s(6).unwrap_or_default()).unwrap_or_default(),
            importance: r.try_get::<Option<i64>, _>(7).unwrap().unwrap_or(0),
            metadata: serde_json::from_str(&s(8).unwrap_or_default()).unwrap_or_default(),
            created_at: ts(9),
            updated_at: ts(10),
        }
    })
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
            "{name:<24} ours {ours:>9.0} ops/s   bare sqlx {bare:>9.0} ops/s   ratio ours/bare {:.3}  (overhead {overhead:+.1}%)",
            ours / bare
        ));
    }
}

async fn bench(report: &mut Report) {
    let url = server_url();
    let mut admin = match sqlx::MySqlConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            report.line(format!(
                "no MySQL/MariaDB server at {url}: {e}; nothing measured"
            ));
            return;
        }
    };
    let version: String = sqlx::query("SELECT VERSION()")
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let tag = std::process::id();
    let (ours_db, bare_db) = (
        format!("oc_bench_ours_{tag}"),
        format!("oc_bench_bare_{tag}"),
    );
    let texts = Arc::new(corpus_texts());
    let avg = texts.iter().map(String::len).sum::<usize>() / texts.len().max(1);
    report.line(format!(
        "storage-mysql benchmark: server {version}, {} s per measurement, {} cores, \
         {} corpus texts as profile content (avg {avg} bytes), 1000 profile keys",
        secs().as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        texts.len()
    ));

    let config = MysqlConfig::from_url(format!("{url}/{ours_db}"));
    let ours = Arc::new(MysqlBackend::open(config.clone()).await.unwrap());
    // The bare database gets the same schema by opening it once through the backend.
    MysqlBackend::open(MysqlConfig::from_url(format!("{url}/{bare_db}")))
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let bare = MySqlPoolOptions::new()
        .max_connections(config.max_connections())
        .acquire_timeout(config.acquire_timeout())
        .test_before_acquire(config.test_before_acquire)
        .connect(&format!("{url}/{bare_db}"))
        .await
        .unwrap();

    for concurrency in [1usize, 8] {
        report.line(format!("-- {concurrency} concurrent caller(s)"));
        let o = {
            let (b, t) = (Arc::clone(&ours), Arc::clone(&texts));
            run(concurrency, move |i| {
                let (b, t) = (Arc::clone(&b), Arc::clone(&t));
                async move { b.upsert_profile(&profile(&t, i)).await.unwrap() }
            })
            .await
        };
        let r = {
            let (p, t) = (bare.clone(), Arc::clone(&texts));
            run(concurrency, move |i| {
                let (p, t) = (p.clone(), Arc::clone(&t));
                async move { bare_upsert_profile(&p, &profile(&t, i)).await }
            })
            .await
        };
        report.pair("upsert_profile", o, r);
        for i in 0..1000 {
            ours.upsert_profile(&profile(&texts, i)).await.unwrap();
            bare_upsert_profile(&bare, &profile(&texts, i)).await;
        }
        let o = {
            let b = Arc::clone(&ours);
            run(concurrency, move |i| {
                let b = Arc::clone(&b);
                async move {
                    let key = TenantKey::user(format!("user-{}", i % 1000));
                    assert!(b.get_profile(&key).await.unwrap().is_some());
                }
            })
            .await
        };
        let r = {
            let p = bare.clone();
            run(concurrency, move |i| {
                let p = p.clone();
                async move {
                    let key = TenantKey::user(format!("user-{}", i % 1000));
                    assert!(bare_get_profile(&p, &key).await.is_some());
                }
            })
            .await
        };
        report.pair("get_profile", o, r);
    }
    ours.close().await.unwrap();
    bare.close().await;
    for db in [ours_db, bare_db] {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS `{db}`"
            )))
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = std::env::args().all(|a| a != "--bench");
    if quick && std::env::var("BENCH_SECS").is_err() {
        // SAFETY: single-threaded at this point; no other thread reads the environment.
        unsafe { std::env::set_var("BENCH_SECS", "0.05") };
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut report = Report(String::new());
    rt.block_on(bench(&mut report));
    let out = target_dir().join("bench-results");
    std::fs::create_dir_all(&out).unwrap();
    let mut text = report.0;
    let _ = writeln!(text);
    std::fs::write(out.join("mysql.txt"), text).unwrap();
    println!("written to {}", out.join("mysql.txt").display());
}
