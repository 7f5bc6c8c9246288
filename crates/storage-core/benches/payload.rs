//! Cost of the shared payload layout: `to_payload` and `from_payload` for a context shaped like
//! the corpus's (tenant triple, times, keywords, a paragraph of text, a time bucket).
//!
//! `cargo bench -p storage-core --bench payload`; results are printed and written to
//! `target/bench-results/payload.txt`. `BENCH_ITERS` sets the iterations (default 200000).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use storage_core::payload::{from_payload, to_payload};
use storage_core::time::parse_timestamp;
use storage_core::{ContextType, ProcessedContext};

fn context() -> ProcessedContext {
    let t = parse_timestamp("2023-12-04T00:00:00+00:00").expect("timestamp");
    let mut c = ProcessedContext::new(
        ContextType::Knowledge,
        "Metaclass for defining Abstract Base Classes (ABCs). Use this metaclass to create an \
         ABC. An ABC can be subclassed directly, and then acts as a mix-in class.",
    );
    c.id = "a8e39d68-e1b7-5e27-83e9-340bbda40abf".into();
    c.extracted_data.title = Some("abc.ABCMeta".into());
    c.extracted_data.keywords = vec!["metaclass".into(), "abstract".into(), "base".into()];
    c.extracted_data.importance = 3;
    c.properties.create_time = t;
    c.properties.event_time = t;
    c.properties.update_time = t;
    c.properties.user_id = Some("user-02".into());
    c.properties.device_id = Some("default".into());
    c.properties.agent_id = Some("default".into());
    c.properties.source_file_key = Some("user-02:stdlib/abc.py".into());
    c.properties.time_bucket = Some("2023-12-04".into());
    c
}

fn main() {
    let iters: u32 = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let ctx = context();
    let payload = to_payload(&ctx).expect("to_payload");

    let start = Instant::now();
    for _ in 0..iters {
        black_box(to_payload(black_box(&ctx)).expect("to_payload"));
    }
    let to_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iters);

    let start = Instant::now();
    for _ in 0..iters {
        let p = black_box(payload.clone());
        black_box(from_payload(p, "fallback", None).expect("from_payload"));
    }
    let from_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iters);

    let start = Instant::now();
    for _ in 0..iters {
        black_box(black_box(&payload).clone());
    }
    let clone_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iters);

    let report = format!(
        "payload: iters={iters} to_payload_us={to_us:.3} from_payload_us={:.3} (clone of the input {clone_us:.3} us subtracted)\n",
        from_us - clone_us
    );
    print!("{report}");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("bench-results");
    std::fs::create_dir_all(&dir).expect("results dir");
    std::fs::write(dir.join("payload.txt"), report).expect("write results");
}
