//! Naive `DATETIME` values in a deployment that is not in UTC: the original wrote
//! `datetime.now()` (UTC+8 here, `storage.naive_timezone: "+08:00"`). Its rows read back at
//! the right instant and ours are written the same way. The zone is process-wide, so this
//! file is a test binary of its own.

mod common;

use common::with_databases;
use sqlx::{Connection, Executor, Row};
use storage_core::time::{NaiveZone, parse_timestamp, set_default_naive_zone};
use storage_core::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_datetimes_are_read_and_written_in_the_configured_zone() {
    set_default_naive_zone(NaiveZone::parse("+08:00").unwrap());
    with_databases(
        "naive_datetimes_are_read_and_written_in_the_configured_zone",
        |dbs| async move {
            let config = dbs.config();
            let b = storage_mysql::MysqlBackend::open(config.clone())
                .await
                .unwrap();
            let url = config.url.as_ref().expect("url").expose().to_owned();
            let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
            // As the original's insert_tip writes it in UTC+8.
            c.execute("INSERT INTO tips (content, created_at) VALUES ('py', '2025-03-01 10:00:00.123456')")
                .await
                .unwrap();
            let tips = b.get_tips(&TipQuery::default()).await.unwrap();
            let utc = |s: &str| parse_timestamp(s).unwrap();
            assert_eq!(tips[0].created_at, utc("2025-03-01T02:00:00.123456Z"));
            assert_eq!(tips[0].created_at.offset().local_minus_utc(), 8 * 3600);

            let mut todo = NewTodo::new("rust");
            todo.start_time = Some(utc("2025-03-01T03:30:00Z"));
            let id = b.insert_todo(&todo).await.unwrap();
            let row = sqlx::query("SELECT CAST(start_time AS CHAR) FROM todo WHERE id = ?")
                .bind(id)
                .fetch_one(&mut c)
                .await
                .unwrap();
            let start: String = row.get(0);
            assert!(start.starts_with("2025-03-01 11:30:00"), "{start}");
            c.close().await.unwrap();
            b.close().await.unwrap();
        },
    )
    .await;
    set_default_naive_zone(NaiveZone::utc());
}
