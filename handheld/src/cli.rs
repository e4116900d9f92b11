//! The `handheld` command line: readable output for an officer at a terminal, `--json` for scripts.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use fieldcheck_sync::{
    RecordDoc, open_conflicts,
    schema::{
        CheckResult, Disposal, Location, Measurement, OfficerId, PhotoHash, PhotoRef, Sample, SampleId,
        SitePosition, Stamp, Verdict,
    },
};

use crate::{Doc, client::Client, load, store::Store};

#[derive(Parser, Debug)]
#[command(name = "handheld", about = "fieldcheck handheld: inspect offline, sync when a network appears")]
pub struct Cli {
    /// Where the local store lives.
    #[arg(long, env = "HANDHELD_DIR", default_value = "handheld-data", global = true)]
    pub dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Attempts per request on network errors (exponential backoff between them).
    #[arg(long, default_value_t = 5, global = true)]
    pub attempts: u32,
    /// Talk to this server from now on (e.g. after it moved); stored for later commands.
    #[arg(long = "use-server", global = true)]
    pub use_server: Option<String>,
    /// Trust the private CA in this PEM file for an https:// server whose certificate a public CA did not
    /// sign (e.g. the customs network's own CA); kept in the store for later commands.
    #[arg(long, env = "HANDHELD_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Registers this device for an officer and logs in with it.
    Register {
        /// The server's address with its scheme, e.g. https://fieldcheck.customs.example.
        #[arg(long)]
        server: String,
        /// Your fieldcheck username (an officer account).
        #[arg(long)]
        username: String,
        /// Your password (better given as the HANDHELD_PASSWORD environment variable).
        #[arg(long, env = "HANDHELD_PASSWORD")]
        password: String,
        /// A name the officer recognises.
        #[arg(long, default_value = "handheld")]
        name: String,
        /// Use a device already registered to this officer (e.g. `demo-handheld-officer1`).
        #[arg(long)]
        device_id: Option<String>,
        /// When the store belongs to another officer: drop that officer's unsynced edits and photos
        /// (without it, registering is refused until they are synced).
        #[arg(long)]
        discard: bool,
    },
    /// Logs in again with the registered device (e.g. after the refresh token expired).
    Login {
        /// Your password (better given as the HANDHELD_PASSWORD environment variable).
        #[arg(long, env = "HANDHELD_PASSWORD")]
        password: String,
    },
    /// Syncs the assignment index, then every assigned record.
    Sync {
        /// How the documents travel: `batch` (HTTP requests) or `ws` (automerge-repo's WebSocket
        /// protocol). Either works after the other; photos always go over HTTP.
        #[arg(long, value_enum, env = "HANDHELD_TRANSPORT", default_value_t = crate::transport::Kind::Batch)]
        transport: crate::transport::Kind,
    },
    /// Syncs over the WebSocket, then stays connected: colleagues' edits and supervisors' decisions
    /// arrive as they are stored, new assignments with their records, and edits made here (in another
    /// terminal) go out within a second. Prints a line per event; stops at Ctrl-C or a limit below.
    /// Photos still go with `handheld sync`.
    Watch {
        /// Stop after this many seconds.
        #[arg(long = "for", value_name = "SECS")]
        for_secs: Option<u64>,
        /// Stop after this many changes (received, newly assigned or sent).
        #[arg(long)]
        changes: Option<usize>,
    },
    /// Assigned instructions.
    List {
        /// Also the records no longer assigned (cancelled or reassigned), with the work kept here unsent.
        #[arg(long)]
        all: bool,
    },
    /// One record, as this device holds it.
    Show {
        /// The instruction's number, as `list` shows it.
        instruction: String,
    },
    /// Edits not yet acknowledged by the server, photos not uploaded, last sync.
    Status,
    /// Sets a check item's result.
    Check {
        /// The instruction's number, as `list` shows it.
        instruction: String,
        /// The check item's id, as `show` lists it.
        item: String,
        /// What you found.
        result: ResultArg,
    },
    /// Records a measurement for a check item.
    #[command(allow_negative_numbers = true)]
    Measure {
        /// The instruction's number, as `list` shows it.
        instruction: String,
        /// The check item's id, as `show` lists it.
        item: String,
        /// The reading, e.g. -18.5.
        value: f64,
        /// Its unit, as the check item names it (e.g. °C).
        unit: String,
    },
    /// Adds a note to the record (an entry with your name and the time), or with --item sets that check
    /// item's note.
    Note {
        /// The instruction's number, as `list` shows it.
        instruction: String,
        /// The note.
        text: String,
        /// Set this check item's note instead of adding a record note.
        #[arg(long)]
        item: Option<String>,
    },
    /// Attaches a photo (JPEG, PNG or WebP): stores its SHA-256 and metadata in the record, queues the
    /// bytes for upload.
    Attach {
        /// The instruction's number, as `list` shows it.
        instruction: String,
        /// The photo file.
        file: PathBuf,
        /// What the photo shows.
        #[arg(long)]
        caption: String,
        /// The check item the photo is evidence for.
        #[arg(long)]
        item: Option<String>,
        /// Where it was taken (degrees), when the photo carries no position.
        #[arg(long, requires = "lon")]
        lat: Option<f64>,
        /// Where it was taken (degrees), when the photo carries no position.
        #[arg(long, requires = "lat")]
        lon: Option<f64>,
        /// Warn when the photo's EXIF capture time is more than this many hours before now (an old photo
        /// is weak evidence of today's inspection).
        #[arg(long, default_value_t = 24)]
        stale_after_hours: u32,
    },
    /// Withdraws a photo from the record (wrong or unusable): kept in the history, no longer awaited.
    Withdraw {
        /// The instruction's number, as `list` shows it.
        instruction: String,
        /// The photo's SHA-256, as `show` lists it (a unique prefix of at least 8 digits will do).
        photo: String,
    },
    /// Records a sample taken.
    Sample {
        /// The instruction's number, as `list` shows it.
        instruction: String,
        /// The sample's id (on its label).
        id: String,
        /// What was taken and from where.
        #[arg(long)]
        description: String,
        /// How much.
        #[arg(long)]
        quantity: f64,
        /// The unit of the quantity.
        #[arg(long)]
        unit: String,
        /// The seal number on the sample bag.
        #[arg(long)]
        seal: String,
    },
    /// Sets the verdict.
    Verdict {
        /// The instruction's number, as `list` shows it.
        instruction: String,
        /// Conforming or non-conforming goods.
        value: VerdictArg,
        /// What happens to non-conforming goods (required with non_conforming).
        #[arg(long)]
        disposal: Option<DisposalArg>,
    },
    /// Signs the record's current content (any later change to results, measurements, samples, photos
    /// or the verdict voids the signature).
    Sign {
        /// The instruction's number, as `list` shows it.
        instruction: String,
        /// What you confirm, in your words.
        statement: String,
    },
    /// Marks the inspection complete and signs its current content (with --undo: withdraws the mark).
    /// The result is submitted once every assigned officer has signed the same content.
    Complete {
        /// The instruction's number, as `list` shows it.
        instruction: String,
        /// Withdraw the mark instead.
        #[arg(long)]
        undo: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ResultArg {
    Pass,
    Fail,
    #[value(name = "not_applicable")]
    NotApplicable,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum VerdictArg {
    Conforming,
    #[value(name = "non_conforming")]
    NonConforming,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DisposalArg {
    #[value(name = "technical_treatment")]
    TechnicalTreatment,
    Return,
    Destruction,
}

/// What `complete` signs with.
const COMPLETION_STATEMENT: &str = "I inspected the goods and confirm this record.";

/// The photo formats the server's photo store takes, told by their first bytes.
fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some("jpeg"),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some("png"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("webp"),
        _ => None,
    }
}

/// A unix-ms instant as the device's local date and time (the zone the officer's clock shows).
/// The instant of an EXIF capture time (`YYYY-MM-DDTHH:MM:SS`, with `±HH:MM` when the camera recorded its
/// zone). Without a zone it is read as this device's local time: the camera and the handheld are in the
/// officer's hand at the same place.
fn capture_instant(captured_at: &str) -> Result<i64> {
    let instant = match captured_at.parse::<jiff::Timestamp>() {
        Ok(t) => t,
        Err(_) => captured_at
            .parse::<jiff::civil::DateTime>()
            .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::system()))
            .map(|z| z.timestamp())
            .map_err(|e| anyhow::anyhow!("the EXIF capture time {captured_at} is not a time: {e}"))?,
    };
    Ok(instant.as_millisecond())
}

/// What is odd about a photo taken at `taken_at` and attached at `now`, in words for the officer.
fn capture_warnings(taken_at: i64, now: i64, stale_after_hours: u32) -> Vec<String> {
    const CLOCK_SLACK_MS: i64 = 10 * 60_000;
    let hours_before = (now - taken_at) / 3_600_000;
    let mut warnings = Vec::new();
    if now - taken_at > i64::from(stale_after_hours) * 3_600_000 {
        warnings.push(format!(
            "taken {} ({hours_before} hours ago), long before this inspection; attach a photo taken now, or say \
             in the caption why this one serves",
            local_time(taken_at)
        ));
    }
    if taken_at - now > CLOCK_SLACK_MS {
        warnings.push(format!(
            "taken {} by the camera's clock, which is in the future; check the camera's date and time",
            local_time(taken_at)
        ));
    }
    warnings
}

/// The warning for a photo taken farther from the site than the site's radius, when both positions are
/// known (a record from before site positions, or a photo without one, cannot be checked).
fn site_warning(site: Option<&SitePosition>, taken: Option<&Location>) -> Option<String> {
    let (site, taken) = (site?, taken?);
    let metres = site.distance_m(taken.lat, taken.lon);
    (metres > site.radius()).then(|| {
        format!(
            "taken {} from the site ({:.5}, {:.5}; more than {:.0} m away counts as elsewhere); check that \
             this is the right place, or say in the caption why the photo was taken there",
            distance_words(metres),
            site.latitude,
            site.longitude,
            site.radius()
        )
    })
}

/// A distance as an officer reads it: metres up to 10 km, then kilometres.
fn distance_words(metres: f64) -> String {
    if metres < 10_000.0 {
        format!("{metres:.0} m")
    } else {
        format!("{:.1} km ({metres:.0} m)", metres / 1000.0)
    }
}

fn local_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned(jiff::tz::TimeZone::system()).strftime("%Y-%m-%d %H:%M %Z").to_string(),
        Err(_) => format!("{ms} (unix ms)"),
    }
}

fn slot_words(slot: Option<&fieldcheck_sync::schema::Slot>) -> String {
    match slot {
        Some(s) => format!("{} to {}", local_time(s.starts_at), local_time(s.ends_at)),
        None => "not booked yet".into(),
    }
}

/// The verdict as an officer would say it, e.g. `non-conforming, disposal: technical treatment`.
fn verdict_words(v: &Verdict) -> String {
    match v {
        Verdict::Conforming => "conforming".into(),
        Verdict::NonConforming { disposal } => {
            format!("non-conforming, disposal: {}", disposal.as_str().replace('_', " "))
        }
    }
}

/// Instruction ids are numbers on the server; the store keeps them as text.
fn numeric_id(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| Value::from(id), Value::from)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the command line; the binary's `main`.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    // One command at a time per store: an edit must not land while a sync holds the same document in
    // memory, or the sync's save would drop it. The OS releases the lock if the process dies.
    std::fs::create_dir_all(&cli.dir).with_context(|| format!("creating {}", cli.dir.display()))?;
    let lock = std::fs::File::create(cli.dir.join("lock")).context("lock file")?;
    lock.lock().context("locking the store")?;
    let store = Store::open(&cli.dir)?;
    if let Some(server) = &cli.use_server {
        store.set("server", server)?;
    }
    if let Some(path) = &cli.ca_file {
        let pem = read_ca_file(path)?;
        store.set("private_ca", &pem)?;
    }
    let out = run(&cli, &store, &lock)?;
    if cli.json && matches!(cli.command, Command::Watch { .. }) {
        // A watch prints JSON lines: its events, then this.
        println!("{}", serde_json::to_string(&out.json)?);
    } else if cli.json {
        println!("{}", serde_json::to_string_pretty(&out.json)?);
    } else {
        println!("{}", out.text);
    }
    if out.refused > 0 {
        // Scripts must be able to tell: the report above says what was refused and why.
        eprintln!(
            "{} document(s) or photo(s) refused (by the server, or unreadable here); see the report",
            out.refused
        );
        std::process::exit(REFUSED_EXIT_CODE);
    }
    if out.stranded > 0 {
        eprintln!(
            "{} record(s) hold work that was not sent: their instruction was cancelled or reassigned; \
             see the report and `handheld list --all`",
            out.stranded
        );
        std::process::exit(STRANDED_EXIT_CODE);
    }
    Ok(())
}

/// The exit status of a `sync` that completed but had documents or photos refused — by the server, or a
/// photo file unreadable on the handheld (an error is 1).
pub const REFUSED_EXIT_CODE: i32 = 2;

/// The exit status of a `sync` that completed with nothing refused, but with edits or photos kept on the
/// device unsent because their instruction was cancelled or reassigned meanwhile.
pub const STRANDED_EXIT_CODE: i32 = 3;

/// One stranded record in words: which record, how much, why, and that nothing was lost.
fn stranded_words(s: &crate::Stranded) -> String {
    let why = match s.reason {
        "cancelled" => "the instruction was cancelled",
        _ => "the instruction is no longer assigned to you",
    };
    format!(
        "NOT SENT: instruction {} ({}): {} change(s) and {} photo(s) — {why}; they are kept on this device \
         and were not sent (`handheld list --all`, `handheld show {}`)",
        s.instruction_id.as_deref().unwrap_or("?"),
        s.inspection_no.as_deref().unwrap_or("not downloaded"),
        s.edits,
        s.photos,
        s.instruction_id.as_deref().unwrap_or("?"),
    )
}

struct Output {
    text: String,
    json: Value,
    /// How many documents and photos the server refused: non-zero makes the exit status non-zero.
    refused: usize,
    /// How many records hold work a sync could not send (cancelled or reassigned): exit status 3.
    stranded: usize,
}

impl Output {
    fn new(text: String, json: Value) -> Self {
        Self { text, json, refused: 0, stranded: 0 }
    }
}

/// A CA file is a few kB; anything much larger is not one.
const MAX_CA_FILE_BYTES: u64 = 1 << 20;

fn read_ca_file(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let mut pem = String::new();
    std::fs::File::open(path)
        .with_context(|| format!("opening the CA file {}", path.display()))?
        .take(MAX_CA_FILE_BYTES + 1)
        .read_to_string(&mut pem)
        .with_context(|| format!("reading the CA file {}", path.display()))?;
    anyhow::ensure!(pem.len() as u64 <= MAX_CA_FILE_BYTES, "{} is too large for a CA file", path.display());
    crate::client::private_ca_certificates(&pem).with_context(|| path.display().to_string())?;
    Ok(pem)
}

fn new_client(store: &Store, server: &str, attempts: u32) -> Result<Client> {
    Client::new(server, attempts, store.setting("private_ca")?.as_deref())
}

fn client(store: &Store, attempts: u32) -> Result<Client> {
    let mut client = new_client(store, &store.require("server")?, attempts)?;
    client.access_token = store.setting("access_token")?;
    client.refresh_token = store.setting("refresh_token")?;
    Ok(client)
}

pub(crate) fn keep_tokens(store: &Store, client: &Client) -> Result<()> {
    if let Some(t) = &client.access_token {
        store.set("access_token", t)?;
    }
    if let Some(t) = &client.refresh_token {
        store.set("refresh_token", t)?;
    }
    Ok(())
}

fn run(cli: &Cli, store: &Store, lock: &std::fs::File) -> Result<Output> {
    let now = now_ms();
    match &cli.command {
        Command::Register { server, username, password, name, device_id, discard } => {
            let mut client = new_client(store, server, cli.attempts)?;
            let (device_id, actor_id) = crate::register(
                store,
                &mut client,
                username,
                password,
                name,
                device_id.as_deref(),
                *discard,
            )?;
            Ok(Output::new(
                format!("registered device {device_id} for {username} (actor {actor_id})"),
                json!({"device_id": device_id, "actor_id": actor_id, "username": username}),
            ))
        }
        Command::Login { password } => {
            let mut client = new_client(store, &store.require("server")?, cli.attempts)?;
            let username = store.require("username")?;
            client.login(&username, password, Some(&store.require("device_id")?))?;
            keep_tokens(store, &client)?;
            Ok(Output::new(format!("logged in as {username}"), json!({"username": username})))
        }
        Command::Sync { transport } => {
            let mut client = client(store, cli.attempts)?;
            let result = crate::sync(store, &mut client, *transport, now);
            keep_tokens(store, &client)?;
            let report = result?;
            let mut text = format!(
                "synced {} records in {} rounds ({} requests, {} B up, {} B down); server stored {} changes",
                report.records,
                report.rounds,
                report.requests,
                report.bytes_sent,
                report.bytes_received,
                report.accepted
            );
            if let Some(ws) = &report.ws {
                text.push_str(&format!(
                    " over the WebSocket ({} connection(s), {} messages sent, {} received)",
                    ws.connections, ws.frames_sent, ws.frames_received
                ));
            }
            for (doc, code, message) in &report.errors {
                text.push_str(&format!("\n  refused {doc}: {code}: {message}"));
            }
            if report.photos_uploaded > 0 {
                text.push_str(&format!("\nuploaded {} photos", report.photos_uploaded));
            }
            for (sha, code, message) in &report.photos_refused {
                text.push_str(&format!("\n  photo {sha} refused: {code}: {message}"));
            }
            for s in &report.stranded {
                text.push_str(&format!("\n{}", stranded_words(s)));
            }
            let refused = report.errors.len() + report.photos_refused.len();
            let stranded = report.stranded.len();
            Ok(Output { text, json: serde_json::to_value(&report)?, refused, stranded })
        }
        Command::Watch { for_secs, changes } => watch(cli, store, lock, *for_secs, *changes, now),
        Command::List { all } => list(store, *all),
        Command::Show { instruction } => show(store, instruction),
        Command::Status => status(store, &super::actor(store)?),
        edit => edit_command(store, edit, now),
    }
}

/// `handheld watch`: a WebSocket sync first (with the store locked, as every sync), then the watch,
/// which locks the store only while it writes, so that edit commands can run beside it.
fn watch(
    cli: &Cli,
    store: &Store,
    lock: &std::fs::File,
    for_secs: Option<u64>,
    changes: Option<usize>,
    now: i64,
) -> Result<Output> {
    use std::io::Write;
    let mut client = client(store, cli.attempts)?;
    let synced = crate::sync(store, &mut client, crate::transport::Kind::Ws, now);
    keep_tokens(store, &client)?;
    let synced = synced?;
    let print = |text: String, json: Value| {
        let mut out = std::io::stdout().lock();
        // A closed pipe ends the watch at its next event: nothing is lost, everything is stored first.
        let _ = writeln!(out, "{}", if cli.json { json.to_string() } else { text });
        let _ = out.flush();
    };
    print(
        format!(
            "synced {} records; server stored {} changes{}",
            synced.records,
            synced.accepted,
            if synced.errors.is_empty() {
                String::new()
            } else {
                format!(", {} refused", synced.errors.len())
            }
        ),
        json!({"event": "synced", "records": synced.records, "accepted": synced.accepted,
               "errors": synced.errors}),
    );
    let limits = crate::watch::Limits {
        until: for_secs.map(|s| std::time::Instant::now() + std::time::Duration::from_secs(s)),
        changes,
    };
    lock.unlock().context("unlocking the store")?;
    let watched = crate::watch::watch(store, lock, &mut client, limits, &mut |event| {
        print(event_words(event), serde_json::to_value(event).unwrap_or(Value::Null))
    });
    lock.lock().context("locking the store")?;
    keep_tokens(store, &client)?;
    let report = watched?;
    Ok(Output::new(
        format!(
            "watched until {}: {} change(s) over {} connection(s)",
            if report.ended == "time" { "the time was up" } else { "the changes asked for" },
            report.changes,
            report.connections
        ),
        json!({"event": "ended", "ended": report.ended, "changes": report.changes,
               "connections": report.connections}),
    ))
}

fn event_words(event: &crate::watch::Event) -> String {
    use crate::watch::Event;
    match event {
        Event::Watching { records, .. } => format!("watching {records} record(s); Ctrl-C to stop"),
        Event::Changed { doc, instruction_id, record } => match record {
            Some(r) => format!(
                "{}\t{}\tchanged on the server: checks {}/{}, {}{}",
                instruction_id.as_deref().unwrap_or("?"),
                r.inspection_no,
                r.checks_done,
                r.checks_total,
                r.verdict.as_deref().unwrap_or("no verdict"),
                if r.complete { ", complete" } else { "" }
            ),
            None => format!("record {doc} changed on the server"),
        },
        Event::Assigned { instruction_ids } => format!("newly assigned: {}", instruction_ids.join(", ")),
        Event::Unassigned { instruction_ids } => format!(
            "no longer assigned: {} (work not sent stays here: handheld list --all)",
            instruction_ids.join(", ")
        ),
        Event::Sent { records, changes } => {
            format!("sent {changes} change(s) of {records} record(s); the server stored them")
        }
        Event::Refused { doc, code, message } => {
            format!("refused {doc}: {code}: {message} (kept here; `handheld sync` reports it)")
        }
        Event::Disconnected { reason } => format!("disconnected: {reason}; connecting again"),
    }
}

fn list(store: &Store, all: bool) -> Result<Output> {
    let actor = crate::actor(store)?;
    let mut rows = Vec::new();
    let mut text = String::new();
    let records = store.all_records()?.into_iter().filter(|(_, assigned)| all || *assigned);
    for (local, assigned) in records {
        let instruction = local.instruction_id.clone().unwrap_or_default();
        let pending = store.pending_of(&local.id)?;
        let photos = store.pending_photos_of(&local.id)?.len();
        let unassigned = if assigned {
            String::new()
        } else {
            format!("\tNO LONGER ASSIGNED: {pending} change(s), {photos} photo(s) kept here unsent")
        };
        let Some((Doc::Record(doc), _)) = load(store, &local.id, &actor)? else { continue };
        match doc.read() {
            Ok(r) => {
                let done = r.checks.values().filter(|c| c.result.is_some()).count();
                let complete = r.completion.as_ref().is_some_and(|c| c.value.complete);
                text.push_str(&format!(
                    "{instruction}\t{}\t{}\t{}\tdue {}\tchecks {done}/{}\t{}{}\tpending {pending}{unassigned}\n",
                    r.instruction.inspection_no,
                    r.instruction.site,
                    slot_words(r.instruction.slot.as_ref()),
                    local_time(r.instruction.deadline),
                    r.checks.len(),
                    r.verdict.as_ref().map_or("no verdict".into(), |v| verdict_words(&v.value)),
                    if complete { ", complete" } else { "" },
                ));
                rows.push(json!({"instruction_id": numeric_id(&instruction), "doc": local.id,
                    "inspection_no": r.instruction.inspection_no, "site": r.instruction.site,
                    "deadline": r.instruction.deadline, "slot": r.instruction.slot,
                    "checks_done": done, "checks_total": r.checks.len(),
                    "verdict": r.verdict.as_ref().map(|v| v.value.value_str()), "complete": complete, "pending": pending,
                    "pending_photos": photos, "assigned": assigned}));
            }
            Err(_) => {
                text.push_str(&format!(
                    "{instruction}\t(not downloaded yet: run `handheld sync`){unassigned}\n"
                ));
                rows.push(
                    json!({"instruction_id": numeric_id(&instruction), "doc": local.id, "downloaded": false}),
                );
            }
        }
    }
    if rows.is_empty() {
        text = "no assigned instructions (run `handheld sync`)".into();
    }
    Ok(Output::new(text.trim_end().to_owned(), Value::Array(rows)))
}

fn record(store: &Store, instruction: &str) -> Result<(String, RecordDoc)> {
    let local = store.record_of(instruction)?.with_context(|| {
        format!("instruction {instruction} is not assigned to this device (run `handheld sync`)")
    })?;
    match load(store, &local.id, &crate::actor(store)?)? {
        Some((Doc::Record(doc), _)) => Ok((local.id, doc)),
        _ => bail!("instruction {instruction} has no record here"),
    }
}

fn show(store: &Store, instruction: &str) -> Result<Output> {
    let (id, doc) = record(store, instruction)?;
    let r = doc.read().with_context(|| format!("the record of {instruction} has not been downloaded yet"))?;
    let conflicts = open_conflicts(&doc)?;
    let mut text = format!(
        "instruction {} — {} — {}\nsite {}{}\nslot: {}\ndeadline: {}\n",
        r.instruction.instruction_id,
        r.instruction.inspection_no,
        r.instruction.enterprise_name,
        r.instruction.site,
        r.instruction.site_position.as_ref().map_or(String::new(), |p| format!(
            " at {:.5}, {:.5} (photos farther than {:.0} m are flagged)",
            p.latitude,
            p.longitude,
            p.radius()
        )),
        slot_words(r.instruction.slot.as_ref()),
        local_time(r.instruction.deadline),
    );
    // First, not last: a returned result is what the officer must act on.
    if let Some(review) = &r.review {
        text.push_str(&format!("{} by {}: {}\n", review.decision.to_uppercase(), review.by, review.opinion));
    }
    for line in &r.instruction.goods {
        text.push_str(&format!(
            "  goods {}: {} {} {} {}\n",
            line.line_no, line.hs_code, line.name, line.quantity, line.unit
        ));
    }
    for item in &r.instruction.checklist {
        let entry = &r.checks[&item.item_id];
        text.push_str(&format!(
            "  [{}] {} — {}{}{}\n",
            entry.result.map_or("    ", |c| c.as_str()),
            item.item_id,
            item.title,
            entry.measurement.as_ref().map(|m| format!(" ({} {})", m.value, m.unit)).unwrap_or_default(),
            entry.note.as_ref().map(|n| format!(" — {n}")).unwrap_or_default(),
        ));
    }
    for (sha, p) in &r.photos {
        let withdrawn = if p.value.withdrawn { " (withdrawn)" } else { "" };
        text.push_str(&format!("  photo {}… {}{withdrawn}\n", &sha.as_str()[..12], p.value.caption));
    }
    for (sid, s) in &r.samples {
        text.push_str(&format!(
            "  sample {sid}: {} {} {} seal {}\n",
            s.value.description, s.value.quantity, s.value.unit, s.value.seal_no
        ));
    }
    if !r.notes.is_empty() {
        text.push_str("notes:\n");
        for note in &r.notes {
            text.push_str(&format!("  {} ({}): {}\n", note.by, note.at, note.text));
        }
    }
    text.push_str(&format!(
        "verdict: {}\n",
        r.verdict.as_ref().map_or("none".into(), |v| verdict_words(&v.value))
    ));
    let digest = r.content_digest();
    for (officer, signature) in &r.signatures {
        let current = signature.digest.as_deref() == Some(digest.as_str());
        let void = if current { "" } else { " (void: the content changed after signing)" };
        text.push_str(&format!("signed by {officer}{void}\n"));
    }
    text.push_str(&format!("complete: {}", r.completion.as_ref().is_some_and(|c| c.value.complete)));
    for c in &conflicts {
        let values: Vec<_> = c
            .values
            .iter()
            .map(|v| format!("{} says {}", v.by.as_deref().unwrap_or("another device"), v.value))
            .collect();
        text.push_str(&format!(
            "\nCONFLICT {}: {}\n  to resolve: agree on the value, then one of you sets it again here (or a supervisor \
             resolves it) and syncs",
            c.field.path(),
            values.join(", ")
        ));
    }
    let missing = missing(store, &id, &r, conflicts.len())?;
    if !missing.is_empty() {
        text.push_str(&format!("\nnot ready to submit: {}", missing.join("; ")));
    }
    let json = json!({"doc": id, "record": r, "conflicts": conflicts, "missing": missing,
                      "pending": store.pending_of(&id)?});
    Ok(Output::new(text, json))
}

/// What keeps a record from being submitted, as this device sees it: the record's own conditions, and
/// its photos still waiting here for upload.
fn missing(
    store: &Store,
    doc_id: &str,
    r: &fieldcheck_sync::Record,
    conflicts: usize,
) -> Result<Vec<String>> {
    let mut missing = r.missing_for_submission(conflicts);
    let queued: std::collections::BTreeSet<String> = store.pending_photos_of(doc_id)?.into_iter().collect();
    let waiting = r.awaited_photos().filter(|h| queued.contains(h.as_str())).count();
    match waiting {
        0 => {}
        1 => missing.push("1 photo not uploaded yet (run `handheld sync`)".to_owned()),
        n => missing.push(format!("{n} photos not uploaded yet (run `handheld sync`)")),
    }
    Ok(missing)
}

fn status(store: &Store, actor: &fieldcheck_sync::ActorId) -> Result<Output> {
    let pending = store.pending()?;
    let photos = store.pending_photos()?;
    let last_sync = store.setting("last_sync_at")?.and_then(|s| s.parse::<i64>().ok());
    let total: i64 = pending.iter().map(|(_, n)| n).sum();
    let text = format!(
        "{} as {} on {}\npending edits: {total} in {} records\nphotos waiting for upload: {}\nlast sync: {}",
        store.setting("device_id")?.unwrap_or_else(|| "(unregistered)".into()),
        store.setting("username")?.unwrap_or_default(),
        store.setting("server")?.unwrap_or_default(),
        pending.len(),
        photos.len(),
        last_sync.map_or("never".into(), local_time),
    );
    // Per record, what is still missing before it can be submitted: the officer's to-do list.
    let mut text = text;
    let mut records = Vec::new();
    for local in store.records()? {
        let Some((Doc::Record(doc), _)) = load(store, &local.id, actor)? else { continue };
        let Ok(r) = doc.read() else { continue };
        let missing = missing(store, &local.id, &r, open_conflicts(&doc)?.len())?;
        let instruction = local.instruction_id.clone().unwrap_or_default();
        let state = if missing.is_empty() { "ready to submit".to_owned() } else { missing.join("; ") };
        text.push_str(&format!("\n{instruction} ({}): {state}", r.instruction.inspection_no));
        records.push(json!({"instruction_id": instruction, "doc": local.id, "missing": missing}));
    }
    let json = json!({
        "records": records,
        "device_id": store.setting("device_id")?, "username": store.setting("username")?,
        "pending_edits": total, "pending_by_doc": pending.iter().map(|(d, n)| json!({"doc": d, "edits": n})).collect::<Vec<_>>(),
        "pending_photos": photos.iter().map(|(sha, _)| sha).collect::<Vec<_>>(), "last_sync_at": last_sync,
    });
    Ok(Output::new(text, json))
}

fn edit_command(store: &Store, command: &Command, now: i64) -> Result<Output> {
    let by = OfficerId::parse(store.require("username")?).map_err(|e| anyhow::anyhow!("{e}"))?;
    let stamp = Stamp { by, at: now };
    let (instruction, what) = match command {
        Command::Check { instruction, item, .. } => (instruction, format!("check {item}")),
        Command::Measure { instruction, item, .. } => (instruction, format!("measure {item}")),
        Command::Note { instruction, item, .. } => {
            (instruction, format!("note{}", item.as_ref().map(|i| format!(" {i}")).unwrap_or_default()))
        }
        Command::Attach { instruction, .. } => (instruction, "photo".to_owned()),
        Command::Withdraw { instruction, photo } => (instruction, format!("withdraw photo {photo}")),
        Command::Sample { instruction, id, .. } => (instruction, format!("sample {id}")),
        Command::Verdict { instruction, .. } => (instruction, "verdict".to_owned()),
        Command::Sign { instruction, .. } => (instruction, "signature".to_owned()),
        Command::Complete { instruction, .. } => (instruction, "completion".to_owned()),
        _ => unreachable!("only editing commands reach here"),
    };
    let (id, mut doc) = record(store, instruction)?;
    let current = doc.read().with_context(|| {
        format!("the record of {instruction} has not been downloaded yet: run `handheld sync`")
    })?;
    let mut extra = json!({});
    match command {
        Command::Check { item, result, .. } => {
            let result = match result {
                ResultArg::Pass => CheckResult::Pass,
                ResultArg::Fail => CheckResult::Fail,
                ResultArg::NotApplicable => CheckResult::NotApplicable,
            };
            doc.set_check_result(item, result, &stamp)?;
        }
        Command::Measure { item, value, unit, .. } => {
            doc.set_measurement(item, Some(&Measurement { value: *value, unit: unit.clone() }), &stamp)?;
        }
        Command::Note { text, item: Some(item), .. } => doc.set_check_note(item, text, &stamp)?,
        Command::Note { text, item: None, .. } => {
            let note = doc.new_note_id(now);
            doc.put_note(&note, text, &stamp)?;
            extra = json!({"note_id": note});
        }
        Command::Attach { file, caption, item, lat, lon, stale_after_hours, .. } => {
            let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            if image_kind(&bytes).is_none() {
                bail!(
                    "{} is not a JPEG, PNG or WebP image; attach the photo file itself (the server refuses anything else)",
                    file.display()
                );
            }
            // The server refuses a photo whose EXIF block cannot be read; say so now, not after the upload.
            let facts = fieldcheck_sync::exif::read(&bytes).map_err(|e| {
                anyhow::anyhow!("{}: {e}; the server refuses such photos, take it again", file.display())
            })?;
            let taken_at = match facts.captured_at.as_deref().map(capture_instant) {
                Some(Ok(at)) => at,
                Some(Err(e)) => bail!("{}: {e}", file.display()),
                None => now,
            };
            // The camera's own position wins over what was typed: it was recorded when the photo was taken.
            let location = facts
                .position
                .map(|(lat, lon)| Location { lat, lon })
                .or_else(|| lat.zip(*lon).map(|(lat, lon)| Location { lat, lon }));
            // Warnings, never refusals: the officer knows why, and the supervisor sees the same facts.
            let mut warnings = capture_warnings(taken_at, now, *stale_after_hours);
            warnings.extend(site_warning(current.instruction.site_position.as_ref(), location.as_ref()));
            for warning in &warnings {
                eprintln!("warning: {}: {warning}", file.display());
            }
            let hash = PhotoHash::from_digest(Sha256::digest(&bytes).into());
            let photo = PhotoRef {
                check_item: item.clone(),
                caption: caption.clone(),
                taken_at,
                location,
                withdrawn: false,
            };
            doc.attach_photo(&hash, &photo, &stamp)?;
            let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
            store.queue_photo(hash.as_str(), &path.to_string_lossy(), &id, now)?;
            extra = json!({"sha256": hash.as_str(), "warnings": warnings});
        }
        Command::Sample { id: sample_id, description, quantity, unit, seal, .. } => {
            let sample_id = SampleId::parse(sample_id.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let sample = Sample {
                description: description.clone(),
                quantity: *quantity,
                unit: unit.clone(),
                seal_no: seal.clone(),
            };
            doc.add_sample(&sample_id, &sample, &stamp)?;
        }
        Command::Verdict { value, disposal, .. } => {
            let verdict = match (value, disposal) {
                (VerdictArg::Conforming, _) => Verdict::Conforming,
                (VerdictArg::NonConforming, Some(d)) => Verdict::NonConforming {
                    disposal: match d {
                        DisposalArg::TechnicalTreatment => Disposal::TechnicalTreatment,
                        DisposalArg::Return => Disposal::Return,
                        DisposalArg::Destruction => Disposal::Destruction,
                    },
                },
                (VerdictArg::NonConforming, None) => bail!("a non_conforming verdict needs --disposal"),
            };
            doc.set_verdict(verdict, &stamp)?;
        }
        Command::Withdraw { photo, .. } => {
            let record = doc.read()?;
            let matches: Vec<&PhotoHash> = record
                .photos
                .keys()
                .filter(|h| photo.len() >= 8 && h.as_str().starts_with(photo.as_str()))
                .collect();
            let hash = match matches.as_slice() {
                [one] => (*one).clone(),
                [] => bail!(
                    "no photo of this record starts with {photo:?} (at least 8 digits; see `handheld show`)"
                ),
                _ => bail!("{photo:?} matches {} photos; give more digits", matches.len()),
            };
            doc.withdraw_photo(&hash, &stamp)?;
            extra = json!({"sha256": hash.as_str()});
        }
        Command::Sign { statement, .. } => doc.sign(statement, &stamp)?,
        Command::Complete { undo: true, .. } => doc.set_complete(false, &stamp)?,
        Command::Complete { undo: false, .. } => {
            doc.set_complete(true, &stamp)?;
            doc.sign(COMPLETION_STATEMENT, &stamp)?;
        }
        _ => unreachable!("only editing commands reach here"),
    }
    store.save_edit(&id, &doc.save(), &what, now)?;
    Ok(Output::new(
        format!("saved {what} on instruction {instruction} (not yet synced)"),
        json!({"instruction_id": instruction, "doc": id, "edit": what, "extra": extra}),
    ))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_argument_of_every_command_says_what_it_is_in_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (no description)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "handheld", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn a_capture_time_with_a_zone_is_that_instant_and_one_without_is_read_in_local_time() {
        assert_eq!(capture_instant("2026-11-23T09:30:00+08:00").unwrap(), 1_795_397_400_000);
        let local = capture_instant("2026-11-23T09:30:00").unwrap();
        let offset_ms = jiff::tz::TimeZone::system()
            .to_offset(jiff::Timestamp::from_millisecond(local).unwrap())
            .seconds() as i64
            * 1000;
        assert_eq!(local + offset_ms, 1_795_426_200_000, "09:30 on the wall clock of this device's zone");
        assert!(capture_instant("2026-13-45T99:30:00").is_err());
    }

    #[test]
    fn an_old_photo_and_a_camera_clock_in_the_future_are_warned_about_and_a_fresh_one_is_not() {
        let now = 1_795_858_200_000;
        assert!(capture_warnings(now - 3_600_000, now, 24).is_empty());
        let old = capture_warnings(now - 30 * 3_600_000, now, 24);
        assert!(old.len() == 1 && old[0].contains("30 hours ago"), "{old:?}");
        let future = capture_warnings(now + 3_600_000, now, 24);
        assert!(future.len() == 1 && future[0].contains("in the future"), "{future:?}");
    }

    #[test]
    fn a_photo_beyond_the_sites_radius_is_warned_about_and_one_inside_or_without_positions_is_not() {
        let site = SitePosition { latitude: 30.627, longitude: 122.065, radius_m: Some(500.0) };
        let near = Location { lat: 30.629, lon: 122.065 }; // about 222 m north
        let far = Location { lat: 30.637, lon: 122.065 }; // about 1,112 m north
        assert_eq!(site_warning(Some(&site), Some(&near)), None);
        let warning = site_warning(Some(&site), Some(&far)).expect("far");
        assert!(warning.starts_with("taken 1112 m from the site"), "{warning}");
        assert!(warning.contains("more than 500 m"), "{warning}");
        assert_eq!(site_warning(None, Some(&far)), None);
        assert_eq!(site_warning(Some(&site), None), None);
        // Without a radius of its own the default (5 km) applies.
        let default = SitePosition { radius_m: None, ..site };
        assert_eq!(site_warning(Some(&default), Some(&far)), None);
        let shenzhen = Location { lat: 22.48, lon: 113.91 };
        assert!(site_warning(Some(&default), Some(&shenzhen)).unwrap().contains(" km ("));
    }

    #[test]
    fn verdicts_and_times_read_as_words() {
        assert_eq!(verdict_words(&Verdict::Conforming), "conforming");
        assert_eq!(
            verdict_words(&Verdict::NonConforming { disposal: Disposal::TechnicalTreatment }),
            "non-conforming, disposal: technical treatment"
        );
        let shown = local_time(1_796_006_775_670);
        assert!(shown.starts_with("2026-") && !shown.contains("unix"), "{shown}");
        assert_eq!(numeric_id("42"), json!(42));
    }
}
