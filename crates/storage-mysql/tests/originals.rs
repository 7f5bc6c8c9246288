//! Behaviour of the original's MySQL backend (`mysql_backend.py`) that this backend
//! follows where it differs from the SQLite one: `get_reports` returns only `report`
//! documents, JSON columns are written as Python's `json.dumps` writes them.
//! Needs a server at `MYSQL_URL` (skipped without one unless `CI`).

mod common;

use chrono::Duration;
use common::{server_url, with_databases};
use sqlx::{Connection, Row};
use storage_core::*;

fn assert_recent(t: &Timestamp) {
    let d = (time::now() - *t).num_seconds().abs();
    assert!(d < 60, "timestamp {t} is not close to now");
}

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

/// The kit's `vault_round_trip_filters_and_update` with the MySQL `get_reports` rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vaults_round_trip_with_the_mysql_reports_rule() {
    with_databases(
        "vaults_round_trip_with_the_mysql_reports_rule",
        |dbs| async move {
            let b = dbs.open().await;
            let mut folder = NewVault::new("Folder", "", "", "vaults");
            folder.is_folder = true;
            let folder_id = b.insert_vaults(&folder).await.unwrap();
            let mut doc = NewVault::new("Weekly report", "sum", "# body\nmarkdown", "Report");
            doc.tags = Some("work,weekly".into());
            doc.parent_id = Some(folder_id);
            let doc_id = b.insert_vaults(&doc).await.unwrap();
            let note_id = b
                .insert_vaults(&NewVault::new("A note", "", "text", "Note"))
                .await
                .unwrap();
            assert!(folder_id < doc_id && doc_id < note_id, "ids increase");

            let got = b.get_vault(doc_id).await.unwrap().unwrap();
            assert_eq!(got.id, doc_id);
            assert_eq!(got.title.as_deref(), Some("Weekly report"));
            assert_eq!(got.summary.as_deref(), Some("sum"));
            assert_eq!(got.content.as_deref(), Some("# body\nmarkdown"));
            assert_eq!(got.tags.as_deref(), Some("work,weekly"));
            assert_eq!(got.parent_id, Some(folder_id));
            assert!(!got.is_folder && !got.is_deleted);
            assert_eq!(got.document_type, "Report");
            assert_eq!(got.sort_order, 0);
            assert_recent(&got.created_at);
            assert!(b.get_vault(folder_id).await.unwrap().unwrap().is_folder);

            let all = b.get_vaults(&VaultQuery::default()).await.unwrap();
            assert_eq!(
                all.iter().map(|v| v.id).collect::<Vec<_>>(),
                [note_id, doc_id, folder_id],
                "newest first"
            );
            let q = VaultQuery {
                document_type: Some("Report".into()),
                ..Default::default()
            };
            assert_eq!(b.get_vaults(&q).await.unwrap().len(), 1);
            let q = VaultQuery {
                created_after: Some(time::now() + Duration::hours(1)),
                ..Default::default()
            };
            assert!(b.get_vaults(&q).await.unwrap().is_empty());
            let q = VaultQuery {
                created_after: Some(time::now() - Duration::hours(1)),
                created_before: Some(time::now() + Duration::hours(1)),
                updated_after: Some(time::now() - Duration::hours(1)),
                ..Default::default()
            };
            assert_eq!(b.get_vaults(&q).await.unwrap().len(), 3);
            let q = VaultQuery {
                limit: 1,
                offset: 1,
                ..Default::default()
            };
            assert_eq!(b.get_vaults(&q).await.unwrap()[0].id, doc_id);
            // The original's MySQL rule: only reports (its collation also matches `Report`).
            let reports = b.get_reports(100, 0, false).await.unwrap();
            assert_eq!(reports.iter().map(|v| v.id).collect::<Vec<_>>(), [doc_id]);

            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let upd = VaultUpdate {
                title: Some("Renamed".into()),
                tags: Some(None),
                parent_id: Some(None),
                is_deleted: Some(true),
                ..Default::default()
            };
            assert!(b.update_vault(doc_id, &upd).await.unwrap());
            let got2 = b.get_vault(doc_id).await.unwrap().unwrap();
            assert_eq!(got2.title.as_deref(), Some("Renamed"));
            assert_eq!(
                got2.summary.as_deref(),
                Some("sum"),
                "unset fields are kept"
            );
            assert_eq!(got2.tags, None);
            assert_eq!(got2.parent_id, None);
            assert!(got2.is_deleted);
            assert!(got2.updated_at > got.updated_at);
            assert_eq!(got2.created_at, got.created_at);
            assert_eq!(b.get_vaults(&VaultQuery::default()).await.unwrap().len(), 2);
            let q = VaultQuery {
                is_deleted: true,
                ..Default::default()
            };
            assert_eq!(b.get_vaults(&q).await.unwrap()[0].id, doc_id);
            assert_eq!(b.get_reports(100, 0, true).await.unwrap().len(), 1);

            let mut orphan = NewVault::new("x", "", "", "vaults");
            orphan.parent_id = Some(999_999);
            let e = b.insert_vaults(&orphan).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        },
    )
    .await;
}
