//! Configuration entries shaped like the original's shipped files (`config.yaml`,
//! `config_mysql.yaml`, `config_dashvector.yaml`, `config-docker.yaml`) parse without an
//! unknown-key error, while a misspelt key is refused naming it: unknown keys are refused
//! everywhere, so every key the original writes must be read or explicitly accepted.

use opencontext_storage::config::parse_config;
#[allow(unused_imports)]
use opencontext_storage::{ErrorKind, UnifiedStorage};

fn env(name: &str) -> Option<String> {
    (name == "CONTEXT_PATH").then(|| "/srv/oc".to_owned())
}

/// The `storage.backends` entries of the original's files, with every key they use.
const ORIGINAL_STORAGE: &str = r#"
storage:
  enabled: true
  backends:
    - name: "viking"
      storage_type: "vector_db"
      backend: "vikingdb"
      config:
        access_key_id: "${VIKINGDB_ACCESS_KEY_ID}"
        secret_access_key: "${VIKINGDB_SECRET_ACCESS_KEY}"
        region: "${VIKINGDB_REGION:cn-beijing}"
        dimension: 2048
        max_connections: 100
        max_connections_per_host: 20
        collection_name: "opencontext"
        index_name: "opencontext_index"
    - name: "dashvector"
      storage_type: "vector_db"
      backend: "dashvector"
      config:
        api_key: "${DASHVECTOR_API_KEY}"
        endpoint: "${DASHVECTOR_ENDPOINT}"
        vector_size: 1536
        timeout: 30.0
        max_connections: 100
        max_connections_per_host: 20
    - name: "chroma"
      storage_type: "vector_db"
      backend: "chromadb"
      config:
        mode: "server"
        host: "${CHROMA_HOST:localhost}"
        port: "${CHROMA_PORT:8000}"
        collection_prefix: "opencontext"
    - name: "qdrant_local"
      storage_type: "vector_db"
      backend: "qdrant"
      config:
        vector_size: 2048
        path: "${CONTEXT_PATH:.}/persist/qdrant"
    - name: "qdrant_remote"
      storage_type: "vector_db"
      backend: "qdrant"
      config:
        vector_size: 2048
        host: "localhost"
        port: 6333
        https: false
        api_key: "${QDRANT_API_KEY}"
    - name: "mysql"
      storage_type: "document_db"
      backend: "mysql"
      config:
        host: "${MYSQL_HOST:localhost}"
        port: ${MYSQL_PORT:3306}
        user: "${MYSQL_USER:root}"
        password: "${MYSQL_PASSWORD:}"
        database: "${MYSQL_DATABASE:opencontext}"
        charset: "utf8mb4"
    - name: "sqlite"
      storage_type: "document_db"
      backend: "sqlite"
      config:
        path: "${CONTEXT_PATH:.}/persist/sqlite/app.db"
consumption:
  enabled: "${CONSUMPTION_ENABLED:false}"
"#;

#[test]
fn every_key_of_the_original_files_is_read_or_accepted() {
    let cfg = parse_config(ORIGINAL_STORAGE, env).expect("the original's storage section");
    let entry = |name: &str| {
        cfg.storage
            .backends
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("entry {name}"))
    };
    // Each backend parses its entry as the factory does (same keys dropped).
    #[cfg(feature = "vikingdb")]
    {
        use opencontext_storage::storage_viking::VikingConfig;
        let c: VikingConfig = entry("viking")
            .parse_ignoring(VikingConfig::ORIGINAL_KEYS_NOT_USED)
            .expect("viking");
        assert_eq!(c.dimension, 2048);
        let e = entry("viking").parse::<VikingConfig>().unwrap_err();
        assert!(e.to_string().contains("max_connections"), "{e}");
    }
    #[cfg(feature = "dashvector")]
    {
        use opencontext_storage::storage_dashvector::DashVectorConfig;
        let c: DashVectorConfig = entry("dashvector")
            .parse_ignoring(DashVectorConfig::ORIGINAL_KEYS_NOT_USED)
            .expect("dashvector");
        assert_eq!(c.timeout_secs, 30.0, "the original's `timeout` is read");
    }
    #[cfg(feature = "chromadb")]
    {
        let c: opencontext_storage::storage_chroma::ChromaConfig =
            entry("chroma").parse().expect("chroma");
        assert_eq!(c.port, 8000);
    }
    #[cfg(feature = "qdrant-local")]
    {
        let c: opencontext_storage::storage_qdrant::QdrantLocalConfig =
            entry("qdrant_local").parse().expect("qdrant local");
        assert_eq!(c.path, std::path::Path::new("/srv/oc/persist/qdrant"));
    }
    #[cfg(feature = "qdrant-remote")]
    {
        let c: opencontext_storage::storage_qdrant::QdrantRemoteConfig =
            entry("qdrant_remote").parse().expect("qdrant remote");
        assert_eq!(c.port, 6333);
    }
    #[cfg(feature = "mysql")]
    {
        let c: opencontext_storage::storage_mysql::MysqlConfig =
            entry("mysql").parse().expect("mysql");
        assert_eq!(c.charset, "utf8mb4");
    }
    #[cfg(feature = "sqlite")]
    {
        let c: opencontext_storage::storage_sqlite::SqliteConfig =
            entry("sqlite").parse().expect("sqlite");
        assert_eq!(
            c.path,
            std::path::Path::new("/srv/oc/persist/sqlite/app.db")
        );
    }
    let _ = entry;
}

#[cfg(all(feature = "sqlite", feature = "qdrant-local"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_key_is_refused_before_anything_opens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let typo = format!(
        "storage:\n  backends:\n    - {{name: docs, storage_type: document_db, backend: sqlite, config: {{pth: {d}/app.db}}}}\n"
    );
    let cfg = parse_config(&typo, env).unwrap();
    let Err(e) = UnifiedStorage::from_config(&cfg).await else {
        panic!("a misspelt key was accepted");
    };
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("backend 'docs' (sqlite)")
            && msg.contains("`config.pth` (did you mean `path`?)"),
        "{msg}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was created"
    );

    // The original's Qdrant template may leave the server keys next to `path`: local mode
    // opens and does not call them unknown.
    let both = format!(
        "storage:\n  backends:\n    - {{storage_type: vector_db, backend: qdrant, config: {{vector_size: 4, path: {d}/q, host: localhost, port: 6333}}}}\n    - {{storage_type: document_db, backend: sqlite, config: {{path: {d}/app.db}}}}\n"
    );
    let storage = UnifiedStorage::from_config(&parse_config(&both, env).unwrap())
        .await
        .expect("opens");
    storage.close().await.unwrap();
}
