//! Running a query set against a store and scoring it against exact ground truth.

use std::time::Instant;

use anyhow::{Context, Result};
use opencontext_storage::{ContextType, Scope, ScoredContext, SearchQuery, UnifiedStorage};

use crate::corpus::{QuerySet, TruthList};

/// Results of one evaluation run.
pub struct EvalReport {
    pub recall_at_10: f64,
    /// Recall@10 of the same query vectors without type or user filter, against the
    /// `all` ground truth (not timed).
    pub recall_unfiltered: f64,
    pub queries: usize,
    pub contexts: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// `(query index, hits)` of every query, for printing examples.
    pub hits: Vec<(usize, Vec<ScoredContext>)>,
}

/// Ties in the ground truth closer than this are compared as sets.
const TIE_GAP: f64 = 1e-5;
/// Score tolerance between an f32 engine and the float64 ground truth.
const SCORE_TOLERANCE: f64 = 1e-4;

/// Recall@10 of `hits` against one ground-truth list: the share of the true top 10 found.
/// A hit outside the true top 10 also counts when the truth has a tie at rank 10
/// (`gap_10_11` below 1e-5) and the hit's score equals the rank-10 score within 1e-4.
pub fn recall_at_10(hits: &[ScoredContext], truth: &TruthList) -> f64 {
    if truth.top10.is_empty() {
        return if hits.is_empty() { 1.0 } else { 0.0 };
    }
    let last = truth.top10.last().map(|h| h.score).unwrap_or(0.0);
    let tied = truth.gap_10_11.is_some_and(|g| g < TIE_GAP);
    let found = hits
        .iter()
        .take(10)
        .filter(|h| {
            truth.top10.iter().any(|t| t.id == h.context.id)
                || (tied && (f64::from(h.score) - last).abs() <= SCORE_TOLERANCE)
        })
        .count();
    (found.min(truth.top10.len())) as f64 / truth.top10.len() as f64
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let rank = (p * (sorted_ms.len() - 1) as f64).round() as usize;
    sorted_ms[rank.min(sorted_ms.len() - 1)]
}

/// Runs every query with its context type and user filter (top 10), times each call, and
/// scores it against the `filtered` ground truth.
pub async fn evaluate(storage: &UnifiedStorage, set: &QuerySet) -> Result<EvalReport> {
    // One untimed query first, so that lazy loading does not count as latency.
    if let Some(v) = set.vectors.first() {
        storage
            .search(&SearchQuery::new(v.clone()).top_k(10))
            .await
            .context("warm-up search")?;
    }
    let mut latencies = Vec::with_capacity(set.queries.len());
    let mut recall_sum = 0.0;
    let mut hits_all = Vec::with_capacity(set.queries.len());
    for (i, (q, v)) in set.queries.iter().zip(&set.vectors).enumerate() {
        let t: ContextType = q.context_type.parse()?;
        let scope = q.user_id.clone().map(Scope::user).unwrap_or_default();
        let query = SearchQuery::new(v.clone())
            .top_k(10)
            .context_types([t])
            .scope(scope);
        let start = Instant::now();
        let hits = storage
            .search(&query)
            .await
            .with_context(|| format!("query {}", q.id))?;
        latencies.push(start.elapsed().as_secs_f64() * 1e3);
        let truth = &set.truth[&q.id];
        recall_sum += recall_at_10(&hits, &truth.filtered);
        hits_all.push((i, hits));
    }
    let mut recall_unfiltered = 0.0;
    for (q, v) in set.queries.iter().zip(&set.vectors) {
        let hits = storage
            .search(&SearchQuery::new(v.clone()).top_k(10))
            .await
            .with_context(|| format!("query {}", q.id))?;
        recall_unfiltered += recall_at_10(&hits, &set.truth[&q.id].all);
    }
    latencies.sort_by(f64::total_cmp);
    let counts = storage.get_all_processed_context_counts().await?;
    Ok(EvalReport {
        recall_at_10: if set.queries.is_empty() {
            0.0
        } else {
            recall_sum / set.queries.len() as f64
        },
        recall_unfiltered: if set.queries.is_empty() {
            0.0
        } else {
            recall_unfiltered / set.queries.len() as f64
        },
        queries: set.queries.len(),
        contexts: counts.values().sum(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        hits: hits_all,
    })
}

/// The summary line: `recall@10=<R> queries=<Q> contexts=<N> ingest_per_s=<I> search_p50_ms=<P50> search_p99_ms=<P99>`.
/// `ingest_per_s` is `n/a` when nothing was ingested in this run.
pub fn summary_line(report: &EvalReport, ingest_per_s: Option<f64>) -> String {
    format!(
        "recall@10={:.4} queries={} contexts={} ingest_per_s={} search_p50_ms={:.3} search_p99_ms={:.3}",
        report.recall_at_10,
        report.queries,
        report.contexts,
        ingest_per_s.map_or_else(|| "n/a".to_string(), |r| format!("{r:.0}")),
        report.p50_ms,
        report.p99_ms
    )
}

#[cfg(test)]
mod tests {
    use opencontext_storage::ProcessedContext;

    use super::*;
    use crate::corpus::TruthHit;

    fn hit(id: &str, score: f32) -> ScoredContext {
        let mut c = ProcessedContext::new(ContextType::Event, "t");
        c.id = id.into();
        ScoredContext { context: c, score }
    }

    fn truth(ids: &[(&str, f64)], gap: f64) -> TruthList {
        TruthList {
            top10: ids
                .iter()
                .map(|(id, s)| TruthHit {
                    id: (*id).into(),
                    score: *s,
                })
                .collect(),
            gap_10_11: Some(gap),
        }
    }

    #[test]
    fn recall_counts_hits_and_ties() {
        let t = truth(&[("a", 0.9), ("b", 0.8)], 0.1);
        assert_eq!(recall_at_10(&[hit("a", 0.9), hit("b", 0.8)], &t), 1.0);
        assert_eq!(recall_at_10(&[hit("a", 0.9), hit("x", 0.8)], &t), 0.5);
        let tied = truth(&[("a", 0.9), ("b", 0.8)], 0.0);
        assert_eq!(
            recall_at_10(&[hit("a", 0.9), hit("x", 0.80001)], &tied),
            1.0
        );
        assert_eq!(recall_at_10(&[], &truth(&[], 0.0)), 1.0);
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
