//! Fleet benchmark: many handhelds syncing their records concurrently to a real server.
//!
//! `bench-fleet [HANDHELDS] [RECORDS_PER_HANDHELD] [SESSIONS] [--transport batch|ws] [--json]` (defaults
//! 20 × 10 × 3 over batch). The server is the real `fieldcheck` binary in its own process; each handheld
//! is a thread of this process running the `handheld` client library (its own SQLite store; batch HTTP
//! sync, or the WebSocket transport with `--transport ws`). Setup files, approves
//! and assigns one frozen-fish instruction per record (13 check items). Then every handheld downloads
//! its records and works through `SESSIONS` offline sessions, syncing after each: the check results
//! spread over the sessions, five photo references in the first, verdict and completion in the last.
//!
//! Printed for the sessions phase: records/s; server CPU per record (user + system time of the server
//! process from `/proc/<pid>/stat`, before and after); whole-sync latency p50/p99/max (one
//! `handheld::sync`, every round trip and retry in it) and per-request p50/p99; retries, 503 answers and
//! failed syncs; bytes per record; server RSS now and peak (`VmHWM`). Then the same edits merged
//! in-process with plain automerge (no HTTP, no validation, no SQLite) and the overhead ratio. With
//! `--json` the figures are also printed as one JSON line, to compare runs.
//!
//! Build with `cargo build --release --bin fieldcheck --bin bench-fleet` and run
//! `target/release/bench-fleet`.

use std::{
    sync::Barrier,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, sync::SyncDoc, transaction::Transactable};
use fieldcheck_handheld::{self as handheld, Doc, client::Client, store::Store, transport::Kind};
use fieldcheck_sync::{
    RecordDoc,
    schema::{CheckResult, OfficerId, PhotoHash, PhotoRef, Stamp, Verdict},
};
use fieldcheck_tests::{Api, TestServer, dispatch::frozen_fish_application};
use serde_json::json;

const PHOTOS: usize = 5;

/// The arguments without `--transport` and its value.
fn args() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args();
    while let Some(a) = args.next() {
        if a == "--transport" {
            args.next();
        } else if !a.starts_with("--transport=") {
            out.push(a);
        }
    }
    out
}

/// The `n`th positional argument (1-based), flags left out.
fn arg(n: usize, default: usize) -> usize {
    args().into_iter().filter(|a| !a.starts_with("--")).nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// `--transport ws` (or `=ws`): the handhelds sync over the WebSocket endpoint; batch otherwise.
fn transport() -> Result<Kind> {
    let args: Vec<String> = std::env::args().collect();
    let value = args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--transport") {
        Some("") => args.get(i + 1).cloned(),
        Some(rest) => rest.strip_prefix('=').map(str::to_owned),
        None => None,
    });
    match value.as_deref() {
        None | Some("batch") => Ok(Kind::Batch),
        Some("ws") => Ok(Kind::Ws),
        Some(other) => anyhow::bail!("--transport is batch or ws, not {other:?}"),
    }
}

/// Creates officers, files and approves `handhelds × records` applications, assigns `records` to each.
async fn set_up(server: &TestServer, handhelds: usize, records: usize) -> Result<Vec<String>> {
    let admin = server.login("admin").await;
    let supervisor = server.login("supervisor1").await;
    let mut officers = Vec::new();
    for n in 0..handhelds {
        let username = format!("bench-officer{n}");
        let (status, user) = admin
            .post(
                "/api/v1/admin/users",
                json!({"username": username, "display_name": username, "password": "demo-password",
                       "role": "officer", "unit_code": "2201"}),
            )
            .await;
        anyhow::ensure!(status == 201 || status == 200, "create officer: {user}");
        officers.push((username, user["id"].as_i64().context("user id")?));
    }
    let operator = server.login("ent1-operator").await;
    let reviewer = server.login("reviewer1").await;
    for (_, officer) in &officers {
        let mut apps = Vec::new();
        for _ in 0..records {
            let (_, app) = operator.post("/api/v1/applications", frozen_fish_application()).await;
            let id = app["id"].as_i64().context("application id")?;
            operator.post(&format!("/api/v1/applications/{id}/submit"), json!({})).await;
            apps.push(id);
        }
        let (status, body) =
            reviewer.post("/api/v1/reviews", json!({"application_ids": apps, "action": "approve"})).await;
        anyhow::ensure!(status == 200, "approve: {body}");
        let (_, issued) = supervisor.get("/api/v1/instructions?state=issued&limit=500").await;
        for i in issued.as_array().context("instructions")? {
            let id = i["id"].as_i64().context("instruction id")?;
            let (status, body) = supervisor
                .post(&format!("/api/v1/instructions/{id}/assign"), json!({"officer_ids": [officer]}))
                .await;
            anyhow::ensure!(status == 200, "assign: {body}");
        }
    }
    Ok(officers.into_iter().map(|(u, _)| u).collect())
}

fn photo_hash(handheld: usize, record: usize, n: usize) -> PhotoHash {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&(handheld as u64).to_be_bytes());
    digest[8..16].copy_from_slice(&(record as u64).to_be_bytes());
    digest[16..24].copy_from_slice(&(n as u64).to_be_bytes());
    PhotoHash::from_digest(digest)
}

/// One session's edits on one record, as the handheld makes them (one change per action).
fn edit_session(
    doc: &mut RecordDoc,
    session: usize,
    sessions: usize,
    ids: (usize, usize),
    by: &OfficerId,
    at: i64,
) -> Result<()> {
    let items: Vec<String> = doc.read()?.checks.keys().cloned().collect();
    let stamp = |n: i64| Stamp { by: by.clone(), at: at + n };
    for (n, item) in items.iter().enumerate().filter(|(n, _)| n % sessions == session) {
        doc.set_check_result(item, CheckResult::Pass, &stamp(n as i64))?;
    }
    if session == 0 {
        for p in 0..PHOTOS {
            let photo = PhotoRef {
                check_item: Some(items[0].clone()),
                caption: format!("photo {p}"),
                taken_at: at,
                location: None,
                withdrawn: false,
            };
            doc.attach_photo(&photo_hash(ids.0, ids.1, p), &photo, &stamp(100 + p as i64))?;
        }
    }
    if session + 1 == sessions {
        doc.set_verdict(Verdict::Conforming, &stamp(200))?;
        doc.set_complete(true, &stamp(201))?;
        doc.sign("I inspected the goods.", &stamp(202))?;
    }
    Ok(())
}

struct HandheldRun {
    /// Per request, retries included.
    latencies: Vec<Duration>,
    /// Per whole sync (`handheld::sync`: every round trip of it).
    syncs: Vec<Duration>,
    bytes: u64,
    /// HTTP requests, or WebSocket frames sent over `--transport ws`.
    requests: u64,
    retries: u64,
    unavailable: u64,
    records: usize,
}

fn run_handheld(
    n: usize,
    base: String,
    username: String,
    sessions: usize,
    kind: Kind,
    ready: &Barrier,
) -> Result<HandheldRun> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let mut client = Client::new(&base, 5, None)?;
    let downloaded =
        handheld::register(&store, &mut client, &username, "demo-password", "bench", None, false)
            .and_then(|_| handheld::sync(&store, &mut client, kind, 0));
    // Everyone starts the offline sessions together, even a handheld whose download failed.
    ready.wait();
    downloaded?;
    // Only the offline sessions count: the first download is a different workload.
    let (bytes0, requests0) = (client.bytes_sent + client.bytes_received, client.requests);
    let (retries0, unavailable0) = (client.retries, client.unavailable);
    client.latencies.clear();
    let mut syncs = Vec::with_capacity(sessions);
    let (mut ws_bytes, mut ws_frames) = (0, 0);
    let by = OfficerId::parse(username.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let actor = handheld::actor(&store)?;
    let records = store.records()?;
    for session in 0..sessions {
        for (r, local) in records.iter().enumerate() {
            let Some((Doc::Record(mut doc), _)) = handheld::load(&store, &local.id, &actor)? else {
                continue;
            };
            edit_session(
                &mut doc,
                session,
                sessions,
                (n, r),
                &by,
                1_750_000_000_000 + session as i64 * 1000,
            )?;
            store.save_edit(&local.id, &doc.save(), "bench", 0)?;
        }
        let sync_started = Instant::now();
        let report = handheld::sync(&store, &mut client, kind, 0)?;
        syncs.push(sync_started.elapsed());
        if let Some(ws) = report.ws {
            ws_bytes += ws.bytes_sent + ws.bytes_received;
            ws_frames += ws.frames_sent;
        }
        anyhow::ensure!(report.errors.is_empty(), "refused: {:?}", report.errors);
    }
    Ok(HandheldRun {
        latencies: client.latencies,
        syncs,
        bytes: client.bytes_sent + client.bytes_received - bytes0 + ws_bytes,
        requests: client.requests - requests0 + ws_frames,
        retries: client.retries - retries0,
        unavailable: client.unavailable - unavailable0,
        records: records.len(),
    })
}

/// The same workload with plain automerge in one process: a server document per record, a device
/// replica, the same edits, merged with automerge's sync protocol in memory.
///
/// Also answers the server-side floor (issue 15's "≤ 2 ms per record" is judged against it): plain
/// automerge doing only the server's part of each session — load the stored document, apply the
/// session's changes, read the record's fields — timed apart, summed over all records; and the last
/// record as stored.
fn in_process(
    records: usize,
    sessions: usize,
    template: &mut RecordDoc,
) -> Result<(Duration, Duration, Vec<u8>)> {
    let saved = template.save();
    let started = Instant::now();
    let (mut floor, mut set_aside) = (Duration::ZERO, Duration::ZERO);
    let mut last = Vec::new();
    for r in 0..records {
        let mut server = AutoCommit::load(&saved)?;
        let mut device = AutoCommit::new();
        settle(&mut device, &mut server)?;
        for session in 0..sessions {
            let checks = device.get(ROOT, "checks")?.context("checks")?.1;
            let items: Vec<String> = device.keys(&checks).collect();
            for (n, item) in items.iter().enumerate().filter(|(n, _)| n % sessions == session) {
                let entry = device.get(&checks, item.as_str())?.context("entry")?.1;
                device.put(&entry, "result", "pass")?;
                device.put(&entry, "by", "bench")?;
                device.put(&entry, "at", n as i64)?;
                device.commit();
            }
            if session == 0 {
                let photos = device.get(ROOT, "photos")?.context("photos")?.1;
                for p in 0..PHOTOS {
                    let photo = device.put_object(&photos, photo_hash(0, r, p).as_str(), ObjType::Map)?;
                    device.put(&photo, "caption", format!("photo {p}"))?;
                    device.put(&photo, "taken_at", 0)?;
                    device.put(&photo, "by", "bench")?;
                    device.put(&photo, "at", 0)?;
                    device.commit();
                }
            }
            if session + 1 == sessions {
                let verdict = device.get(ROOT, "verdict")?.context("verdict")?.1;
                device.put(&verdict, "value", "conforming")?;
                device.commit();
                let completion = device.get(ROOT, "completion")?.context("completion")?.1;
                device.put(&completion, "complete", true)?;
                device.commit();
            }
            let aside = Instant::now();
            let (mut stored, chunk) = (server.save(), device.save_after(&server.get_heads()));
            let server_part = Instant::now();
            stored.extend_from_slice(&chunk);
            let record = RecordDoc::load(&stored, fieldcheck_sync::new_actor_id())?;
            record.read()?;
            floor += server_part.elapsed();
            set_aside += aside.elapsed();
            settle(&mut device, &mut server)?;
        }
        if r + 1 == records {
            last = server.save();
        }
    }
    Ok((started.elapsed().saturating_sub(set_aside), floor, last))
}

/// What one record costs in memory once loaded and read (what the server's document cache holds per
/// entry, beside a small instruction part): `COPIES` loads of it, the growth of the live heap.
/// Answers (stored bytes, heap bytes per loaded copy, its size).
fn loaded_cost(saved: &[u8]) -> Result<(usize, u64, fieldcheck_sync::DocSize)> {
    const COPIES: u64 = 500;
    let before = heap::live();
    let mut held = Vec::with_capacity(COPIES as usize);
    for _ in 0..COPIES {
        let doc = RecordDoc::load(saved, fieldcheck_sync::new_actor_id())?;
        doc.read()?;
        held.push(doc);
    }
    let after = heap::live();
    let size = fieldcheck_sync::doc_size(&held[0]);
    drop(held);
    // The copies' own bytes sit in `held`, allocated before counting: added back, as the cache's entry
    // holds one inline.
    let inline = std::mem::size_of::<RecordDoc>() as u64;
    Ok((saved.len(), after.saturating_sub(before) / COPIES + inline, size))
}

/// Live heap bytes, counted by this binary's allocator: what a loaded document holds, exactly, whatever
/// memory the process freed before (RSS growth read 0–8 KiB in a process full of freed memory, which is
/// how the document cache was once charged a third of the real cost).
mod heap {
    use std::{
        alloc::{GlobalAlloc, Layout, System},
        sync::atomic::{AtomicU64, Ordering},
    };

    static LIVE: AtomicU64 = AtomicU64::new(0);

    struct Counting;

    // SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LIVE.fetch_add(new_size as u64, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    pub fn live() -> u64 {
        LIVE.load(Ordering::Relaxed)
    }
}

fn settle(a: &mut AutoCommit, b: &mut AutoCommit) -> Result<()> {
    let (mut sa, mut sb) = (automerge::sync::State::new(), automerge::sync::State::new());
    for _ in 0..20 {
        let ma = a.sync().generate_sync_message(&mut sa);
        let mb = b.sync().generate_sync_message(&mut sb);
        if ma.is_none() && mb.is_none() {
            return Ok(());
        }
        if let Some(m) = ma {
            b.sync().receive_sync_message(&mut sb, m)?;
        }
        if let Some(m) = mb {
            a.sync().receive_sync_message(&mut sa, m)?;
        }
    }
    anyhow::bail!("in-process sync did not settle")
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU time the process has used so far (`/proc/<pid>/stat` fields 14 and 15, in clock
/// ticks of 1/100 s on Linux).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // `after_name` starts at field 3 (state), so fields 14 and 15 are at 11 and 12.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<()> {
    let (handhelds, records, sessions) = (arg(1, 20), arg(2, 10), arg(3, 3).max(1));
    let json_line = std::env::args().any(|a| a == "--json");
    let kind = transport()?;
    // Every handheld logs in from 127.0.0.1 here, where a real fleet comes from as many addresses: with
    // the per-address limit of 20 (which counts attempts before their check) 20 handhelds registering
    // at once ran into `429 too_many_attempts` on a loaded machine.
    let server = TestServer::start_with(&[("FIELDCHECK__AUTH__LOGIN_FAILURES_PER_ADDRESS", "1000000")]);
    let runtime = tokio::runtime::Runtime::new()?;
    let setup = Instant::now();
    let officers = runtime.block_on(set_up(&server, handhelds, records))?;
    eprintln!("set up {handhelds} officers × {records} records in {:.1?}", setup.elapsed());

    let ready = Barrier::new(officers.len() + 1);
    let mut started = Instant::now();
    let mut cpu_before = Duration::ZERO;
    let mut client_before = Duration::ZERO;
    let runs: Vec<HandheldRun> = std::thread::scope(|scope| {
        let threads: Vec<_> = officers
            .iter()
            .enumerate()
            .map(|(n, username)| {
                let (base, ready) = (server.base.clone(), &ready);
                scope.spawn(move || run_handheld(n, base, username.clone(), sessions, kind, ready))
            })
            .collect();
        ready.wait();
        started = Instant::now();
        cpu_before = cpu_time(server.pid());
        client_before = cpu_time(std::process::id());
        // A failed handheld is counted, not fatal: a fleet run reports how many syncs gave up.
        Ok::<_, anyhow::Error>(
            threads.into_iter().map(|t| t.join().expect("handheld thread")).collect::<Vec<Result<_>>>(),
        )
    })?
    .into_iter()
    .filter_map(|run: Result<HandheldRun>| run.map_err(|e| eprintln!("handheld failed: {e:#}")).ok())
    .collect();
    let fleet = started.elapsed();
    let server_cpu = cpu_time(server.pid()).saturating_sub(cpu_before);
    // The handhelds share the machine's cores with the server: what they took is not the server's.
    let client_cpu = cpu_time(std::process::id()).saturating_sub(client_before);
    let failed = officers.len() - runs.len();

    let total_records: usize = runs.iter().map(|r| r.records).sum();
    let mut latencies: Vec<Duration> = runs.iter().flat_map(|r| r.latencies.iter().copied()).collect();
    latencies.sort();
    let mut syncs: Vec<Duration> = runs.iter().flat_map(|r| r.syncs.iter().copied()).collect();
    syncs.sort();
    let retries: u64 = runs.iter().map(|r| r.retries).sum();
    let unavailable: u64 = runs.iter().map(|r| r.unavailable).sum();
    let bytes: u64 = runs.iter().map(|r| r.bytes).sum();
    let requests: u64 = runs.iter().map(|r| r.requests).sum();
    let rss = rss_kib(server.pid(), "VmRSS:");
    let peak = rss_kib(server.pid(), "VmHWM:");

    let cache_hits = runtime.block_on(server.metric("fieldcheck_sync_cache_hits_total"));
    let cache_misses = runtime.block_on(server.metric("fieldcheck_sync_cache_misses_total"));
    let cache_stale = runtime.block_on(server.metric("fieldcheck_sync_cache_stale_total"));
    let supervisor: Api = runtime.block_on(server.login("supervisor1"));
    let (_, in_progress) =
        runtime.block_on(supervisor.get("/api/v1/instructions?state=in_progress&limit=500"));

    let mut template = {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        let mut client = Client::new(&server.base, 5, None)?;
        handheld::register(
            &store,
            &mut client,
            &officers[0],
            "demo-password",
            "bench template",
            None,
            false,
        )?;
        handheld::sync(&store, &mut client, Kind::Batch, 0)?;
        let local = store.records()?.into_iter().next().context("a record")?;
        RecordDoc::load(local.data.as_deref().context("record data")?, handheld::actor(&store)?)?
    };
    let checks = template.read()?.checks.len();
    anyhow::ensure!(total_records > 0, "no handheld finished");
    let (baseline, floor, finished) = in_process(total_records, sessions, &mut template)?;
    let (stored_bytes, loaded_bytes, size) = loaded_cost(&finished)?;
    let fresh = RecordDoc::create(
        &template.instruction()?,
        &[OfficerId::parse(officers[0].clone()).map_err(|e| anyhow::anyhow!("{e}"))?],
        fieldcheck_sync::new_actor_id(),
        0,
    )?
    .save();
    let (fresh_stored, fresh_loaded, fresh_size) = loaded_cost(&fresh)?;

    let per_sec = |d: Duration| total_records as f64 / d.as_secs_f64();
    println!(
        "fleet: {handhelds} handhelds × {records} records ({checks} checks, {PHOTOS} photo refs, verdict), {sessions} offline sessions each, over {kind:?}"
    );
    println!("  wall time (sessions phase)   {:.2?}", fleet);
    println!("  records/s (all sessions)     {:.1}", per_sec(fleet));
    let cpu_per_record_ms = server_cpu.as_secs_f64() * 1000.0 / total_records as f64;
    println!("  server CPU per record        {cpu_per_record_ms:.2} ms ({:.1?} in all)", server_cpu);
    let client_ms = client_cpu.as_secs_f64() * 1000.0 / total_records as f64;
    println!("  handhelds' CPU per record    {client_ms:.2} ms ({:.1?} in all, this process)", client_cpu);
    println!(
        "  whole sync p50 / p99 / max   {:.1?} / {:.1?} / {:.1?}",
        percentile(&syncs, 0.5),
        percentile(&syncs, 0.99),
        syncs.last().copied().unwrap_or_default()
    );
    println!(
        "  request p50 / p99            {:.1?} / {:.1?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!("  sync requests (ws: frames)   {requests}");
    println!(
        "  document cache hits / misses {cache_hits} / {cache_misses} ({cache_stale} of them stale copies)"
    );
    println!("  retries / 503s / failed      {retries} / {unavailable} / {failed} handhelds");
    println!("  bytes per record (up+down)   {}", bytes / total_records.max(1) as u64);
    println!("  server RSS now / peak        {} MiB / {} MiB", rss / 1024, peak / 1024);
    println!(
        "  one finished record          {stored_bytes} bytes stored, {} KiB loaded in memory ({} ops, {} changes)",
        loaded_bytes / 1024,
        size.ops,
        size.changes
    );
    println!(
        "  one new record               {fresh_stored} bytes stored, {} KiB loaded in memory ({} ops, {} changes)",
        fresh_loaded / 1024,
        fresh_size.ops,
        fresh_size.changes
    );
    println!(
        "  instructions in_progress, photos pending by design (listing capped at 500): {}",
        in_progress.as_array().map_or(0, Vec::len)
    );
    println!("in-process plain automerge, same edits: {:.2?} ({:.1} records/s)", baseline, per_sec(baseline));
    let floor_ms = floor.as_secs_f64() * 1000.0 / total_records as f64;
    println!(
        "server-side floor (plain automerge: load, apply the session's changes, read; all sessions): {floor_ms:.2} ms per record"
    );
    println!("overhead ratio (fleet / in-process):   {:.1}×", fleet.as_secs_f64() / baseline.as_secs_f64());
    if json_line {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{}",
            json!({
                "handhelds": handhelds, "records": records, "sessions": sessions, "transport": kind,
                "records_per_s": per_sec(fleet),
                "server_cpu_ms_per_record": cpu_per_record_ms,
                "client_cpu_ms_per_record": client_ms,
                "sync_p50_ms": ms(percentile(&syncs, 0.5)),
                "sync_p99_ms": ms(percentile(&syncs, 0.99)),
                "sync_max_ms": ms(syncs.last().copied().unwrap_or_default()),
                "request_p50_ms": ms(percentile(&latencies, 0.5)),
                "request_p99_ms": ms(percentile(&latencies, 0.99)),
                "requests": requests, "retries": retries,
                "cache_hits": cache_hits, "cache_misses": cache_misses, "cache_stale": cache_stale, "unavailable_503": unavailable,
                "failed_handhelds": failed,
                "peak_rss_mib": peak / 1024,
                "record_stored_bytes": stored_bytes, "record_loaded_bytes": loaded_bytes,
                "new_record_loaded_bytes": fresh_loaded,
                "record_ops": size.ops, "record_changes": size.changes,
                "in_process_records_per_s": per_sec(baseline),
                "server_floor_ms_per_record": floor_ms,
            })
        );
    }
    Ok(())
}
