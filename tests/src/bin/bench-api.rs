//! Load generator for the service foundation and the application flow, against the real server binary.
//!
//! `cargo run --release -p fieldcheck-tests --bin bench-api [rounds]` prints, per round and as medians:
//! authenticated reads (JWT check + session lookup), logins at production argon2 settings, and application
//! draft+submit round trips. Each round starts a fresh server with its own data dir.

use std::time::{Duration, Instant};

use fieldcheck_tests::{Api, TestServer};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct Figures {
    name: &'static str,
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs `workers` tasks doing `per_worker` calls of `op` each; answers throughput and latency percentiles.
async fn run<F, Fut>(name: &'static str, workers: usize, per_worker: usize, op: F) -> Figures
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_worker);
                for i in 0..per_worker {
                    let t = Instant::now();
                    op(w * per_worker + i).await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Figures {
        name,
        ops_per_sec: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
    }
}

fn fish() -> serde_json::Value {
    json!({"direction": "export", "district_code": "2200", "site_code": "2201", "applicant_code": "3101960001",
           "consignor_code": "3101960001", "consignee_name": "Bench KK", "destination_country": "JP",
           "goods": [{"hs_code": "0303630000", "name": "cod", "quantity": 10.0, "unit": "kg", "net_weight_kg": 10.0,
                      "value_usd": 100.0, "origin_country": "CN"}]})
}

async fn round() -> Vec<Figures> {
    // Production password hashing, so login figures mean something.
    let server = TestServer::start_with(&[("FIELDCHECK__AUTH__ARGON2_MEMORY_KIB", "19456")]);
    let reader = server.login("reviewer1").await;
    let me = run("GET /api/v1/me (32 clients)", 32, 200, move |_| {
        let api = reader.clone();
        async move {
            let (status, _) = api.get("/api/v1/me").await;
            assert_eq!(status, 200);
        }
    })
    .await;
    let base = server.api();
    let logins = run("POST /api/v1/auth/login, argon2id 19 MiB (4 clients)", 4, 10, move |_| {
        let api: Api = base.clone();
        async move {
            let (status, _) = api
                .post("/api/v1/auth/login", json!({"username": "officer1", "password": "demo-password"}))
                .await;
            assert_eq!(status, 200);
        }
    })
    .await;
    let operator = server.login("ent1-operator").await;
    let submits = run("draft + submit an application (8 clients)", 8, 50, move |_| {
        let api = operator.clone();
        async move {
            let (status, app) = api.post("/api/v1/applications", fish()).await;
            assert_eq!(status, 201, "{app}");
            let (status, _) =
                api.post(&format!("/api/v1/applications/{}/submit", app["id"]), json!({})).await;
            assert_eq!(status, 200);
        }
    })
    .await;
    vec![me, logins, submits]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut results: Vec<Vec<Figures>> = Vec::new();
    for r in 0..rounds {
        let figures = round().await;
        for f in &figures {
            println!(
                "round {}: {:<55} {:>9.1} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
                r + 1,
                f.name,
                f.ops_per_sec,
                f.p50_ms,
                f.p99_ms
            );
        }
        results.push(figures);
    }
    println!("\nmedians over {rounds} rounds:");
    for i in 0..results[0].len() {
        let pick = |f: fn(&Figures) -> f64| median(results.iter().map(|r| f(&r[i])).collect());
        println!(
            "{:<55} {:>9.1} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            results[0][i].name,
            pick(|f| f.ops_per_sec),
            pick(|f| f.p50_ms),
            pick(|f| f.p99_ms)
        );
    }
}
