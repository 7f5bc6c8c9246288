//! The [`Embedder`] trait: turns texts into vectors when a context arrives without one
//! (the original's auto-vectorize), plus an OpenAI-compatible HTTP implementation
//! (feature `openai`).

use std::fmt;

use async_trait::async_trait;

use crate::error::{Result, StorageError};
use crate::model::ProcessedContext;

/// Computes embeddings.
#[async_trait]
pub trait Embedder: Send + Sync + fmt::Debug {
    /// Length of every vector this embedder returns.
    fn dimension(&self) -> usize;

    /// One vector per input text, in input order, each of [`Embedder::dimension`] components.
    ///
    /// # Errors
    /// Whatever the provider reports; [`crate::ErrorKind::Unavailable`] or
    /// [`crate::ErrorKind::Timeout`] (retryable) for transport failures.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// Fills `vectorize.vector` of every context that lacks one, with one batched call to
/// `embedder`. Contexts whose content to embed is missing (no text, or a file) are refused.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the context without embeddable content, or with
/// no embedder configured; the embedder's error otherwise; a
/// [`crate::ErrorKind::Backend`] error when it returns the wrong number of vectors.
pub async fn embed_missing(
    contexts: &mut [ProcessedContext],
    embedder: Option<&dyn Embedder>,
) -> Result<()> {
    let missing: Vec<usize> = (0..contexts.len())
        .filter(|&i| contexts[i].vectorize.vector.is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let embedder = embedder.ok_or_else(|| {
        StorageError::invalid_input(format!(
            "context '{}' has no vector and no embedder is configured (set embedding_model)",
            contexts[missing[0]].id
        ))
    })?;
    let mut texts = Vec::with_capacity(missing.len());
    for &i in &missing {
        let c = &contexts[i];
        let text = c
            .vectorize
            .vectorize_content()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                StorageError::invalid_input(format!(
                    "context '{}' has neither a vector nor text to embed",
                    c.id
                ))
            })?;
        texts.push(text.to_owned());
    }
    let vectors = embedder.embed(&texts).await?;
    if vectors.len() != texts.len() {
        return Err(StorageError::backend(format!(
            "embedder returned {} vectors for {} texts",
            vectors.len(),
            texts.len()
        )));
    }
    for (i, v) in missing.into_iter().zip(vectors) {
        contexts[i].vectorize.vector = Some(v);
    }
    Ok(())
}

#[cfg(feature = "openai")]
mod openai {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::config::{EmbeddingConfig, Secret};
    use crate::error::ErrorKind;

    /// An embedder for OpenAI-compatible `POST {base_url}/embeddings` endpoints
    /// (OpenAI, Volcengine Ark, vLLM, Ollama's OpenAI mode...).
    ///
    /// Request: `{"model", "input": [texts], "dimensions"?}` with `Authorization: Bearer`.
    /// Response: `{"data": [{"index", "embedding": [f32]}]}`
    /// (<https://platform.openai.com/docs/api-reference/embeddings/create>).
    pub struct OpenAiEmbedder {
        client: reqwest::Client,
        url: String,
        api_key: Secret,
        model: String,
        dimension: usize,
        send_dimensions: bool,
        batch_size: usize,
    }

    impl fmt::Debug for OpenAiEmbedder {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("OpenAiEmbedder")
                .field("url", &self.url)
                .field("api_key", &self.api_key)
                .field("model", &self.model)
                .field("dimension", &self.dimension)
                .finish()
        }
    }

    #[derive(Serialize)]
    struct Request<'a> {
        model: &'a str,
        input: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        dimensions: Option<usize>,
    }

    #[derive(Deserialize)]
    struct Response {
        data: Vec<Item>,
    }

    #[derive(Deserialize)]
    struct Item {
        index: usize,
        embedding: Vec<f32>,
    }

    impl OpenAiEmbedder {
        /// Builds the embedder. `output_dim` is required: it is the dimension every vector
        /// must have (and is sent as `dimensions`).
        ///
        /// # Errors
        /// [`ErrorKind::Config`] when `output_dim` is missing or zero, or the timeout is not
        /// positive.
        pub fn new(config: &EmbeddingConfig) -> Result<Self> {
            let dimension = config.output_dim.filter(|d| *d > 0).ok_or_else(|| {
                StorageError::config(
                    "embedding_model.output_dim must be set to the vector dimension",
                )
            })?;
            if !(config.timeout_secs > 0.0 && config.timeout_secs.is_finite()) {
                return Err(StorageError::config(
                    "embedding_model.timeout_secs must be positive",
                ));
            }
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs_f64(config.timeout_secs))
                .build()
                .map_err(|e| StorageError::config("cannot build HTTP client").with_source(e))?;
            Ok(OpenAiEmbedder {
                client,
                url: format!("{}/embeddings", config.base_url.trim_end_matches('/')),
                api_key: config.api_key.clone(),
                model: config.model.clone(),
                dimension,
                send_dimensions: true,
                batch_size: config.batch_size.max(1),
            })
        }

        /// Do not send `dimensions` (for providers that reject it); vectors must still have
        /// the configured dimension.
        pub fn without_dimensions_parameter(mut self) -> Self {
            self.send_dimensions = false;
            self
        }

        async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            let body = Request {
                model: &self.model,
                input: texts,
                dimensions: self.send_dimensions.then_some(self.dimension),
            };
            let mut req = self.client.post(&self.url).json(&body);
            if !self.api_key.is_empty() {
                req = req.bearer_auth(self.api_key.expose());
            }
            let resp = req.send().await.map_err(|e| {
                let kind = if e.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unavailable
                };
                StorageError::new(kind, format!("embedding request to {} failed", self.url))
                    .with_source(e)
            })?;
            let status = resp.status();
            if !status.is_success() {
                let text = resp.text().await.unwrap_or_default();
                let kind = match status.as_u16() {
                    401 | 403 => ErrorKind::PermissionDenied,
                    400 | 404 | 422 => ErrorKind::InvalidInput,
                    408 => ErrorKind::Timeout,
                    429 | 500..=599 => ErrorKind::Unavailable,
                    _ => ErrorKind::Backend,
                };
                let snippet: String = text.chars().take(300).collect();
                return Err(StorageError::new(
                    kind,
                    format!("embedding endpoint answered {status}: {snippet}"),
                )
                .set_retryable(status.as_u16() == 429 || status.is_server_error()));
            }
            let mut parsed: Response = resp.json().await.map_err(|e| {
                StorageError::backend("embedding response is not the OpenAI shape").with_source(e)
            })?;
            parsed.data.sort_by_key(|d| d.index);
            if parsed.data.len() != texts.len() {
                return Err(StorageError::backend(format!(
                    "embedding endpoint returned {} vectors for {} texts",
                    parsed.data.len(),
                    texts.len()
                )));
            }
            parsed
                .data
                .into_iter()
                .map(|d| {
                    crate::validate::validate_vector("embedding", &d.embedding, self.dimension)
                        .map_err(|e| {
                            StorageError::backend(format!("embedding endpoint: {}", e.message()))
                        })?;
                    Ok(d.embedding)
                })
                .collect()
        }
    }

    #[async_trait]
    impl Embedder for OpenAiEmbedder {
        fn dimension(&self) -> usize {
            self.dimension
        }

        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            let mut out = Vec::with_capacity(texts.len());
            for chunk in texts.chunks(self.batch_size) {
                out.extend(self.embed_batch(chunk).await?);
            }
            Ok(out)
        }
    }
}

#[cfg(feature = "openai")]
pub use openai::OpenAiEmbedder;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContextType;

    #[derive(Debug)]
    struct Fixed;

    #[async_trait]
    impl Embedder for Fixed {
        fn dimension(&self) -> usize {
            2
        }
        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
        }
    }

    #[tokio::test]
    async fn fills_only_missing_vectors() {
        let mut a = ProcessedContext::new(ContextType::Event, "abc");
        let mut b = ProcessedContext::new(ContextType::Event, "x");
        b.vectorize.vector = Some(vec![9.0, 9.0]);
        let mut batch = [a.clone(), b.clone()];
        embed_missing(&mut batch, Some(&Fixed)).await.unwrap();
        a.vectorize.vector = Some(vec![3.0, 1.0]);
        assert_eq!(batch[0], a);
        assert_eq!(batch[1], b);
    }

    #[tokio::test]
    async fn refuses_without_embedder_or_text() {
        let mut batch = [ProcessedContext::new(ContextType::Event, "abc")];
        let e = embed_missing(&mut batch, None).await.unwrap_err();
        assert!(e.to_string().contains("no embedder"), "{e}");
        let mut empty = [ProcessedContext::new(ContextType::Event, "")];
        assert!(embed_missing(&mut empty, Some(&Fixed)).await.is_err());
    }
}
