//! `bench-monitor [INSTRUCTIONS] [SUBSCRIBERS] [ROUNDS] [RUNS]`: supervisor monitoring under load, against the
//! real release server.
//!
//! 1. Figure queries: INSTRUCTIONS (100,000) generated instructions — four sites, 90 days, every state,
//!    officers and seals — are written into a stopped server's database; then `GET
//!    /api/v1/monitoring/figures` (90-day period), `…/overdue`, `/api/v1/officers` and an overdue
//!    instruction page are timed over HTTP, RUNS (30) times each: median and p90. Goal: figures ≤ 100 ms.
//! 2. Event delivery: SUBSCRIBERS (500) concurrent SSE streams as supervisor1; after one warm-up round,
//!    ROUNDS (20) times an operator saves a draft (one event in Shanghai's scope) and every subscriber's
//!    arrival is timed from just before the request; each round's write time and fan-out spread are
//!    printed too. Goal: p99 ≤ 1 s.
//!
//! Build first: `cargo build --release --workspace --bins`, then run `target/release/bench-monitor`.

use std::time::{Duration, Instant};

use fieldcheck_tests::{
    Api, Rng, TestServer,
    field::content,
    monitoring::{EventStream, FixtureInstruction, insert_instructions},
    rfc3339,
};
use tokio::sync::mpsc;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-12-01T00:00:00Z: "now" for the generated data.
const T0: i64 = 1_796_083_200_000;

fn generate(n: usize) -> Vec<FixtureInstruction> {
    const SITES: [(&str, &[&str]); 4] =
        [("2201", &["officer1"]), ("2202", &["officer2"]), ("5301", &["officer3"]), ("5302", &["officer3"])];
    const STATES: [&str; 8] = [
        "issued",
        "booked",
        "assigned",
        "in_progress",
        "submitted",
        "approved",
        "force_released",
        "cancelled",
    ];
    // Mostly finished work, as in a real 90-day window.
    const WEIGHTS: [u64; 8] = [5, 3, 5, 7, 5, 65, 2, 8];
    let mut rng = Rng(13);
    (0..n)
        .map(|_| {
            let (site, officers) = SITES[rng.below(4) as usize];
            let mut pick = rng.below(100);
            let mut state = STATES[0];
            for (s, w) in STATES.iter().zip(WEIGHTS) {
                if pick < w {
                    state = s;
                    break;
                }
                pick -= w;
            }
            let created_at = T0 - rng.below(90 * DAY as u64) as i64;
            let state_since = (created_at + rng.below(120 * HOUR as u64) as i64).min(T0);
            FixtureInstruction {
                site,
                state,
                created_at,
                deadline: created_at + 72 * HOUR,
                due_at: (state == "booked" || rng.chance(33)).then(|| created_at + 24 * HOUR),
                state_since,
                verdict: (state == "approved")
                    .then(|| if rng.chance(10) { "non_conforming" } else { "conforming" }),
                officers: if matches!(state, "issued" | "booked") { &[] } else { officers },
            }
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn time_get(api: &Api, label: &str, path: &str, runs: usize) {
    let (status, body) = api.get(path).await; // warm-up (page cache, prepared statements)
    assert_eq!(status, 200, "{path}: {body}");
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let (status, _) = api.get(path).await;
        times.push(started.elapsed());
        assert_eq!(status, 200);
    }
    times.sort_unstable();
    println!(
        "{label:<44} median {:>7.1} ms   p90 {:>7.1} ms   max {:>7.1} ms",
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 90.0)),
        ms(*times.last().unwrap())
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let instructions = args.first().copied().unwrap_or(100_000);
    let subscribers = args.get(1).copied().unwrap_or(500);
    let rounds = args.get(2).copied().unwrap_or(20);
    let runs = args.get(3).copied().unwrap_or(30);

    let mut server = TestServer::start();
    server.stop();
    let started = Instant::now();
    insert_instructions(server.data_dir(), &generate(instructions));
    println!(
        "generated {instructions} instructions in {:.1} s (setup, not measured)",
        started.elapsed().as_secs_f64()
    );
    server.restart();
    server.set_clock(T0 / 1000).await;

    println!("\n== figure queries over HTTP ({runs} runs each) ==");
    let period = format!("from={}&to={}", rfc3339((T0 - 90 * DAY) / 1000), rfc3339(T0 / 1000 + 1));
    let admin = server.login("admin").await;
    let supervisor = server.login("supervisor1").await;
    let (_, f) = admin.get(&format!("/api/v1/monitoring/figures?{period}")).await;
    println!(
        "(admin sees {} instructions, {} overdue; supervisor1 about half)",
        f["total"]["instructions"], f["total"]["overdue"]
    );
    time_get(&admin, "figures, whole tree (admin)", &format!("/api/v1/monitoring/figures?{period}"), 30)
        .await;
    time_get(
        &supervisor,
        "figures, Shanghai subtree (supervisor1)",
        &format!("/api/v1/monitoring/figures?{period}"),
        30,
    )
    .await;
    time_get(&supervisor, "figures, default 30 days (supervisor1)", "/api/v1/monitoring/figures", runs).await;
    time_get(&supervisor, "overdue table (≤ 500 rows)", "/api/v1/monitoring/overdue", runs).await;
    time_get(&supervisor, "officers with load", "/api/v1/officers", runs).await;
    time_get(
        &supervisor,
        "instructions?overdue=true&limit=100",
        "/api/v1/instructions?overdue=true&limit=100",
        30,
    )
    .await;

    println!("\n== event delivery: {subscribers} SSE subscribers, {rounds} events ==");
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel::<(i64, Instant)>();
    let mut streams = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let s = EventStream::open(&supervisor, None).await;
        assert_eq!(s.status, 200);
        streams.push(s);
    }
    for mut s in streams {
        let tx = arrived_tx.clone();
        tokio::spawn(async move {
            while let Some(e) = s.next_before(Instant::now() + Duration::from_secs(600)).await {
                if e.data["subject"] == "application"
                    && tx.send((e.data["subject_id"].as_i64().unwrap_or(0), Instant::now())).is_err()
                {
                    return;
                }
            }
        });
    }
    let operator = server.login("ent1-operator").await;
    let mut latencies = Vec::with_capacity(subscribers * rounds);
    // Per round: how long the write took (request sent → 201), and the fan-out's spread after it, so a
    // tail can be told apart as the write path's or the delivery's.
    let mut writes = Vec::with_capacity(rounds);
    let mut spreads = Vec::with_capacity(rounds);
    // Round 0 is a warm-up, reported but not counted: the first event after start pays for cold caches on
    // the write path (statements, pages of the application tables) and on the pump's reader, and with few
    // rounds its tail alone would be the p99 (5 rounds × 500 deliveries: the top 25 are all round 0's).
    let mut warm_up = 0;
    for round in 0..=rounds {
        if round == 1 {
            warm_up = latencies.len();
        }
        let before = Instant::now();
        let (status, app) = operator.post("/api/v1/applications", content()).await;
        let written = before.elapsed();
        writes.push(written);
        assert_eq!(status, 201, "{app}");
        let first_of_round = latencies.len();
        let id = app["id"].as_i64().unwrap();
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while got < subscribers {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some((app, at))) = tokio::time::timeout(left, arrived.recv()).await else {
                panic!("only {got} of {subscribers} subscribers got event for application {id} within 30 s");
            };
            if app == id {
                latencies.push(at - before);
                got += 1;
            }
        }
        let mut this: Vec<Duration> = latencies[first_of_round..].to_vec();
        this.sort_unstable();
        let (first, last) = (this[0], *this.last().unwrap());
        if round > 0 {
            spreads.push(last - first);
        } else {
            writes.clear();
        }
        println!(
            "  {} {round:>2}: write (request → 201) {:>6.1} ms   first delivery {:>6.1} ms   p99 {:>6.1} ms   last {:>6.1} ms",
            if round == 0 { "warm-up" } else { "round  " },
            ms(written),
            ms(first),
            ms(percentile(&this, 99.0)),
            ms(last),
        );
    }
    let latencies = &mut latencies[warm_up..];
    writes.sort_unstable();
    spreads.sort_unstable();
    println!(
        "write (request → 201) median {:.1} ms, max {:.1} ms; fan-out spread (first → last delivery) median {:.1} ms, max {:.1} ms",
        ms(percentile(&writes, 50.0)),
        ms(*writes.last().unwrap()),
        ms(percentile(&spreads, 50.0)),
        ms(*spreads.last().unwrap())
    );
    latencies.sort_unstable();
    println!(
        "delivery latency (request sent → event read)   p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms   ({} deliveries)",
        ms(percentile(latencies, 50.0)),
        ms(percentile(latencies, 99.0)),
        ms(*latencies.last().unwrap()),
        latencies.len()
    );
}
