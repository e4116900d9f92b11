//! `bench-booking`: the 500-way booking race against a real server, measured.
//!
//! Starts the `fieldcheck` binary next to this one (build it in the same profile first:
//! `cargo build --release --bin fieldcheck`), files 500 always-inspected applications to get 500
//! instructions, gives site 2201 twenty one-hour slots of capacity 5 a day, then fires all 500 booking
//! requests at once and prints throughput and latency percentiles. Setup is not measured.
//!
//! Client and server share the machine's cores, so it also prints the CPU each side spent during the
//! burst (summed over all threads from `/proc/<pid>/task/*/schedstat`, nanoseconds): the server's CPU
//! per request is the figure that does not depend on how busy the client keeps the cores.

use fieldcheck_tests::{
    TestServer,
    booking::{MONDAY, issue_instructions, race, set_calendar, slots},
};

const REQUESTS: usize = 500;

fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU time (ns) all threads of process `pid` have run so far: the first field of each thread's
/// `/proc/<pid>/task/<tid>/schedstat`. Threads that ended before the second reading drop out, so it is
/// read around a burst whose threads live on (tokio's workers, the database writer).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::main]
async fn main() {
    let server = TestServer::start_with(&[fieldcheck_tests::booking::LONG_DEADLINE]);
    server.set_clock(MONDAY).await;
    set_calendar(&server, 5, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let instructions = issue_instructions(&server, &ent, REQUESTS).await;
    let slots = slots(&ent, "2026-12-01", "2026-12-04", 20).await;

    // `--pause-ms N`: print the server's pid and wait N ms before the burst, for attaching a profiler
    // (`perf record -p PID`) to the burst alone.
    let args: Vec<String> = std::env::args().collect();
    if let Some(ms) = args.iter().position(|a| a == "--pause-ms").and_then(|i| args.get(i + 1)) {
        println!("server pid    {}", server.pid());
        tokio::time::sleep(std::time::Duration::from_millis(ms.parse().expect("--pause-ms N"))).await;
    }
    let (server_cpu, client_cpu) = (cpu_ns(server.pid()), cpu_ns(std::process::id()));
    let started = std::time::Instant::now();
    let attempts = race(&ent, &instructions, &slots).await;
    let wall = started.elapsed();
    let server_cpu = cpu_ns(server.pid()) - server_cpu;
    let client_cpu = cpu_ns(std::process::id()) - client_cpu;

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
    let per_request = |ns: u64| ns as f64 / 1e3 / attempts.len() as f64;
    println!("server CPU    {:.1} ms ({:.0} us/request)", server_cpu as f64 / 1e6, per_request(server_cpu));
    println!("client CPU    {:.1} ms ({:.0} us/request)", client_cpu as f64 / 1e6, per_request(client_cpu));
    assert_eq!((confirmed, full, other), (100, 400, 0), "capacity must hold exactly");
}
