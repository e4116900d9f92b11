//! Fleet benchmark: many handhelds syncing their records concurrently to a real server.
//!
//! `bench-fleet [HANDHELDS] [RECORDS_PER_HANDHELD] [SESSIONS]` (defaults 20 × 10 × 3). Each handheld is
//! a thread running the `handheld` client library (its own SQLite store, HTTP batch sync). Setup files,
//! approves and assigns one frozen-fish instruction per record (13 check items). Then every handheld
//! downloads its records and works through `SESSIONS` offline sessions, syncing after each: the check
//! results spread over the sessions, five photo references in the first, verdict and completion in the
//! last. Printed: records/s, bytes per record, p50/p99 batch latency, server RSS; then the same edits
//! merged in-process with plain automerge (no HTTP, no validation, no SQLite) and the overhead ratio.
//!
//! Build with `cargo build --release --workspace --bins` and run `target/release/bench-fleet`.

use std::{
    sync::Barrier,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, sync::SyncDoc, transaction::Transactable};
use fieldcheck_handheld::{self as handheld, Doc, client::Client, store::Store};
use fieldcheck_sync::{
    RecordDoc,
    schema::{CheckResult, OfficerId, PhotoHash, PhotoRef, Stamp, Verdict},
};
use fieldcheck_tests::{Api, TestServer, dispatch::frozen_fish_application};
use serde_json::json;

const PHOTOS: usize = 5;

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
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
    latencies: Vec<Duration>,
    bytes: u64,
    requests: u64,
    records: usize,
}

fn run_handheld(
    n: usize,
    base: String,
    username: String,
    sessions: usize,
    ready: &Barrier,
) -> Result<HandheldRun> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let mut client = Client::new(&base, 5, None)?;
    let downloaded =
        handheld::register(&store, &mut client, &username, "demo-password", "bench", None, false)
            .and_then(|_| handheld::sync(&store, &mut client, 0));
    // Everyone starts the offline sessions together, even a handheld whose download failed.
    ready.wait();
    downloaded?;
    // Only the offline sessions count: the first download is a different workload.
    let (bytes0, requests0) = (client.bytes_sent + client.bytes_received, client.requests);
    client.latencies.clear();
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
        let report = handheld::sync(&store, &mut client, 0)?;
        anyhow::ensure!(report.errors.is_empty(), "refused: {:?}", report.errors);
    }
    Ok(HandheldRun {
        latencies: client.latencies,
        bytes: client.bytes_sent + client.bytes_received - bytes0,
        requests: client.requests - requests0,
        records: records.len(),
    })
}

/// The same workload with plain automerge in one process: a server document per record, a device
/// replica, the same edits, merged with automerge's sync protocol in memory.
fn in_process(records: usize, sessions: usize, template: &mut RecordDoc) -> Result<Duration> {
    let saved = template.save();
    let started = Instant::now();
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
            settle(&mut device, &mut server)?;
        }
    }
    Ok(started.elapsed())
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<()> {
    let (handhelds, records, sessions) = (arg(1, 20), arg(2, 10), arg(3, 3).max(1));
    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new()?;
    let setup = Instant::now();
    let officers = runtime.block_on(set_up(&server, handhelds, records))?;
    eprintln!("set up {handhelds} officers × {records} records in {:.1?}", setup.elapsed());

    let ready = Barrier::new(officers.len() + 1);
    let mut started = Instant::now();
    let runs: Vec<HandheldRun> = std::thread::scope(|scope| {
        let threads: Vec<_> = officers
            .iter()
            .enumerate()
            .map(|(n, username)| {
                let (base, ready) = (server.base.clone(), &ready);
                scope.spawn(move || run_handheld(n, base, username.clone(), sessions, ready))
            })
            .collect();
        ready.wait();
        started = Instant::now();
        threads.into_iter().map(|t| t.join().expect("handheld thread")).collect::<Result<_>>()
    })?;
    let fleet = started.elapsed();

    let total_records: usize = runs.iter().map(|r| r.records).sum();
    let mut latencies: Vec<Duration> = runs.iter().flat_map(|r| r.latencies.iter().copied()).collect();
    latencies.sort();
    let bytes: u64 = runs.iter().map(|r| r.bytes).sum();
    let requests: u64 = runs.iter().map(|r| r.requests).sum();
    let rss = rss_kib(server.pid(), "VmRSS:");
    let peak = rss_kib(server.pid(), "VmHWM:");

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
        handheld::sync(&store, &mut client, 0)?;
        let local = store.records()?.into_iter().next().context("a record")?;
        RecordDoc::load(local.data.as_deref().context("record data")?, handheld::actor(&store)?)?
    };
    let checks = template.read()?.checks.len();
    let baseline = in_process(total_records, sessions, &mut template)?;

    let per_sec = |d: Duration| total_records as f64 / d.as_secs_f64();
    println!(
        "fleet: {handhelds} handhelds × {records} records ({checks} checks, {PHOTOS} photo refs, verdict), {sessions} offline sessions each"
    );
    println!("  wall time (sessions phase)   {:.2?}", fleet);
    println!("  records/s (all sessions)     {:.1}", per_sec(fleet));
    println!("  sync requests                {requests}");
    println!("  bytes per record (up+down)   {}", bytes / total_records.max(1) as u64);
    println!(
        "  batch latency p50 / p99      {:.1?} / {:.1?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!("  server RSS now / peak        {} MiB / {} MiB", rss / 1024, peak / 1024);
    println!(
        "  instructions in_progress, photos pending by design (listing capped at 500): {}",
        in_progress.as_array().map_or(0, Vec::len)
    );
    println!("in-process plain automerge, same edits: {:.2?} ({:.1} records/s)", baseline, per_sec(baseline));
    println!("overhead ratio (fleet / in-process):   {:.1}×", fleet.as_secs_f64() / baseline.as_secs_f64());
    Ok(())
}
