//! The `fieldcheck` command line. `main` stays thin: parse, then hand over to one function per command.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use clap::{Parser, Subcommand};
use ed25519_dalek::{Signer, SigningKey};

use crate::{
    audit::{self, Actor},
    auth::{keys, password},
    config::{DEFAULT_CONFIG_TOML, FlagOverrides, Settings},
    db::Db,
    domain::{CreditRating, CustomsCode, DistrictCode, Line, Role, UnitKind, Uscc},
    orgs::{self, NewEnterprise, NewUnit, NewUser, store},
};

#[derive(Parser)]
#[command(name = "fieldcheck", version, about = "Customs field inspection with offline sync")]
struct Cli {
    /// A TOML settings file (see `fieldcheck default-config`).
    #[arg(long, global = true, env = "FIELDCHECK_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and keys.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Load demo data into an empty data dir (password `demo-password` for every demo user).
        #[arg(long)]
        demo: bool,
    },
    /// Print the documented example configuration with every default.
    DefaultConfig,
    /// Administration on the data dir, without the server.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Ed25519 keys for strong login.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The reference sender of signed messages (docs/messages.md).
    #[command(subcommand)]
    Message(MessageCommand),
}

#[derive(Subcommand)]
enum MessageCommand {
    /// Sign a JSON payload file as a compact JWS; prints it.
    Sign {
        /// The signer's seed file (hex; `fieldcheck keys generate` writes one).
        #[arg(long)]
        key: PathBuf,
        /// The username the key is registered to.
        #[arg(long)]
        kid: String,
        payload: PathBuf,
    },
    /// Sign payload files and send them (one: a single message; several: one batch); prints the answer and
    /// exits non-zero unless every message was accepted or replayed.
    Send {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        kid: String,
        /// The server's base URL, e.g. http://127.0.0.1:8080 or https://customs.example.
        #[arg(long)]
        server: String,
        /// For an https:// server: trust only the CA certificate(s) in this PEM file (a private CA)
        /// instead of the system's.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        #[arg(required = true)]
        payloads: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a customs unit.
    CreateUnit {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_vocab::<UnitKind>)]
        kind: UnitKind,
        /// District code of the parent unit.
        #[arg(long)]
        parent: Option<String>,
    },
    /// Create an enterprise.
    CreateEnterprise {
        #[arg(long)]
        customs_code: String,
        #[arg(long)]
        uscc: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_vocab::<CreditRating>)]
        credit_rating: CreditRating,
        #[arg(long)]
        unit: Option<String>,
    },
    /// Create a user; the password is read from FIELDCHECK_PASSWORD or the first line of stdin.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        #[arg(long, value_parser = parse_vocab::<Role>)]
        role: Role,
        /// District code of the unit (customs roles).
        #[arg(long)]
        unit: Option<String>,
        /// Customs code of the enterprise (enterprise roles).
        #[arg(long)]
        enterprise: Option<String>,
    },
    /// Register a third-party platform's signing key (base64): a platform signer account of the enterprise.
    RegisterPlatformSigner {
        /// The platform enterprise's customs code.
        #[arg(long)]
        enterprise: String,
        /// The signer account's username, which its messages name as `kid`.
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        #[arg(long)]
        public_key: String,
    },
    /// Register a user's Ed25519 public key (base64) for strong login.
    SetSigningKey {
        #[arg(long)]
        username: String,
        #[arg(long)]
        public_key: String,
    },
    /// Load reference data (HS codes and legal units, checklist templates, producer rules and registered
    /// producers, risk rules and sampling ratios, certificate types, site calendars) from a folder laid out
    /// like the repository's fixtures/ (docs/operations.md). Checks everything before writing anything;
    /// running it again with the same files changes nothing. Prints what changed.
    ImportReference {
        /// The folder (hs/, checklists/, certificates/, and optionally sites/calendars.json).
        dir: PathBuf,
        /// Check the folder and print what would change, without writing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the audit log's hash chain; exits non-zero and names the first broken link if it is broken.
    VerifyAudit,
    /// Back up the data dir (database snapshot, photos, keys) into one new file, while the server runs.
    Backup {
        /// The backup file to write; must not exist yet.
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into the data dir, which must not hold a database yet (start the server on it
    /// afterwards). Every file is checked against the backup's manifest; a damaged backup restores nothing.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
    /// Replace customs' receipt-signing key with a new one, from the server's next start; the old public
    /// key stays published under its `kid`, so receipts signed before still verify.
    RotateReceiptKey,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a key: writes the secret seed to FILE and prints the public key (base64).
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a strong-login challenge with the seed in KEY; prints the signature (base64).
    Sign {
        #[arg(long)]
        key: PathBuf,
        /// The challenge text exactly as the server sent it.
        #[arg(long)]
        message: String,
    },
}

trait Vocabulary: Sized {
    fn parse_str(s: &str) -> Option<Self>;
    fn all() -> Vec<&'static str>;
}

macro_rules! vocab_impl {
    ($($t:ty),*) => {$(
        impl Vocabulary for $t {
            fn parse_str(s: &str) -> Option<Self> { <$t>::parse(s) }
            fn all() -> Vec<&'static str> { <$t>::ALL.iter().map(|v| v.as_str()).collect() }
        }
    )*};
}
vocab_impl!(Role, UnitKind, CreditRating);

fn parse_vocab<T: Vocabulary + Clone + Send + Sync + 'static>(s: &str) -> Result<T, String> {
    T::parse_str(s).ok_or_else(|| format!("expected one of: {}", T::all().join(", ")))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut flags = FlagOverrides { data_dir: cli.data_dir.clone(), ..Default::default() };
    match cli.command {
        Command::Serve { listen, demo } => {
            flags.listen = listen;
            flags.demo = demo;
            let settings = Settings::load(cli.config.as_deref(), &flags)?;
            serve(settings)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DefaultConfig => {
            print!("{DEFAULT_CONFIG_TOML}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(cmd) => {
            let settings = Settings::load(cli.config.as_deref(), &flags)?;
            admin(&settings, cmd)
        }
        Command::Keys(cmd) => keys_command(cmd),
        Command::Message(cmd) => message_command(cmd),
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::ops::allocator::limit_arenas();
    crate::telemetry::init(&settings.log);
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let listen = settings.server.listen;
        let state = tokio::task::spawn_blocking(move || crate::prepare(settings)).await??;
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        // Signal handlers go in before anyone learns the address: a SIGTERM sent right after the "listening"
        // line must shut down gracefully, not hit the default action.
        let shutdown = shutdown_signal()?;
        tracing::info!(%addr, data_dir = %state.settings.storage.data_dir.display(), "fieldcheck is serving");
        // Scripts and the end-to-end tests read this line to learn the port; keep its shape.
        println!("fieldcheck listening on http://{addr}");
        crate::run(listener, state, shutdown).await
    })
}

/// Registers the ctrl-c and SIGTERM handlers now; the returned future resolves on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            tracing::info!("shutting down");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn admin(settings: &Settings, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let data_dir = &settings.storage.data_dir;
    // Neither opens the database the usual way: a backup only reads a snapshot beside a running server, and a
    // restore must not create an empty database where the backup's goes.
    match &cmd {
        AdminCommand::Backup { to } => {
            let done = crate::backup::backup(data_dir, to, now_ms())?;
            println!("backed up {} files ({} bytes) to {}", done.files, done.bytes, to.display());
            return Ok(ExitCode::SUCCESS);
        }
        AdminCommand::Restore { from } => {
            let done = crate::backup::restore(from, data_dir)?;
            println!("restored {} files ({} bytes) into {}", done.files, done.bytes, data_dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let db = Db::open(data_dir, 1)?;
    let actor = Actor::System;
    let now = now_ms();
    let api = |e: crate::error::ApiError| anyhow::anyhow!("{e}");
    match cmd {
        AdminCommand::CreateUnit { code, name, kind, parent } => {
            let new = NewUnit {
                code: DistrictCode::parse(&code)?,
                name: Line::parse(name)?,
                kind,
                parent_code: parent.as_deref().map(DistrictCode::parse).transpose()?,
                timezone: None,
            };
            let unit = db.write_blocking(|tx| Ok(orgs::create_unit(tx, now, &actor, new)?)).map_err(api)?;
            println!("created unit {} ({}) with id {}", unit.code, unit.name, unit.id);
        }
        AdminCommand::CreateEnterprise { customs_code, uscc, name, credit_rating, unit } => {
            let new = NewEnterprise {
                customs_code: CustomsCode::parse(&customs_code)?,
                uscc: Uscc::parse(&uscc)?,
                name: Line::parse(name)?,
                credit_rating,
                unit_code: unit.as_deref().map(DistrictCode::parse).transpose()?,
            };
            let e =
                db.write_blocking(|tx| Ok(orgs::create_enterprise(tx, now, &actor, new)?)).map_err(api)?;
            println!("created enterprise {} ({}) with id {}", e.customs_code, e.name, e.id);
        }
        AdminCommand::CreateUser { username, display_name, role, unit, enterprise } => {
            let password = match std::env::var("FIELDCHECK_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            password::check_strength(&password).map_err(|e| api(e.into()))?;
            let hash = password::hash_blocking(&password, settings.auth.argon2_memory_kib)
                .map_err(|e| api(e.into()))?;
            let new = NewUser {
                username,
                display_name: Line::parse(display_name)?,
                password: String::new(),
                role,
                unit_code: unit.as_deref().map(DistrictCode::parse).transpose()?,
                enterprise_code: enterprise.as_deref().map(CustomsCode::parse).transpose()?,
                valid_until: None,
            };
            let u = db
                .write_blocking(|tx| {
                    Ok(orgs::create_user(tx, now, &actor, &new, &hash, orgs::store::Start::ACTIVE)?)
                })
                .map_err(api)?;
            println!("created user {} ({}) with id {}", u.username, u.role, u.id);
        }
        AdminCommand::RegisterPlatformSigner { enterprise, username, display_name, public_key } => {
            let new = crate::messages::http::NewPlatformSigner {
                enterprise_code: CustomsCode::parse(&enterprise)?,
                username,
                display_name: Line::parse(display_name)?,
                public_key,
            };
            orgs::check_username(&new.username).map_err(|e| api(e.into()))?;
            let hash =
                password::hash_blocking(&hex::encode(keys::random_seed()?), settings.auth.argon2_memory_kib)?;
            let u = db
                .write_blocking(|tx| {
                    Ok(crate::messages::register_platform_signer(tx, now, &actor, &new, &hash)?)
                })
                .map_err(api)?;
            println!("registered platform signer {} with id {}", u.username, u.id);
        }
        AdminCommand::SetSigningKey { username, public_key } => {
            db.write_blocking(|tx| {
                let user = store::user_by_name(tx, &username)?
                    .ok_or_else(|| crate::error::ApiError::not_found(&format!("user {username}")))?;
                Ok(orgs::set_signing_key(tx, now, &actor, user.id, &public_key)?)
            })
            .map_err(api)?;
            println!("registered the signing key of {username}");
        }
        AdminCommand::Backup { .. } | AdminCommand::Restore { .. } => unreachable!("handled above"),
        AdminCommand::ImportReference { dir, dry_run } => {
            use crate::reference::import::{ReferenceSet, Source};
            let set = ReferenceSet::read(&Source::Dir(dir))?;
            let report = db.write_blocking(|tx| {
                let report = set.apply(tx, now, &actor).map_err(Rollback::Failed)?;
                if dry_run {
                    // Rolls the transaction back: the report is what a real run would write.
                    return Err(Rollback::DryRun(report));
                }
                Ok(report)
            });
            match report {
                Ok(report) => println!("{report}"),
                Err(Rollback::DryRun(report)) => println!("dry run, nothing written; {report}"),
                Err(Rollback::Failed(e)) => return Err(import_failure(e)),
            }
        }
        AdminCommand::RotateReceiptKey => {
            // Rotated inside the audit entry's transaction: a failed rotation records nothing.
            let (retired, new) = db
                .write_blocking(|tx| {
                    let (retired, new) = crate::messages::signing::rotate(data_dir)
                        .map_err(crate::error::ApiError::Internal)?;
                    let details = serde_json::json!({"retired_kid": retired, "kid": new});
                    audit::append(tx, now, &actor, audit::Action::ReceiptKeyRotate, "receipt_key", details)?;
                    Ok((retired, new))
                })
                .map_err(api)?;
            println!(
                "receipt key {retired} retired (still published); receipts are signed with {new} from the server's next start"
            );
        }
        AdminCommand::VerifyAudit => {
            let report = db.write_blocking(|tx| Ok(audit::verify(tx)?)).map_err(api)?;
            return Ok(match report.first_broken {
                None => {
                    println!("audit chain intact: {} entries", report.entries);
                    ExitCode::SUCCESS
                }
                Some(b) => {
                    println!("audit chain BROKEN at entry {}: {}", b.seq, b.reason);
                    ExitCode::from(2)
                }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Why an import's transaction ended without a commit: a dry run (with the report of what a real run would
/// write), or a failure.
enum Rollback {
    DryRun(crate::reference::import::ImportReport),
    Failed(crate::reference::import::ImportError),
}

impl From<crate::db::StoreError> for Rollback {
    fn from(e: crate::db::StoreError) -> Self {
        Rollback::Failed(e.into())
    }
}

/// An import's problems print as the list they are; anything else as itself.
fn import_failure(e: crate::reference::import::ImportError) -> anyhow::Error {
    match e {
        crate::reference::import::ImportError::Problems(p) => anyhow::Error::new(p),
        other => anyhow::Error::new(other),
    }
}

fn message_command(cmd: MessageCommand) -> anyhow::Result<ExitCode> {
    use crate::messages::sender;
    match cmd {
        MessageCommand::Sign { key, kid, payload } => {
            println!("{}", sender::sign_file(&key, &kid, &payload)?);
            Ok(ExitCode::SUCCESS)
        }
        MessageCommand::Send { key, kid, server, ca_file, payloads } => {
            let signed = payloads
                .iter()
                .map(|p| sender::sign_file(&key, &kid, p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (status, answer) = runtime.block_on(sender::send(&server, ca_file.as_deref(), signed))?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            let all_good = if answer.get("answers").is_some() {
                answer["refused"] == 0
            } else {
                (200..300).contains(&status)
            };
            Ok(if all_good { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}

fn keys_command(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Generate { out } => {
            anyhow::ensure!(!out.exists(), "{} exists; refusing to overwrite a key", out.display());
            let seed = keys::random_seed()?;
            keys::write_secret(&out, hex::encode(seed).as_bytes())?;
            let public = SigningKey::from_bytes(&seed).verifying_key();
            println!("{}", STANDARD.encode(public.as_bytes()));
        }
        KeysCommand::Sign { key, message } => {
            let seed = keys::read_seed(&key)?;
            let signature = SigningKey::from_bytes(&seed).sign(message.as_bytes());
            println!("{}", STANDARD.encode(signature.to_bytes()));
        }
    }
    Ok(ExitCode::SUCCESS)
}
