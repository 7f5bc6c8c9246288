//! The shared vector conformance kit against the in-process fake VikingDB server: the real
//! HTTP client, signing, envelopes and filter DSL, one fresh server per case.

mod fake;

use std::sync::Arc;

use storage_core::VectorStorageBackend;
use storage_core::testkit::vector::{KitSpec, VectorKitHarness};
use storage_viking::{MetadataField, MetadataFieldType, VikingBackend};

struct Harness;

#[async_trait::async_trait]
impl VectorKitHarness for Harness {
    async fn fresh(&self, spec: KitSpec) -> Arc<dyn VectorStorageBackend> {
        let server = fake::FakeViking::start().await;
        let mut config = server
            .config(spec.dimension)
            .with_todo_embeddings(spec.todo_embeddings);
        // The kit filters on the metadata key `project`: declare it as a field.
        config.metadata_fields = vec![MetadataField {
            name: "project".into(),
            field_type: MetadataFieldType::String,
        }];
        Arc::new(
            VikingBackend::open(config)
                .await
                .expect("open against the fake"),
        )
    }
}

storage_core::vector_conformance_tests!(Harness);
