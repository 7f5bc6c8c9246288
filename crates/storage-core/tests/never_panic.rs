//! Property tests: the parsers that take a caller's or a file's input (the loose filter map
//! parser, the YAML configuration loader, a backend entry's typed parse) return `Ok` or a
//! clear error for any input, and never panic. Each property prints how many cases it ran.

use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value as Json, json};
use storage_core::config::parse_config;
use storage_core::filter::MAX_FILTER_DEPTH;
use storage_core::{ErrorKind, Filter};

const CASES: u32 = 3000;

fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> bool) {
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let (ran, accepted) = (Cell::new(0u32), Cell::new(0u32));
    runner
        .run(&strategy, |value| {
            ran.set(ran.get() + 1);
            if test(value) {
                accepted.set(accepted.get() + 1);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!(
        "{name}: {} cases, no panic ({} accepted, {} refused)",
        ran.get(),
        accepted.get(),
        ran.get() - accepted.get()
    );
}

/// Keys a loose filter uses (fields, operators) and some it must refuse.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "user_id", "device_id", "context_type", "create_time_ts", "importance", "confidence",
            "is_happend", "source_file_key", "time_bucket", "hierarchy_level", "keywords", "title",
            "$and", "$or", "$not", "$gte", "$gt", "$lte", "$lt", "$ne", "$in", "$nin", "$eq",
            "$exists", "$regex", "metadata.k", "a'b", "x\"); DROP TABLE t; --", "",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        ".{0,10}".prop_map(Json::from),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn loose_filter_parser_on_arbitrary_json() {
    run(
        "Filter::from_loose_json(arbitrary JSON)",
        json_value(),
        |v| match Filter::from_loose_json(&v) {
            Ok(Some(f)) => {
                assert!(
                    f.depth() <= MAX_FILTER_DEPTH,
                    "depth {} accepted",
                    f.depth()
                );
                true
            }
            Ok(None) => true,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                false
            }
        },
    );
}

#[test]
fn loose_filter_parser_on_deep_nesting() {
    for depth in [MAX_FILTER_DEPTH, MAX_FILTER_DEPTH + 1, 1_000, 100_000] {
        for op in ["$and", "$or", "$not"] {
            let mut v = json!({"user_id": "u"});
            for _ in 1..depth {
                let inner = if op == "$not" {
                    v
                } else {
                    Json::Array(vec![v])
                };
                v = Json::Object([(op.to_owned(), inner)].into_iter().collect());
            }
            let r = Filter::from_loose_json(&v);
            assert_eq!(
                r.is_ok(),
                depth <= MAX_FILTER_DEPTH,
                "{op} x {depth}: {r:?}"
            );
            // serde_json's recursive Drop of the value is not ours: leak the deepest ones.
            if depth > 10_000 {
                std::mem::forget(v);
            }
        }
    }
}

/// YAML text around the storage section with random keys and values in it.
fn config_text() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        Just("true".to_owned()),
        Just("\"${CONTEXT_PATH:.}/persist\"".to_owned()),
        Just("\"${UNSET_VAR}\"".to_owned()),
        Just("\"${UNSET_VAR}/x\"".to_owned()),
        Just("\"${A\"".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{a: b}".to_owned()),
        Just("~".to_owned()),
        any::<i64>().prop_map(|i| i.to_string()),
        "[a-z:{}\\[\\]$ \"'-]{0,12}",
    ];
    let entry_key = prop_oneof![
        6 => prop::sample::select(vec!["name", "default"]),
        1 => prop::sample::select(vec!["storage_type", "backend", "defualt", "confg"]),
    ];
    let config_key = prop::sample::select(vec!["path", "port", "pth"]);
    let storage_type = prop::sample::select(vec!["vector_db", "document_db", "graph_db"]);
    let entry = (
        prop::collection::vec((entry_key, scalar.clone()), 0..3),
        prop::collection::vec((config_key, scalar.clone()), 0..3),
        storage_type,
    )
        .prop_map(|(kv, config, storage_type)| {
            let mut body = vec![format!("storage_type: {storage_type}"), "backend: x".into()];
            body.extend(kv.iter().map(|(k, v)| format!("{k}: {v}")));
            let config: Vec<String> = config.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            body.push(format!("config: {{{}}}", config.join(", ")));
            format!("    - {{{}}}\n", body.join(", "))
        });
    let storage_key = prop_oneof![
        3 => Just("enabled"),
        1 => prop::sample::select(vec!["naive_timezone", "backend", "x"]),
    ];
    let noise = prop_oneof![3 => Just(String::new()), 1 => "[ -~\n]{0,40}".boxed()];
    (
        prop::collection::vec((storage_key, scalar), 0..3),
        prop::collection::vec(entry, 0..4),
        noise,
    )
        .prop_map(|(storage, entries, noise)| {
            let mut text = String::from("logging: {level: DEBUG}\nstorage:\n");
            for (k, v) in storage {
                text.push_str(&format!("  {k}: {v}\n"));
            }
            text.push_str("  backends:\n");
            for e in entries {
                text.push_str(&e);
            }
            text.push_str(&noise);
            text
        })
}

#[test]
fn configuration_loader_on_mutated_configurations() {
    let env = |name: &str| (name == "CONTEXT_PATH").then(|| "/srv".to_owned());
    run(
        "parse_config(mutated configurations)",
        config_text(),
        |text| {
            match parse_config(&text, env) {
                Ok(cfg) => {
                    for b in &cfg.storage.backends {
                        // A backend's typed parse of whatever its config holds.
                        #[derive(Debug, serde::Deserialize)]
                        #[allow(dead_code)]
                        struct Typed {
                            #[serde(
                                default,
                                deserialize_with = "storage_core::config::lenient_opt"
                            )]
                            port: Option<u16>,
                            #[serde(default)]
                            path: Option<String>,
                        }
                        if let Err(e) = b.parse::<Typed>() {
                            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
                        }
                    }
                    true
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
                    false
                }
            }
        },
    );
}

#[test]
fn configuration_loader_on_arbitrary_text() {
    run(
        "parse_config(arbitrary text)",
        prop::collection::vec(any::<u8>(), 0..512),
        |bytes| parse_config(&String::from_utf8_lossy(&bytes), |_| None).is_ok(),
    );
}
