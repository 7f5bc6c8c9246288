//! The `tracing` span of every RedisCache round trip. Alone in its own test binary: tracing
//! caches each callsite's interest process-wide, and a callsite first hit by a concurrent test
//! while no subscriber is registered can stay disabled for the subscriber installed here.
//! Needs a server at `REDIS_URL` (skipped without one unless `CI` is set).

use storage_cache::testkit::RedisFactory;
use storage_cache::{Cache, RedisCache};

async fn factory(label: &str) -> Option<RedisFactory> {
    RedisFactory::from_env(label).await
}

/// A subscriber that records the `op` field of every `cache` span it sees.
mod recording {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Clone, Default)]
    pub struct Recorder {
        pub spans: Arc<Mutex<Vec<(String, String)>>>,
    }

    struct OpVisitor(String, String);

    impl Visit for OpVisitor {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "op" => self.0 = value.to_owned(),
                "backend" => self.1 = value.to_owned(),
                _ => {}
            }
        }
        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    impl Subscriber for Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, attrs: &Attributes<'_>) -> Id {
            if attrs.metadata().name() == "cache" {
                let mut v = OpVisitor(String::new(), String::new());
                attrs.record(&mut v);
                self.spans.lock().unwrap().push((v.1, v.0));
            }
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_round_trip_has_a_cache_span_naming_the_operation() {
    let Some(f) = factory("tracing").await else {
        return;
    };
    let cache = RedisCache::new(f.config().clone()).unwrap();
    let recorder = recording::Recorder::default();
    {
        let _guard = tracing::subscriber::set_default(recorder.clone());
        cache.set("k", "v", Some(60)).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
        cache.rpush_expire_llen("q", "a", 30).await.unwrap();
        cache.pipeline().incr("n", 1).execute().await.unwrap();
    }
    let spans = recorder.spans.lock().unwrap().clone();
    let ops: Vec<&str> = spans.iter().map(|(_, op)| op.as_str()).collect();
    for op in ["set", "get", "rpush_expire_llen", "execute_pipeline"] {
        assert!(ops.contains(&op), "no span for {op}: {spans:?}");
    }
    assert!(
        spans.iter().all(|(backend, _)| backend == "redis"),
        "{spans:?}"
    );
    f.cleanup().await.unwrap();
}
