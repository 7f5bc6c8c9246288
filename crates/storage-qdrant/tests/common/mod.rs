//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use storage_core::model::{ContextProperties, ContextType, ProcessedContext};
use storage_core::time::parse_timestamp;
use storage_qdrant::{QdrantLocalBackend, QdrantLocalConfig};

/// A deterministic pseudo-random vector of `dim` components (never zero).
pub fn vector(dim: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 2000) as f32 / 1000.0) - 1.0 + 1e-3
        })
        .collect()
}

/// `v / |v|`.
pub fn normalised(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// A context with a fixed creation time, a user and the given vector.
pub fn ctx(id: &str, t: ContextType, v: Vec<f32>) -> ProcessedContext {
    let mut c = ProcessedContext::new(t, format!("text of {id}"));
    c.id = id.to_owned();
    c.properties = ContextProperties::at(parse_timestamp("2026-02-21T09:30:00+08:00").unwrap());
    c.properties.user_id = Some("u1".into());
    c.vectorize.vector = Some(v);
    c
}

pub fn config(dir: &Path, dim: usize) -> QdrantLocalConfig {
    QdrantLocalConfig::new(dir, dim)
}

pub async fn open(dir: &Path, dim: usize) -> QdrantLocalBackend {
    QdrantLocalBackend::open(config(dir, dim))
        .await
        .expect("open store")
}
