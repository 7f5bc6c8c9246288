//! The cache conformance kit against InMemoryCache and RedisCache (`REDIS_URL`, default
//! `redis://127.0.0.1:6379`; skipped with a message when no server answers, failing when
//! `CI` is set).

use std::sync::Arc;

use storage_cache::testkit::{self, MemoryFactory, RedisFactory};

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    testkit::$case(&MemoryFactory::new()).await;
                }
            )*
        }

        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(factory) = RedisFactory::from_env(stringify!($case)).await else {
                        return;
                    };
                    let factory = Arc::new(factory);
                    let running = Arc::clone(&factory);
                    // Run the case in a task so the keys are removed even when it fails.
                    let outcome =
                        tokio::spawn(async move { testkit::$case(&*running).await }).await;
                    factory.cleanup().await.expect("cleanup");
                    if let Err(e) = outcome {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
    };
}

conformance!(
    strings,
    expiry,
    json_values,
    lists,
    hashes,
    sets,
    sorted_sets,
    type_errors,
    locks,
    lock_contention,
    pipelines,
    scripts,
    prefixes,
    bad_input,
    edges_agree,
    close,
);
