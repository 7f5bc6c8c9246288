//! `ocstore`: the command-line tool of the OpenContext storage layer.
//!
//! * `ocstore demo [--dir DIR | --config FILE]`: ingest the bundled real corpus into the
//!   embedded defaults (SQLite + local Qdrant) or the backends of a configuration file, store
//!   profiles and entities, run the 60 evaluation queries and print `recall@10=… queries=… contexts=… ingest_per_s=… search_p50_ms=… search_p99_ms=…`.
//! * `ocstore ingest | search | stats | eval` against any configuration file in the original's
//!   YAML shape (`storage.backends`), so the same commands work with every backend.

mod corpus;
mod demo;
mod eval;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use opencontext_storage::config::{AppConfig, load_config};
use opencontext_storage::{ContextType, Scope, SearchQuery, UnifiedStorage};

use crate::corpus::CorpusFiles;

#[derive(Parser)]
#[command(
    name = "ocstore",
    version,
    about = "OpenContext storage: demo, ingest, search, stats, eval"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest the bundled corpus into the embedded defaults and evaluate search quality.
    Demo {
        /// Directory for the demo's SQLite file and vector store (reused by reruns).
        #[arg(long, default_value = demo::DEFAULT_DIR)]
        dir: PathBuf,
        /// Corpus directory (contexts.jsonl, vectors.f32, queries.jsonl, ...).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Run the demo against this configuration (the original's YAML shape, with a vector
        /// and a document backend) instead of the embedded defaults under --dir.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Upsert a corpus (contexts.jsonl + vectors.f32) into the configured vector store.
    ///
    /// The whole input is checked before the first write, with the same rules the library
    /// applies on upsert (ids, vectors of the store's dimension, importance and confidence 0 to
    /// 10, time buckets, metadata, payload size), plus: ids unique in the whole file, valid
    /// UTF-8, one vector row per context. Any failure names the file and line (vector rows name
    /// their row and context line), writes nothing and exits non-zero. A UTF-8 byte-order mark
    /// at the start is accepted; blank lines are skipped (vector rows go with the non-blank
    /// lines, in order); lines may end in CRLF.
    Ingest {
        #[command(flatten)]
        store: StoreArgs,
        /// Contexts as JSON lines in the corpus format (default: the bundled corpus).
        #[arg(long)]
        contexts: Option<PathBuf>,
        /// Vectors, one little-endian f32 row of 384 per context (non-blank) line, no header
        /// (default: the bundled corpus).
        #[arg(long)]
        vectors: Option<PathBuf>,
        /// Contexts per upsert batch (only affects speed: the input is checked whole first).
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// Similarity search with a stored context's vector or a query of a query set.
    Search {
        #[command(flatten)]
        store: StoreArgs,
        /// Find contexts similar to the stored context with this id.
        #[arg(long, conflicts_with = "query_id")]
        like: Option<String>,
        /// Run the query with this id from --queries / --query-vectors.
        #[arg(long)]
        query_id: Option<String>,
        /// Query set (default: the bundled corpus' queries.jsonl).
        #[arg(long)]
        queries: Option<PathBuf>,
        /// Query vectors (default: the bundled corpus' query_vectors.f32).
        #[arg(long)]
        query_vectors: Option<PathBuf>,
        /// Restrict to one context type (profile, entity, document, event, knowledge).
        #[arg(long = "type")]
        context_type: Option<String>,
        /// Restrict to one user.
        #[arg(long)]
        user: Option<String>,
        /// Number of results.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
    },
    /// Print collection names and per-type counts, and check backend health.
    Stats {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Run a query set and print recall@10 and latency against its ground truth.
    Eval {
        #[command(flatten)]
        store: StoreArgs,
        /// Queries as JSON lines (id, text, context_type, user_id).
        #[arg(long)]
        queries: PathBuf,
        /// Query vectors, one f32 row of 384 per query line.
        #[arg(long)]
        query_vectors: PathBuf,
        /// Exact top-10 per query (ground_truth.jsonl format).
        #[arg(long)]
        ground_truth: PathBuf,
    },
}

#[derive(Args)]
struct StoreArgs {
    /// Configuration file (the original's YAML shape). Default: the demo's store in
    /// `ocstore-data/demo/ocstore.yaml`.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl StoreArgs {
    fn load(&self) -> Result<AppConfig> {
        let path = self
            .config
            .clone()
            .unwrap_or_else(|| Path::new(demo::DEFAULT_DIR).join("ocstore.yaml"));
        if !path.exists() {
            bail!(
                "config file {} does not exist (pass --config, or run `ocstore demo` to create the default store)",
                path.display()
            );
        }
        Ok(load_config(&path)?)
    }

    async fn open(&self) -> Result<UnifiedStorage> {
        let config = self.load()?;
        Ok(UnifiedStorage::from_config(&config).await?)
    }
}

/// The corpus shipped in the repository: `./data/context-corpus`, else the one next to this
/// crate's sources.
pub fn default_corpus_dir() -> PathBuf {
    let local = PathBuf::from("data/context-corpus");
    if local.join("contexts.jsonl").exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/context-corpus")
}

/// Upserts contexts in batches, printing progress; returns contexts per second.
async fn ingest(
    storage: &UnifiedStorage,
    contexts: &[opencontext_storage::ProcessedContext],
    batch: usize,
) -> Result<f64> {
    let batch = batch.max(1);
    let start = Instant::now();
    let mut done = 0;
    let mut next_report = 0;
    for chunk in contexts.chunks(batch) {
        storage
            .batch_upsert_processed_context(chunk)
            .await
            .context("upsert failed")?;
        done += chunk.len();
        if done >= next_report || done == contexts.len() {
            let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
            println!(
                "  ingested {done}/{} contexts ({rate:.0}/s)",
                contexts.len()
            );
            next_report = done + 1000;
        }
    }
    Ok(contexts.len() as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

fn print_hits(hits: &[opencontext_storage::ScoredContext]) {
    for (rank, h) in hits.iter().enumerate() {
        let c = &h.context;
        let title = c.extracted_data.title.as_deref().unwrap_or("(untitled)");
        println!(
            "  {}. [{:.3}] {} {} ({})",
            rank + 1,
            h.score,
            c.context_type(),
            truncate(title, 80),
            c.properties.user_id.as_deref().unwrap_or("-")
        );
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo { dir, data, config } => {
            let data = data.unwrap_or_else(default_corpus_dir);
            match config {
                Some(path) => demo::run_with_config(&path, &data).await,
                None => demo::run(&dir, &data).await,
            }
        }
        Command::Ingest {
            store,
            contexts,
            vectors,
            batch,
        } => {
            let files = CorpusFiles::in_dir(&default_corpus_dir());
            let contexts_path = contexts.unwrap_or(files.contexts);
            let vectors_path = vectors.unwrap_or(files.vectors);
            let corpus = corpus::load_contexts(&contexts_path, &vectors_path)?;
            println!(
                "read {} contexts from {}",
                corpus.contexts.len(),
                contexts_path.display()
            );
            let storage = store.open().await?;
            let result = async {
                let dimension = storage.vector()?.dimension();
                corpus.validate(dimension)?;
                println!(
                    "checked {} contexts against the store (dimension {dimension})",
                    corpus.contexts.len()
                );
                ingest(&storage, &corpus.contexts, batch).await
            }
            .await;
            let closed = storage.close().await;
            let rate = result?;
            closed?;
            println!("ingest_per_s={rate:.0}");
            Ok(())
        }
        Command::Search {
            store,
            like,
            query_id,
            queries,
            query_vectors,
            context_type,
            user,
            top_k,
        } => {
            let storage = store.open().await?;
            let result = async {
                let vector = match (like, query_id) {
                    (Some(id), _) => {
                        let found = storage.get_by_ids(std::slice::from_ref(&id), None).await?;
                        let c = found
                            .into_iter()
                            .next()
                            .with_context(|| format!("no stored context has id '{id}'"))?;
                        let t = c.context_type();
                        storage
                            .get_processed_context(&id, t, true)
                            .await?
                            .and_then(|c| c.vectorize.vector)
                            .with_context(|| format!("context '{id}' has no vector"))?
                    }
                    (None, Some(qid)) => {
                        let files = CorpusFiles::in_dir(&default_corpus_dir());
                        let qpath = queries.unwrap_or(files.queries);
                        let qs: Vec<(usize, corpus::Query)> = corpus::read_jsonl(&qpath)?;
                        let lines: Vec<usize> = qs.iter().map(|(line, _)| *line).collect();
                        let vs = corpus::read_vectors(
                            &query_vectors.unwrap_or(files.query_vectors),
                            corpus::DIMENSION,
                            &qpath,
                            &lines,
                        )?;
                        let i = qs
                            .iter()
                            .position(|(_, q)| q.id == qid)
                            .with_context(|| format!("no query '{qid}' in {}", qpath.display()))?;
                        println!("query {qid}: {}", qs[i].1.text);
                        vs[i].clone()
                    }
                    (None, None) => bail!("give --like CONTEXT_ID or --query-id QUERY_ID"),
                };
                let mut q = SearchQuery::new(vector).top_k(top_k);
                if let Some(t) = context_type {
                    q = q.context_types([t.parse::<ContextType>()?]);
                }
                if let Some(u) = user {
                    q = q.scope(Scope::user(u));
                }
                let hits = storage.search(&q).await?;
                print_hits(&hits);
                Ok(())
            }
            .await;
            storage.close().await?;
            result
        }
        Command::Stats { store } => {
            let storage = store.open().await?;
            let result = async {
                storage.health_check().await?;
                println!("vector backend: {}", storage.vector()?.name());
                if let Ok(d) = storage.document() {
                    println!("document backend: {}", d.name());
                }
                println!(
                    "collections: {}",
                    storage.get_collection_names().await?.join(", ")
                );
                let counts = storage.get_all_processed_context_counts().await?;
                for (t, n) in &counts {
                    println!("  {t:<10} {n}");
                }
                println!("  {:<10} {}", "total", counts.values().sum::<u64>());
                Ok(())
            }
            .await;
            storage.close().await?;
            result
        }
        Command::Eval {
            store,
            queries,
            query_vectors,
            ground_truth,
        } => {
            let set = corpus::load_queries(&queries, &query_vectors, &ground_truth)?;
            let storage = store.open().await?;
            let report = eval::evaluate(&storage, &set).await;
            storage.close().await?;
            println!("{}", eval::summary_line(&report?, None));
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
