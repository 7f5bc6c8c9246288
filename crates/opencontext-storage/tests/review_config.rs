//! Reviewer findings (review9): configuration mistakes that still pass silently or are
//! reported without the key. Each holds the fix.
use opencontext_storage::config::parse_config;

fn env(name: &str) -> Option<String> {
    (name == "SET").then(|| "/srv".to_owned())
}

/// `${UNSET:${SET}}` (a default that is itself a variable) is not substituted: the value
/// becomes the literal `${SET}/app.db` without a word, and SQLite then creates a directory
/// named `${SET}`. Expected: substituted, or refused as an unsupported nested variable.
#[test]
fn a_variable_inside_a_default_is_substituted_or_refused() {
    let text = "storage:\n  backends:\n    - {storage_type: document_db, backend: sqlite, config: {path: \"${UNSET_A:${SET}}/app.db\"}}\n";
    match parse_config(text, env) {
        Ok(c) => assert_eq!(c.storage.backends[0].config["path"], "/srv/app.db"),
        Err(e) => assert!(e.to_string().contains("config.path"), "{e}"),
    }
}

/// A misspelt key in `consumption` (read by the storage layer) is ignored: `enable: true`
/// leaves consumption off.
#[test]
fn a_misspelt_consumption_key_is_refused() {
    let e = parse_config("consumption:\n  enable: true\n", env).expect_err("typo accepted");
    assert!(e.to_string().contains("enable"), "{e}");
}

/// A misspelt key in `embedding_model` is ignored (`output_dimension` for `output_dim`).
#[test]
fn a_misspelt_embedding_key_is_refused() {
    let e = parse_config(
        "embedding_model:\n  base_url: http://x\n  model: m\n  output_dimension: 384\n",
        env,
    )
    .expect_err("typo accepted");
    assert!(e.to_string().contains("output_dimension"), "{e}");
}

/// When the misspelt key is a required one, serde's "missing field" wins and the typo is
/// never named: `vector_sise: 4` gives "invalid config at `.`: missing field `vector_size`".
#[cfg(feature = "qdrant-local")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typo_of_a_required_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "storage:\n  backends:\n    - {{storage_type: vector_db, backend: qdrant, config: {{path: {}/q, vector_sise: 4}}}}\n",
        dir.path().display()
    );
    let cfg = parse_config(&text, env).unwrap();
    let Err(e) = opencontext_storage::UnifiedStorage::from_config(&cfg).await else {
        panic!("opened");
    };
    assert!(e.to_string().contains("vector_sise"), "{e}");
}

/// YAML merge keys (`<<: *base`, which the original's PyYAML applies) are not applied: the
/// entry is refused as "missing field `storage_type`".
#[test]
fn merge_keys_are_applied() {
    let text = "base: &b {storage_type: document_db, backend: sqlite}\nstorage:\n  backends:\n    - <<: *b\n      config: {path: /x}\n";
    let c = parse_config(text, env).expect("merge key");
    assert_eq!(c.storage.backends[0].backend, "sqlite");
}
