//! The OpenAI-compatible embedder against an in-process HTTP server that implements the
//! documented request and response shapes.
#![cfg(feature = "openai")]

use serde_json::{Value, json};
use storage_core::config::{EmbeddingConfig, Secret};
use storage_core::{Embedder, ErrorKind, OpenAiEmbedder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves one request per connection: 401 without the right bearer token, `status` when not
/// 200, else one embedding per input whose first component is the text length (answers in
/// reverse order, with `index` set, to check reordering).
async fn serve(status: u16, dim: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..pos]).to_string();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        while buf.len() < pos + 4 + len {
                            let n = sock.read(&mut chunk).await.unwrap();
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break (head, buf[pos + 4..pos + 4 + len].to_vec());
                    }
                };
                let authorised = head
                    .lines()
                    .any(|l| l.eq_ignore_ascii_case("authorization: Bearer sk-test"));
                let (code, reply) = if !head.starts_with("POST /v1/embeddings ") {
                    (404, json!({"error": "not found"}))
                } else if !authorised {
                    (401, json!({"error": {"message": "bad key"}}))
                } else if status != 200 {
                    (status, json!({"error": {"message": "boom"}}))
                } else {
                    let req: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(req["model"], "m");
                    assert_eq!(req["dimensions"], 3);
                    let inputs = req["input"].as_array().unwrap();
                    let data: Vec<Value> = inputs
                        .iter()
                        .enumerate()
                        .rev()
                        .map(|(i, t)| {
                            let mut v = vec![0.5f32; dim];
                            v[0] = t.as_str().unwrap().len() as f32;
                            json!({"object": "embedding", "index": i, "embedding": v})
                        })
                        .collect();
                    (200, json!({"object": "list", "data": data, "model": "m"}))
                };
                let body = reply.to_string();
                let resp = format!(
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
            });
        }
    });
    format!("http://{addr}/v1")
}

fn config(base_url: String, key: &str) -> EmbeddingConfig {
    serde_json::from_value(json!({
        "base_url": base_url, "api_key": key, "model": "m", "output_dim": "3", "batch_size": 2
    }))
    .map(|mut c: EmbeddingConfig| {
        c.api_key = Secret::new(key);
        c
    })
    .unwrap()
}

#[tokio::test]
async fn embeds_in_batches_and_keeps_input_order() {
    let e = OpenAiEmbedder::new(&config(serve(200, 3).await, "sk-test")).unwrap();
    assert_eq!(e.dimension(), 3);
    let texts: Vec<String> = ["a", "bb", "ccc", "dddd", "eeeee"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let v = e.embed(&texts).await.unwrap();
    assert_eq!(
        v.iter().map(|x| x[0]).collect::<Vec<_>>(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0]
    );
    assert!(
        !format!("{e:?}").contains("sk-test"),
        "the key is not printed"
    );
}

#[tokio::test]
async fn maps_http_errors_to_kinds() {
    let url = serve(200, 3).await;
    let e = OpenAiEmbedder::new(&config(url, "wrong")).unwrap();
    let err = e.embed(&["x".into()]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(!err.is_retryable());

    let e = OpenAiEmbedder::new(&config(serve(503, 3).await, "sk-test")).unwrap();
    let err = e.embed(&["x".into()]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());

    let e = OpenAiEmbedder::new(&config(serve(200, 4).await, "sk-test")).unwrap();
    let err = e.embed(&["x".into()]).await.unwrap_err();
    assert!(
        err.to_string().contains("4 components, expected 3"),
        "{err}"
    );

    let e = OpenAiEmbedder::new(&config("http://127.0.0.1:9/v1".into(), "sk-test")).unwrap();
    let err = e.embed(&["x".into()]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[test]
fn refuses_a_config_without_dimension() {
    let mut c = config("http://127.0.0.1:9".into(), "k");
    c.output_dim = None;
    assert_eq!(
        OpenAiEmbedder::new(&c).unwrap_err().kind(),
        ErrorKind::Config
    );
}
