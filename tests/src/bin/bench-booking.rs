//! `bench-booking`: the 500-way booking race against a real server, measured.
//!
//! Starts the `fieldcheck` binary next to this one (build it in the same profile first:
//! `cargo build --release --bin fieldcheck`), files 500 always-inspected applications to get 500
//! instructions, gives site 2201 twenty one-hour slots of capacity 5 a day, then fires all 500 booking
//! requests at once and prints throughput and latency percentiles. Setup is not measured.

use fieldcheck_tests::{
    TestServer,
    booking::{MONDAY, issue_instructions, race, set_calendar, slots},
};

const REQUESTS: usize = 500;

fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let server = TestServer::start_with(&[fieldcheck_tests::booking::LONG_DEADLINE]);
    server.set_clock(MONDAY).await;
    set_calendar(&server, 5, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let instructions = issue_instructions(&server, &ent, REQUESTS).await;
    let slots = slots(&ent, "2026-12-01", "2026-12-04", 20).await;

    let started = std::time::Instant::now();
    let attempts = race(&ent, &instructions, &slots).await;
    let wall = started.elapsed();

    let confirmed = attempts.iter().filter(|a| a.status == 201).count();
    let full = attempts.iter().filter(|a| a.status == 409 && a.body["code"] == "slot_full").count();
    let other = attempts.len() - confirmed - full;
    let mut latencies: Vec<_> = attempts.iter().map(|a| a.latency).collect();
    latencies.sort_unstable();
    println!("requests      {}", attempts.len());
    println!("confirmed     {confirmed}");
    println!("slot_full     {full}");
    println!("other         {other}");
    println!("wall          {:.1} ms", wall.as_secs_f64() * 1e3);
    println!("throughput    {:.0} req/s", attempts.len() as f64 / wall.as_secs_f64());
    println!("p50 latency   {:.1} ms", percentile(&latencies, 50.0).as_secs_f64() * 1e3);
    println!("p99 latency   {:.1} ms", percentile(&latencies, 99.0).as_secs_f64() * 1e3);
    println!("max latency   {:.1} ms", latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3));
    assert_eq!((confirmed, full, other), (100, 400, 0), "capacity must hold exactly");
}
