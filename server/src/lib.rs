//! # fieldcheck server
//!
//! The central service of fieldcheck: reviews applications, issues inspection instructions, takes
//! bookings, merges officers' offline records, and serves supervisors. See `docs/architecture.md`.
//!
//! # Layout
//! - [`cli`]: the `fieldcheck` command line (`serve`, `default-config`, `admin …`, `keys …`).
//! - [`config`]: layered settings (defaults → TOML → env → flags).
//! - [`router`]: every route, its access policy and the tower layers, in one place.
//! - [`error`]: the one API error type and the JSON/path/query extractors that produce it.
//! - [`state`]: what handlers share (settings, database, keys, clock, metrics).
//! - [`db`]: the SQLite database (one writer, pooled readers, WAL) and its embedded migrations.
//! - [`domain`]: values that cannot be wrong: codes (customs, USCC, district), roles, statuses, time.
//! - [`auth`]: keys, JWTs, refresh rotation, passwords, strong login, the per-route policy.
//! - [`orgs`]: customs units, enterprises and user accounts.
//! - [`devices`]: registered handhelds and their automerge actor ids.
//! - [`delegations`]: enterprise-to-agent delegation and grants to the agent's operators.
//! - [`audit`]: the append-only, hash-chained audit log.
//! - [`reference`]: HS table, producer and risk rules, sampling ratios, checklist templates (data, not code).
//! - [`applications`]: inspection applications: drafts, submission, copies, inspection numbers.
//! - [`review`]: document review (approve, return, suspend, resume, document check) and auto-review.
//! - [`selection`]: the risk engine's reproducible, explained decision after approval.
//! - [`instructions`]: on-site inspection instructions, checklists, officers, the state machine, statistics.
//! - [`bookings`]: slot calendars per site, availability, and bookings that never overbook a slot.
//! - [`records`]: offline inspection records: record and index documents in SQLite, the batch sync
//!   engine (validate, merge, persist), the SQL projection, seals and supervisors' reviews.
//! - [`photos`]: photo evidence: content-addressed uploads (whole or resumable), checks, EXIF, thumbnails.
//! - [`receipts`]: the enterprise-facing change feed (cursor paging, long-poll).
//! - [`workflow`]: the only code that crosses modules: every instruction event (assign, cancel, booking,
//!   record progress, approve, return, forced release, disposal) as receipt + audit entry, and what
//!   follows in the other modules (record opened, booking released, record sealed, goods released).
//! - [`ops`]: health, readiness, metrics, the test clock.
//! - [`clock`]: the one source of "now", movable in tests.
//! - [`demo`]: demo data for `serve --demo`.
//! - [`telemetry`]: logging setup.

pub mod applications;
pub mod audit;
pub mod auth;
pub mod bookings;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod delegations;
pub mod demo;
pub mod devices;
pub mod domain;
pub mod error;
pub mod instructions;
pub mod ops;
pub mod orgs;
pub mod photos;
pub mod receipts;
pub mod records;
pub mod reference;
pub mod review;
pub mod router;
pub mod selection;
pub mod state;
pub mod telemetry;
pub mod workflow;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    auth::{keys::JwtKeys, password::Passwords},
    clock::Clock,
    config::Settings,
    db::Db,
    ops::metrics::Metrics,
    photos::store::PhotoFiles,
    state::AppState,
};

/// Opens the data dir (database, keys) and builds the shared state; loads demo data when asked.
pub fn prepare(settings: Settings) -> anyhow::Result<AppState> {
    let data_dir = settings.storage.data_dir.clone();
    let db = Db::open(&data_dir, settings.storage.read_connections)?;
    let keys = JwtKeys::load_or_generate(&data_dir, None)?;
    let clock = if settings.testing.manual_clock {
        tracing::warn!("testing.manual_clock is on: time is whatever PUT /api/v1/testing/clock says");
        Clock::manual_at(jiff::Timestamp::now())
    } else {
        Clock::System
    };
    if settings.demo.enabled && demo::load_if_empty(&db, &settings, clock.now_ms())? {
        tracing::info!("loaded demo data; every demo user's password is `{}`", demo::DEMO_PASSWORD);
    }
    let metrics = Metrics::new();
    let passwords = Passwords::new(&settings.auth, metrics.registry())?;
    Ok(AppState {
        settings: Arc::new(settings),
        db,
        keys: Arc::new(keys),
        clock,
        metrics: Arc::new(metrics),
        passwords: Arc::new(passwords),
        receipts: Arc::new(tokio::sync::watch::channel(0).0),
        photos: Arc::new(
            PhotoFiles::open(&data_dir)
                .with_context(|| format!("opening the photo folders in {}", data_dir.display()))?,
        ),
    })
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight requests finish (bounded by
/// the configured grace period). Tests call this with a port-0 listener; `fieldcheck serve` with the real one.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(state.settings.server.shutdown_grace_secs);
    let app = router::app(state);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    // Login limits key on the client's address: handlers read it as `ConnectInfo<SocketAddr>`.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    tokio::select! {
        res = server => res??,
        _ = async {
            let _ = stopping_rx.await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("shutdown grace period over; exiting with requests still in flight"),
    }
    Ok(())
}
