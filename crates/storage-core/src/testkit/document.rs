//! Document backend conformance kit.
//!
//! A backend's test file implements [`DocumentKitHarness`] and invokes
//! [`crate::document_conformance_tests!`], which expands to a module `document_conformance`
//! with one `#[tokio::test]` per case, so a failure names its case:
//!
//! ```text
//! struct Harness { dir: tempfile::TempDir }
//! #[async_trait::async_trait]
//! impl storage_core::testkit::document::DocumentKitHarness for Harness {
//!     async fn fresh(&self) -> Arc<dyn DocumentStorageBackend> { ... }
//! }
//! storage_core::document_conformance_tests!(Harness::new());
//! ```
//!
//! The calling crate needs `tokio` (features `macros`, `rt-multi-thread`) as a dev-dependency.
//! Every case is a public function of [`cases`] taking the harness, so a backend can also call
//! one directly.

use std::sync::Arc;

use async_trait::async_trait;

use crate::document::DocumentStorageBackend;

/// Creates empty backends for the kit's cases.
#[async_trait]
pub trait DocumentKitHarness: Send + Sync {
    /// A new, empty backend that shares no data with any other (a fresh file, a fresh
    /// database...). It must stay usable until the harness is dropped.
    async fn fresh(&self) -> Arc<dyn DocumentStorageBackend>;
}

/// Expands to a module `document_conformance` with one `#[tokio::test]` per case of
/// [`cases`]; `$harness` is an expression building a [`DocumentKitHarness`], evaluated once per
/// test (items of the calling module are in scope).
#[macro_export]
macro_rules! document_conformance_tests {
    ($harness:expr) => {
        $crate::for_each_document_case!($crate::__document_conformance_cases; $harness);
    };
}

/// Calls `$callback!($($args)* ; case_a, case_b, ...)` with the name of every document
/// conformance case (functions of [`cases`]): the one list of the kit, for backends that wrap
/// each case themselves (for example to skip when their server is absent), as
/// [`crate::for_each_vector_case!`] does for the vector kit.
#[macro_export]
macro_rules! for_each_document_case {
    (@list $callback:path; $($args:tt)*) => {
        $callback!(
            $($args)*
            name_and_type,
            profile_round_trip,
            profile_upsert_is_idempotent_and_keeps_created_at,
            missing_ids_are_none_or_false,
            tenant_isolation,
            entity_round_trip_and_upsert_keeps_id,
            search_entities_matches_name_content_aliases,
            list_entities_pages_without_gaps,
            bad_input_is_rejected_and_nothing_written,
            hostile_values_are_stored_verbatim,
            metadata_deeper_than_the_reader_allows_is_refused,
            vault_round_trip_filters_and_update,
            todo_round_trip_order_and_status,
            tips_round_trip_and_paging,
            conversation_lifecycle,
            message_lifecycle,
            message_thinking_sequence,
            monitoring_aggregates,
            concurrent_writers_lose_nothing,
            closed_backend_refuses_calls,
        );
    };
    ($callback:ident) => {
        $crate::for_each_document_case!(@list $callback; );
    };
    ($callback:path; $($args:tt)*) => {
        $crate::for_each_document_case!(@list $callback; $($args)* ;);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __document_conformance_cases {
    ($harness:expr; $($case:ident),* $(,)?) => {
        mod document_conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let harness = $harness;
                    $crate::testkit::document::cases::$case(&harness).await;
                }
            )*
        }
    };
}

/// The cases. Each builds its own backend(s) from the harness and panics on a violation.
pub mod cases {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use chrono::Duration;
    use serde_json::json;

    use super::DocumentKitHarness;
    use crate::document::DocumentStorageBackend;
    use crate::error::{ErrorKind, Result};
    use crate::model::JsonMap;
    use crate::model::records::*;
    use crate::time::{Timestamp, parse_timestamp};
    use crate::{StorageType, time};

    type Backend = Arc<dyn DocumentStorageBackend>;

    fn ts(s: &str) -> Timestamp {
        parse_timestamp(s).expect("valid test timestamp")
    }

    fn meta(v: serde_json::Value) -> JsonMap {
        v.as_object().expect("object").clone()
    }

    #[track_caller]
    fn assert_invalid<T: std::fmt::Debug>(r: Result<T>, needle: &str) {
        match r {
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    ErrorKind::InvalidInput,
                    "expected InvalidInput, got {e}"
                );
                assert!(
                    e.to_string().contains(needle),
                    "error {e:?} should name {needle:?}"
                );
            }
            Ok(v) => panic!("expected InvalidInput naming {needle:?}, got Ok({v:?})"),
        }
    }

    /// Whether `t` is within a minute of now (timestamps the backend stamps itself).
    #[track_caller]
    fn assert_recent(t: &Timestamp) {
        let d = (time::now() - *t).num_seconds().abs();
        assert!(d < 60, "timestamp {t} is not close to now");
    }

    fn full_profile(key: TenantKey) -> ProfileUpsert {
        ProfileUpsert {
            key,
            content: "Likes green tea 🍵 and 长城".into(),
            summary: Some("tea person".into()),
            keywords: vec!["tea".into(), "茶".into()],
            entities: vec!["Alice".into()],
            importance: 7,
            metadata: meta(
                json!({"source": "chat", "nested": {"n": 1, "list": [1, "two", null]}, "f": 1.5}),
            ),
        }
    }

    /// `name()` is non-empty, `storage_type()` is document, `health_check` succeeds.
    pub async fn name_and_type(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        assert!(!b.name().is_empty());
        assert_eq!(b.storage_type(), StorageType::DocumentDb);
        b.health_check()
            .await
            .expect("health_check on a fresh backend");
    }

    /// Every field of a profile survives a round trip.
    pub async fn profile_round_trip(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let key = TenantKey::new("user-1", "laptop", "agent-x");
        let p = full_profile(key.clone());
        b.upsert_profile(&p).await.unwrap();
        let got = b.get_profile(&key).await.unwrap().expect("profile stored");
        assert_eq!(got.key(), key);
        assert_eq!(got.content, p.content);
        assert_eq!(got.summary, p.summary);
        assert_eq!(got.keywords, p.keywords);
        assert_eq!(got.entities, p.entities);
        assert_eq!(got.importance, 7);
        assert_eq!(got.metadata, p.metadata);
        assert_recent(&got.created_at);
        assert_eq!(got.created_at, got.updated_at);

        // Empty optional fields stay empty (not "null" strings).
        let key2 = TenantKey::user("user-2");
        b.upsert_profile(&ProfileUpsert::new(key2.clone(), ""))
            .await
            .unwrap();
        let got = b.get_profile(&key2).await.unwrap().unwrap();
        assert_eq!(
            (got.device_id.as_str(), got.agent_id.as_str()),
            ("default", "default")
        );
        assert_eq!(got.content, "");
        assert_eq!(got.summary, None);
        assert!(got.keywords.is_empty() && got.entities.is_empty() && got.metadata.is_empty());
    }

    /// Upserting replaces every field, keeps `created_at`, and is idempotent.
    pub async fn profile_upsert_is_idempotent_and_keeps_created_at(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let key = TenantKey::user("u");
        let first = full_profile(key.clone());
        b.upsert_profile(&first).await.unwrap();
        let before = b.get_profile(&key).await.unwrap().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut second = ProfileUpsert::new(key.clone(), "now prefers coffee");
        second.importance = 2;
        b.upsert_profile(&second).await.unwrap();
        b.upsert_profile(&second).await.unwrap();
        let after = b.get_profile(&key).await.unwrap().unwrap();
        assert_eq!(after.content, "now prefers coffee");
        assert_eq!(after.summary, None, "upsert replaces, it does not merge");
        assert!(after.keywords.is_empty());
        assert!(after.metadata.is_empty());
        assert_eq!(after.importance, 2);
        assert_eq!(after.created_at, before.created_at);
        assert!(after.updated_at > before.updated_at);
        assert!(b.delete_profile(&key).await.unwrap());
        assert!(!b.delete_profile(&key).await.unwrap());
        assert!(b.get_profile(&key).await.unwrap().is_none());
    }

    /// Absent records are `None`/`false`/empty, never errors.
    pub async fn missing_ids_are_none_or_false(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let key = TenantKey::user("nobody");
        assert!(b.get_profile(&key).await.unwrap().is_none());
        assert!(!b.delete_profile(&key).await.unwrap());
        assert!(b.get_entity(&key, "ghost").await.unwrap().is_none());
        assert!(!b.delete_entity(&key, "ghost").await.unwrap());
        assert!(
            b.list_entities(&EntityQuery::new(key.clone()))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            b.search_entities(&key, "ghost", 20)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(b.get_vault(424242).await.unwrap().is_none());
        let upd = VaultUpdate {
            title: Some("x".into()),
            ..Default::default()
        };
        assert!(!b.update_vault(424242, &upd).await.unwrap());
        assert!(
            !b.update_todo_status(424242, todo_status::COMPLETED, None)
                .await
                .unwrap()
        );
        assert!(b.get_conversation(424242).await.unwrap().is_none());
        let cu = ConversationUpdate {
            title: Some("t".into()),
            status: None,
        };
        assert!(b.update_conversation(424242, &cu).await.unwrap().is_none());
        assert!(
            b.update_conversation(424242, &ConversationUpdate::default())
                .await
                .unwrap()
                .is_none()
        );
        assert!(!b.delete_conversation(424242).await.unwrap());
        assert!(b.get_message(424242, true).await.unwrap().is_none());
        let mu = MessageUpdate {
            new_content: "x".into(),
            is_complete: Some(true),
            token_count: None,
        };
        assert!(b.update_message(424242, &mu).await.unwrap().is_none());
        assert!(!b.append_message_content(424242, "x", 1).await.unwrap());
        assert!(
            !b.update_message_metadata(424242, &JsonMap::new())
                .await
                .unwrap()
        );
        assert!(
            !b.mark_message_finished(424242, FinishStatus::Completed, None)
                .await
                .unwrap()
        );
        assert!(!b.interrupt_message(424242).await.unwrap());
        assert!(!b.delete_message(424242).await.unwrap());
        assert!(b.get_message_thinking(424242).await.unwrap().is_empty());
        assert_eq!(b.clear_message_thinking(424242).await.unwrap(), 0);
        assert!(
            b.get_conversation_messages(424242)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            b.get_vaults(&VaultQuery::default())
                .await
                .unwrap()
                .is_empty()
        );
        assert!(b.get_todos(&TodoQuery::default()).await.unwrap().is_empty());
        assert!(b.get_tips(&TipQuery::default()).await.unwrap().is_empty());
        let page = b
            .get_conversation_list(&ConversationQuery::default())
            .await
            .unwrap();
        assert_eq!((page.items.len(), page.total), (0, 0));
        // Missing parents of dependent rows are NotFound errors (the write could not happen).
        let e = b
            .create_message(&NewMessage::new(424242, "user", "hi"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        let e = b
            .add_message_thinking(&NewThinking::new(424242, "hmm"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }

    /// Profiles and entities are keyed by the whole `(user_id, device_id, agent_id)` triple.
    pub async fn tenant_isolation(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let keys = [
            TenantKey::new("u1", "d1", "a1"),
            TenantKey::new("u1", "d1", "a2"),
            TenantKey::new("u1", "d2", "a1"),
            TenantKey::new("u2", "d1", "a1"),
        ];
        for (i, k) in keys.iter().enumerate() {
            b.upsert_profile(&ProfileUpsert::new(k.clone(), format!("profile {i}")))
                .await
                .unwrap();
            let mut e = EntityUpsert::new(k.clone(), "Bob", format!("bob as seen by tenant {i}"));
            e.aliases = vec![format!("alias{i}")];
            b.upsert_entity(&e).await.unwrap();
        }
        let mut ids = BTreeSet::new();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                b.get_profile(k).await.unwrap().unwrap().content,
                format!("profile {i}")
            );
            let e = b.get_entity(k, "Bob").await.unwrap().unwrap();
            assert_eq!(e.content, format!("bob as seen by tenant {i}"));
            ids.insert(e.id);
            let listed = b.list_entities(&EntityQuery::new(k.clone())).await.unwrap();
            assert_eq!(listed.len(), 1, "tenant {k} sees only its own entity");
            let found = b.search_entities(k, "bob", 20).await.unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].content, format!("bob as seen by tenant {i}"));
            for (j, _) in keys.iter().enumerate().filter(|(j, _)| *j != i) {
                assert!(
                    b.search_entities(k, &format!("alias{j}"), 20)
                        .await
                        .unwrap()
                        .is_empty()
                );
            }
        }
        assert_eq!(ids.len(), keys.len(), "one entity id per tenant");
        assert!(
            b.get_profile(&TenantKey::user("u1"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(b.delete_profile(&keys[0]).await.unwrap());
        assert!(b.delete_entity(&keys[0], "Bob").await.unwrap());
        for k in &keys[1..] {
            assert!(
                b.get_profile(k).await.unwrap().is_some(),
                "delete touched another tenant"
            );
            assert!(b.get_entity(k, "Bob").await.unwrap().is_some());
        }
    }

    /// Every entity field round-trips; an upsert keeps the id and `created_at`.
    pub async fn entity_round_trip_and_upsert_keeps_id(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let key = TenantKey::new("u", "d", "a");
        let e = EntityUpsert {
            key: key.clone(),
            entity_name: "Project Ünïcode 项目".into(),
            content: "A project about \"quotes\" and 'apostrophes'".into(),
            entity_type: Some("project".into()),
            summary: Some("short".into()),
            keywords: vec!["k1".into(), "k2".into()],
            aliases: vec!["PU".into(), "项目".into()],
            metadata: meta(json!({"owner": "alice", "tags": ["x"], "score": 0.5})),
        };
        let id = b.upsert_entity(&e).await.unwrap();
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "entity id {id} is a UUID"
        );
        let got = b.get_entity(&key, &e.entity_name).await.unwrap().unwrap();
        assert_eq!(got.id, id);
        assert_eq!(got.user_id, "u");
        assert_eq!(got.device_id, "d");
        assert_eq!(got.agent_id, "a");
        assert_eq!(got.entity_name, e.entity_name);
        assert_eq!(got.entity_type, e.entity_type);
        assert_eq!(got.content, e.content);
        assert_eq!(got.summary, e.summary);
        assert_eq!(got.keywords, e.keywords);
        assert_eq!(got.aliases, e.aliases);
        assert_eq!(got.metadata, e.metadata);
        assert_recent(&got.created_at);

        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut e2 = EntityUpsert::new(key.clone(), e.entity_name.clone(), "rewritten");
        e2.entity_type = Some("team".into());
        let id2 = b.upsert_entity(&e2).await.unwrap();
        assert_eq!(id2, id, "an upsert keeps the id");
        let got2 = b.get_entity(&key, &e.entity_name).await.unwrap().unwrap();
        assert_eq!(got2.content, "rewritten");
        assert_eq!(got2.entity_type.as_deref(), Some("team"));
        assert!(got2.aliases.is_empty() && got2.summary.is_none());
        assert_eq!(got2.created_at, got.created_at);
        assert!(got2.updated_at > got.updated_at);
        assert_eq!(
            b.list_entities(&EntityQuery::new(key.clone()))
                .await
                .unwrap()
                .len(),
            1
        );
        // Names are exact: case and surrounding text matter.
        assert!(
            b.get_entity(&key, "project ünïcode 项目")
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Substring search over name, content and aliases; literal wildcards; recency order; limit.
    pub async fn search_entities_matches_name_content_aliases(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let key = TenantKey::user("searcher");
        let mut alice = EntityUpsert::new(key.clone(), "Alice Smith", "works on the Apollo rocket");
        alice.aliases = vec!["Ally".into()];
        b.upsert_entity(&alice).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let mut bob = EntityUpsert::new(key.clone(), "Bob", "manages 100% of budget_2024");
        bob.aliases = vec!["Roberto".into(), "北京人".into()];
        b.upsert_entity(&bob).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        b.upsert_entity(&EntityUpsert::new(
            key.clone(),
            "Carol",
            "apollo program historian",
        ))
        .await
        .unwrap();

        let names = |v: Vec<Entity>| v.into_iter().map(|e| e.entity_name).collect::<Vec<_>>();
        // By name, case-insensitive (ASCII).
        assert_eq!(
            names(b.search_entities(&key, "alice", 20).await.unwrap()),
            ["Alice Smith"]
        );
        // By content; most recently updated first.
        assert_eq!(
            names(b.search_entities(&key, "APOLLO", 20).await.unwrap()),
            ["Carol", "Alice Smith"]
        );
        // By alias, including non-ASCII and short queries.
        assert_eq!(
            names(b.search_entities(&key, "robert", 20).await.unwrap()),
            ["Bob"]
        );
        assert_eq!(
            names(b.search_entities(&key, "北京", 20).await.unwrap()),
            ["Bob"]
        );
        assert_eq!(
            names(b.search_entities(&key, "Al", 20).await.unwrap()),
            ["Alice Smith"]
        );
        // `%` and `_` are literal characters, not wildcards.
        assert_eq!(
            names(b.search_entities(&key, "100%", 20).await.unwrap()),
            ["Bob"]
        );
        assert_eq!(
            names(b.search_entities(&key, "t_2", 20).await.unwrap()),
            ["Bob"]
        );
        assert!(b.search_entities(&key, "%", 20).await.unwrap().len() == 1);
        assert!(
            b.search_entities(&key, "A_ice", 20)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            b.search_entities(&key, "zzz-no-match", 20)
                .await
                .unwrap()
                .is_empty()
        );
        // Empty query: everything of the tenant, newest first; limit applies.
        assert_eq!(
            names(b.search_entities(&key, "", 20).await.unwrap()),
            ["Carol", "Bob", "Alice Smith"]
        );
        assert_eq!(b.search_entities(&key, "", 2).await.unwrap().len(), 2);
        assert_eq!(b.search_entities(&key, "o", 1).await.unwrap().len(), 1);
        // Updates are searchable immediately, old text no longer matches.
        b.upsert_entity(&EntityUpsert::new(key.clone(), "Carol", "now a painter"))
            .await
            .unwrap();
        assert_eq!(
            names(b.search_entities(&key, "apollo", 20).await.unwrap()),
            ["Alice Smith"]
        );
        assert_eq!(
            names(b.search_entities(&key, "painter", 20).await.unwrap()),
            ["Carol"]
        );
        b.delete_entity(&key, "Carol").await.unwrap();
        assert!(
            b.search_entities(&key, "painter", 20)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Pages of `list_entities` cover everything once; the type filter applies.
    pub async fn list_entities_pages_without_gaps(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let key = TenantKey::user("pager");
        for i in 0..25 {
            let mut e = EntityUpsert::new(key.clone(), format!("e{i:02}"), "x");
            e.entity_type = Some(if i % 5 == 0 { "person" } else { "project" }.into());
            b.upsert_entity(&e).await.unwrap();
        }
        let mut seen = Vec::new();
        for page in 0..3u64 {
            let q = EntityQuery {
                key: key.clone(),
                entity_type: None,
                limit: 10,
                offset: page * 10,
            };
            let got = b.list_entities(&q).await.unwrap();
            assert_eq!(got.len(), if page < 2 { 10 } else { 5 });
            seen.extend(got.into_iter().map(|e| e.entity_name));
        }
        let unique: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), 25, "pages overlap or skip: {seen:?}");
        let q = EntityQuery {
            key: key.clone(),
            entity_type: Some("person".into()),
            limit: 100,
            offset: 0,
        };
        let people = b.list_entities(&q).await.unwrap();
        assert_eq!(people.len(), 5);
        assert!(
            people
                .iter()
                .all(|e| e.entity_type.as_deref() == Some("person"))
        );
        let q = EntityQuery {
            key: key.clone(),
            entity_type: None,
            limit: 10,
            offset: 100,
        };
        assert!(b.list_entities(&q).await.unwrap().is_empty());
        let q = EntityQuery {
            key,
            entity_type: None,
            limit: 0,
            offset: 0,
        };
        assert!(b.list_entities(&q).await.unwrap().is_empty());
    }

    /// Bad arguments fail with `InvalidInput` naming the field, and nothing is written.
    pub async fn bad_input_is_rejected_and_nothing_written(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let empty_user = TenantKey::new("", "d", "a");
        assert_invalid(
            b.upsert_profile(&ProfileUpsert::new(empty_user.clone(), "x"))
                .await,
            "user_id",
        );
        assert_invalid(b.get_profile(&empty_user).await, "user_id");
        assert_invalid(
            b.get_profile(&TenantKey::new("u", "", "a")).await,
            "device_id",
        );
        assert_invalid(
            b.get_profile(&TenantKey::new("u", "d", "a\u{0}b")).await,
            "agent_id",
        );
        let mut p = ProfileUpsert::new(TenantKey::user("u"), "x");
        p.importance = 11;
        assert_invalid(b.upsert_profile(&p).await, "importance");
        assert!(
            b.get_profile(&TenantKey::user("u"))
                .await
                .unwrap()
                .is_none(),
            "nothing written"
        );
        assert_invalid(
            b.upsert_entity(&EntityUpsert::new(TenantKey::user("u"), "", "x"))
                .await,
            "entity_name",
        );
        assert_invalid(
            b.upsert_entity(&EntityUpsert::new(empty_user.clone(), "n", "x"))
                .await,
            "user_id",
        );
        assert!(
            b.list_entities(&EntityQuery::new(TenantKey::user("u")))
                .await
                .unwrap()
                .is_empty()
        );
        let q = EntityQuery {
            limit: MAX_LIST_LIMIT + 1,
            ..EntityQuery::new(TenantKey::user("u"))
        };
        assert_invalid(b.list_entities(&q).await, "limit");
        assert_invalid(
            b.search_entities(&TenantKey::user("u"), "x", MAX_LIST_LIMIT + 1)
                .await,
            "limit",
        );
        let mut t = NewTodo::new("do it");
        t.status = 7;
        assert_invalid(b.insert_todo(&t).await, "status");
        let mut t = NewTodo::new("do it");
        t.urgency = -1;
        assert_invalid(b.insert_todo(&t).await, "urgency");
        // Instants no backend can hold (MariaDB stored them as the zero date) are refused.
        for (field, text) in [
            ("start_time", "9999-12-31T23:59:59.999999-12:00"),
            ("start_time", "2016-12-31T23:59:60.5+00:00"),
            ("end_time", "0001-01-01T00:00:00+00:00"),
        ] {
            let mut t = NewTodo::new("do it");
            let at = Some(parse_timestamp(text).expect("parses"));
            if field == "start_time" {
                t.start_time = at;
            } else {
                t.end_time = at;
            }
            assert_invalid(b.insert_todo(&t).await, field);
        }
        assert!(
            b.get_todos(&TodoQuery::default()).await.unwrap().is_empty(),
            "nothing written"
        );
        let id = b.insert_todo(&NewTodo::new("real")).await.unwrap();
        let far = parse_timestamp("9999-12-31T20:00:00+00:00").ok();
        assert_invalid(b.update_todo_status(id, 1, far).await, "end_time");
        assert_invalid(b.update_todo_status(id, -3, None).await, "status");
        assert_eq!(
            b.get_todos(&TodoQuery::default()).await.unwrap()[0].status,
            todo_status::PENDING
        );
        assert_invalid(b.update_vault(1, &VaultUpdate::default()).await, "no field");
        assert_invalid(
            b.insert_vaults(&NewVault::new("t", "s", "c", "")).await,
            "document_type",
        );
        assert_invalid(
            b.create_conversation(&NewConversation::new("a-page-name-longer-than-twenty"))
                .await,
            "page_name",
        );
        assert_invalid(
            b.create_conversation(&NewConversation::new("")).await,
            "page_name",
        );
        let c = b
            .create_conversation(&NewConversation::new("home"))
            .await
            .unwrap();
        assert_invalid(
            b.create_message(&NewMessage::new(c.id, "", "x")).await,
            "role",
        );
        let m = b
            .create_message(&NewMessage::new(c.id, "user", "x"))
            .await
            .unwrap();
        let mut th = NewThinking::new(m.id, "x");
        th.progress = f64::NAN;
        assert_invalid(b.add_message_thinking(&th).await, "progress");
        th.progress = 1.5;
        assert_invalid(b.add_message_thinking(&th).await, "progress");
        assert!(b.get_message_thinking(m.id).await.unwrap().is_empty());
        assert!("archived".parse::<ConversationStatus>().is_err());
        assert!("done".parse::<FinishStatus>().is_err());
        let s = TokenUsageSample {
            model: " ".into(),
            prompt_tokens: 1,
            completion_tokens: 1,
            total_tokens: 2,
            at: None,
        };
        assert_invalid(b.save_monitoring_token_usage(&s).await, "model");
        let s = DataStatsSample {
            data_type: "ctx".into(),
            count: u64::MAX,
            context_type: None,
            metadata: None,
            at: None,
        };
        assert_invalid(b.save_monitoring_data_stats(&s).await, "count");
        assert!(b.query_monitoring_token_usage(24).await.unwrap().is_empty());
        assert!(b.query_monitoring_data_stats(24).await.unwrap().is_empty());
        assert_invalid(
            b.query_monitoring_data_stats_trend(24, 0).await,
            "interval_hours",
        );
        let now = time::now();
        assert_invalid(
            b.query_monitoring_data_stats_by_range(now, now - Duration::hours(1))
                .await,
            "before",
        );
    }

    /// Metadata nested as deep as [`crate::validate::MAX_JSON_DEPTH`] (the map counts as the
    /// first level) round-trips on every write that takes metadata; one level deeper is refused
    /// naming `metadata`, and the record written before is unchanged (MariaDB refuses deeper
    /// JSON; SQLite would store it and serde_json could not read it back past 128 levels).
    pub async fn metadata_deeper_than_the_reader_allows_is_refused(h: &dyn DocumentKitHarness) {
        fn nested(levels: usize) -> JsonMap {
            // `levels` counts the map itself: {"k": [[...[1]...]]} with levels - 1 arrays.
            let mut v = json!(1);
            for _ in 1..levels {
                v = json!([v]);
            }
            meta(json!({ "k": v }))
        }
        let max = crate::validate::MAX_JSON_DEPTH;
        let (ok, deep) = (nested(max), nested(max + 1));
        let b = h.fresh().await;
        let key = TenantKey::user("deep");

        let mut p = full_profile(key.clone());
        p.metadata = ok.clone();
        b.upsert_profile(&p).await.unwrap();
        let mut bad = p.clone();
        bad.content = "replaced".into();
        bad.metadata = deep.clone();
        assert_invalid(b.upsert_profile(&bad).await, "metadata");
        let back = b.get_profile(&key).await.unwrap().expect("profile kept");
        assert_eq!(
            (back.content.as_str(), &back.metadata),
            (p.content.as_str(), &ok)
        );

        let mut e = EntityUpsert::new(key.clone(), "n", "entity");
        e.metadata = ok.clone();
        b.upsert_entity(&e).await.unwrap();
        let mut bad = e.clone();
        bad.content = "replaced".into();
        bad.metadata = deep.clone();
        assert_invalid(b.upsert_entity(&bad).await, "metadata");
        let back = b.get_entity(&key, "n").await.unwrap().expect("entity kept");
        assert_eq!((back.content.as_str(), &back.metadata), ("entity", &ok));

        let mut c = NewConversation::new("deep");
        c.metadata = deep.clone();
        assert_invalid(b.create_conversation(&c).await, "metadata");
        c.metadata = ok.clone();
        let conv = b.create_conversation(&c).await.unwrap();
        assert_eq!(
            b.get_conversation(conv.id).await.unwrap().unwrap().metadata,
            ok
        );
        let listed = b
            .get_conversation_list(&ConversationQuery::default())
            .await
            .unwrap();
        assert_eq!(listed.total, 1, "the refused conversation was not created");

        let mut m = NewMessage::new(conv.id, "user", "hi");
        m.metadata = deep.clone();
        assert_invalid(b.create_message(&m).await, "metadata");
        m.metadata = ok.clone();
        let msg = b.create_message(&m).await.unwrap();
        assert_invalid(b.update_message_metadata(msg.id, &deep).await, "metadata");
        let back = b.get_message(msg.id, false).await.unwrap().unwrap();
        assert_eq!(back.metadata, ok, "the refused update changed nothing");
        assert_eq!(
            b.get_conversation_messages(conv.id).await.unwrap().len(),
            1,
            "the refused message was not created"
        );

        let mut th = NewThinking::new(msg.id, "step");
        th.metadata = deep;
        assert_invalid(b.add_message_thinking(&th).await, "metadata");
        assert!(b.get_message_thinking(msg.id).await.unwrap().is_empty());
        th.metadata = ok.clone();
        b.add_message_thinking(&th).await.unwrap();
        assert_eq!(
            b.get_message_thinking(msg.id).await.unwrap()[0].metadata,
            ok
        );
    }

    /// SQL-looking text, quotes, backslashes, wildcards, emoji and NUL bytes are data.
    pub async fn hostile_values_are_stored_verbatim(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let nasty = [
            "'; DROP TABLE profiles; --",
            "Robert'); DROP TABLE entities;--",
            "\" OR \"1\"=\"1",
            "back\\slash \\' \\\" %_ [x] $1 ?1 :name @p",
            "emoji 👩‍💻 and RTL \u{202e} text",
            "line\nbreak\ttab\r\n",
        ];
        for (i, text) in nasty.iter().enumerate() {
            let key = TenantKey::new(
                format!("user {text}").replace(['\n', '\t', '\r', '\u{202e}'], " "),
                "d",
                "a",
            );
            let mut p = ProfileUpsert::new(key.clone(), *text);
            p.summary = Some(text.to_string());
            p.keywords = vec![text.to_string()];
            p.metadata = meta(json!({ "k": text, *text: i }));
            b.upsert_profile(&p).await.unwrap();
            let got = b.get_profile(&key).await.unwrap().unwrap();
            assert_eq!(got.content, *text);
            assert_eq!(got.summary.as_deref(), Some(*text));
            assert_eq!(got.keywords, vec![text.to_string()]);
            assert_eq!(got.metadata, p.metadata);
            let ent_name = format!(
                "entity {i} {}",
                text.replace(['\n', '\t', '\r', '\u{202e}'], " ")
            );
            b.upsert_entity(&EntityUpsert::new(key.clone(), ent_name.clone(), *text))
                .await
                .unwrap();
            assert_eq!(
                b.get_entity(&key, &ent_name)
                    .await
                    .unwrap()
                    .unwrap()
                    .content,
                *text
            );
            let found = b.search_entities(&key, text, 5).await.unwrap();
            assert_eq!(found.len(), 1, "search for {text:?}");
            let tip = b.insert_tip(text).await.unwrap();
            assert!(tip > 0);
        }
        // NUL inside content: stored verbatim, or refused as InvalidInput; never truncated.
        let key = TenantKey::user("nul");
        match b
            .upsert_profile(&ProfileUpsert::new(key.clone(), "before\u{0}after"))
            .await
        {
            Ok(()) => assert_eq!(
                b.get_profile(&key).await.unwrap().unwrap().content,
                "before\u{0}after"
            ),
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}"),
        }
        // The tables are all still there.
        let tips = b.get_tips(&TipQuery::default()).await.unwrap();
        assert_eq!(tips.len(), nasty.len());
        let contents: BTreeSet<_> = tips.into_iter().filter_map(|t| t.content).collect();
        assert_eq!(contents, nasty.iter().map(|s| s.to_string()).collect());
        assert!(b.health_check().await.is_ok());
    }

    /// Vault fields round-trip; filters, soft delete, reports and parent checks work.
    pub async fn vault_round_trip_filters_and_update(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
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
        // Which types count as reports is the original backend's rule (SQLite: all but
        // `Note`; MySQL: `report` only); a `Report` is one and a `Note` is not, everywhere.
        let reports = b.get_reports(100, 0, false).await.unwrap();
        assert!(reports.iter().all(|v| v.document_type != "Note"));
        assert!(
            reports.iter().any(|v| v.id == doc_id),
            "a 'Report' is a report"
        );

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
    }

    /// Todo fields round-trip; ordering by urgency; status updates stamp `end_time`.
    pub async fn todo_round_trip_order_and_status(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let start = ts("2025-03-01T10:00:00.250000+08:00");
        let end = ts("2025-03-02T18:30:00+08:00");
        let t = NewTodo {
            content: "write the report".into(),
            start_time: Some(start),
            end_time: Some(end),
            status: todo_status::PENDING,
            urgency: 2,
            assignee: Some("alice".into()),
            reason: Some("asked in chat".into()),
        };
        let id = b.insert_todo(&t).await.unwrap();
        let low = b.insert_todo(&NewTodo::new("low")).await.unwrap();
        let mut high = NewTodo::new("high");
        high.urgency = 5;
        let high = b.insert_todo(&high).await.unwrap();

        let all = b.get_todos(&TodoQuery::default()).await.unwrap();
        assert_eq!(
            all.iter().map(|t| t.id).collect::<Vec<_>>(),
            [high, id, low]
        );
        let got = all.iter().find(|t| t.id == id).unwrap();
        assert_eq!(got.content.as_deref(), Some("write the report"));
        assert_eq!(got.start_time, Some(start), "instant preserved");
        assert_eq!(got.end_time, Some(end));
        assert_eq!(got.status, 0);
        assert_eq!(got.urgency, 2);
        assert_eq!(got.assignee.as_deref(), Some("alice"));
        assert_eq!(got.reason.as_deref(), Some("asked in chat"));
        assert_recent(&got.created_at);
        let low_row = all.iter().find(|t| t.id == low).unwrap();
        assert_recent(
            low_row
                .start_time
                .as_ref()
                .expect("start_time defaults to now"),
        );
        assert_eq!(low_row.end_time, None);

        let q = TodoQuery {
            start_time: Some(ts("2025-03-01T00:00:00Z")),
            end_time: Some(ts("2025-03-03T00:00:00Z")),
            ..Default::default()
        };
        assert_eq!(
            b.get_todos(&q)
                .await
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect::<Vec<_>>(),
            [id]
        );

        assert!(
            b.update_todo_status(low, todo_status::COMPLETED, None)
                .await
                .unwrap()
        );
        let done_q = TodoQuery {
            status: Some(todo_status::COMPLETED),
            ..Default::default()
        };
        let done = b.get_todos(&done_q).await.unwrap();
        assert_eq!(done.len(), 1);
        assert_recent(
            done[0]
                .end_time
                .as_ref()
                .expect("completing stamps end_time"),
        );
        let explicit = ts("2030-01-01T00:00:00Z");
        assert!(
            b.update_todo_status(id, todo_status::COMPLETED, Some(explicit))
                .await
                .unwrap()
        );
        assert!(
            b.update_todo_status(high, todo_status::PENDING, None)
                .await
                .unwrap()
        );
        let pending = b
            .get_todos(&TodoQuery {
                status: Some(todo_status::PENDING),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(pending.iter().map(|t| t.id).collect::<Vec<_>>(), [high]);
        let all = b.get_todos(&TodoQuery::default()).await.unwrap();
        assert_eq!(
            all.iter().find(|t| t.id == id).unwrap().end_time,
            Some(explicit)
        );
    }

    /// Tips round-trip, newest first, with paging and time bounds.
    pub async fn tips_round_trip_and_paging(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(b.insert_tip(&format!("tip {i}")).await.unwrap());
        }
        let tips = b.get_tips(&TipQuery::default()).await.unwrap();
        assert_eq!(tips.iter().map(|t| t.id).rev().collect::<Vec<_>>(), ids);
        assert_eq!(tips[0].content.as_deref(), Some("tip 4"));
        assert_recent(&tips[0].created_at);
        let page = b
            .get_tips(&TipQuery {
                limit: 2,
                offset: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            page.iter()
                .map(|t| t.content.clone().unwrap())
                .collect::<Vec<_>>(),
            ["tip 2", "tip 1"]
        );
        let none = b
            .get_tips(&TipQuery {
                end_time: Some(time::now() - Duration::hours(1)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty());
        let some = b
            .get_tips(&TipQuery {
                start_time: Some(time::now() - Duration::hours(1)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(some.len(), 5);
    }

    /// Create, read, list (with total), rename and soft-delete conversations.
    pub async fn conversation_lifecycle(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let mut nc = NewConversation::new("home");
        nc.user_id = Some("u1".into());
        nc.title = Some("First chat".into());
        nc.metadata = meta(json!({"model": "x", "n": [1, 2]}));
        let c1 = b.create_conversation(&nc).await.unwrap();
        assert_eq!(c1.title.as_deref(), Some("First chat"));
        assert_eq!(c1.user_id.as_deref(), Some("u1"));
        assert_eq!(c1.page_name, "home");
        assert_eq!(c1.status, "active");
        assert_eq!(c1.metadata, nc.metadata);
        assert_recent(&c1.created_at);
        assert_eq!(b.get_conversation(c1.id).await.unwrap().unwrap(), c1);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let c2 = b
            .create_conversation(&NewConversation::new("creation"))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let mut n3 = NewConversation::new("home");
        n3.user_id = Some("u2".into());
        let c3 = b.create_conversation(&n3).await.unwrap();

        let page = b
            .get_conversation_list(&ConversationQuery::default())
            .await
            .unwrap();
        assert_eq!(page.total, 3);
        assert_eq!(
            page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
            [c3.id, c2.id, c1.id]
        );
        let q = ConversationQuery {
            limit: 1,
            offset: 1,
            ..Default::default()
        };
        let page = b.get_conversation_list(&q).await.unwrap();
        assert_eq!((page.items.len(), page.total), (1, 3));
        assert_eq!(page.items[0].id, c2.id);
        let q = ConversationQuery {
            page_name: Some("home".into()),
            user_id: Some("u1".into()),
            ..Default::default()
        };
        let page = b.get_conversation_list(&q).await.unwrap();
        assert_eq!((page.total, page.items[0].id), (1, c1.id));

        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let u = ConversationUpdate {
            title: Some("Renamed".into()),
            status: None,
        };
        let c1b = b.update_conversation(c1.id, &u).await.unwrap().unwrap();
        assert_eq!(c1b.title.as_deref(), Some("Renamed"));
        assert!(c1b.updated_at > c1.updated_at);
        let unchanged = b
            .update_conversation(c1.id, &ConversationUpdate::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(unchanged, c1b, "an empty update changes nothing");
        let first = b
            .get_conversation_list(&ConversationQuery::default())
            .await
            .unwrap();
        assert_eq!(first.items[0].id, c1.id, "renaming moves it to the top");

        assert!(b.delete_conversation(c2.id).await.unwrap());
        assert_eq!(
            b.get_conversation(c2.id).await.unwrap().unwrap().status,
            "deleted"
        );
        assert_eq!(
            b.get_conversation_list(&ConversationQuery::default())
                .await
                .unwrap()
                .total,
            2
        );
        let any = ConversationQuery {
            status: None,
            ..Default::default()
        };
        assert_eq!(b.get_conversation_list(&any).await.unwrap().total, 3);
        let deleted = ConversationQuery {
            status: Some(ConversationStatus::Deleted),
            ..Default::default()
        };
        assert_eq!(
            b.get_conversation_list(&deleted).await.unwrap().items[0].id,
            c2.id
        );
        let restore = ConversationUpdate {
            title: None,
            status: Some(ConversationStatus::Active),
        };
        assert_eq!(
            b.update_conversation(c2.id, &restore)
                .await
                .unwrap()
                .unwrap()
                .status,
            "active"
        );
    }

    /// Messages: create, stream, append, replace, finish, interrupt, list, delete.
    pub async fn message_lifecycle(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let conv = b
            .create_conversation(&NewConversation::new("home"))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let mut nm = NewMessage::new(conv.id, "user", "hello 👋");
        nm.token_count = 3;
        nm.metadata = meta(json!({"client": "web"}));
        let m1 = b.create_message(&nm).await.unwrap();
        assert_eq!(m1.conversation_id, conv.id);
        assert_eq!(m1.role, "user");
        assert_eq!(m1.content, "hello 👋");
        assert_eq!(m1.status, message_status::COMPLETED);
        assert_eq!(m1.token_count, 3);
        assert_eq!(m1.metadata, nm.metadata);
        assert_eq!(m1.parent_message_id, None);
        assert_eq!(m1.error_message, "");
        assert_eq!(m1.latency_ms, 0);
        assert!(m1.completed_at.is_some());
        assert!(m1.thinking.is_empty());
        let conv_after = b.get_conversation(conv.id).await.unwrap().unwrap();
        assert!(
            conv_after.updated_at > conv.updated_at,
            "a new message touches the conversation"
        );

        let parent = m1.id.to_string();
        let mut md = JsonMap::new();
        md.insert("k".into(), json!("v"));
        let m2 = b
            .create_streaming_message(conv.id, "assistant", Some(&parent), Some(&md))
            .await
            .unwrap();
        assert_eq!(m2.status, message_status::STREAMING);
        assert_eq!(m2.content, "");
        assert_eq!(m2.completed_at, None);
        assert_eq!(m2.parent_message_id.as_deref(), Some(parent.as_str()));
        assert_eq!(m2.metadata, md);
        assert!(b.append_message_content(m2.id, "Hel", 1).await.unwrap());
        assert!(
            b.append_message_content(m2.id, "lo '; --", 2)
                .await
                .unwrap()
        );
        let got = b.get_message(m2.id, false).await.unwrap().unwrap();
        assert_eq!(got.content, "Hello '; --");
        assert_eq!(got.token_count, 3);
        assert_eq!(got.status, message_status::STREAMING);

        let u = MessageUpdate {
            new_content: "Replaced".into(),
            is_complete: Some(true),
            token_count: Some(9),
        };
        let got = b.update_message(m2.id, &u).await.unwrap().unwrap();
        assert_eq!(
            (got.content.as_str(), got.token_count, got.status.as_str()),
            ("Replaced", 9, "completed")
        );
        assert!(got.completed_at.is_some());
        let u = MessageUpdate {
            new_content: "Again".into(),
            is_complete: Some(false),
            token_count: None,
        };
        let got = b.update_message(m2.id, &u).await.unwrap().unwrap();
        assert_eq!(
            (got.status.as_str(), got.completed_at, got.token_count),
            ("streaming", None, 9)
        );

        assert!(
            b.mark_message_finished(m2.id, FinishStatus::Failed, Some("boom"))
                .await
                .unwrap()
        );
        let got = b.get_message(m2.id, false).await.unwrap().unwrap();
        assert_eq!(
            (got.status.as_str(), got.error_message.as_str()),
            ("failed", "boom")
        );
        assert!(got.completed_at.is_some());
        assert!(
            b.mark_message_finished(m2.id, FinishStatus::Failed, None)
                .await
                .unwrap(),
            "already failed"
        );
        assert!(b.interrupt_message(m2.id).await.unwrap());
        let got = b.get_message(m2.id, false).await.unwrap().unwrap();
        assert_eq!(got.status, "cancelled");
        assert_eq!(got.error_message, "Message interrupted by user.");

        let md2 = meta(json!({"rating": 5}));
        assert!(b.update_message_metadata(m2.id, &md2).await.unwrap());
        assert_eq!(
            b.get_message(m2.id, false).await.unwrap().unwrap().metadata,
            md2
        );

        b.add_message_thinking(&NewThinking::new(m2.id, "step one"))
            .await
            .unwrap();
        let all = b.get_conversation_messages(conv.id).await.unwrap();
        assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), [m1.id, m2.id]);
        assert_eq!(all[1].thinking.len(), 1);
        assert_eq!(
            b.get_message(m2.id, true)
                .await
                .unwrap()
                .unwrap()
                .thinking
                .len(),
            1
        );
        assert!(
            b.get_message(m2.id, false)
                .await
                .unwrap()
                .unwrap()
                .thinking
                .is_empty()
        );

        assert!(b.delete_message(m2.id).await.unwrap());
        assert!(b.get_message(m2.id, true).await.unwrap().is_none());
        assert!(
            b.get_message_thinking(m2.id).await.unwrap().is_empty(),
            "thinking goes with its message"
        );
        assert_eq!(b.get_conversation_messages(conv.id).await.unwrap().len(), 1);
    }

    /// Thinking records: automatic sequence numbers, explicit ones, order, clearing.
    pub async fn message_thinking_sequence(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let conv = b
            .create_conversation(&NewConversation::new("home"))
            .await
            .unwrap();
        let m = b
            .create_message(&NewMessage::new(conv.id, "assistant", ""))
            .await
            .unwrap();
        let mut first = NewThinking::new(m.id, "analysing intent");
        first.stage = Some("intent_analysis".into());
        first.progress = 0.25;
        first.metadata = meta(json!({"tool": "search"}));
        let id0 = b.add_message_thinking(&first).await.unwrap();
        let id1 = b
            .add_message_thinking(&NewThinking::new(m.id, "gathering"))
            .await
            .unwrap();
        let mut late = NewThinking::new(m.id, "explicit 10");
        late.sequence = Some(10);
        b.add_message_thinking(&late).await.unwrap();
        let mut early = NewThinking::new(m.id, "explicit 5");
        early.sequence = Some(5);
        b.add_message_thinking(&early).await.unwrap();
        b.add_message_thinking(&NewThinking::new(m.id, "after max"))
            .await
            .unwrap();

        let th = b.get_message_thinking(m.id).await.unwrap();
        assert_eq!(
            th.iter()
                .map(|t| (t.sequence, t.content.as_str()))
                .collect::<Vec<_>>(),
            [
                (0, "analysing intent"),
                (1, "gathering"),
                (5, "explicit 5"),
                (10, "explicit 10"),
                (11, "after max")
            ]
        );
        assert_eq!(th[0].id, id0);
        assert_eq!(th[1].id, id1);
        assert_eq!(th[0].message_id, m.id);
        assert_eq!(th[0].stage.as_deref(), Some("intent_analysis"));
        assert_eq!(th[0].progress, 0.25);
        assert_eq!(th[0].metadata, first.metadata);
        assert_recent(&th[0].created_at);
        assert_eq!(b.clear_message_thinking(m.id).await.unwrap(), 5);
        assert!(b.get_message_thinking(m.id).await.unwrap().is_empty());
    }

    /// Monitoring counters aggregate per hour bucket; queries, trend and cleanup.
    pub async fn monitoring_aggregates(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        let now = time::now();
        for (p, c) in [(10, 5), (1, 2)] {
            let s = TokenUsageSample {
                model: "gpt-x".into(),
                prompt_tokens: p,
                completion_tokens: c,
                total_tokens: p + c,
                at: Some(now),
            };
            b.save_monitoring_token_usage(&s).await.unwrap();
        }
        let tu = b.query_monitoring_token_usage(24).await.unwrap();
        assert_eq!(tu.len(), 1);
        assert_eq!(
            (
                tu[0].prompt_tokens,
                tu[0].completion_tokens,
                tu[0].total_tokens
            ),
            (11, 7, 18)
        );
        assert_eq!(tu[0].model, "gpt-x");
        assert_eq!(tu[0].time_bucket, monitoring_bucket(&now));

        for (d, ok) in [(100, true), (40, false), (70, true)] {
            let s = StageTimingSample {
                stage_name: "llm_call".into(),
                duration_ms: d,
                success: ok,
                metadata: Some("m".into()),
                at: Some(now),
            };
            b.save_monitoring_stage_timing(&s).await.unwrap();
        }
        let st = b.query_monitoring_stage_timing(24).await.unwrap();
        assert_eq!(st.len(), 1);
        let s = &st[0];
        assert_eq!(
            (
                s.count,
                s.total_duration_ms,
                s.min_duration_ms,
                s.max_duration_ms
            ),
            (3, 210, 40, 100)
        );
        assert_eq!(
            (s.avg_duration_ms, s.success_count, s.error_count),
            (70, 2, 1)
        );
        assert_eq!(s.metadata.as_deref(), Some("m"));

        let two_hours_ago = now - Duration::hours(2);
        let old = now - Duration::days(30);
        for (ct, n, at) in [
            (None, 2, now),
            (None, 3, now),
            (Some("event"), 4, now),
            (Some("event"), 1, two_hours_ago),
            (None, 100, old),
        ] {
            let s = DataStatsSample {
                data_type: "context".into(),
                count: n,
                context_type: ct.map(str::to_owned),
                metadata: None,
                at: Some(at),
            };
            b.save_monitoring_data_stats(&s).await.unwrap();
        }
        let ds = b.query_monitoring_data_stats(24).await.unwrap();
        let find = |v: &[DataStatsRecord], ct: Option<&str>| {
            v.iter()
                .find(|r| r.context_type.as_deref() == ct)
                .map(|r| r.count)
        };
        assert_eq!(ds.len(), 2, "{ds:?}");
        assert_eq!(find(&ds, None), Some(5), "a NULL context type is one group");
        assert_eq!(find(&ds, Some("event")), Some(5));
        let ranged = b
            .query_monitoring_data_stats_by_range(now - Duration::hours(1), now)
            .await
            .unwrap();
        assert_eq!(find(&ranged, Some("event")), Some(4));
        let trend = b.query_monitoring_data_stats_trend(24, 1).await.unwrap();
        assert_eq!(trend.len(), 3, "{trend:?}");
        assert!(
            trend.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
            "oldest first"
        );
        let trend = b.query_monitoring_data_stats_trend(24, 24).await.unwrap();
        let total: i64 = trend.iter().map(|r| r.count).sum();
        assert_eq!(total, 10);
        assert!(trend.len() <= 4);

        // The largest windows mean "everything": no overflow, no lost reader.
        assert_eq!(
            b.query_monitoring_token_usage(u32::MAX)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            b.query_monitoring_stage_timing(u32::MAX)
                .await
                .unwrap()
                .len(),
            1
        );
        let all = b.query_monitoring_data_stats(u32::MAX).await.unwrap();
        assert_eq!(all.iter().map(|r| r.count).sum::<i64>(), 110);
        let trend = b
            .query_monitoring_data_stats_trend(u32::MAX, u32::MAX)
            .await
            .unwrap();
        assert_eq!(trend.iter().map(|r| r.count).sum::<i64>(), 110);
        assert_eq!(
            b.cleanup_old_monitoring_data(u32::MAX).await.unwrap(),
            MonitoringCleanup::default(),
            "nothing is older than the largest window"
        );
        assert!(
            b.get_profile(&TenantKey::user("nobody"))
                .await
                .unwrap()
                .is_none()
        );

        let cleaned = b.cleanup_old_monitoring_data(7).await.unwrap();
        assert_eq!(cleaned.data_stats, 1);
        assert_eq!((cleaned.token_usage, cleaned.stage_timing), (0, 0));
        let ds_all = b.query_monitoring_data_stats(24 * 365).await.unwrap();
        assert_eq!(
            ds_all.iter().map(|r| r.count).sum::<i64>(),
            10,
            "recent rows survive cleanup"
        );
    }

    /// 16 tasks write concurrently (while others read): no error, no lost or duplicated row.
    pub async fn concurrent_writers_lose_nothing(h: &dyn DocumentKitHarness) {
        const TASKS: usize = 16;
        const PER_TASK: usize = 40;
        let b: Backend = h.fresh().await;
        let mut handles = Vec::new();
        for t in 0..TASKS {
            let b = Arc::clone(&b);
            handles.push(tokio::spawn(async move {
                let key = TenantKey::user(format!("writer-{t}"));
                for i in 0..PER_TASK {
                    b.upsert_entity(&EntityUpsert::new(
                        key.clone(),
                        format!("e{i}"),
                        format!("t{t} i{i}"),
                    ))
                    .await?;
                    b.insert_todo(&NewTodo::new(format!("todo {t}/{i}")))
                        .await?;
                    b.upsert_profile(&ProfileUpsert::new(key.clone(), format!("v{i}")))
                        .await?;
                    // A shared row written by everyone: upserts must serialise, not fail.
                    b.upsert_profile(&ProfileUpsert::new(
                        TenantKey::user("shared"),
                        format!("{t}/{i}"),
                    ))
                    .await?;
                    if i % 8 == 0 {
                        b.list_entities(&EntityQuery::new(key.clone())).await?;
                    }
                }
                Result::<()>::Ok(())
            }));
        }
        for hd in handles {
            hd.await
                .expect("task panicked")
                .expect("a concurrent write failed");
        }
        let todos = b
            .get_todos(&TodoQuery {
                limit: MAX_LIST_LIMIT,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(todos.len(), TASKS * PER_TASK);
        let contents: BTreeSet<_> = todos.into_iter().filter_map(|t| t.content).collect();
        assert_eq!(contents.len(), TASKS * PER_TASK, "duplicated or lost todos");
        for t in 0..TASKS {
            let key = TenantKey::user(format!("writer-{t}"));
            let q = EntityQuery {
                limit: 1000,
                ..EntityQuery::new(key.clone())
            };
            assert_eq!(b.list_entities(&q).await.unwrap().len(), PER_TASK);
            let p = b.get_profile(&key).await.unwrap().unwrap();
            assert_eq!(p.content, format!("v{}", PER_TASK - 1));
        }
        assert!(
            b.get_profile(&TenantKey::user("shared"))
                .await
                .unwrap()
                .is_some()
        );
    }

    /// After `close`, calls fail with `NotInitialized`; closing twice is harmless.
    pub async fn closed_backend_refuses_calls(h: &dyn DocumentKitHarness) {
        let b = h.fresh().await;
        b.upsert_profile(&ProfileUpsert::new(TenantKey::user("u"), "x"))
            .await
            .unwrap();
        b.close().await.unwrap();
        b.close().await.unwrap();
        let e = b.get_profile(&TenantKey::user("u")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotInitialized, "{e}");
        let e = b.insert_tip("x").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotInitialized, "{e}");
        assert!(b.health_check().await.is_err());
    }
}
