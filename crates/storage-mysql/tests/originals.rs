//! Behaviour of the original's MySQL backend (`mysql_backend.py`) that this backend
//! follows where it differs from the SQLite one: `get_reports` returns only `report`
//! documents, JSON columns are written as Python's `json.dumps` writes them.
//! Needs a server at `MYSQL_URL` (skipped without one unless `CI`).

mod common;

use common::{server_url, with_databases};
use sqlx::{Connection, Row};
use storage_core::*;

/// `get_reports` is the original MySQL backend's `get_vaults(document_type="report")`:
/// `Report`/`report`/`REPORT` (its `utf8mb4_unicode_ci` column), never `Note` nor `vaults`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reports_returns_only_report_documents() {
    with_databases(
        "get_reports_returns_only_report_documents",
        |dbs| async move {
            let b = dbs.open().await;
            let mut ids = Vec::new();
            for t in [
                "report",
                "Report",
                "REPORT",
                "Note",
                "vaults",
                "reports",
                "daily_report",
            ] {
                ids.push(b.insert_vaults(&NewVault::new(t, "", "", t)).await.unwrap());
            }
            let got: Vec<String> = b
                .get_reports(100, 0, false)
                .await
                .unwrap()
                .into_iter()
                .map(|v| v.document_type)
                .collect();
            assert_eq!(
                got,
                ["REPORT", "Report", "report"],
                "newest first, reports only"
            );
            assert!(b.get_reports(100, 0, true).await.unwrap().is_empty());
            assert_eq!(
                b.get_reports(1, 1, false).await.unwrap()[0].document_type,
                "Report"
            );
            let upd = VaultUpdate {
                is_deleted: Some(true),
                ..Default::default()
            };
            assert!(b.update_vault(ids[0], &upd).await.unwrap());
            assert_eq!(b.get_reports(100, 0, true).await.unwrap()[0].id, ids[0]);
        },
    )
    .await;
}

/// JSON columns hold what the original writes (`json.dumps(v, ensure_ascii=False)`: `", "`
/// and `": "` separators, non-ASCII as is), so rows written here and by the original look
/// the same to anything reading the text (the original's `LIKE` on `aliases` included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_columns_are_written_like_pythons_json_dumps() {
    with_databases(
        "json_columns_are_written_like_pythons_json_dumps",
        |dbs| async move {
            let b = dbs.open().await;
            let mut e = EntityUpsert::new(TenantKey::user("u"), "Tea", "green");
            e.aliases = vec!["茶".into(), "cha".into()];
            e.keywords = vec!["drink".into(), "leaf".into()];
            b.upsert_entity(&e).await.unwrap();
            let mut c =
                sqlx::MySqlConnection::connect(&format!("{}/{}", server_url(), b.database()))
                    .await
                    .unwrap();
            let row =
                sqlx::query("SELECT CAST(aliases AS CHAR), CAST(keywords AS CHAR) FROM entities")
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            let (aliases, keywords): (String, String) = (row.get(0), row.get(1));
            assert_eq!(aliases, r#"["茶", "cha"]"#);
            assert_eq!(keywords, r#"["drink", "leaf"]"#);
            c.close().await.unwrap();
        },
    )
    .await;
}
