//! Naive timestamps in a deployment that is not in UTC: the original wrote
//! `str(datetime.now())` in the machine's zone (here UTC+8, `storage.naive_timezone:
//! "Asia/Shanghai"`). Its rows read back at the right instant, ours are written the same way
//! (so the original reads them right), and time-range filters compare like instants.
//!
//! The zone is process-wide, so this file is a test binary of its own.

use rusqlite::{Connection, params};
use storage_core::time::{NaiveZone, parse_timestamp, set_default_naive_zone};
use storage_core::*;
use storage_sqlite::{SqliteBackend, SqliteConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_times_are_read_and_written_in_the_configured_zone() {
    let config: AppConfig = config::parse_config(
        "storage:\n  naive_timezone: Asia/Shanghai\n  backends: []\n",
        |_| None,
    )
    .unwrap();
    config.storage.apply_naive_timezone().unwrap();
    assert_eq!(
        storage_core::time::default_naive_zone().name(),
        "Asia/Shanghai"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let b = SqliteBackend::open(SqliteConfig::new(&path)).await.unwrap();
    b.close().await.unwrap();

    // Rows as the original's insert_todo / insert_tip write them in UTC+8.
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO todo (content, start_time, status, urgency, created_at)
             VALUES (?, ?, 0, 0, ?)",
            params![
                "from python",
                "2025-03-01 09:00:00",
                "2025-03-01 10:00:00.123456"
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO tips (content, created_at) VALUES (?, ?)",
            params!["tip", "2025-03-01 10:00:00.123456"],
        )
        .unwrap();
    }
    let b = SqliteBackend::open(SqliteConfig::new(&path)).await.unwrap();
    let todos = b.get_todos(&TodoQuery::default()).await.unwrap();
    assert_eq!(todos.len(), 1);
    let utc = |s: &str| parse_timestamp(s).unwrap();
    assert_eq!(todos[0].created_at, utc("2025-03-01T02:00:00.123456Z"));
    assert_eq!(todos[0].start_time, Some(utc("2025-03-01T01:00:00Z")));
    let tips = b.get_tips(&TipQuery::default()).await.unwrap();
    assert_eq!(tips[0].created_at, utc("2025-03-01T02:00:00.123456Z"));

    // Ours, written as the original would: the wall-clock time in UTC+8, no offset.
    let mut todo = NewTodo::new("from rust");
    todo.start_time = Some(utc("2025-03-01T03:30:00Z"));
    let id = b.insert_todo(&todo).await.unwrap();
    b.close().await.unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        let start: String = conn
            .query_row("SELECT start_time FROM todo WHERE id = ?", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(start, "2025-03-01 11:30:00");
    }

    // A range filter in UTC selects by instant across both writers.
    let b = SqliteBackend::open(SqliteConfig::new(&path)).await.unwrap();
    // (The original's 09:00 local is 01:00 UTC: before the bound; ours is 03:30 UTC.)
    let q = TodoQuery {
        start_time: Some(utc("2025-03-01T02:00:00Z")),
        ..TodoQuery::default()
    };
    let hits = b.get_todos(&q).await.unwrap();
    let contents: Vec<_> = hits.iter().filter_map(|t| t.content.as_deref()).collect();
    assert_eq!(contents, vec!["from rust"]);
    b.close().await.unwrap();

    // An unknown zone is a Config error naming the key.
    let bad: AppConfig =
        config::parse_config("storage:\n  naive_timezone: Mars/Olympus\n", |_| None).unwrap();
    let e = bad.storage.apply_naive_timezone().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("storage.naive_timezone"), "{e}");
    set_default_naive_zone(NaiveZone::utc());
}
