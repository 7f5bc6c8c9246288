//! Reviewer finding (review9): an atomic pipeline that fails at run time must not report
//! `WriteOutcome::NotApplied` when its other commands were applied (InMemoryCache did;
//! Redis says `Unknown`, and now so does InMemoryCache).
use storage_cache::testkit::{CacheFactory, MemoryFactory};
use storage_cache::*;
use storage_core::WriteOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_atomic_pipeline_does_not_claim_not_applied_when_it_wrote() {
    let c = MemoryFactory::new().create("review-pipeline").await;
    let ops = [
        PipelineOp::Set {
            key: "p4".into(),
            value: i64::MAX.to_string(),
            ttl: None,
        },
        PipelineOp::Incr {
            key: "p4".into(),
            amount: 1,
        },
        PipelineOp::Set {
            key: "p5".into(),
            value: "after".into(),
            ttl: None,
        },
    ];
    let e = c.execute_pipeline(&ops, true).await.unwrap_err();
    let written = c.get("p5").await.unwrap();
    if e.outcome() == WriteOutcome::NotApplied {
        assert_eq!(written, None, "NotApplied, yet p5 was written: {e}");
    }
}
