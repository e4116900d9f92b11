//! Probe for login floods against the real server: memory, answers and timing (issue 9, findings 3 and 4).
//!
//! `cargo build --release --bins && target/release/probe-logins [BURSTS] [LOGINS_PER_BURST]` (10 × 100)
//!
//! Starts `fieldcheck` from the same target folder, at the production argon2 cost (19 MiB), and reads its
//! `VmRSS` from `/proc/PID/status`:
//! 1. idle RSS;
//! 2. BURSTS bursts of LOGINS_PER_BURST parallel logins for fresh unknown usernames, each login from its own
//!    loopback address (127.1.x.y), so that no login limit applies and only the hashing gate stands between
//!    the burst and memory: the answers by status, peak RSS (sampled, and the kernel's high-water mark);
//! 3. RSS for 10 s after the last burst, and whether it came back within 2× idle;
//! 4. one burst from a single address: the per-address limit's share of the answers;
//! 5. timing: sequential wrong-password logins for a known user against logins for unknown usernames.
//!
//! Not part of the test run: it takes half a minute and its figures depend on the machine.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use fieldcheck_tests::{Api, TestServer};
use serde_json::json;

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server is running");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Where the resident memory is (anonymous, file-backed such as the binary and SQLite's files, shared) and
/// how many threads hold it.
fn breakdown(pid: u32) -> String {
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim().to_string())))
        .unwrap_or_default();
    format!(
        "anon {:.1} MiB, file {:.1} MiB, shmem {:.1} MiB, {threads} threads",
        mib(status_kib(pid, "RssAnon")),
        mib(status_kib(pid, "RssFile")),
        mib(status_kib(pid, "RssShmem"))
    )
}

/// Samples RSS every 5 ms on its own thread until dropped; answers the largest value seen.
struct PeakWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakWatch {
    fn start(pid: u32) -> PeakWatch {
        let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(status_kib(pid, "VmRSS"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        PeakWatch { stop, peak, thread: Some(thread) }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().expect("joined once").join().expect("the sampler does not panic");
        self.peak.load(Ordering::Relaxed)
    }
}

/// Loopback address number `i` in 127.1.0.0/16 (Linux routes all of 127.0.0.0/8 to lo).
fn loopback(i: usize) -> [u8; 4] {
    [127, 1, (i / 250) as u8, (i % 250 + 1) as u8]
}

async fn login(api: Api, username: String, password: &'static str) -> u16 {
    api.post("/api/v1/auth/login", json!({"username": username, "password": password})).await.0
}

fn tally(answers: &mut BTreeMap<u16, usize>, statuses: impl IntoIterator<Item = u16>) {
    for s in statuses {
        *answers.entry(s).or_default() += 1;
    }
}

fn show(answers: &BTreeMap<u16, usize>) -> String {
    [200, 401, 429, 503]
        .iter()
        .map(|s| format!("{s}: {}", answers.get(s).copied().unwrap_or(0)))
        .chain(
            answers
                .iter()
                .filter(|(s, _)| ![200, 401, 429, 503].contains(*s))
                .map(|(s, n)| format!("{s}: {n}")),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

fn mean_ms(samples: &[Duration]) -> f64 {
    samples.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / samples.len() as f64
}

fn median_ms(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let bursts = args.next().unwrap_or(10);
    let per_burst = args.next().unwrap_or(100);
    let server = TestServer::start_with(&[("FIELDCHECK__AUTH__ARGON2_MEMORY_KIB", "19456")]);
    let pid = server.pid();
    assert_eq!(server.api().get("/readyz").await.0, 200);
    let idle = status_kib(pid, "VmRSS");
    println!(
        "machine: {} cores; fieldcheck pid {pid}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("idle RSS: {:.1} MiB ({})", mib(idle), breakdown(pid));

    let watch = PeakWatch::start(pid);
    let mut answers = BTreeMap::new();
    let started = Instant::now();
    for b in 0..bursts {
        // A client per address; they go after the burst, and with them their connections.
        let logins = (0..per_burst).map(|i| {
            let n = b * per_burst + i;
            tokio::spawn(login(server.api_from(loopback(n)), format!("probe-{n}"), "guess-guess"))
        });
        let statuses =
            futures_util::future::join_all(logins).await.into_iter().map(|r| r.expect("login task"));
        tally(&mut answers, statuses);
    }
    let elapsed = started.elapsed();
    let peak = watch.finish();
    println!(
        "{bursts} bursts of {per_burst} parallel unknown-username logins, one address each: {:.1} s; answers {}",
        elapsed.as_secs_f64(),
        show(&answers)
    );
    println!(
        "peak RSS: {:.1} MiB sampled every 5 ms, VmHWM {:.1} MiB",
        mib(peak),
        mib(status_kib(pid, "VmHWM"))
    );

    let after_burst = Instant::now();
    let mut back_within_2x = None;
    let mut samples = Vec::new();
    while after_burst.elapsed() < Duration::from_secs(10) {
        let rss = status_kib(pid, "VmRSS");
        if back_within_2x.is_none() && rss <= 2 * idle {
            back_within_2x = Some(after_burst.elapsed());
        }
        samples.push(rss);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settled = status_kib(pid, "VmRSS");
    println!(
        "RSS after the bursts: {:.1} MiB at once, {:.1} MiB after 10 s ({}; {:.2}× idle); within 2× idle {}",
        mib(samples[0]),
        mib(settled),
        breakdown(pid),
        settled as f64 / idle as f64,
        back_within_2x.map_or("never within 10 s".to_string(), |t| format!("after {:.1} s", t.as_secs_f64()))
    );

    let one_address = server.api_from([127, 2, 0, 1]);
    let logins = (0..per_burst)
        .map(|i| tokio::spawn(login(one_address.clone(), format!("single-{i}"), "guess-guess")));
    let mut single = BTreeMap::new();
    tally(
        &mut single,
        futures_util::future::join_all(logins).await.into_iter().map(|r| r.expect("login task")),
    );
    println!("one burst of {per_burst} unknown-username logins from one address: {}", show(&single));

    // Sequential, each from a fresh address so that no limit answers instead of the hash.
    let rounds = 30;
    let (mut known, mut unknown, mut timed) = (Vec::new(), Vec::new(), BTreeMap::new());
    for i in 0..rounds {
        for (username, times) in [("officer1".to_string(), &mut known), (format!("ghost-{i}"), &mut unknown)]
        {
            let api = server.api_from([127, 3, (i / 250) as u8, (i % 250 + 1) as u8]);
            let t = Instant::now();
            tally(&mut timed, [login(api, username, "guess-guess").await]);
            times.push(t.elapsed());
        }
    }
    println!(
        "timing over {rounds} sequential wrong logins each (answers {}): known user mean {:.1} ms median {:.1} ms; unknown username mean {:.1} ms median {:.1} ms",
        show(&timed),
        mean_ms(&known),
        median_ms(&mut known),
        mean_ms(&unknown),
        median_ms(&mut unknown)
    );
    let verdict = if settled <= 2 * idle { "PASS" } else { "FAIL" };
    println!("acceptance (RSS within 2× idle 10 s after the bursts): {verdict}");
}
