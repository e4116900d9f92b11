//! Certificate printing and public verification against the real server: one consignment released
//! through a real handheld, its health certificate issued automatically, then
//! - self-prints of the PDF (`POST …/print`) one after another (A4, embedded CJK subset, QR code): latency p50/p99 per
//!   certificate, beside the plain JSON read of the same certificate (the request's own cost), and
//! - `GET /verify/{number}?digest=…` from many clients at once: requests per second.
//!
//! Build in release first: `cargo build --release --workspace --bins`, then
//! `target/release/bench-certificates [prints] [verify seconds] [verify clients] [runs]`.

use std::time::{Duration, Instant};

use fieldcheck_tests::{Api, TestServer, certificates::issued, strong};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Latencies in ms of `n` sequential requests, sorted; answers them and the last body size.
async fn timed(api: &Api, method: reqwest::Method, path: &str, n: usize) -> (Vec<f64>, usize) {
    let mut ms = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let started = Instant::now();
        let (status, _, body) = api.bytes(method.clone(), path, &[], None).await;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        size = body.len();
    }
    ms.sort_by(f64::total_cmp);
    (ms, size)
}

/// Verification requests answered per second by `clients` concurrent clients during `secs`.
async fn verify_rate(url: &str, clients: usize, secs: u64) -> f64 {
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let url = url.to_owned();
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0u64;
            while Instant::now() < until {
                let resp =
                    client.get(&url).header("accept", "application/json").send().await.expect("verify");
                assert_eq!(resp.status(), 200);
                resp.bytes().await.expect("body");
                n += 1;
            }
            n
        });
    }
    let total: u64 = tasks.join_all().await.into_iter().sum();
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let prints: usize = args.next().map_or(100, |a| a.parse().expect("prints"));
    let secs: u64 = args.next().map_or(5, |a| a.parse().expect("verify seconds"));
    let clients: usize = args.next().map_or(16, |a| a.parse().expect("verify clients"));
    let runs: usize = args.next().map_or(3, |a| a.parse().expect("runs"));

    let server = TestServer::start_with(&[("FIELDCHECK__CERTIFICATES__MAX_PRINTS", "1000000")]);
    let operator = strong(&server, "ent1-operator").await;
    let (_, cert) = issued(&server, &operator).await;
    let id = cert["id"].as_i64().unwrap();
    let url = format!(
        "{}/verify/{}?digest={}",
        server.base,
        cert["number"].as_str().unwrap(),
        cert["digest"].as_str().unwrap()
    );
    // Warm-up: the font is parsed on first use.
    timed(&operator, reqwest::Method::POST, &format!("/api/v1/certificates/{id}/print"), 3).await;

    println!("certificate {} ({} goods line); {prints} prints per run, {runs} runs", cert["number"], 1);
    let (mut p50s, mut p99s, mut json50s, mut rates) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let (pdf, size) =
            timed(&operator, reqwest::Method::POST, &format!("/api/v1/certificates/{id}/print"), prints)
                .await;
        let (json, _) =
            timed(&operator, reqwest::Method::GET, &format!("/api/v1/certificates/{id}"), prints).await;
        let rate = verify_rate(&url, clients, secs).await;
        let (p50, p99, j50) = (percentile(&pdf, 0.5), percentile(&pdf, 0.99), percentile(&json, 0.5));
        println!(
            "run {run}: PDF print p50 {p50:.1} ms, p99 {p99:.1} ms ({size} bytes); certificate JSON p50 {j50:.1} ms; \
             verify {rate:.0} req/s ({clients} clients, {secs} s)"
        );
        p50s.push(p50);
        p99s.push(p99);
        json50s.push(j50);
        rates.push(rate);
    }
    println!(
        "median of runs: PDF print p50 {:.1} ms, p99 {:.1} ms; certificate JSON p50 {:.1} ms; verify {:.0} req/s",
        median(p50s),
        median(p99s),
        median(json50s),
        median(rates)
    );
}
