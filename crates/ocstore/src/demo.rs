//! `ocstore demo`: the bundled corpus through the embedded defaults, end to end.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use opencontext_storage::config::AppConfig;
use opencontext_storage::{
    EntityUpsert, ProcessedContext, ProfileUpsert, TenantKey, UnifiedStorage,
};
use serde_json::json;

use crate::corpus::{self, CorpusFiles};
use crate::eval;

/// Where the demo keeps its stores when `--dir` is not given.
pub const DEFAULT_DIR: &str = "ocstore-data/demo";

/// The demo's configuration: SQLite and the embedded Qdrant engine under `dir`. Written to
/// `dir/ocstore.yaml` (JSON is YAML) so the other commands can reuse the store.
fn demo_config(dir: &Path) -> Result<(AppConfig, serde_json::Value)> {
    let dir_str = dir
        .to_str()
        .with_context(|| format!("--dir {} is not valid UTF-8", dir.display()))?;
    let value = json!({
        "storage": {
            "backends": [
                {"name": "default_vector", "storage_type": "vector_db", "backend": "qdrant", "default": true,
                 "config": {"path": format!("{dir_str}/qdrant"), "vector_size": corpus::DIMENSION}},
                {"name": "document_store", "storage_type": "document_db", "backend": "sqlite", "default": true,
                 "config": {"path": format!("{dir_str}/sqlite/app.db")}}
            ]
        },
        "consumption": {"enabled": false}
    });
    Ok((serde_json::from_value(value.clone())?, value))
}

/// The demo against the backends of a configuration file (e.g. a Chroma server and SQLite).
pub async fn run_with_config(config_path: &Path, data: &Path) -> Result<()> {
    let (contexts, set) = load_corpus(data)?;
    let config = opencontext_storage::config::load_config(config_path)?;
    println!("opening the backends of {}", config_path.display());
    let storage = UnifiedStorage::from_config(&config).await?;
    println!(
        "  vector backend: {}, document backend: {}",
        storage.vector()?.name(),
        storage.document()?.name()
    );
    let result = demo_steps(&storage, &contexts, &set).await;
    storage.close().await?;
    let line = result?;
    println!("{line}");
    Ok(())
}

fn load_corpus(data: &Path) -> Result<(corpus::Corpus, corpus::QuerySet)> {
    let files = CorpusFiles::in_dir(data);
    println!("reading corpus from {}", data.display());
    let contexts = corpus::load_contexts(&files.contexts, &files.vectors)?;
    let set = corpus::load_queries(&files.queries, &files.query_vectors, &files.ground_truth)?;
    println!(
        "  {} contexts, {} queries",
        contexts.contexts.len(),
        set.queries.len()
    );
    Ok((contexts, set))
}

pub async fn run(dir: &Path, data: &Path) -> Result<()> {
    let (contexts, set) = load_corpus(data)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (config, raw) = demo_config(dir)?;
    let config_path = dir.join("ocstore.yaml");
    std::fs::write(&config_path, serde_json::to_string_pretty(&raw)?)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    println!(
        "opening SQLite + embedded Qdrant in {} (config: {})",
        dir.display(),
        config_path.display()
    );
    let storage = UnifiedStorage::from_config(&config).await?;

    let result = demo_steps(&storage, &contexts, &set).await;
    storage.close().await?;
    let line = result?;
    println!("{line}");
    Ok(())
}

async fn demo_steps(
    storage: &UnifiedStorage,
    corpus: &corpus::Corpus,
    set: &corpus::QuerySet,
) -> Result<String> {
    // The whole corpus against the store's rules before the first batch is written.
    corpus.validate(storage.vector()?.dimension())?;
    let contexts = corpus.contexts.as_slice();
    println!("ingesting contexts (batches of 256; each batch is durable when it returns)");
    let ingest_per_s = crate::ingest(storage, contexts, 256).await?;

    println!("storing profiles and entities in SQLite");
    let (profiles, entities) = store_people(storage, contexts).await?;
    println!("  {profiles} profiles, {entities} entities");
    let key = TenantKey::new("user-27", "default", "default");
    if let Some(p) = storage.get_profile(&key).await? {
        println!(
            "  profile of {}: {}",
            p.user_id,
            crate::truncate(&p.content, 100)
        );
        if let Some(topic) = p.keywords.first() {
            let needle: String = topic.chars().take(3).collect();
            let found = storage.search_entities(&key, &needle, 5).await?;
            let names: Vec<&str> = found.iter().map(|e| e.entity_name.as_str()).collect();
            println!(
                "  entities of user-27 matching \"{needle}\": {}",
                names.join(", ")
            );
        }
    }

    println!(
        "running {} queries (top 10, filtered by context type and user)",
        set.queries.len()
    );
    let report = eval::evaluate(storage, set).await?;
    for (i, hits) in report
        .hits
        .iter()
        .filter(|(i, _)| [0usize, 21, 45].contains(i))
    {
        let q = &set.queries[*i];
        let user = q
            .user_id
            .as_deref()
            .map(|u| format!(", user {u}"))
            .unwrap_or_default();
        println!("query {} ({}{user}): {}", q.id, q.context_type, q.text);
        crate::print_hits(&hits[..hits.len().min(3)]);
    }
    println!(
        "recall@10 without filters (whole corpus): {:.4}",
        report.recall_unfiltered
    );
    Ok(eval::summary_line(&report, Some(ingest_per_s)))
}

/// Per user: records per context type, and keyword frequencies.
type UserTally = (HashMap<&'static str, usize>, HashMap<String, usize>);

/// One profile per user and, for each user, an entity per frequent keyword.
async fn store_people(
    storage: &UnifiedStorage,
    contexts: &[ProcessedContext],
) -> Result<(usize, usize)> {
    let mut per_user: BTreeMap<String, UserTally> = BTreeMap::new();
    for c in contexts {
        let user = c.properties.user_id.clone().unwrap_or_default();
        let entry = per_user.entry(user).or_default();
        *entry.0.entry(c.context_type().as_str()).or_default() += 1;
        for k in &c.extracted_data.keywords {
            *entry.1.entry(k.clone()).or_default() += 1;
        }
    }
    let mut entities = 0;
    for (user, (types, keywords)) in &per_user {
        let mut top: Vec<(&String, &usize)> = keywords.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        top.truncate(5);
        let total: usize = types.values().sum();
        let mut by_type: Vec<String> = types.iter().map(|(t, n)| format!("{n} {t}")).collect();
        by_type.sort();
        let key = TenantKey::new(user.clone(), "default", "default");
        let mut profile = ProfileUpsert::new(
            key.clone(),
            format!(
                "{user} contributed {total} records ({}). Frequent topics: {}.",
                by_type.join(", "),
                top.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        profile.keywords = top.iter().map(|(k, _)| (*k).clone()).collect();
        profile.importance = (total.min(1000) / 100) as i64;
        storage
            .upsert_profile(&profile)
            .await
            .with_context(|| format!("profile of {user}"))?;
        for (k, n) in top.iter().take(3) {
            let mut e = EntityUpsert::new(
                key.clone(),
                (*k).clone(),
                format!("Topic '{k}' appears in {n} of {user}'s records."),
            );
            e.entity_type = Some("topic".into());
            e.keywords = vec![(*k).clone()];
            storage
                .upsert_entity(&e)
                .await
                .with_context(|| format!("entity {k} of {user}"))?;
            entities += 1;
        }
    }
    Ok((per_user.len(), entities))
}
