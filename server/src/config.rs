//! Layered settings: defaults in code → TOML file → `FIELDCHECK__SECTION__KEY` env vars → command-line flags.

use std::{net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

/// The documented example configuration printed by `fieldcheck default-config`; a test keeps it equal to
/// the defaults below.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default-config.toml");

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub demo: DemoSettings,
    pub workflow: WorkflowSettings,
    pub booking: BookingSettings,
    pub photos: PhotoSettings,
    pub documents: DocumentSettings,
    pub reminders: ReminderSettings,
    pub onboarding: OnboardingSettings,
    pub monitoring: MonitoringSettings,
    pub certificates: CertificateSettings,
    pub messages: MessageSettings,
    pub testing: TestingSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowSettings {
    /// Time an on-site inspection instruction gets from issue to completion.
    pub inspection_deadline_hours: i64,
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        WorkflowSettings { inspection_deadline_hours: 72 }
    }
}

impl WorkflowSettings {
    pub fn inspection_deadline_ms(&self) -> i64 {
        self.inspection_deadline_hours * 3600 * 1000
    }
}

/// Supervisor monitoring (flow step 11): when work counts as overdue, and the live stream's limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringSettings {
    /// A booked slot whose start is this many hours past with no submitted result is overdue.
    pub slot_result_hours: i64,
    /// A submitted result waiting this many hours for a supervisor's decision is overdue.
    pub approval_wait_hours: i64,
    /// Goods with an approved non-conforming result whose disposal is not recorded as done this many days
    /// after approval are held too long (overdue).
    pub disposal_wait_days: i64,
    /// A handheld not synced for this many hours is listed as silent (a request may ask for another figure).
    pub silent_handheld_hours: i64,
    /// A photo taken farther than this from its site (EXIF GPS) is flagged on the map.
    pub far_from_site_km: f64,
    /// Events held for live subscribers; one that falls further behind gets `resync`.
    pub stream_buffer: usize,
    /// A reconnect asking for more missed events than this gets `resync` instead of the backlog.
    pub max_backlog: i64,
    /// Seconds between keep-alive comments on an idle stream (proxies close silent connections).
    pub keep_alive_secs: u64,
    /// Lifetime of a stream token (`POST /api/v1/events/token`), for clients that cannot send headers.
    pub stream_token_secs: i64,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        MonitoringSettings {
            slot_result_hours: 24,
            approval_wait_hours: 24,
            disposal_wait_days: 14,
            silent_handheld_hours: 24,
            far_from_site_km: 5.0,
            stream_buffer: 1024,
            max_backlog: 5000,
            keep_alive_secs: 15,
            stream_token_secs: 60,
        }
    }
}

/// Rules of slot booking (flow step 5); the calendars themselves are data, per site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BookingSettings {
    /// An enterprise books (or moves a booking to) a slot at least this many hours ahead, so the site can plan.
    pub min_lead_hours: i64,
    /// An enterprise may reschedule or cancel until this many hours before the slot; a cancel after it
    /// counts as a no-show.
    pub cutoff_hours: i64,
    /// No-shows within the window that block new bookings; 0 never blocks.
    pub max_no_shows: i64,
    pub no_show_window_days: i64,
    /// How many alternative slots a refusal or a decline proposes.
    pub alternatives: usize,
    /// How far from the asked-for slot alternatives are searched.
    pub alternatives_horizon_days: i64,
}

impl Default for BookingSettings {
    fn default() -> Self {
        BookingSettings {
            min_lead_hours: 4,
            cutoff_hours: 24,
            max_no_shows: 3,
            no_show_window_days: 90,
            alternatives: 3,
            alternatives_horizon_days: 14,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhotoSettings {
    /// Largest photo file accepted, whole or resumable; phones write 3–12 MB, so 25 MiB leaves room.
    pub max_bytes: u64,
    /// Widest and tallest image decoded; anything larger is refused before its pixels are allocated.
    pub max_dimension: u32,
    /// Most memory the decoder may allocate for one photo: the guard against decompression bombs.
    pub max_decoded_bytes: u64,
    /// Long edge of the cached thumbnails, in pixels.
    pub thumbnail_edge: u32,
    /// An unfinished resumable upload is forgotten (and its bytes deleted) this long after it began.
    pub upload_ttl_hours: i64,
}

impl Default for PhotoSettings {
    fn default() -> Self {
        PhotoSettings {
            max_bytes: 25 * 1024 * 1024,
            max_dimension: 16_384,
            max_decoded_bytes: 256 * 1024 * 1024,
            thumbnail_edge: 320,
            upload_ttl_hours: 72,
        }
    }
}

/// Signed message intake (`POST /api/v1/messages`, docs/messages.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessageSettings {
    /// Messages one request may carry; each is answered on its own in the one response.
    pub max_per_request: usize,
    /// Largest single signed message (its serialised envelope).
    pub max_message_bytes: usize,
    /// Largest request body on the message endpoint (a whole batch).
    pub max_request_bytes: usize,
}

impl Default for MessageSettings {
    fn default() -> Self {
        MessageSettings {
            max_per_request: 1000,
            max_message_bytes: 256 * 1024,
            max_request_bytes: 32 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Requests running longer are answered 408 so a stuck client cannot pin a worker.
    pub request_timeout_secs: u64,
    /// Default JSON body limit; endpoints that take bulk data (sync, photos) set their own.
    pub body_limit_bytes: usize,
    /// How long in-flight requests may finish after SIGTERM before the process exits anyway.
    pub shutdown_grace_secs: u64,
    /// A client must send a request's whole head (request line and headers) within this many seconds of
    /// starting it, or of the previous response on a kept-alive connection; else the connection is closed.
    /// The request timeout starts only once the head is in: without this, half-sent requests (slowloris)
    /// would hold connections forever.
    pub header_read_timeout_secs: u64,
    /// Connections one client address may hold open at once; more are answered 429 and closed. 0 = no cap.
    /// Behind NAT a whole site shares one address, so leave room for every handheld there.
    pub max_connections_per_address: usize,
    /// Header fields a request may carry; more are answered 431.
    pub max_headers: usize,
    /// The address users reach the server at (e.g. `https://fieldcheck.customs.example`, behind a TLS
    /// reverse proxy). When it is `https://…`, the dashboard's cookie is marked `Secure`. Empty = unknown.
    pub public_url: String,
}

impl ServerSettings {
    /// Served over TLS (by the reverse proxy in front): cookies must then never travel in clear text.
    pub fn https(&self) -> bool {
        self.public_url.to_ascii_lowercase().starts_with("https://")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Holds `fieldcheck.sqlite3` (WAL mode) and `keys/`.
    pub data_dir: PathBuf,
    /// Read connections kept open next to the single writer.
    pub read_connections: usize,
    /// Batch syncs (`POST /api/v1/sync`) worked on at once; more wait in line, first come first
    /// served (`records::admission`). Two cores gain nothing from more than a few at once: each one
    /// only takes longer. 0 refuses every sync (maintenance).
    pub max_syncs_in_flight: usize,
    /// The longest a batch sync waits in line for its turn, in ms; a line longer than the server can
    /// serve in this time is answered `503` with a `Retry-After` from the measured service rate. Well
    /// under the handheld's request timeout and the server's own (`server.request_timeout_secs`).
    pub max_sync_wait_ms: u64,
    /// Memory for loaded automerge documents the sync engine keeps between rounds, in MiB (least
    /// recently used go first); 0 caches none. A finished record costs 31–32 KiB loaded (`bench-fleet`
    /// prints it; charged ~31 KiB), so the default holds ~2,000 of them.
    pub document_cache_mib: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub issuer: String,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub challenge_ttl_secs: i64,
    /// Argon2 memory cost in KiB; the default follows OWASP's minimum for argon2id.
    pub argon2_memory_kib: u32,
    /// Password hashes computed at once, each holding `argon2_memory_kib` of memory; 0 means two per CPU
    /// core. Hashing is CPU-bound: beyond a small multiple of the cores, more adds memory, not speed.
    pub password_hash_concurrency: usize,
    /// Logins that may wait for a hashing slot; beyond them a login is answered 503 with `Retry-After`
    /// rather than queued, so a burst cannot pile up memory or latency.
    pub password_hash_queue: usize,
    /// Failed password logins from one client address for one account before each further attempt waits.
    pub login_failures_per_account: u32,
    /// Failed password logins from one client address over all accounts (and unknown usernames) before each
    /// further attempt from it waits. Larger, since an office behind one NAT address shares it.
    pub login_failures_per_address: u32,
    /// The wait after the allowance is spent starts at one second and doubles with every further failure,
    /// up to this.
    pub login_max_delay_secs: i64,
    /// Failures are forgotten after this long without an attempt (counted from the end of the last wait).
    pub login_forget_after_secs: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoSettings {
    /// Load demo data into an empty data dir; every demo user gets the password `demo-password`.
    pub enabled: bool,
    /// A fixtures folder laid out like the repository's `fixtures/`; empty = the copy built into the binary.
    /// Relative paths start at the working directory.
    pub fixtures_dir: PathBuf,
}

/// Supporting documents an enterprise attaches (issue 18).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentSettings {
    /// Largest file accepted (PDF, JPEG or PNG); scans of a contract or a treatment record fit in 20 MiB.
    pub max_bytes: u64,
}

impl Default for DocumentSettings {
    fn default() -> Self {
        DocumentSettings { max_bytes: 20 * 1024 * 1024 }
    }
}

/// Reminders in the receipts feed (issue 18): how far ahead, and how often the server looks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReminderSettings {
    /// Seconds between two sweeps for due reminders.
    pub sweep_secs: u64,
    /// A confirmed booking starting within this many hours is reminded of (24: "tomorrow").
    pub booking_hours: i64,
    /// An open instruction whose deadline is within this many hours is reminded of.
    pub deadline_hours: i64,
    /// A document asked for again and not sent after this many hours is reminded of.
    pub document_hours: i64,
    /// A delegation ending within this many days is reminded of (to the principal).
    pub delegation_days: i64,
    /// An operator whose validity ends within this many days is reminded of (to its enterprise).
    pub operator_days: i64,
    /// A producer registration ending within this many days is reminded of (to the enterprises whose
    /// open applications name it).
    pub producer_days: i64,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        ReminderSettings {
            sweep_secs: 60,
            booking_hours: 24,
            deadline_hours: 24,
            document_hours: 48,
            delegation_days: 14,
            operator_days: 14,
            producer_days: 30,
        }
    }
}

/// Enterprises registering themselves (issue 18).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnboardingSettings {
    /// Registrations accepted from one client address (IPv6: its /64) per hour; more are answered 429.
    pub registrations_per_hour: i64,
}

impl Default for OnboardingSettings {
    fn default() -> Self {
        OnboardingSettings { registrations_per_hour: 3 }
    }
}

/// Cloud-issued certificates (flow step 10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CertificateSettings {
    /// Self-prints allowed per certificate; each is counted, audited and printed as "copy N".
    pub max_prints: i64,
    /// Base of the verification URL in the QR code (`<base>/verify/<number>?digest=…`); empty = the host the
    /// print request came to.
    pub public_base_url: String,
    /// Where the directory sender writes SPS messages; empty = `<data_dir>/sps-outbox`.
    pub sps_outbox_dir: PathBuf,
}

impl Default for CertificateSettings {
    fn default() -> Self {
        CertificateSettings { max_prints: 3, public_base_url: String::new(), sps_outbox_dir: PathBuf::new() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingSettings {
    /// Replace the system clock by one moved through `PUT /api/v1/testing/clock`. Never in production.
    pub manual_clock: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_secs: 30,
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_secs: 10,
            header_read_timeout_secs: 10,
            max_connections_per_address: 256,
            max_headers: 100,
            public_url: String::new(),
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            data_dir: PathBuf::from("data"),
            read_connections: 4,
            max_syncs_in_flight: 4,
            max_sync_wait_ms: 10_000,
            document_cache_mib: 64,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            issuer: "fieldcheck".into(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            challenge_ttl_secs: 120,
            argon2_memory_kib: 19 * 1024,
            password_hash_concurrency: 0,
            password_hash_queue: 32,
            login_failures_per_account: 5,
            login_failures_per_address: 20,
            login_max_delay_secs: 15 * 60,
            login_forget_after_secs: 15 * 60,
        }
    }
}

impl AuthSettings {
    /// `password_hash_concurrency`, with 0 resolved against the machine's cores.
    pub fn hash_concurrency(&self) -> usize {
        match self.password_hash_concurrency {
            0 => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: LogFormat::Human, level: "info".into() }
    }
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings { enabled: false, fixtures_dir: PathBuf::new() }
    }
}

/// Command-line overrides; only the flags that were given take part in the merge.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    pub demo: bool,
}

impl Settings {
    /// Merges the layers; `config_file` is optional and may not exist only if it was not asked for.
    pub fn load(config_file: Option<&std::path::Path>, flags: &FlagOverrides) -> anyhow::Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = config_file {
            anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("FIELDCHECK__").split("__"));
        if let Some(listen) = flags.listen {
            figment = figment.merge(Serialized::default("server.listen", listen));
        }
        if let Some(dir) = &flags.data_dir {
            figment = figment.merge(Serialized::default("storage.data_dir", dir));
        }
        if flags.demo {
            figment = figment.merge(Serialized::default("demo.enabled", true));
        }
        Ok(figment.extract()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_config_equals_the_defaults() {
        let parsed: Settings = toml::from_str(DEFAULT_CONFIG_TOML).expect("example config parses");
        assert_eq!(parsed, Settings::default());
    }

    #[test]
    fn flags_override_files_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fc.toml");
        std::fs::write(&file, "[server]\nlisten = \"0.0.0.0:9000\"\n[log]\nformat = \"json\"\n").unwrap();
        let flags = FlagOverrides { listen: Some("127.0.0.1:7000".parse().unwrap()), ..Default::default() };
        let s = Settings::load(Some(&file), &flags).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(s.log.format, LogFormat::Json);
    }

    #[test]
    fn an_unknown_key_in_the_config_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fc.toml");
        std::fs::write(&file, "[server]\nlisten_addr = \"0.0.0.0:9000\"\n").unwrap();
        assert!(Settings::load(Some(&file), &FlagOverrides::default()).is_err());
    }
}
