//! Throughput of `RedisCache` beside bare `redis` commands on one multiplexed connection:
//! `get`, `set` and `rpush_expire_llen` at 1 and 32 concurrent tasks.
//!
//! Run with `cargo bench -p storage-cache`; results are printed and written to
//! `target/bench-results/cache.txt`. The server is `REDIS_URL` (default
//! `redis://127.0.0.1:6379`); keys live under a prefix unique to the run and are removed at
//! the end. Set `BENCH_SECS` to change the time per measurement (default 2). The machine is
//! shared, so each measurement is split into [`ROUNDS`] rounds that alternate ours and bare
//! (order flipped every round); the report gives the median and the range of the rounds.

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use storage_cache::{Cache, RedisCache, RedisCacheConfig};

type Op = Arc<dyn Fn(usize, u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

const VALUE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const KEYS_PER_TASK: u64 = 100;
const ROUNDS: u32 = 5;
const RPUSH_EXPIRE_LLEN_LUA: &str = "\
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return redis.call('LLEN', KEYS[1])";

fn secs() -> Duration {
    let s: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Runs `op` in `tasks` concurrent tasks for `duration`; returns operations/s.
async fn measure(tasks: usize, duration: Duration, op: Op) -> f64 {
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    op(t, n).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.expect("bench task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

struct Report(String);

impl Report {
    fn line(&mut self, s: String) {
        println!("{s}");
        self.0.push_str(&s);
        self.0.push('\n');
    }

    fn pair(&mut self, name: &str, tasks: usize, ours: &mut [f64], bare: &mut [f64]) {
        let (o, o_lo, o_hi) = median(ours);
        let (b, b_lo, b_hi) = median(bare);
        self.line(format!(
            "{name:<18} tasks {tasks:>2}   ours {o:>7.0} ops/s [{o_lo:>6.0}..{o_hi:>6.0}]   \
             bare redis {b:>7.0} ops/s [{b_lo:>6.0}..{b_hi:>6.0}]   ratio ours/bare {:.3}",
            o / b
        ));
    }
}

/// Median, minimum and maximum.
fn median(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn ours(cache: &Arc<RedisCache>, what: &'static str) -> Op {
    let cache = Arc::clone(cache);
    Arc::new(move |t, i| {
        let cache = Arc::clone(&cache);
        Box::pin(async move {
            match what {
                "get" => {
                    let v = cache.get(&format!("k{t}:{}", i % KEYS_PER_TASK)).await;
                    assert!(v.expect("get").is_some());
                }
                "set" => {
                    let key = format!("k{t}:{}", i % KEYS_PER_TASK);
                    cache.set(&key, VALUE, Some(600)).await.expect("set");
                }
                _ => {
                    let len = cache
                        .rpush_expire_llen(&format!("q{t}"), VALUE, 600)
                        .await
                        .expect("rpush_expire_llen");
                    assert!(len > 0);
                }
            }
        })
    })
}

fn bare(conn: &MultiplexedConnection, prefix: &str, what: &'static str) -> Op {
    let conn = conn.clone();
    let prefix: Arc<str> = Arc::from(prefix);
    let script = Arc::new(redis::Script::new(RPUSH_EXPIRE_LLEN_LUA));
    Arc::new(move |t, i| {
        let mut conn = conn.clone();
        let prefix = Arc::clone(&prefix);
        let script = Arc::clone(&script);
        Box::pin(async move {
            match what {
                "get" => {
                    let v: Option<String> = redis::cmd("GET")
                        .arg(format!("{prefix}k{t}:{}", i % KEYS_PER_TASK))
                        .query_async(&mut conn)
                        .await
                        .expect("GET");
                    assert!(v.is_some());
                }
                "set" => {
                    let _: () = redis::cmd("SET")
                        .arg(format!("{prefix}k{t}:{}", i % KEYS_PER_TASK))
                        .arg(VALUE)
                        .arg("EX")
                        .arg(600)
                        .query_async(&mut conn)
                        .await
                        .expect("SET");
                }
                _ => {
                    let len: u64 = script
                        .key(format!("{prefix}q{t}"))
                        .arg(VALUE)
                        .arg(600)
                        .invoke_async(&mut conn)
                        .await
                        .expect("EVALSHA");
                    assert!(len > 0);
                }
            }
        })
    })
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
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("storage-cache-bench:{}:", std::process::id());
    let config = RedisCacheConfig {
        key_prefix: prefix.clone(),
        ..RedisCacheConfig::from_url(&url).expect("REDIS_URL")
    };
    let cache = match RedisCache::connect(config).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            println!("SKIPPED: no Redis server at {url}: {e}");
            return;
        }
    };
    let client = redis::Client::open(url.as_str()).expect("REDIS_URL");
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("bare connection");

    let mut report = Report(String::new());
    report.line(format!(
        "storage-cache benchmark: {url}, {:?} per measurement in {ROUNDS} alternating rounds \
         (median [min..max]), 64-byte values, {} keys per task",
        secs(),
        KEYS_PER_TASK
    ));
    report.line(
        "ours: RedisCache (deadpool pool, max_connections 50); bare: redis crate, one \
         multiplexed connection shared by all tasks"
            .to_owned(),
    );
    // Populate the keys `get` reads.
    for t in 0..32 {
        for i in 0..KEYS_PER_TASK {
            cache
                .set(&format!("k{t}:{i}"), VALUE, Some(600))
                .await
                .expect("populate");
        }
    }
    for what in ["set", "get", "rpush_expire_llen"] {
        for tasks in [1, 32] {
            let round = secs() / ROUNDS;
            let (mut o, mut b) = (Vec::new(), Vec::new());
            for r in 0..ROUNDS {
                if r % 2 == 0 {
                    o.push(measure(tasks, round, ours(&cache, what)).await);
                    b.push(measure(tasks, round, bare(&conn, &prefix, what)).await);
                } else {
                    b.push(measure(tasks, round, bare(&conn, &prefix, what)).await);
                    o.push(measure(tasks, round, ours(&cache, what)).await);
                }
            }
            report.pair(what, tasks, &mut o, &mut b);
        }
    }
    let removed = cache.flush_prefix().await.expect("cleanup");
    report.line(format!("removed {removed} benchmark keys"));

    let out = target_dir().join("bench-results");
    std::fs::create_dir_all(&out).expect("bench-results directory");
    let mut text = report.0;
    let _ = writeln!(text);
    std::fs::write(out.join("cache.txt"), text).expect("write results");
    println!("written to {}", out.join("cache.txt").display());
}
