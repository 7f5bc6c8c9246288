//! Reviewer findings (review9): timestamps MariaDB cannot hold are accepted by `insert_todo`
//! and read back as `None` (silent loss). Now refused with `InvalidInput` (see `storage_core::time::validate_timestamp`).
mod common;

use sqlx::{Connection, Row};
use storage_core::*;

async fn round_trip(text: &str) {
    let t = chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%:z"))
        .unwrap();
    let text = text.to_owned();
    common::with_databases("review_timestamps", move |dbs| async move {
        let cfg = dbs.config();
        let b = storage_mysql::MysqlBackend::open(cfg.clone())
            .await
            .unwrap();
        let mut todo = NewTodo::new("t");
        todo.start_time = Some(t);
        todo.end_time = Some(t);
        let result = b.insert_todo(&todo).await;
        let mut c = sqlx::MySqlConnection::connect(cfg.url.as_ref().unwrap().expose())
            .await
            .unwrap();
        let row = sqlx::query(
            "SELECT CAST(start_time AS CHAR), CAST(end_time AS CHAR), @@SESSION.sql_mode FROM todo",
        )
        .fetch_optional(&mut c)
        .await
        .unwrap();
        if let Some(row) = &row {
            println!(
                "{text}: insert {:?}; raw start_time {:?} end_time {:?}; sql_mode {:?}",
                result.as_ref().map_err(|e| e.to_string()),
                row.try_get::<Option<String>, _>(0).unwrap(),
                row.try_get::<Option<String>, _>(1).unwrap(),
                row.try_get::<Option<String>, _>(2).unwrap()
            );
        }
        match result {
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}"),
            Ok(id) => {
                let got = b.get_todos(&TodoQuery::default()).await.unwrap();
                let got = got.iter().find(|x| x.id == id).unwrap();
                assert_eq!(
                    got.start_time,
                    Some(storage_core::time::truncate_to_micros(&t)),
                    "{text}: accepted, so it must read back"
                );
            }
        }
    })
    .await;
}

/// `9999-12-31T23:59:59.999999-12:00` is year 10000 in UTC: accepted, read back as `None`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_10000_instant_is_refused_or_kept() {
    round_trip("9999-12-31T23:59:59.999999-12:00").await;
}

/// A leap second (`23:59:60.5`, which chrono represents): accepted, read back as `None`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leap_second_is_refused_or_kept() {
    round_trip("2016-12-31T23:59:60.5Z").await;
}

/// A negative year (chrono allows it; the parser does not, but a caller can build one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_year_is_refused_or_kept() {
    let t = chrono::NaiveDate::from_ymd_opt(-1, 6, 15)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .fixed_offset();
    round_trip(&t.to_rfc3339()).await;
}
