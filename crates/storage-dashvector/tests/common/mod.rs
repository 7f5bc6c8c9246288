//! Shared test support: the fake DashVector server and its filter language.
#![allow(dead_code)]

pub mod fake;
pub mod filter_lang;

use storage_dashvector::{DashVectorBackend, DashVectorConfig, FieldKind};

/// The token the fakes accept.
pub const TOKEN: &str = "test-token-7f3a";

/// A config for `fake` with fast retries and the kit's metadata field declared.
pub fn config(fake: &fake::FakeDashVector, dimension: usize) -> DashVectorConfig {
    let mut c = DashVectorConfig::new(fake.endpoint(), TOKEN, dimension)
        .with_extra_field("project", FieldKind::String);
    c.retry_base_delay_ms = 5;
    c.retry_max_delay_ms = 20;
    c.timeout_secs = 5.0;
    c
}

/// A fake and a backend opened on it.
pub async fn open(dimension: usize, todo: bool) -> (fake::FakeDashVector, DashVectorBackend) {
    let fake = fake::FakeDashVector::start(TOKEN).await;
    let backend = DashVectorBackend::open(config(&fake, dimension).with_todo_embeddings(todo))
        .await
        .expect("open on the fake");
    (fake, backend)
}
