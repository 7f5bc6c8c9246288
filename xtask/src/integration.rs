//! `cargo xtask integration [--backend NAME]... [--docker | --local]`: runs every backend's
//! conformance kit against a real (or, for cloud-only databases, an in-process fake) server and
//! prints a table backend × result × tests × time.
//!
//! Two modes:
//! * **docker**: `docker compose up -d --wait` brings up the services of `docker-compose.yml`
//!   the selected backends need; `docker compose down` removes them afterwards.
//! * **local** (the default when no Docker engine answers `docker info`): the machine's own
//!   MariaDB/MySQL and Redis (started when they do not answer and their server binaries are
//!   installed), Chroma started from PyPI's `chroma` command on a free port, and the in-process
//!   fakes / gRPC test server for the rest. Whatever it started, it stops.
//!
//! The kits run with `CI=1`, so a test that cannot reach its server fails instead of skipping.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, workspace_root};

/// What a backend's kit needs besides the test binary.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Service {
    /// Nothing: embedded engine, temp files or an in-process fake server.
    None,
    MySql,
    Redis,
    Chroma,
}

struct Backend {
    name: &'static str,
    /// Where the kit's data goes in local mode (shown in the table).
    target: &'static str,
    service: Service,
    /// The package whose test binary runs the kit.
    package: &'static str,
    /// The test target: `Some(name)` for `tests/<name>.rs`, `None` for the library's tests.
    test: Option<&'static str>,
    /// Test-name filter passed to the binary (empty: every test of the target).
    filter: &'static str,
}

const BACKENDS: &[Backend] = &[
    Backend {
        name: "sqlite",
        target: "SQLite files (embedded)",
        service: Service::None,
        package: "storage-sqlite",
        test: Some("conformance"),
        filter: "",
    },
    Backend {
        name: "mysql",
        target: "MySQL/MariaDB server",
        service: Service::MySql,
        package: "storage-mysql",
        test: Some("conformance"),
        filter: "",
    },
    Backend {
        name: "qdrant-local",
        target: "qdrant-edge (embedded)",
        service: Service::None,
        package: "storage-qdrant",
        test: Some("conformance"),
        filter: "",
    },
    Backend {
        name: "qdrant",
        target: "in-process gRPC server",
        service: Service::None,
        package: "storage-qdrant",
        test: Some("remote_conformance"),
        filter: "",
    },
    Backend {
        name: "chromadb",
        target: "Chroma server",
        service: Service::Chroma,
        package: "storage-chroma",
        test: Some("conformance"),
        filter: "",
    },
    Backend {
        name: "vikingdb",
        target: "in-process fake (signed HTTP)",
        service: Service::None,
        package: "storage-viking",
        test: Some("conformance"),
        filter: "",
    },
    Backend {
        name: "dashvector",
        target: "in-process fake (HTTP)",
        service: Service::None,
        package: "storage-dashvector",
        test: Some("conformance"),
        filter: "",
    },
    Backend {
        name: "memory-vector",
        target: "in-process reference",
        service: Service::None,
        package: "storage-core",
        test: None,
        filter: "testkit::memory",
    },
    Backend {
        name: "redis",
        target: "Redis server",
        service: Service::Redis,
        package: "storage-cache",
        test: Some("conformance"),
        filter: "redis::",
    },
    Backend {
        name: "memory-cache",
        target: "InMemoryCache",
        service: Service::None,
        package: "storage-cache",
        test: Some("conformance"),
        filter: "memory::",
    },
    // Fault tests: each starts its own private server on a free port (never the shared
    // services) and stops, kills or stalls it.
    Backend {
        name: "mysql-faults",
        target: "private mariadbd (SIGSTOP, SIGKILL)",
        service: Service::None,
        package: "storage-mysql",
        test: Some("faults"),
        filter: "",
    },
    Backend {
        name: "redis-faults",
        target: "private redis-server (SIGSTOP)",
        service: Service::None,
        package: "storage-cache",
        test: Some("faults"),
        filter: "",
    },
    Backend {
        name: "chroma-faults",
        target: "private chroma run (SIGSTOP)",
        service: Service::None,
        package: "storage-chroma",
        test: Some("stall"),
        filter: "",
    },
    // Stalls and failures injected into the in-process servers (stall hooks of the gRPC test
    // server and of the VikingDB / DashVector fakes), with the other adversarial cases.
    Backend {
        name: "qdrant-faults",
        target: "in-process gRPC server (stalls, failures)",
        service: Service::None,
        package: "storage-qdrant",
        test: Some("remote_adversarial"),
        filter: "",
    },
    Backend {
        name: "viking-faults",
        target: "in-process fake (stalls, failures)",
        service: Service::None,
        package: "storage-viking",
        test: Some("adversarial"),
        filter: "",
    },
    Backend {
        name: "dashv-faults",
        target: "in-process fake (stalls, failures)",
        service: Service::None,
        package: "storage-dashvector",
        test: Some("adversarial"),
        filter: "",
    },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Docker,
    Local,
}

struct Options {
    backends: Vec<&'static Backend>,
    mode: Option<Mode>,
}

fn usage() -> String {
    let names: Vec<&str> = BACKENDS.iter().map(|b| b.name).collect();
    format!(
        "usage: cargo xtask integration [--backend NAME]... [--docker | --local]\n  backends: {}",
        names.join(", ")
    )
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut backends: Vec<&'static Backend> = Vec::new();
    let mut mode = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let name = match arg.as_str() {
            "--backend" | "-b" => it
                .next()
                .ok_or_else(|| format!("--backend needs a name\n{}", usage()))?
                .as_str(),
            "--docker" => {
                mode = Some(Mode::Docker);
                continue;
            }
            "--local" => {
                mode = Some(Mode::Local);
                continue;
            }
            "-h" | "--help" => return Err(usage()),
            other => match other.strip_prefix("--backend=") {
                Some(name) => name,
                None => return Err(format!("unknown argument `{other}`\n{}", usage())),
            },
        };
        let backend = BACKENDS
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| format!("unknown backend `{name}`\n{}", usage()))?;
        if !backends.iter().any(|b| b.name == backend.name) {
            backends.push(backend);
        }
    }
    if backends.is_empty() {
        backends = BACKENDS.iter().collect();
    }
    Ok(Options { backends, mode })
}

/// Something this run started and must stop.
enum Started {
    Process(&'static str, Child),
    Command(&'static str, Command),
}

struct Services {
    env: Vec<(String, String)>,
    started: Vec<Started>,
    descriptions: Vec<(Service, String)>,
    /// Services that could not be brought up, with the reason.
    missing: Vec<(Service, String)>,
}

impl Services {
    fn describe(&self, s: Service) -> Option<&str> {
        self.descriptions
            .iter()
            .find(|(k, _)| *k == s)
            .map(|(_, d)| d.as_str())
    }

    fn missing(&self, s: Service) -> Option<&str> {
        self.missing
            .iter()
            .find(|(k, _)| *k == s)
            .map(|(_, d)| d.as_str())
    }

    fn teardown(&mut self) {
        for started in self.started.drain(..).rev() {
            match started {
                Started::Process(name, mut child) => {
                    eprintln!("xtask: stopping {name} (pid {})", child.id());
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Started::Command(name, mut cmd) => {
                    eprintln!("xtask: stopping {name}: {cmd:?}");
                    let _ = cmd.status();
                }
            }
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn docker_available() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Host and port of a `scheme://[user[:pass]@]host:port[/...]` URL.
fn host_port(url: &str, default_port: u16) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
        None => Some((hostport.to_owned(), default_port)),
    }
}

fn answers(host: &str, port: u16) -> bool {
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a: SocketAddr| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("{what} did not become ready within {timeout:?}"))
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// `GET path` over plain HTTP/1.0; true on a 200 status line.
fn http_ok(host: &str, port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect((host, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    head.starts_with("HTTP/1.") && head.split_whitespace().nth(1) == Some("200")
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn local_services(needed: &[Service], scratch: &Path) -> Services {
    let mut s = Services {
        env: Vec::new(),
        started: Vec::new(),
        descriptions: Vec::new(),
        missing: Vec::new(),
    };
    for &service in needed {
        let outcome = match service {
            Service::None => continue,
            Service::MySql => local_mysql(&mut s),
            Service::Redis => local_redis(&mut s),
            Service::Chroma => local_chroma(&mut s, scratch),
        };
        match outcome {
            Ok(description) => s.descriptions.push((service, description)),
            Err(why) => s.missing.push((service, why)),
        }
    }
    s
}

fn local_mysql(s: &mut Services) -> Result<String, String> {
    let url = std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let (host, port) = host_port(&url, 3306).ok_or_else(|| format!("bad MYSQL_URL {url}"))?;
    s.env.push(("MYSQL_URL".into(), url.clone()));
    if answers(&host, port) {
        return Ok(format!("running server at {host}:{port}"));
    }
    let daemon = Path::new("/usr/sbin/mariadbd");
    if !daemon.is_file() || on_path("start-stop-daemon").is_none() {
        return Err(format!(
            "no MySQL/MariaDB server answers at {host}:{port} and /usr/sbin/mariadbd is not installed"
        ));
    }
    eprintln!("xtask: starting MariaDB ({})", daemon.display());
    let ok = Command::new("start-stop-daemon")
        .args(["--start", "--oknodo", "--background", "--exec"])
        .arg(daemon)
        .status()
        .is_ok_and(|st| st.success());
    if !ok {
        return Err("start-stop-daemon could not start mariadbd".into());
    }
    let mut stop = Command::new("start-stop-daemon");
    stop.args(["--stop", "--oknodo", "--retry", "10", "--exec"])
        .arg(daemon);
    s.started.push(Started::Command("MariaDB", stop));
    wait_until("MariaDB", Duration::from_secs(60), || answers(&host, port))?;
    Ok(format!("MariaDB started at {host}:{port}"))
}

fn local_redis(s: &mut Services) -> Result<String, String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let (host, port) = host_port(&url, 6379).ok_or_else(|| format!("bad REDIS_URL {url}"))?;
    s.env.push(("REDIS_URL".into(), url.clone()));
    if answers(&host, port) {
        return Ok(format!("running server at {host}:{port}"));
    }
    let server = on_path("redis-server").ok_or_else(|| {
        format!("no Redis server answers at {host}:{port} and redis-server is not installed")
    })?;
    eprintln!("xtask: starting {} on port {port}", server.display());
    let child = Command::new(server)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    s.started.push(Started::Process("redis-server", child));
    wait_until("Redis", Duration::from_secs(20), || answers(&host, port))?;
    Ok(format!("redis-server started on port {port}"))
}

fn local_chroma(s: &mut Services, scratch: &Path) -> Result<String, String> {
    if let Ok(url) = std::env::var("CHROMA_URL") {
        s.env.push(("CHROMA_URL".into(), url.clone()));
        return Ok(format!("CHROMA_URL={url}"));
    }
    let chroma = on_path("chroma").ok_or(
        "the `chroma` command is not installed (pip install chromadb) and CHROMA_URL is unset",
    )?;
    let port = free_port()?;
    let dir = scratch.join("chroma");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log = fs::File::create(scratch.join("chroma.log")).map_err(|e| e.to_string())?;
    eprintln!("xtask: starting {} on port {port}", chroma.display());
    let child = Command::new(chroma)
        .args([
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--path",
        ])
        .arg(&dir)
        .env("ANONYMIZED_TELEMETRY", "False")
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start chroma: {e}"))?;
    s.started.push(Started::Process("chroma", child));
    wait_until("Chroma", Duration::from_secs(90), || {
        http_ok("127.0.0.1", port, "/api/v2/heartbeat")
    })?;
    let url = format!("http://127.0.0.1:{port}");
    s.env.push(("CHROMA_URL".into(), url.clone()));
    Ok(format!("chroma run (PyPI) at {url}"))
}

fn docker_services(needed: &[Service]) -> Result<Services, String> {
    let root = workspace_root();
    let mut names = Vec::new();
    let mut s = Services {
        env: Vec::new(),
        started: Vec::new(),
        descriptions: Vec::new(),
        missing: Vec::new(),
    };
    for &service in needed {
        let (compose, var, url) = match service {
            Service::None => continue,
            Service::MySql => (
                "mysql",
                "MYSQL_URL",
                "mysql://root:opencontext@127.0.0.1:3306",
            ),
            Service::Redis => ("redis", "REDIS_URL", "redis://127.0.0.1:6379"),
            Service::Chroma => ("chroma", "CHROMA_URL", "http://127.0.0.1:8000"),
        };
        names.push(compose);
        s.env.push((var.into(), url.into()));
        s.descriptions
            .push((service, format!("docker compose service `{compose}`")));
    }
    // The remote Qdrant kit runs against the compose server too.
    names.push("qdrant");
    s.env
        .push(("QDRANT_URL".into(), "http://127.0.0.1:6334".into()));
    let mut up = Command::new("docker");
    up.current_dir(&root)
        .args(["compose", "up", "-d", "--wait"])
        .args(&names);
    eprintln!("xtask: {up:?}");
    let mut down = Command::new("docker");
    down.current_dir(&root).args(["compose", "down", "-v"]);
    s.started
        .push(Started::Command("docker compose services", down));
    let ok = up.status().is_ok_and(|st| st.success());
    if !ok {
        return Err("`docker compose up -d --wait` failed".into());
    }
    Ok(s)
}

/// A test binary built by `cargo test --workspace --no-run`.
struct TestBinary {
    executable: PathBuf,
    package_dir: PathBuf,
}

/// Builds every test binary of the workspace (as `cargo test --workspace`) and maps
/// (package, test target name or `lib`) to its executable.
fn build_test_binaries() -> Result<HashMap<(String, String), TestBinary>, String> {
    let mut c = cargo();
    c.args([
        "test",
        "--workspace",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ])
    .stdout(Stdio::piped());
    eprintln!("xtask: running {c:?}");
    let output = c
        .spawn()
        .and_then(|child| child.wait_with_output())
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err("building the test binaries failed".into());
    }
    let mut map = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(exe), Some(manifest)) =
            (msg["executable"].as_str(), msg["manifest_path"].as_str())
        else {
            continue;
        };
        let package_dir = Path::new(manifest)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let package = msg["package_id"]
            .as_str()
            .and_then(package_name)
            .unwrap_or_default();
        let kinds = msg["target"]["kind"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let target = if kinds.iter().any(|k| k == "lib") {
            "lib".to_string()
        } else {
            msg["target"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        map.insert(
            (package, target),
            TestBinary {
                executable: PathBuf::from(exe),
                package_dir,
            },
        );
    }
    Ok(map)
}

/// The package name of a cargo package id: `path+file:///w/crates/storage-sqlite#0.1.0` or
/// `path+file:///w/crates/x#name@0.1.0`.
fn package_name(id: &str) -> Option<String> {
    let (path, fragment) = id.rsplit_once('#')?;
    match fragment.split_once('@') {
        Some((name, _)) => Some(name.to_string()),
        None => Some(path.rsplit('/').next()?.to_string()),
    }
}

struct Outcome {
    name: &'static str,
    target: String,
    result: &'static str,
    passed: u32,
    failed: u32,
    ignored: u32,
    seconds: f64,
    log: PathBuf,
}

/// Sums the `test result:` lines of a `cargo test` run.
fn count(output: &str) -> (u32, u32, u32) {
    let mut totals = (0, 0, 0);
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else { continue };
            match what {
                "passed" => totals.0 += n,
                "failed" => totals.1 += n,
                "ignored" => totals.2 += n,
                _ => {}
            }
        }
    }
    totals
}

pub fn integration(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let root = workspace_root();
    let scratch = root.join("target/integration");
    fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;

    let mode = match options.mode {
        Some(m) => m,
        None if docker_available() => Mode::Docker,
        None => Mode::Local,
    };
    let mode_line = match (mode, options.mode.is_some()) {
        (Mode::Docker, _) => "docker: services from docker-compose.yml".to_string(),
        (Mode::Local, true) => "local services (asked with --local)".to_string(),
        (Mode::Local, false) => {
            "local services (no Docker engine answers `docker info`)".to_string()
        }
    };
    println!("xtask integration: mode = {mode_line}");

    // Build the test binaries exactly as the README's `cargo test --workspace` does (same
    // feature unification, so nothing is rebuilt), then run each kit's binary directly.
    let binaries = build_test_binaries()?;
    let mut needed: Vec<Service> = Vec::new();
    for b in &options.backends {
        if !needed.contains(&b.service) {
            needed.push(b.service);
        }
    }
    let mut services = match mode {
        Mode::Docker => docker_services(&needed)?,
        Mode::Local => local_services(&needed, &scratch),
    };

    let mut outcomes = Vec::new();
    for b in &options.backends {
        let log = scratch.join(format!("{}.log", b.name));
        let target = match (b.service, mode) {
            (Service::None, Mode::Docker) if b.name == "qdrant" => "docker compose `qdrant`".into(),
            (Service::None, _) => b.target.to_string(),
            (s, _) => services.describe(s).unwrap_or(b.target).to_string(),
        };
        if let Some(why) = services.missing(b.service) {
            let _ = fs::write(&log, format!("not run: {why}\n"));
            eprintln!("xtask: {}: not run: {why}", b.name);
            outcomes.push(Outcome {
                name: b.name,
                target: format!("unavailable: {why}"),
                result: "FAIL",
                passed: 0,
                failed: 0,
                ignored: 0,
                seconds: 0.0,
                log,
            });
            continue;
        }
        let key = (b.package.to_string(), b.test.unwrap_or("lib").to_string());
        let Some(binary) = binaries.get(&key) else {
            return Err(format!(
                "`cargo test --workspace` built no test binary {:?} of package {} (backend {})",
                key.1, b.package, b.name
            ));
        };
        let mut c = Command::new(&binary.executable);
        c.current_dir(&binary.package_dir)
            .env("CARGO_MANIFEST_DIR", &binary.package_dir)
            .env("CI", "1");
        if !b.filter.is_empty() {
            c.arg(b.filter);
        }
        for (k, v) in &services.env {
            c.env(k, v);
        }
        eprintln!("xtask: {}: running {c:?}", b.name);
        let start = Instant::now();
        let output = c
            .output()
            .map_err(|e| format!("cannot run the kit of {}: {e}", b.name))?;
        let seconds = start.elapsed().as_secs_f64();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let _ = fs::write(&log, &text);
        let (passed, failed, ignored) = count(&text);
        let ok = output.status.success() && failed == 0 && passed > 0;
        if !ok {
            eprintln!(
                "xtask: {} failed; the end of its log ({}):",
                b.name,
                log.display()
            );
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("    {line}");
            }
        }
        outcomes.push(Outcome {
            name: b.name,
            target,
            result: if ok { "pass" } else { "FAIL" },
            passed,
            failed,
            ignored,
            seconds,
            log,
        });
    }
    services.teardown();

    let mut table = format!("mode: {mode_line}\n");
    table.push_str(&format!(
        "{:<14} {:<6} {:>6} {:>6} {:>7} {:>8}  {}\n",
        "backend", "result", "passed", "failed", "ignored", "time", "against"
    ));
    for o in &outcomes {
        table.push_str(&format!(
            "{:<14} {:<6} {:>6} {:>6} {:>7} {:>7.1}s  {}\n",
            o.name, o.result, o.passed, o.failed, o.ignored, o.seconds, o.target
        ));
    }
    println!();
    print!("{table}");
    let summary = scratch.join("summary.txt");
    let _ = fs::write(&summary, &table);
    println!("logs and this table: {}", scratch.display());
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| o.result != "pass")
        .map(|o| format!("{} (log: {})", o.name, o.log.display()))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failures.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_test_binary() {
        let out = "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n\
                   test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out";
        assert_eq!(count(out), (5, 1, 1));
    }

    #[test]
    fn package_names_from_ids() {
        assert_eq!(
            package_name("path+file:///w/crates/storage-sqlite#0.1.0").as_deref(),
            Some("storage-sqlite")
        );
        assert_eq!(
            package_name("path+file:///w/xtask#xtask-bin@0.1.0").as_deref(),
            Some("xtask-bin")
        );
    }

    #[test]
    fn host_and_port_of_urls() {
        assert_eq!(
            host_port("mysql://root:pw@db.example:3307/x", 3306),
            Some(("db.example".into(), 3307))
        );
        assert_eq!(
            host_port("redis://127.0.0.1", 6379),
            Some(("127.0.0.1".into(), 6379))
        );
    }

    #[test]
    fn unknown_backends_are_rejected_and_duplicates_collapse() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(parse(&args(&["--backend", "oracle"])).is_err());
        let o = parse(&args(&["--backend", "redis", "--backend=redis", "--local"])).unwrap();
        assert_eq!(o.backends.len(), 1);
        assert!(o.mode == Some(Mode::Local));
        assert_eq!(parse(&args(&[])).unwrap().backends.len(), BACKENDS.len());
    }
}
