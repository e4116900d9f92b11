//! # fieldcheck end-to-end test kit
//!
//! Starts the real `fieldcheck` binary on a real socket with its own temporary data dir, and talks to it
//! over HTTP like any client would. The tests themselves live in `tests/tests/`.
//!
//! # Layout
//! - [`TestServer`]: one server process (port 0, own SQLite file, manual clock), restartable on the same
//!   data dir, killable with SIGKILL or stopped with SIGTERM.
//! - [`Api`]: a small JSON client with the caller's token, answering `(status, body)` pairs.
//! - [`binary`]: where cargo put the workspace's binaries.
//! - [`booking`]: instructions to book, a site calendar and the booking race, shared by the booking tests
//!   and the `bench-booking` load generator.
//! - `src/bin/bench-fleet.rs`: the fleet benchmark (handhelds syncing concurrently to a real server,
//!   against the same workload merged in-process with plain automerge).
//! - `src/bin/bench-messages.rs`: bulk intake of signed messages (messages/s per 1,000-message batch).
//! - `src/bin/probe-logins.rs`: login floods against the real server and its memory (RSS from `/proc`).
//! - [`certificates`]: a consignment released on a conforming result, and its certificate request and
//!   issue, shared by the certificate tests and the `bench-certificates` benchmark.
//! - [`dispatch`]: written once: the always-inspected application, a demo user's id, an instruction
//!   dispatched to officers.
//! - [`field`]: real `handheld` processes to inspect a dispatched instruction with.
//! - [`monitoring`]: instructions written into a stopped server's database (the figures' fixture and the
//!   benchmark's 100,000), a Server-Sent Events reader, a small WebDriver client for the browser test.
//! - `src/bin/bench-monitor.rs`: figure-query latency over 100,000 instructions, SSE delivery with 500
//!   subscribers.
//! - [`photos`]: a client's photo upload (whole or resumable), and an instruction with officers to upload for.
//! - [`Rng`]: SplitMix64, seedable, for the load generators.
//! - `src/bin/crash-loop.rs`: the crash loop (SIGKILL cycles under concurrent writers, every acknowledged
//!   write checked after every restart; `docs/testing.md`).
//!
//! The binaries must be built before the tests run (`cargo build --workspace --bins`); the README's test
//! command does that.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::{Value, json};

pub mod booking;
pub mod certificates;
pub mod dispatch;
pub mod field;
pub mod monitoring;
pub mod photos;
pub mod tls;

/// Path of a workspace binary next to the running executable (`target/<profile>/<name>`), from a test
/// (`target/<profile>/deps/<test>`) or from a binary of this crate (`target/<profile>/<bin>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let mut dir = exe.parent().expect("target/<profile>/…");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("target/<profile>/deps");
    }
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// The repository root, for fixtures.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repo root").to_path_buf()
}

pub struct TestServer {
    child: Child,
    pub base: String,
    data_dir: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
}

impl TestServer {
    /// A fresh data dir with demo data and a manual clock.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Like [`start`](Self::start), with extra `FIELDCHECK__…` settings (benchmarks use production ones).
    pub fn start_with(env: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (child, base) = spawn(dir.path(), &env);
        TestServer { child, base, data_dir: Some(dir), env }
    }

    /// A server as a real deployment runs it: no demo data, no fixtures folder, no manual clock; its data
    /// dir is `dir` (prepared with `fieldcheck admin …` commands, or empty).
    pub fn start_deployed(dir: tempfile::TempDir) -> TestServer {
        let env = vec![("DEPLOYED".to_string(), String::new())];
        let (child, base) = spawn(dir.path(), &env);
        TestServer { child, base, data_dir: Some(dir), env }
    }

    /// A server on a data dir prepared elsewhere (e.g. restored from a backup); the dir is removed on drop.
    pub fn start_on(dir: tempfile::TempDir) -> TestServer {
        let (child, base) = spawn(dir.path(), &[]);
        TestServer { child, base, data_dir: Some(dir), env: Vec::new() }
    }

    /// The server process id (for resource figures such as RSS).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.as_ref().expect("data dir kept until drop").path()
    }

    /// Leaves the data dir in place when the server is dropped, for a post-mortem of a failed run.
    pub fn keep_data_dir(&mut self) {
        if let Some(dir) = self.data_dir.as_mut() {
            dir.disable_cleanup(true);
        }
    }

    /// Stops with SIGTERM and waits; the data dir stays for a restart.
    pub fn stop(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().expect("wait for the server")
    }

    /// Kills with SIGKILL: no shutdown code runs, as in a crash or power cut of the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new process on the same data dir (after [`stop`](Self::stop) or [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        let (child, base) = spawn(self.data_dir(), &self.env);
        self.child = child;
        self.base = base;
    }

    pub fn api(&self) -> Api {
        Api { base: self.base.clone(), token: None, client: client(reqwest::Client::builder()) }
    }

    /// A client whose connections come from `local`: on Linux all of 127.0.0.0/8 is loopback, so tests act
    /// as different client addresses (login limits count per address).
    pub fn api_from(&self, local: [u8; 4]) -> Api {
        let client = client(reqwest::Client::builder().local_address(std::net::IpAddr::from(local)));
        Api { base: self.base.clone(), token: None, client }
    }

    /// The value of an unlabelled counter or gauge from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (status, body) = self.api().get("/metrics").await;
        assert_eq!(status, 200);
        let text = body.as_str().expect("metrics are text");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }

    /// Logs in as a demo user (password `demo-password`).
    pub async fn login(&self, username: &str) -> Api {
        let (status, body) = self
            .api()
            .post("/api/v1/auth/login", json!({"username": username, "password": "demo-password"}))
            .await;
        assert_eq!(status, 200, "login {username}: {body}");
        self.api().with_token(body["access_token"].as_str().expect("access token"))
    }

    /// Moves the server's manual clock to `unix_secs`.
    pub async fn set_clock(&self, unix_secs: i64) {
        let (status, body) =
            self.api().put("/api/v1/testing/clock", json!({"now": rfc3339(unix_secs)})).await;
        assert_eq!(status, 200, "set clock: {body}");
    }

    /// Runs `fieldcheck <args>` against this server's data dir (for `admin` commands).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary("fieldcheck"))
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir())
            .output()
            .expect("run fieldcheck")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(data_dir: &Path, env: &[(String, String)]) -> (Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("server.log"))
        .expect("server log");
    let mut command = Command::new(binary("fieldcheck"));
    // `DEPLOYED` is a marker of `start_deployed`, not a setting: the server then runs as in production.
    if env.iter().any(|(k, _)| k == "DEPLOYED") {
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
    } else {
        command
            .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("FIELDCHECK__DEMO__FIXTURES_DIR", repo_root().join("fixtures"))
            .env("FIELDCHECK__TESTING__MANUAL_CLOCK", "true");
    }
    let mut child = command
        // The OWASP minimum is far too slow for a debug build; tests do not measure password strength.
        .env("FIELDCHECK__AUTH__ARGON2_MEMORY_KIB", "1024")
        // Every test client connects from 127.0.0.1, and the load tests keep well over a thousand connections
        // open at once (each client its own pool). The cap has its own test, which sets it.
        .env("FIELDCHECK__SERVER__MAX_CONNECTIONS_PER_ADDRESS", "0")
        // Debug builds on a busy 2-core machine can take longer than production's 30 s for a large photo;
        // a test about the timeout itself sets its own.
        .env("FIELDCHECK__SERVER__REQUEST_TIMEOUT_SECS", "120")
        .envs(env.iter().filter(|(k, _)| k != "DEPLOYED").map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start fieldcheck");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("fieldcheck listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    // A guard against a server that never comes up, not a timing assumption: the line arrives as soon as
    // the socket is bound.
    let base = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
        let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
        panic!("fieldcheck did not start; its log:\n{log}")
    });
    (child, base)
}

pub fn rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Howard Hinnant's days-to-civil algorithm: keeps the test kit free of a date library.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

/// A token from a strong login of a demo user: a challenge signed with the user's demo key.
pub async fn strong(server: &TestServer, username: &str) -> Api {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use ed25519_dalek::{Signer, SigningKey};
    let (status, ch) = server.api().post("/api/v1/auth/challenge", json!({"username": username})).await;
    assert_eq!(status, 200, "{ch}");
    let seed = std::fs::read_to_string(server.data_dir().join(format!("demo-keys/{username}.seed"))).unwrap();
    let key = SigningKey::from_bytes(&hex::decode(seed.trim()).unwrap().try_into().unwrap());
    let signature = key.sign(ch["challenge"].as_str().unwrap().as_bytes());
    let (status, body) = server
        .api()
        .post(
            "/api/v1/auth/strong-login",
            json!({"challenge_id": ch["challenge_id"], "signature": STANDARD.encode(signature.to_bytes())}),
        )
        .await;
    assert_eq!((status, body["aal"].as_str()), (200, Some("strong")), "{body}");
    server.api().with_token(body["access_token"].as_str().unwrap())
}

/// The tests' HTTP client. Its idle connections are dropped after 5 s, before the server closes them
/// (it ends a keep-alive connection that sends no request head within `header_read_timeout_secs`, 10 s):
/// with reqwest's 90 s default, a request after a slow setup could be sent on a connection whose close
/// was already on its way, and fail with a reset that has nothing to do with the test.
fn client(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder.pool_idle_timeout(std::time::Duration::from_secs(5)).build().expect("an HTTP client")
}

/// A JSON client; every call answers `(status, body)` and never panics on a 4xx, so tests assert on both.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    /// A client of the server at `base` (`http://IP:PORT`), for servers the kit did not start.
    pub fn new(base: &str) -> Api {
        Api { base: base.to_string(), token: None, client: client(reqwest::Client::builder()) }
    }

    pub fn with_token(mut self, token: &str) -> Api {
        self.token = Some(token.to_string());
        self
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_send(method, path, body).await.expect("request reaches the server")
    }

    /// Like [`send`](Self::send), but a request or answer that does not get through (the server was
    /// killed) is an `Err` instead of a panic: the crash loop expects those.
    pub async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    /// Sends raw bytes with a content type, for malformed-input tests.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req =
            self.client.request(method, format!("{}{path}", self.base)).header("content-type", content_type);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.body(body).send().await.expect("request reaches the server");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("response body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Any request with raw bytes in and out, for photos: `(status, headers, body)`.
    pub async fn bytes(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<reqwest::Body>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        self.try_bytes(method, path, headers, body).await.expect("request reaches the server")
    }

    /// Like [`bytes`](Self::bytes), with a request that does not get through as an `Err` (see
    /// [`try_send`](Self::try_send)).
    pub async fn try_bytes(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<reqwest::Body>,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), reqwest::Error> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Ok((status, headers, resp.bytes().await?.to_vec()))
    }
}

/// SplitMix64: small, seedable and the same everywhere, so a seed replays a run's choices.
pub struct Rng(pub u64);

impl Rng {
    /// The stream of one writer in one cycle (writer 0 is the loop itself).
    pub fn stream(seed: u64, cycle: u64, writer: u64) -> Rng {
        let mut rng = Rng(seed
            ^ cycle.wrapping_mul(0xA24B_AED4_963E_E407)
            ^ writer.wrapping_mul(0x9FB2_1C65_1E98_DF25));
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Reads an HTTP answer's head and as much of its JSON body as has arrived, from a request spoken by
/// hand (a refusal on a declared length comes before the body is sent: a client library would still be
/// sending and see a broken pipe).
pub async fn read_http_answer(r: &mut (impl tokio::io::AsyncReadExt + Unpin)) -> String {
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 8192];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !String::from_utf8_lossy(&answer).contains("}") {
        let n = tokio::time::timeout_at(deadline, r.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}
