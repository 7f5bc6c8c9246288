//! Project tasks: `cargo xtask bench` and `cargo xtask integration`.
//!
//! Few dependencies on purpose (serde_json only, to read cargo's JSON messages): it must
//! build in seconds on a clean machine.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod integration;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn run(mut cmd: Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// Runs every benchmark in release mode; each writes its results under `target/bench-results/`.
/// Then runs the demo and appends its summary line.
fn bench() -> Result<(), String> {
    let out = workspace_root().join("target/bench-results");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for package in [
        "storage-core",
        "storage-sqlite",
        "storage-qdrant",
        "storage-cache",
        "storage-viking",
    ] {
        let mut c = cargo();
        c.args(["bench", "-p", package]);
        run(c)?;
    }
    let demo_dir = workspace_root().join("target/bench-demo");
    let _ = std::fs::remove_dir_all(&demo_dir);
    let mut c = cargo();
    c.args([
        "run",
        "--release",
        "--bin",
        "ocstore",
        "--",
        "demo",
        "--dir",
    ])
    .arg(&demo_dir);
    let output = c
        .output()
        .map_err(|e| format!("cannot run the demo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "demo failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    std::fs::write(out.join("demo.txt"), format!("{last}\n")).map_err(|e| e.to_string())?;
    println!("demo: {last}");
    println!("results in {}", out.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench(),
        Some("integration") => integration::integration(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask bench\n       cargo xtask integration [--backend NAME]... [--docker | --local]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
