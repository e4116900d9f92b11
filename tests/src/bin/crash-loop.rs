//! `crash-loop`: the real server killed with SIGKILL again and again under concurrent writers; after every
//! restart, every write it acknowledged must still be there, intact.
//!
//! `crash-loop [CYCLES] [SEED]` (defaults: 50 cycles, a fresh seed, printed so a failing run can be
//! replayed). `scripts/crash-loop.sh` builds the release binaries and runs it; `docs/testing.md` describes
//! the checks. It is not part of `scripts/test.sh`.
//!
//! Setup files and approves frozen-fish applications (HS 0303, always inspected on site): most of the
//! instructions stay issued, to be booked; three are assigned to officer1, for photos and record sync.
//! Each cycle then runs seven writers for a seeded random time and kills the server mid-load:
//! - two tasks of `ent1-operator` draft and submit applications;
//! - two booking tasks request slots the availability listing shows free, have `supervisor1` confirm
//!   them, and cancel them again so the instructions can be booked anew;
//! - two photo tasks of `officer1` upload small distinct JPEGs, one whole, one resumable in chunks (an
//!   upload the kill cut off is resumed after the restart, from the bytes the server kept);
//! - officer1's handheld (`demo-handheld-officer1`, a device-bound login) edits check notes and results of
//!   its records with `RecordDoc` and syncs them through `POST /api/v1/sync`.
//!
//! A write is *acknowledged* only when the server answered success: a 201/200 with the expected body, or
//! for sync, a conversation that settled (the server's reply says it holds the device's heads: every
//! change the device made so far). The server is then restarted on the same data dir and every
//! acknowledged write is checked, together with what a half-done write would break: slot usage equal to
//! the live bookings, at most one live booking per instruction, gapless inspection serials, every listed
//! photo's file complete, the record's changes a prefix of the device's, SQLite's integrity check and the
//! audit chain. At the end the server is stopped and `fieldcheck admin verify-audit` must pass.
//!
//! Writers run concurrently, so a seed replays each writer's choices and the load durations, not the
//! interleaving. Exit status 1 on any lost or corrupt write or unexpected answer; the data dir is kept
//! then, and its path printed.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use fieldcheck_sync::{
    ChangeHash, RecordDoc, Rules, SyncSession,
    batch::{self, Bytes, DocMessage, SyncRequest, SyncResponse},
    schema::{CheckResult, OfficerId, Stamp},
};
use fieldcheck_tests::{
    Api, Rng, TestServer,
    booking::{DAY, MONDAY, SITE, frozen_fish_application, issue_instructions},
    photos::sha256_hex,
    rfc3339,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// Instructions left issued for the booking writers (split between them).
const BOOKING_POOL: usize = 40;
/// Instructions assigned to officer1: photos are uploaded for them and their records synced.
const ASSIGNED: usize = 3;
/// The load before a kill: a seeded random time in this range.
const LOAD_MS: (u64, u64) = (300, 2000);
/// Bookings go into the site's slots on these days after Monday 2026-11-30 (the manual clock's "now"): the
/// first is more than the 24 h cut-off away, so enterprises may still cancel, and the range is within the
/// availability endpoint's 62 days.
const BOOKING_DAYS: (i64, i64) = (1, 60);
/// A guard against a writer that never returns after the kill, not a timing assumption.
const WRITERS_GUARD: Duration = Duration::from_secs(300);

fn main() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let cycles: u64 = args.next().map_or(Ok(50), |a| a.parse()).context("CYCLES is a number")?;
    let seed = match args.next() {
        Some(s) => parse_seed(&s)?,
        None => fresh_seed()?,
    };
    println!("crash-loop: {cycles} cycles, seed {seed:#018x} (replay: crash-loop {cycles} {seed:#018x})");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // Production password hashing, as `bench-api` does; everything else as the tests run it.
    let mut server = TestServer::start_with(&[("FIELDCHECK__AUTH__ARGON2_MEMORY_KIB", "19456")]);
    let outcome = runtime.block_on(crash_loop(&mut server, cycles, seed));
    let failed = match &outcome {
        Ok(report) => {
            report.print();
            !report.failures.is_empty() || !report.unexpected.is_empty()
        }
        Err(e) => {
            println!("ABORTED: {e:#}");
            true
        }
    };
    if !failed {
        return Ok(ExitCode::SUCCESS);
    }
    server.keep_data_dir();
    println!("data dir kept for a post-mortem: {} (server.log inside)", server.data_dir().display());
    Ok(ExitCode::FAILURE)
}

fn parse_seed(s: &str) -> Result<u64> {
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.with_context(|| format!("SEED {s:?} is a number (decimal or 0x hex)"))
}

fn fresh_seed() -> Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random seed: {e}"))?;
    Ok(u64::from_le_bytes(bytes))
}

/// The access tokens of the demo users the writers act as. Tokens survive restarts (the signing key and
/// the sessions are in the data dir) and the manual clock stands still, so one login serves the run.
struct Tokens {
    enterprise: String,
    supervisor: String,
    officer: String,
    admin: String,
    /// officer1 on `demo-handheld-officer1`: the writing handheld.
    device: String,
    /// officer1 on a second handheld registered by the setup: reads records back from scratch.
    verifier: String,
}

/// Clients of the running server (its port changes with every restart).
#[derive(Clone)]
struct Clients {
    enterprise: Api,
    supervisor: Api,
    officer: Api,
    admin: Api,
    device: Api,
    verifier: Api,
}

impl Clients {
    fn of(server: &TestServer, t: &Tokens) -> Clients {
        Clients {
            enterprise: server.api().with_token(&t.enterprise),
            supervisor: server.api().with_token(&t.supervisor),
            officer: server.api().with_token(&t.officer),
            admin: server.api().with_token(&t.admin),
            device: server.api().with_token(&t.device),
            verifier: server.api().with_token(&t.verifier),
        }
    }
}

/// What a writer met besides acknowledged writes.
#[derive(Default)]
struct Seen {
    /// Requests the kill cut off: the server may or may not have committed them; neither is an error.
    cut_off: u64,
    /// Answers a correct server does not give: a 5xx, a refusal of a valid request, a broken connection
    /// while the server was up.
    unexpected: Vec<String>,
}

impl Seen {
    /// Books a request that did not get through: cut off by the kill, or unexpected before it.
    fn lost_request(&mut self, stop: &AtomicBool, what: &str, e: &reqwest::Error) {
        if stop.load(Ordering::SeqCst) {
            self.cut_off += 1;
        } else {
            self.unexpected.push(format!("{what}: no answer while the server was up: {e}"));
        }
    }

    fn unexpected(&mut self, what: &str, status: u16, body: &Value) {
        self.unexpected.push(format!("{what}: HTTP {status} {body}"));
    }
}

/// Sends a JSON request; `None` when it did not get through (booked in `seen`).
async fn send(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<Value>,
    stop: &AtomicBool,
    seen: &mut Seen,
) -> Option<(u16, Value)> {
    match api.try_send(method, path, body).await {
        Ok(answer) => Some(answer),
        Err(e) => {
            seen.lost_request(stop, path, &e);
            None
        }
    }
}

/// One writer: its own part of the workload and the ledger of what the server acknowledged to it.
enum Writer {
    Applications(ApplicationWriter),
    Bookings(BookingWriter),
    Photos(PhotoWriter),
    Handheld(HandheldWriter),
}

impl Writer {
    async fn run(self, c: Clients, stop: Arc<AtomicBool>, rng: Rng, cycle: u64) -> (Writer, Seen) {
        let mut seen = Seen::default();
        let writer = match self {
            Writer::Applications(mut w) => {
                w.run(&c, &stop, rng, cycle, &mut seen).await;
                Writer::Applications(w)
            }
            Writer::Bookings(mut w) => {
                w.run(&c, &stop, rng, &mut seen).await;
                Writer::Bookings(w)
            }
            Writer::Photos(mut w) => {
                w.run(&c, &stop, rng, &mut seen).await;
                Writer::Photos(w)
            }
            Writer::Handheld(mut w) => {
                w.run(&c, &stop, rng, cycle, &mut seen).await;
                Writer::Handheld(w)
            }
        };
        (writer, seen)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Applications

struct ApplicationWriter {
    name: String,
    filed: BTreeMap<i64, FiledApplication>,
    drafts: u64,
    submissions: u64,
}

/// An application whose draft the server acknowledged.
struct FiledApplication {
    /// Unique per application: tells the stored content is this application's.
    consignee: String,
    /// The inspection number of an acknowledged submission.
    submitted: Option<String>,
    /// A submission was sent; without an answer the application may be a draft or submitted.
    submit_sent: bool,
}

impl ApplicationWriter {
    fn new(name: &str) -> ApplicationWriter {
        ApplicationWriter { name: name.to_owned(), filed: BTreeMap::new(), drafts: 0, submissions: 0 }
    }

    async fn run(&mut self, c: &Clients, stop: &AtomicBool, mut rng: Rng, cycle: u64, seen: &mut Seen) {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let consignee = format!("crash-loop {} c{cycle} n{n}", self.name);
            let mut content = frozen_fish_application();
            content["consignee_name"] = json!(consignee);
            let Some((status, app)) =
                send(&c.enterprise, Method::POST, "/api/v1/applications", Some(content), stop, seen).await
            else {
                return;
            };
            let Some(id) = app["id"].as_i64().filter(|_| status == 201 && app["state"] == "draft") else {
                seen.unexpected("draft an application", status, &app);
                continue;
            };
            self.drafts += 1;
            self.filed.insert(id, FiledApplication { consignee, submitted: None, submit_sent: false });
            // Some stay drafts.
            if rng.chance(15) {
                continue;
            }
            self.filed.get_mut(&id).expect("just filed").submit_sent = true;
            let path = format!("/api/v1/applications/{id}/submit");
            let Some((status, body)) =
                send(&c.enterprise, Method::POST, &path, Some(json!({})), stop, seen).await
            else {
                return;
            };
            match body["inspection_no"].as_str() {
                Some(no) if status == 200 && body["state"] == "submitted" => {
                    self.submissions += 1;
                    self.filed.get_mut(&id).expect("just filed").submitted = Some(no.to_owned());
                }
                _ => seen.unexpected("submit an application", status, &body),
            }
        }
    }

    fn verify(&self, stored: &HashMap<i64, Value>, check: &mut Check) {
        for (id, filed) in &self.filed {
            let Some(app) = stored.get(id) else {
                check.fail(format!("application {id} ({}) was acknowledged but is gone", filed.consignee));
                continue;
            };
            check.expect(app["content"]["consignee_name"] == filed.consignee.as_str(), || {
                format!("application {id}: content is not what was filed ({})", filed.consignee)
            });
            let state = app["state"].as_str().unwrap_or("?");
            match &filed.submitted {
                Some(no) => check.expect(state == "submitted" && app["inspection_no"] == no.as_str(), || {
                    format!(
                        "application {id}: submission as {no} was acknowledged, the server has {state} {}",
                        app["inspection_no"]
                    )
                }),
                None if filed.submit_sent => check.expect(state == "draft" || state == "submitted", || {
                    format!("application {id}: a draft with an unanswered submission is {state}")
                }),
                None => check.expect(state == "draft", || format!("application {id}: a draft is {state}")),
            }
        }
    }
}

/// Inspection numbers are unique and their serials gapless per (direction, year, district): a serial
/// is taken inside the submitting transaction, so a killed submission must not burn one.
fn verify_serials(stored: &HashMap<i64, Value>, check: &mut Check) {
    let mut serials: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for app in stored.values() {
        if let Some(no) = app["inspection_no"].as_str() {
            // D YY C DDDD SSSSSSS
            let key = format!("{}/{}", &no[..3], &no[4..8]);
            serials.entry(key).or_default().push(no[8..].parse().unwrap_or(0));
        }
    }
    for (key, mut list) in serials {
        list.sort_unstable();
        let n = list.len() as u64;
        let unique = list.windows(2).all(|w| w[0] != w[1]);
        check.expect(unique && list.first() == Some(&1) && list.last() == Some(&n), || {
            format!("inspection serials of {key} are not 1..={n} without repeats: {list:?}")
        });
    }
}

// ---------------------------------------------------------------------------------------------------------
// Bookings

struct BookingWriter {
    /// The instructions this writer books (no other writer touches them).
    pool: Vec<i64>,
    /// Each pool instruction's live booking as this writer knows it.
    live: HashMap<i64, Option<i64>>,
    bookings: BTreeMap<i64, TrackedBooking>,
    /// Bookable slot starts from the last availability listing.
    free: Vec<String>,
    requests: u64,
    confirmations: u64,
    cancellations: u64,
}

struct TrackedBooking {
    instruction: i64,
    starts_at: String,
    /// The last acknowledged state (or, after a restart, the state the server showed).
    state: String,
    /// A state change was sent and never answered: the server may hold it or not.
    sent: Option<&'static str>,
}

impl BookingWriter {
    fn new(pool: Vec<i64>) -> BookingWriter {
        BookingWriter {
            live: pool.iter().map(|i| (*i, None)).collect(),
            pool,
            bookings: BTreeMap::new(),
            free: Vec::new(),
            requests: 0,
            confirmations: 0,
            cancellations: 0,
        }
    }

    async fn run(&mut self, c: &Clients, stop: &AtomicBool, mut rng: Rng, seen: &mut Seen) {
        while !stop.load(Ordering::SeqCst) {
            let instruction = *rng.pick(&self.pool);
            let done = match self.live[&instruction] {
                None if self.free.is_empty() => self.list_free(c, stop, &mut rng, seen).await,
                None => self.request(c, stop, &mut rng, seen, instruction).await,
                Some(id) => {
                    let confirm = self.bookings[&id].state == "requested" && rng.chance(70);
                    if confirm {
                        self.change(&c.supervisor, stop, seen, id, "confirm", "confirmed").await
                    } else {
                        self.change(&c.enterprise, stop, seen, id, "cancel", "cancelled").await
                    }
                }
            };
            if !done {
                return;
            }
        }
    }

    /// Reads a random two weeks of the site's availability; `false` if the request did not get through.
    async fn list_free(&mut self, c: &Clients, stop: &AtomicBool, rng: &mut Rng, seen: &mut Seen) -> bool {
        let first = BOOKING_DAYS.0 + rng.below((BOOKING_DAYS.1 - BOOKING_DAYS.0 - 13) as u64) as i64;
        let path = format!(
            "/api/v1/sites/{SITE}/availability?from={}&to={}",
            local_date(first),
            local_date(first + 13)
        );
        let Some((status, body)) = send(&c.enterprise, Method::GET, &path, None, stop, seen).await else {
            return false;
        };
        let slots = body["slots"].as_array().filter(|_| status == 200);
        let Some(slots) = slots else {
            seen.unexpected("availability", status, &body);
            return true;
        };
        self.free = slots
            .iter()
            .filter(|s| s["bookable"] == true && s["free"].as_i64() > Some(0))
            .filter_map(|s| s["slot"]["starts_at"].as_str().map(str::to_owned))
            .collect();
        true
    }

    async fn request(
        &mut self,
        c: &Clients,
        stop: &AtomicBool,
        rng: &mut Rng,
        seen: &mut Seen,
        instruction: i64,
    ) -> bool {
        let starts_at = rng.pick(&self.free).clone();
        let body = json!({"instruction_id": instruction, "starts_at": starts_at});
        let Some((status, booking)) =
            send(&c.enterprise, Method::POST, "/api/v1/bookings", Some(body), stop, seen).await
        else {
            return false;
        };
        match booking["id"].as_i64() {
            Some(id)
                if status == 201
                    && booking["state"] == "requested"
                    && booking["slot"]["starts_at"] == starts_at =>
            {
                self.requests += 1;
                self.live.insert(instruction, Some(id));
                let state = "requested".to_owned();
                self.bookings.insert(id, TrackedBooking { instruction, starts_at, state, sent: None });
            }
            // Someone else's view of the slot was fresher; look again.
            _ if status == 409 && booking["code"] == "slot_full" => self.free.clear(),
            _ => seen.unexpected("request a booking", status, &booking),
        }
        true
    }

    async fn change(
        &mut self,
        api: &Api,
        stop: &AtomicBool,
        seen: &mut Seen,
        id: i64,
        action: &str,
        to: &'static str,
    ) -> bool {
        let tracked = self.bookings.get_mut(&id).expect("a live booking is tracked");
        tracked.sent = Some(to);
        let path = format!("/api/v1/bookings/{id}/{action}");
        let Some((status, body)) = send(api, Method::POST, &path, Some(json!({})), stop, seen).await else {
            return false;
        };
        tracked.sent = None;
        if status != 200 || body["state"] != to {
            seen.unexpected(&format!("{action} booking {id}"), status, &body);
            return true;
        }
        tracked.state = to.to_owned();
        if to == "cancelled" {
            self.cancellations += 1;
            self.live.insert(tracked.instruction, None);
        } else {
            self.confirmations += 1;
        }
        true
    }

    fn verify(&self, stored: &HashMap<i64, Value>, check: &mut Check) {
        for (id, tracked) in &self.bookings {
            let Some(b) = stored.get(id) else {
                check.fail(format!(
                    "booking {id} of instruction {} was acknowledged but is gone",
                    tracked.instruction
                ));
                continue;
            };
            check.expect(
                b["instruction_id"] == tracked.instruction
                    && b["slot"]["starts_at"] == tracked.starts_at.as_str(),
                || format!("booking {id}: not the instruction and slot acknowledged: {b}"),
            );
            let state = b["state"].as_str().unwrap_or("?");
            check.expect(state == tracked.state || Some(state) == tracked.sent, || {
                let sent = tracked.sent.map(|s| format!(" (or {s}, sent unanswered)")).unwrap_or_default();
                format!("booking {id}: acknowledged {}{sent}, the server has {state}", tracked.state)
            });
        }
    }

    /// Takes the server's word for everything after the checks: states changed by unanswered requests,
    /// and bookings whose request committed but whose answer the kill cut off. Answers how many of those
    /// bookings there were.
    fn reconcile(&mut self, stored: &HashMap<i64, Value>) -> u64 {
        let mut adopted = 0;
        for instruction in &self.pool {
            self.live.insert(*instruction, None);
        }
        for (id, b) in stored {
            let Some(instruction) = b["instruction_id"].as_i64().filter(|i| self.live.contains_key(i)) else {
                continue;
            };
            let state = b["state"].as_str().unwrap_or("?").to_owned();
            if matches!(state.as_str(), "requested" | "confirmed") {
                self.live.insert(instruction, Some(*id));
            }
            let tracked = self.bookings.entry(*id).or_insert_with(|| {
                adopted += 1;
                TrackedBooking {
                    instruction,
                    starts_at: b["slot"]["starts_at"].as_str().unwrap_or("?").to_owned(),
                    state: state.clone(),
                    sent: None,
                }
            });
            tracked.state = state;
            tracked.sent = None;
        }
        self.free.clear();
        adopted
    }
}

/// The site's local date `days` after Monday 2026-11-30 (00:00 UTC is 08:00 in Shanghai, the same date).
fn local_date(days: i64) -> String {
    rfc3339(MONDAY + days * DAY)[..10].to_owned()
}

/// Slot usage is the count of live bookings in each slot, and an instruction has one live booking at most:
/// a request takes its place in the same transaction that writes it.
fn verify_slot_usage(stored: &HashMap<i64, Value>, availability: &Value, check: &mut Check) {
    let mut live_per_slot: HashMap<&str, i64> = HashMap::new();
    let mut live_per_instruction: HashMap<i64, Vec<i64>> = HashMap::new();
    for (id, b) in stored {
        if matches!(b["state"].as_str(), Some("requested" | "confirmed")) {
            *live_per_slot.entry(b["slot"]["starts_at"].as_str().unwrap_or("?")).or_default() += 1;
            live_per_instruction.entry(b["instruction_id"].as_i64().unwrap_or(0)).or_default().push(*id);
        }
    }
    for (instruction, ids) in &live_per_instruction {
        check.expect(ids.len() == 1, || format!("instruction {instruction} has live bookings {ids:?}"));
    }
    let slots = availability["slots"].as_array().map(Vec::as_slice).unwrap_or_default();
    check.expect(!slots.is_empty(), || format!("no availability listed: {availability}"));
    let mut listed = 0;
    for s in slots {
        let starts_at = s["slot"]["starts_at"].as_str().unwrap_or("?");
        let live = live_per_slot.get(starts_at).copied().unwrap_or(0);
        listed += live;
        check.expect(s["used"] == live, || {
            format!("slot {starts_at}: used {} but {live} live bookings", s["used"])
        });
    }
    let total: i64 = live_per_slot.values().sum();
    check.expect(listed == total, || format!("{} live bookings outside the listed slots", total - listed));
}

// ---------------------------------------------------------------------------------------------------------
// Photos

struct PhotoWriter {
    resumable: bool,
    instructions: Vec<i64>,
    stored: BTreeMap<String, StoredPhoto>,
    /// Photos whose upload the kill cut off: sent again (resumed) first in the next cycle.
    unanswered: Vec<StoredPhoto>,
    uploads: u64,
    /// Resumable uploads taken up after a restart at an offset above zero: the bytes kept were used.
    resumed: u64,
}

#[derive(Clone)]
struct StoredPhoto {
    bytes: Vec<u8>,
    instruction: i64,
}

/// A small JPEG of random pixels: every one has its own bytes and so its own name.
fn random_jpeg(rng: &mut Rng) -> Vec<u8> {
    let (w, h) = (48 + rng.below(64) as u32, 32 + rng.below(64) as u32);
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        let v = rng.next_u64().to_le_bytes();
        image::Rgb([v[0], v[1], v[2]])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .expect("encode a JPEG");
    out
}

/// How an upload ended.
enum Upload {
    /// Stored (201) or stored before (200, or `complete` at the start): acknowledged.
    Stored,
    /// The request did not get through.
    CutOff,
    /// Any other answer (booked in `seen`).
    Refused,
}

impl PhotoWriter {
    async fn run(&mut self, c: &Clients, stop: &AtomicBool, mut rng: Rng, seen: &mut Seen) {
        let mut retries = std::mem::take(&mut self.unanswered);
        while !stop.load(Ordering::SeqCst) {
            let photo = retries.pop().unwrap_or_else(|| StoredPhoto {
                bytes: random_jpeg(&mut rng),
                instruction: *rng.pick(&self.instructions),
            });
            let sha = sha256_hex(&photo.bytes);
            let upload = if self.resumable {
                self.resumable_upload(&c.officer, &photo, &sha, stop, seen).await
            } else {
                whole_upload(&c.officer, &photo, &sha, stop, seen).await
            };
            match upload {
                Upload::Stored => {
                    self.uploads += 1;
                    self.stored.insert(sha, photo);
                }
                Upload::CutOff => {
                    retries.push(photo);
                    break;
                }
                Upload::Refused => {}
            }
        }
        self.unanswered = retries;
    }

    async fn resumable_upload(
        &mut self,
        api: &Api,
        photo: &StoredPhoto,
        sha: &str,
        stop: &AtomicBool,
        seen: &mut Seen,
    ) -> Upload {
        let size = photo.bytes.len() as u64;
        let start = json!({"instruction_id": photo.instruction, "size": size, "content_type": "image/jpeg"});
        let path = format!("/api/v1/photos/{sha}/uploads");
        let Some((status, started)) = send(api, Method::POST, &path, Some(start), stop, seen).await else {
            return Upload::CutOff;
        };
        if status == 200 && started["complete"] == true {
            return Upload::Stored;
        }
        let (Some(id), Some(mut offset)) = (started["upload_id"].as_str(), started["offset"].as_u64()) else {
            seen.unexpected("start a resumable upload", status, &started);
            return Upload::Refused;
        };
        if offset > 0 {
            self.resumed += 1;
        }
        let chunk = size / 3 + 1;
        while offset < size {
            let end = (offset + chunk).min(size);
            let headers = [
                ("content-type", "application/offset+octet-stream".to_owned()),
                ("upload-offset", offset.to_string()),
            ];
            let piece = photo.bytes[offset as usize..end as usize].to_vec();
            let path = format!("/api/v1/photo-uploads/{id}");
            let (status, headers, body) =
                match api.try_bytes(Method::PATCH, &path, &headers, Some(piece.into())).await {
                    Ok(answer) => answer,
                    Err(e) => {
                        seen.lost_request(stop, &path, &e);
                        return Upload::CutOff;
                    }
                };
            let new_offset = headers.get("upload-offset").and_then(|v| v.to_str().ok()?.parse().ok());
            match new_offset {
                Some(o) if status == 204 && o == end => offset = o,
                _ => {
                    seen.unexpected(&format!("append to upload {id} at {offset}"), status, &json_of(&body));
                    return Upload::Refused;
                }
            }
        }
        let path = format!("/api/v1/photo-uploads/{id}/finish");
        match send(api, Method::POST, &path, Some(json!({})), stop, seen).await {
            None => Upload::CutOff,
            Some((200 | 201, body)) if body["sha256"] == sha => Upload::Stored,
            Some((status, body)) => {
                seen.unexpected(&format!("finish upload {id} of {sha}"), status, &body);
                Upload::Refused
            }
        }
    }

    async fn verify(&self, officer: &Api, check: &mut Check) -> Result<()> {
        for (sha, photo) in &self.stored {
            let (status, headers, bytes) =
                officer.try_bytes(Method::GET, &format!("/api/v1/photos/{sha}"), &[], None).await?;
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
            check.expect(status == 200 && content_type == "image/jpeg", || {
                format!("photo {sha} was acknowledged; reading it answers {status} {content_type}")
            });
            check.expect(status != 200 || bytes == photo.bytes, || {
                format!(
                    "photo {sha}: {} bytes read back differ from the {} uploaded",
                    bytes.len(),
                    photo.bytes.len()
                )
            });
            let path = format!("/api/v1/photos/{sha}/thumbnail");
            let (status, _, thumbnail) = officer.try_bytes(Method::GET, &path, &[], None).await?;
            check.expect(status == 200 && thumbnail.starts_with(&[0xFF, 0xD8]), || {
                format!("photo {sha}: the thumbnail answers {status} {}", json_of(&thumbnail))
            });
        }
        Ok(())
    }
}

async fn whole_upload(
    api: &Api,
    photo: &StoredPhoto,
    sha: &str,
    stop: &AtomicBool,
    seen: &mut Seen,
) -> Upload {
    let path = format!("/api/v1/photos/{sha}?instruction={}", photo.instruction);
    let headers = [("content-type", "image/jpeg".to_owned())];
    match api.try_bytes(Method::PUT, &path, &headers, Some(photo.bytes.clone().into())).await {
        Err(e) => {
            seen.lost_request(stop, &path, &e);
            Upload::CutOff
        }
        Ok((200 | 201, _, body)) if json_of(&body)["sha256"] == sha => Upload::Stored,
        Ok((status, _, body)) => {
            seen.unexpected(&format!("upload {sha}"), status, &json_of(&body));
            Upload::Refused
        }
    }
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

/// Files in the data dir that nothing lists: photo originals placed before a kill stopped their row (an
/// upload of the same bytes lists them), bytes of resumable uploads whose row is gone. Allowed: no reader
/// sees them.
#[derive(Default)]
struct Leftovers {
    originals: u64,
    uploads: u64,
}

/// The names of the files in `dir` (none if it does not exist).
fn file_names(dir: &std::path::Path) -> Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Straight from the data dir: every listed photo's file is complete (its size and hash), every
/// acknowledged photo is linked to its instruction, and SQLite finds its file sound. A photo's row is
/// written only after its file is durable, so a listed photo without its bytes is a half-done write.
fn verify_data_dir(server: &TestServer, photos: &[&PhotoWriter], check: &mut Check) -> Result<Leftovers> {
    let db = rusqlite::Connection::open_with_flags(
        server.data_dir().join("fieldcheck.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    check.expect(integrity == "ok", || format!("SQLite integrity check: {integrity}"));
    let mut listed = db.prepare("SELECT sha256, size FROM photos")?;
    let rows = listed.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut names = std::collections::HashSet::new();
    for row in rows {
        let (sha, size) = row?;
        names.insert(sha.clone());
        let file = server.data_dir().join("photos").join(&sha[..2]).join(&sha[2..4]).join(&sha);
        match std::fs::read(&file) {
            Ok(bytes) => check.expect(bytes.len() as i64 == size && sha256_hex(&bytes) == sha, || {
                format!("photo {sha} is listed but its file is not it ({} of {size} bytes)", bytes.len())
            }),
            Err(e) => check.fail(format!("photo {sha} is listed but its file is unreadable: {e}")),
        }
    }
    let mut links = db.prepare("SELECT 1 FROM photo_links WHERE sha256 = ?1 AND instruction_id = ?2")?;
    for writer in photos {
        for (sha, photo) in &writer.stored {
            let linked = links.exists(rusqlite::params![sha, photo.instruction])?;
            check
                .expect(linked, || format!("photo {sha} is not linked to instruction {}", photo.instruction));
        }
    }

    let mut leftovers = Leftovers::default();
    let originals = server.data_dir().join("photos");
    for a in file_names(&originals)?.into_iter().filter(|n| n.len() == 2) {
        for b in file_names(&originals.join(&a))? {
            let unlisted =
                file_names(&originals.join(&a).join(&b))?.into_iter().filter(|f| !names.contains(f));
            leftovers.originals += unlisted.count() as u64;
        }
    }
    let mut ids = db.prepare("SELECT id FROM photo_uploads")?;
    let uploads: std::collections::HashSet<String> =
        ids.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let unlisted = file_names(&originals.join("uploads"))?.into_iter().filter(|f| !uploads.contains(f));
    leftovers.uploads = unlisted.count() as u64;
    Ok(leftovers)
}

// ---------------------------------------------------------------------------------------------------------
// The handheld

struct HandheldWriter {
    officer: OfficerId,
    records: Vec<HandheldRecord>,
    /// Edit times: any increasing Unix milliseconds do.
    at: i64,
    /// Conversations that settled: the server acknowledged every change made until then.
    settled: u64,
    /// Batch answers with `accepted > 0` (the server stored new changes).
    accepting_batches: u64,
}

/// One record on the handheld: the document, its sync session, and every edit made to it in order.
/// One device writes each record, so its changes form a chain: the server holds a prefix of `edits`.
struct HandheldRecord {
    instruction: i64,
    doc_id: String,
    items: Vec<String>,
    doc: RecordDoc,
    session: SyncSession,
    edits: Vec<Edit>,
    /// How many of `edits` the server has acknowledged (always a prefix).
    acknowledged: usize,
    /// How many of `edits` the server held at the last check.
    held: usize,
}

struct Edit {
    hash: ChangeHash,
    item: String,
    value: EditValue,
}

enum EditValue {
    Note(String),
    Result(CheckResult),
}

/// Why a sync conversation stopped short.
enum SyncStop {
    CutOff(reqwest::Error),
    Refused(String),
}

/// Syncs one record with the server through the batch endpoint until neither side has anything to say.
/// Answers `(settled, changes the server accepted)`; settled means the server answered and its last reply
/// showed it holds every change of `doc` (`generate` has nothing more to send only when the heads the
/// server last named are the document's).
async fn sync_record(
    api: &Api,
    doc_id: &str,
    doc: &mut RecordDoc,
    session: &mut SyncSession,
) -> Result<(bool, usize), SyncStop> {
    let mut next = session.generate(doc);
    let (mut answered, mut accepted) = (false, 0);
    for _ in 0..10 {
        let Some(message) = next else { return Ok((answered, accepted)) };
        let request = SyncRequest {
            v: batch::VERSION,
            messages: vec![DocMessage { doc: doc_id.to_owned(), data: Bytes(message) }],
            pending: None,
        };
        let headers = [("content-type", batch::CONTENT_TYPE.to_owned())];
        let (status, _, body) = api
            .try_bytes(Method::POST, "/api/v1/sync", &headers, Some(batch::encode(&request).into()))
            .await
            .map_err(SyncStop::CutOff)?;
        if status != 200 {
            return Err(SyncStop::Refused(format!("HTTP {status} {}", json_of(&body))));
        }
        let response: SyncResponse =
            batch::decode(&body).map_err(|e| SyncStop::Refused(format!("unreadable answer: {e}")))?;
        let Some(result) = response.results.into_iter().next() else {
            return Err(SyncStop::Refused("an answer without a result".into()));
        };
        if let Some(e) = result.error {
            return Err(SyncStop::Refused(format!("{}: {}", e.code, e.message)));
        }
        accepted += result.accepted;
        // The server always answers a message; without a reply nothing tells what it holds.
        let Some(reply) = result.data else { return Ok((false, accepted)) };
        next = session
            .receive(doc, &reply.0, &Rules::TrustServer)
            .map_err(|r| SyncStop::Refused(format!("the server's reply was refused: {r}")))?
            .reply;
        answered = true;
    }
    Err(SyncStop::Refused("the sync did not settle in 10 rounds".into()))
}

impl HandheldWriter {
    async fn run(&mut self, c: &Clients, stop: &AtomicBool, mut rng: Rng, cycle: u64, seen: &mut Seen) {
        // The last cycle's conversations were cut off: continue from what both sides are known to share.
        for record in &mut self.records {
            record.session = SyncSession::resume(&record.session.persist()).expect("a state just persisted");
        }
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let r = rng.below(self.records.len() as u64) as usize;
            for _ in 0..1 + rng.below(3) {
                n += 1;
                self.at += 1;
                let stamp = Stamp { by: self.officer.clone(), at: self.at };
                let record = &mut self.records[r];
                let item = rng.pick(&record.items).clone();
                let value = if rng.chance(75) {
                    EditValue::Note(format!("c{cycle} n{n}"))
                } else {
                    EditValue::Result(*rng.pick(&[
                        CheckResult::Pass,
                        CheckResult::Fail,
                        CheckResult::NotApplicable,
                    ]))
                };
                let edited = match &value {
                    EditValue::Note(note) => record.doc.set_check_note(&item, note, &stamp),
                    EditValue::Result(result) => record.doc.set_check_result(&item, *result, &stamp),
                };
                edited.expect("RecordDoc takes a well-formed edit");
                let heads = record.doc.heads();
                assert_eq!(heads.len(), 1, "a local edit on a synced record leaves one head");
                record.edits.push(Edit { hash: heads[0], item, value });
            }
            let record = &mut self.records[r];
            match sync_record(&c.device, &record.doc_id, &mut record.doc, &mut record.session).await {
                Ok((settled, accepted)) => {
                    if accepted > 0 {
                        self.accepting_batches += 1;
                    }
                    if settled {
                        self.settled += 1;
                        record.acknowledged = record.edits.len();
                    }
                }
                Err(SyncStop::CutOff(e)) => {
                    seen.lost_request(stop, "/api/v1/sync", &e);
                    return;
                }
                Err(SyncStop::Refused(why)) => {
                    seen.unexpected.push(format!("sync of record {}: {why}", record.doc_id));
                    record.session =
                        SyncSession::resume(&record.session.persist()).expect("a state just persisted");
                }
            }
        }
    }

    fn acknowledged(&self) -> u64 {
        self.records.iter().map(|r| r.acknowledged as u64).sum()
    }

    /// Reads every record back from scratch on the verifier handheld and checks it against the edits:
    /// the server holds a prefix of them that includes every acknowledged one, its heads are that
    /// prefix's last change, each check shows the last note and result of the prefix, and the
    /// supervisor's record view agrees. Answers how many changes the server held, seen for the first
    /// time, that were never acknowledged.
    async fn verify(&mut self, c: &Clients, verifier: &automerge::ActorId, check: &mut Check) -> Result<u64> {
        let mut unacknowledged = 0;
        for record in &mut self.records {
            let mut replica = RecordDoc::replica(verifier.clone());
            let mut session = SyncSession::new();
            match sync_record(&c.verifier, &record.doc_id, &mut replica, &mut session).await {
                Ok((true, _)) => {}
                Ok((false, _)) => bail!("reading record {} back did not settle", record.doc_id),
                Err(SyncStop::CutOff(e)) => bail!("reading record {} back: {e}", record.doc_id),
                Err(SyncStop::Refused(why)) => bail!("reading record {} back: {why}", record.doc_id),
            }
            let mut held = automerge::AutoCommit::load(&replica.save())?;
            let present: Vec<bool> =
                record.edits.iter().map(|e| held.get_change_by_hash(&e.hash).is_some()).collect();
            let prefix = present.iter().take_while(|p| **p).count();
            let doc = &record.doc_id;
            check.expect(present[prefix..].iter().all(|p| !p), || {
                format!("record {doc}: the server holds changes after a missing one (a hole in the chain)")
            });
            check.expect(prefix >= record.acknowledged, || {
                let missing: Vec<String> =
                    record.edits[prefix..record.acknowledged].iter().map(|e| e.hash.to_string()).collect();
                format!(
                    "record {doc}: {} acknowledged change(s) lost: {}",
                    record.acknowledged - prefix,
                    missing.join(", ")
                )
            });
            unacknowledged += prefix.saturating_sub(record.acknowledged.max(record.held)) as u64;
            record.held = prefix;
            let heads = replica.heads();
            if prefix > 0 {
                let last = record.edits[prefix - 1].hash;
                check.expect(heads == [last], || format!("record {doc}: heads {heads:?}, expected [{last}]"));
            }
            let read = match replica.read() {
                Ok(read) => read,
                Err(e) => {
                    check.fail(format!("record {doc} does not read as a record: {e}"));
                    continue;
                }
            };
            for item in &record.items {
                let mut note = None;
                let mut result = None;
                for edit in record.edits[..prefix].iter().filter(|e| &e.item == item) {
                    match &edit.value {
                        EditValue::Note(n) => note = Some(n.clone()),
                        EditValue::Result(r) => result = Some(*r),
                    }
                }
                let entry = read.checks.get(item);
                check.expect(entry.map(|e| (&e.note, &e.result)) == Some((&note, &result)), || {
                    format!(
                        "record {doc}, check {item}: expected {note:?} {result:?}, the server has {entry:?}"
                    )
                });
            }
            let (status, view) = c
                .supervisor
                .try_send(Method::GET, &format!("/api/v1/instructions/{}/record", record.instruction), None)
                .await?;
            let view_heads: Vec<String> = heads.iter().map(ToString::to_string).collect();
            check.expect(status == 200 && view["heads"] == json!(view_heads), || {
                let seen = &view["heads"];
                format!("record {doc}: the supervisor's view ({status}) has heads {seen}, not {view_heads:?}")
            });
            for item in &record.items {
                let note = read.checks.get(item).and_then(|e| e.note.clone());
                check.expect(view["record"]["checks"][item]["note"] == json!(note), || {
                    format!("record {doc}, check {item}: the supervisor's view disagrees with the sync")
                });
            }
        }
        Ok(unacknowledged)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Checks and figures

/// The verdicts of one run's checks.
#[derive(Default)]
struct Check {
    cycle: u64,
    made: u64,
    failures: Vec<String>,
}

impl Check {
    fn expect(&mut self, ok: bool, failure: impl FnOnce() -> String) {
        self.made += 1;
        if !ok {
            self.failed(failure());
        }
    }

    fn fail(&mut self, failure: String) {
        self.made += 1;
        self.failed(failure);
    }

    fn failed(&mut self, failure: String) {
        let line = format!("cycle {}: {failure}", self.cycle);
        println!("FAIL {line}");
        self.failures.push(line);
    }
}

struct Report {
    cycles: u64,
    seed: u64,
    wall: Duration,
    setup: Duration,
    checks: u64,
    failures: Vec<String>,
    unexpected: Vec<String>,
    cut_off: u64,
    drafts: u64,
    submissions: u64,
    unacknowledged: Unacknowledged,
    requests: u64,
    confirmations: u64,
    cancellations: u64,
    photos_whole: u64,
    photos_resumable: u64,
    photos_resumed: u64,
    changes: u64,
    settled: u64,
    accepting_batches: u64,
    audit: String,
}

impl Report {
    fn print(&self) {
        let acknowledged = self.drafts
            + self.submissions
            + self.requests
            + self.confirmations
            + self.cancellations
            + self.photos_whole
            + self.photos_resumable
            + self.changes;
        let mut out = String::new();
        let _ = writeln!(out, "crash-loop figures (seed {:#018x})", self.seed);
        let _ = writeln!(out, "  cycles (SIGKILL + restart)      {}", self.cycles);
        let _ =
            writeln!(out, "  wall time                       {:.1?} (setup {:.1?})", self.wall, self.setup);
        let _ = writeln!(out, "  acknowledged writes             {acknowledged}");
        let _ = writeln!(
            out,
            "    applications                  {} drafts, {} submissions",
            self.drafts, self.submissions
        );
        let _ = writeln!(
            out,
            "    bookings                      {} requests, {} confirmations, {} cancellations",
            self.requests, self.confirmations, self.cancellations
        );
        let _ = writeln!(
            out,
            "    photos                        {} whole, {} resumable ({} resumed from kept bytes)",
            self.photos_whole, self.photos_resumable, self.photos_resumed
        );
        let _ = writeln!(
            out,
            "    record changes (sync)         {} in {} settled syncs ({} batches with accepted > 0)",
            self.changes, self.settled, self.accepting_batches
        );
        let _ = writeln!(out, "  requests cut off by the kills   {}", self.cut_off);
        let _ = writeln!(
            out,
            "  committed, answer cut off       {} applications, {} bookings, {} record changes (allowed)",
            self.unacknowledged.applications, self.unacknowledged.bookings, self.unacknowledged.changes
        );
        let _ = writeln!(
            out,
            "  files no row lists (at the end) {} photo originals, {} upload bytes (allowed)",
            self.unacknowledged.leftovers.originals, self.unacknowledged.leftovers.uploads
        );
        let _ = writeln!(out, "  checks made after restarts      {}", self.checks);
        let _ = writeln!(out, "  audit (fieldcheck admin)        {}", self.audit);
        let _ = writeln!(out, "  unexpected answers              {}", self.unexpected.len());
        let _ = writeln!(out, "  lost or corrupt (failures)      {}", self.failures.len());
        for line in self.unexpected.iter().chain(&self.failures).take(50) {
            let _ = writeln!(out, "    {line}");
        }
        print!("{out}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// The loop

struct Setup {
    tokens: Tokens,
    writers: Vec<Writer>,
    verifier_actor: automerge::ActorId,
}

async fn login(server: &TestServer, username: &str, device: Option<&str>) -> Result<String> {
    let body = json!({"username": username, "password": "demo-password", "device_id": device});
    let (status, answer) = server.api().post("/api/v1/auth/login", body).await;
    ensure!(status == 200, "login {username}: {status} {answer}");
    Ok(answer["access_token"].as_str().context("access token")?.to_owned())
}

/// Instructions to book and to inspect, the logins, and officer1's handheld holding its records.
async fn set_up(server: &TestServer) -> Result<Setup> {
    server.set_clock(MONDAY).await;
    let mut tokens = Tokens {
        enterprise: login(server, "ent1-operator", None).await?,
        supervisor: login(server, "supervisor1", None).await?,
        officer: login(server, "officer1", None).await?,
        admin: login(server, "admin", None).await?,
        device: login(server, "officer1", Some("demo-handheld-officer1")).await?,
        verifier: String::new(),
    };
    let c = Clients::of(server, &tokens);
    let instructions = issue_instructions(server, &c.enterprise, BOOKING_POOL + ASSIGNED).await;
    let (assigned, pool) = instructions.split_at(ASSIGNED);

    let (status, me) = c.officer.get("/api/v1/me").await;
    ensure!(status == 200, "me: {me}");
    let officer_id = me["user"]["id"].as_i64().context("officer1's id")?;
    let mut records = Vec::new();
    let (_, devices) = c.device.get("/api/v1/devices").await;
    let actor = devices
        .as_array()
        .context("devices")?
        .iter()
        .find(|d| d["id"] == "demo-handheld-officer1")
        .and_then(|d| d["actor_id"].as_str())
        .context("the demo handheld's actor")?
        .parse::<automerge::ActorId>()?;
    for id in assigned {
        let (status, body) = c
            .supervisor
            .post(&format!("/api/v1/instructions/{id}/assign"), json!({"officer_ids": [officer_id]}))
            .await;
        ensure!(status == 200, "assign {id}: {body}");
        let (_, view) = c.supervisor.get(&format!("/api/v1/instructions/{id}/record")).await;
        let doc_id = view["record_doc"].as_str().context("record doc")?.to_owned();
        let (_, instruction) = c.supervisor.get(&format!("/api/v1/instructions/{id}")).await;
        let items = instruction["checklist"]
            .as_array()
            .context("checklist")?
            .iter()
            .filter_map(|i| i["item_id"].as_str().map(str::to_owned))
            .collect();
        let mut record = HandheldRecord {
            instruction: *id,
            doc_id,
            items,
            doc: RecordDoc::replica(actor.clone()),
            session: SyncSession::new(),
            edits: Vec::new(),
            acknowledged: 0,
            held: 0,
        };
        match sync_record(&c.device, &record.doc_id, &mut record.doc, &mut record.session).await {
            Ok((true, _)) => {}
            _ => bail!("the handheld's first sync of record {} failed", record.doc_id),
        }
        records.push(record);
    }

    let (status, verifier) = c.officer.post("/api/v1/devices", json!({"name": "crash-loop verifier"})).await;
    ensure!(status == 201, "register the verifier handheld: {verifier}");
    let verifier_id = verifier["id"].as_str().context("device id")?;
    tokens.verifier = login(server, "officer1", Some(verifier_id)).await?;
    let verifier_actor = verifier["actor_id"].as_str().context("actor id")?.parse()?;

    let half = pool.len() / 2;
    let mut writers = vec![
        Writer::Applications(ApplicationWriter::new("a")),
        Writer::Applications(ApplicationWriter::new("b")),
        Writer::Bookings(BookingWriter::new(pool[..half].to_vec())),
        Writer::Bookings(BookingWriter::new(pool[half..].to_vec())),
    ];
    for resumable in [false, true] {
        writers.push(Writer::Photos(PhotoWriter {
            resumable,
            instructions: assigned.to_vec(),
            stored: BTreeMap::new(),
            unanswered: Vec::new(),
            uploads: 0,
            resumed: 0,
        }));
    }
    writers.push(Writer::Handheld(HandheldWriter {
        officer: OfficerId::parse("officer1").map_err(|e| anyhow::anyhow!("{e}"))?,
        records,
        at: MONDAY * 1000,
        settled: 0,
        accepting_batches: 0,
    }));
    Ok(Setup { tokens, writers, verifier_actor })
}

/// Every list page of `path` (which takes `limit` and `offset`).
async fn all_pages(api: &Api, path: &str) -> Result<Vec<Value>> {
    let mut all = Vec::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, page) =
            api.try_send(Method::GET, &format!("{path}{sep}limit=500&offset={}", all.len()), None).await?;
        let page =
            page.as_array().filter(|_| status == 200).with_context(|| format!("{path}: {status} {page}"))?;
        all.extend(page.iter().cloned());
        if page.len() < 500 {
            return Ok(all);
        }
    }
}

fn by_id(list: Vec<Value>) -> HashMap<i64, Value> {
    list.into_iter().filter_map(|v| Some((v["id"].as_i64()?, v))).collect()
}

/// The last audit entry seen at a check. The chain's hashes cannot show entries missing at its end, so the
/// entry seen last must still be there, unchanged, at the next check.
struct AuditTail {
    seq: i64,
    hash: String,
}

/// Checks the previous tail (if any) and answers the new one.
async fn verify_audit_tail(
    admin: &Api,
    tail: Option<AuditTail>,
    check: &mut Check,
) -> Result<Option<AuditTail>> {
    let mut after = tail.as_ref().map_or(0, |t| t.seq - 1);
    let mut last_seen = None;
    loop {
        let path = format!("/api/v1/admin/audit?after={after}&limit=1000");
        let (status, page) = admin.try_send(Method::GET, &path, None).await?;
        let page = page.as_array().filter(|_| status == 200).with_context(|| format!("{path}: {status}"))?;
        if let (Some(t), None) = (&tail, &last_seen) {
            let first = page.first();
            check.expect(first.is_some_and(|e| e["seq"] == t.seq && e["hash"] == t.hash.as_str()), || {
                format!("audit entry {} seen at the last check is gone or changed: {first:?}", t.seq)
            });
        }
        if let Some(last) = page.last() {
            let seq = last["seq"].as_i64().context("audit seq")?;
            let hash = last["hash"].as_str().context("audit hash")?.to_owned();
            after = seq;
            last_seen = Some(AuditTail { seq, hash });
        }
        if page.len() < 1000 {
            return Ok(last_seen.or(tail));
        }
    }
}

/// What a check found beyond the acknowledged writes; all of it allowed.
#[derive(Default)]
struct Unacknowledged {
    /// Applications listed that no answer acknowledged (the setup's aside): the kill cut off their answer.
    applications: u64,
    /// Bookings first seen at this check, whose request's answer the kill cut off.
    bookings: u64,
    /// Record changes first seen at this check that no settled sync acknowledged.
    changes: u64,
    leftovers: Leftovers,
}

/// Everything checked after a restart.
async fn verify(
    server: &TestServer,
    c: &Clients,
    writers: &mut [Writer],
    setup_actor: &automerge::ActorId,
    check: &mut Check,
    audit_tail: &mut Option<AuditTail>,
) -> Result<Unacknowledged> {
    let applications = by_id(all_pages(&c.enterprise, "/api/v1/applications").await?);
    let bookings = by_id(all_pages(&c.enterprise, "/api/v1/bookings").await?);
    let window = format!(
        "/api/v1/sites/{SITE}/availability?from={}&to={}",
        local_date(BOOKING_DAYS.0),
        local_date(BOOKING_DAYS.1)
    );
    let (status, availability) = c.enterprise.try_send(Method::GET, &window, None).await?;
    ensure!(status == 200, "availability: {status} {availability}");
    verify_serials(&applications, check);
    verify_slot_usage(&bookings, &availability, check);

    let mut found = Unacknowledged::default();
    // Applications in the list beyond the acknowledged ones and the setup's committed unanswered.
    let mut known_applications = (BOOKING_POOL + ASSIGNED) as u64;
    for writer in writers.iter_mut() {
        match writer {
            Writer::Applications(w) => {
                w.verify(&applications, check);
                known_applications += w.filed.len() as u64;
            }
            Writer::Bookings(w) => {
                w.verify(&bookings, check);
                found.bookings += w.reconcile(&bookings);
            }
            Writer::Photos(w) => w.verify(&c.officer, check).await?,
            Writer::Handheld(w) => found.changes += w.verify(c, setup_actor, check).await?,
        }
    }
    found.applications = (applications.len() as u64).saturating_sub(known_applications);
    let photos: Vec<&PhotoWriter> =
        writers.iter().filter_map(|w| if let Writer::Photos(p) = w { Some(p) } else { None }).collect();
    found.leftovers = verify_data_dir(server, &photos, check)?;

    let (status, report) = c.admin.try_send(Method::GET, "/api/v1/admin/audit/verify", None).await?;
    check.expect(status == 200 && report["first_broken"].is_null(), || {
        format!("audit chain: {status} {report}")
    });
    *audit_tail = verify_audit_tail(&c.admin, audit_tail.take(), check).await?;
    Ok(found)
}

async fn crash_loop(server: &mut TestServer, cycles: u64, seed: u64) -> Result<Report> {
    let started = Instant::now();
    let Setup { tokens, mut writers, verifier_actor } = set_up(server).await?;
    let setup = started.elapsed();
    println!("setup: {BOOKING_POOL} instructions to book, {ASSIGNED} assigned to officer1, in {setup:.1?}");
    let mut check = Check::default();
    let (mut unexpected, mut cut_off) = (Vec::new(), 0);
    let mut unacknowledged = Unacknowledged::default();
    let mut audit_tail = None;
    for cycle in 1..=cycles {
        check.cycle = cycle;
        let mut rng = Rng::stream(seed, cycle, 0);
        let load = Duration::from_millis(LOAD_MS.0 + rng.below(LOAD_MS.1 - LOAD_MS.0));
        let c = Clients::of(server, &tokens);
        let stop = Arc::new(AtomicBool::new(false));
        let mut running = JoinSet::new();
        for (n, writer) in writers.drain(..).enumerate() {
            let (c, stop) = (c.clone(), stop.clone());
            let rng = Rng::stream(seed, cycle, n as u64 + 1);
            running.spawn(async move { (n, writer.run(c, stop, rng, cycle).await) });
        }
        // The load runs for a random time; then the process dies with whatever it was doing.
        tokio::time::sleep(load).await;
        stop.store(true, Ordering::SeqCst);
        tokio::task::block_in_place(|| server.kill());
        let mut back = tokio::time::timeout(WRITERS_GUARD, running.join_all())
            .await
            .context("writers did not stop after the kill")?;
        back.sort_by_key(|(n, _)| *n);
        let mut cycle_cut_off = 0;
        for (_, (writer, seen)) in back {
            writers.push(writer);
            cycle_cut_off += seen.cut_off;
            unexpected.extend(seen.unexpected.into_iter().map(|u| format!("cycle {cycle}: {u}")));
        }
        cut_off += cycle_cut_off;

        tokio::task::block_in_place(|| server.restart());
        server.set_clock(MONDAY).await;
        let c = Clients::of(server, &tokens);
        let failures_before = check.failures.len();
        let found = verify(server, &c, &mut writers, &verifier_actor, &mut check, &mut audit_tail).await?;
        unacknowledged = Unacknowledged {
            applications: found.applications,
            bookings: unacknowledged.bookings + found.bookings,
            changes: unacknowledged.changes + found.changes,
            leftovers: found.leftovers,
        };
        println!(
            "cycle {cycle:>3}: load {:>4} ms, {cycle_cut_off} requests cut off, {} checks, {} new failures",
            load.as_millis(),
            check.made,
            check.failures.len() - failures_before
        );
    }

    ensure!(server.stop().success(), "the server did not stop cleanly on SIGTERM");
    let out = server.cli(&["admin", "verify-audit"]);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    check.expect(out.status.success(), || {
        format!("fieldcheck admin verify-audit: {stdout} {}", String::from_utf8_lossy(&out.stderr))
    });

    let mut report = Report {
        cycles,
        seed,
        wall: started.elapsed(),
        setup,
        checks: check.made,
        failures: check.failures,
        unexpected,
        cut_off,
        drafts: 0,
        submissions: 0,
        unacknowledged,
        requests: 0,
        confirmations: 0,
        cancellations: 0,
        photos_whole: 0,
        photos_resumable: 0,
        photos_resumed: 0,
        changes: 0,
        settled: 0,
        accepting_batches: 0,
        audit: stdout,
    };
    for writer in &writers {
        match writer {
            Writer::Applications(w) => {
                report.drafts += w.drafts;
                report.submissions += w.submissions;
            }
            Writer::Bookings(w) => {
                report.requests += w.requests;
                report.confirmations += w.confirmations;
                report.cancellations += w.cancellations;
            }
            Writer::Photos(w) if w.resumable => {
                report.photos_resumable += w.uploads;
                report.photos_resumed += w.resumed;
            }
            Writer::Photos(w) => report.photos_whole += w.uploads,
            Writer::Handheld(w) => {
                report.changes += w.acknowledged();
                report.settled += w.settled;
                report.accepting_batches += w.accepting_batches;
            }
        }
    }
    Ok(report)
}
