//! # fieldcheck server
//!
//! The central service of fieldcheck: reviews applications, issues inspection instructions, takes
//! bookings, merges officers' offline records, and serves supervisors. See `docs/architecture.md`.
//!
//! # Layout
//! - [`cli`]: the `fieldcheck` command line (`serve`, `default-config`, `admin …`, `keys …`).
//! - [`config`]: layered settings (defaults → TOML → env → flags).
//! - [`router`]: every route, its access policy and the tower layers, in one place.
//! - [`connections`]: per-address connection cap, our error shape on hyper's own refusals.
//! - [`error`]: the one API error type and the JSON/path/query extractors that produce it.
//! - [`state`]: what handlers share (settings, database, keys, clock, metrics).
//! - [`db`]: the SQLite database (one writer, pooled readers, WAL) and its embedded migrations.
//! - [`domain`]: values that cannot be wrong: codes (customs, USCC, district), roles, statuses, time.
//! - [`auth`]: keys, JWTs, refresh rotation, passwords, strong login, the per-route policy.
//! - [`orgs`]: customs units, enterprises and user accounts (operators pending until their legal person
//!   confirms them).
//! - [`onboarding`]: enterprises registering themselves; an administrator approves or returns them.
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
//! - [`certificates`]: cloud-issued certificates: apply, intelligent review, signed issue, public
//!   verification, self-printed PDF with QR code, revoke/replace, the SPS message and its outbox.
//! - [`documents`]: supporting documents attached to applications and certificate applications: checked
//!   (PDF well-formedness, images), content-addressed, scoped like their subject; "ask again" and resend.
//! - [`notices`]: printed notices (inspection notice, booking confirmation, disposal notice, release slip):
//!   numbered on first print, bilingual PDF with the verification QR code, verified like certificates.
//! - [`print`]: A4 PDFs with the embedded CJK font and vector QR codes (certificates, printed notices).
//! - [`receipts`]: the enterprise-facing change feed (cursor paging, long-poll).
//! - [`reminders`]: reminders in the receipts feed (booking soon, deadline near, document outstanding),
//!   each sent once across restarts, swept in the background on the server's clock.
//! - [`monitoring`]: supervisors' figures, overdue work, officers' load, the live event stream (SSE) and
//!   the dashboard page.
//! - [`messages`]: signed message exchange for enterprise systems: JWS intake (one or a batch), idempotent
//!   per sender, evidence kept; signed receipts; platform signers.
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
pub mod backup;
pub mod bookings;
pub mod certificates;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod db;
pub mod delegations;
pub mod demo;
pub mod devices;
pub mod documents;
pub mod domain;
pub mod error;
pub mod instructions;
pub mod messages;
pub mod monitoring;
pub mod notices;
pub mod onboarding;
pub mod ops;
pub mod orgs;
pub mod photos;
pub mod print;
pub mod receipts;
pub mod records;
pub mod reference;
pub mod reminders;
pub mod review;
pub mod router;
pub mod selection;
pub mod state;
pub mod telemetry;
pub mod workflow;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{extract::ConnectInfo, http::Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::{
    auth::{keys::JwtKeys, password::Passwords},
    certificates::{
        keys::CertificateKey,
        outbox::{DirectorySender, Outbox},
    },
    clock::Clock,
    config::Settings,
    connections::{PeerLimits, ShapedIo},
    db::Db,
    ops::metrics::Metrics,
    photos::store::PhotoFiles,
    state::AppState,
};

/// Opens the data dir (database, keys) and builds the shared state; loads demo data when asked.
pub fn prepare(settings: Settings) -> anyhow::Result<AppState> {
    let sync_admission = Arc::new(crate::records::admission::Admission::new(
        settings.storage.max_syncs_in_flight,
        std::time::Duration::from_millis(settings.storage.max_sync_wait_ms),
    ));
    let sync_engine =
        Arc::new(crate::records::engine::Engine::new(settings.storage.document_cache_mib << 20));
    let data_dir = settings.storage.data_dir.clone();
    if settings.demo.enabled {
        demo::check_source(&settings)?;
    }
    let db = Db::open(&data_dir, settings.storage.read_connections)?;
    let keys = JwtKeys::load_or_generate(&data_dir, None)?;
    let receipt_key = messages::signing::ReceiptKey::load_or_generate(&data_dir)?;
    let clock = if settings.testing.manual_clock {
        tracing::warn!("testing.manual_clock is on: time is whatever PUT /api/v1/testing/clock says");
        Clock::manual_at(jiff::Timestamp::now())
    } else {
        Clock::System
    };
    // Records written by an older release are brought to the current record schema before anyone syncs.
    let upgraded = db.write_blocking(|tx| crate::records::upgrade_documents(tx, clock.now_ms()))?;
    if upgraded > 0 {
        tracing::info!(upgraded, "upgraded record documents to the current schema");
    }
    if settings.demo.enabled && demo::load_if_empty(&db, &settings, clock.now_ms())? {
        tracing::info!("loaded demo data; every demo user's password is `{}`", demo::DEMO_PASSWORD);
    }
    let missing = db.write_blocking(|tx| reference::import::missing(tx))?;
    if !missing.is_empty() {
        tracing::warn!(
            missing = missing.join(", "),
            "reference data is missing, so applications cannot be checked and /readyz answers 503: \
             load it with `fieldcheck admin import-reference DIR`"
        );
    }
    let certificate_key = CertificateKey::load_or_generate(&data_dir)?;
    let outbox_dir = match &settings.certificates.sps_outbox_dir {
        d if d.as_os_str().is_empty() => data_dir.join("sps-outbox"),
        d => d.clone(),
    };
    let sps = Outbox::new(Box::new(DirectorySender { dir: outbox_dir }));
    let metrics = Metrics::new();
    let passwords = Passwords::new(&settings.auth, metrics.registry())?;
    let events = Arc::new(monitoring::hub::Hub::new(settings.monitoring.stream_buffer));
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
        events,
        sync_admission,
        sync_engine,
        sync_peers: Arc::default(),
        certificate_key: Arc::new(certificate_key),
        sps,
        receipt_key: Arc::new(receipt_key),
    })
}

/// Serves `state` on `listener` until `shutdown` resolves, then stops accepting, closes idle connections and
/// lets in-flight requests finish (bounded by the configured grace period). Tests call this with a port-0
/// listener; `fieldcheck serve` with the real one.
///
/// The accept loop is hyper's (HTTP/1.1) rather than `axum::serve`, for what that does not configure: a
/// header read timeout (a half-sent request no longer holds a connection: slowloris), a cap on connections
/// per client address, and our error shape on the requests hyper refuses itself ([`connections`]).
/// Handlers may extract `ConnectInfo<SocketAddr>`, the address the connection came from: login limits key
/// on it.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = state.settings.server.clone();
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    let pump = tokio::spawn(monitoring::events::pump(state.clone()));
    // SPS messages are delivered after their commits, for as long as the server runs.
    let delivery = tokio::spawn(certificates::sps::deliver(state.clone()));
    let reminding = tokio::spawn(reminders::run(state.clone()));
    let app = router::app(state);
    let peers = PeerLimits::new(settings.max_connections_per_address);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout_secs))
        .max_headers(settings.max_headers);
    // hyper-util's `GracefulShutdown` cannot watch an upgradeable connection (the automerge-repo endpoint
    // is a WebSocket), so shutdown is signalled to each connection task here, and each holds a clone of
    // `open` until it ends: `closed` reports `None` once every connection is done.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let (open, mut closed) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = peers.admit(peer.ip()) else {
            refuse(stream, peer, settings.max_connections_per_address);
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| with_peer(&app, peer, req));
        let io = TokioIo::new(ShapedIo::new(stream, settings.max_headers));
        let conn = http.serve_connection(io, service).with_upgrades();
        let (mut stopping, open) = (stopping.clone(), open.clone());
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
                    // Finish the request in flight, then close; an upgraded socket is no longer hyper's.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            // Timeouts, resets and refused requests end here; none is the server's failure.
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
            drop(slot);
            drop(open);
        });
    }
    drop(listener);
    pump.abort();
    let _ = stop.send(true);
    drop(open);
    delivery.abort();
    reminding.abort();
    tokio::select! {
        _ = closed.recv() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("shutdown grace period over; exiting with requests still in flight");
        }
    }
    Ok(())
}

/// Serves one request of the connection from `peer`, which handlers can extract as `ConnectInfo`.
fn with_peer<B>(
    app: &axum::Router,
    peer: SocketAddr,
    mut req: Request<B>,
) -> tower::util::Oneshot<axum::Router, Request<B>>
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    req.extensions_mut().insert(ConnectInfo(peer));
    app.clone().oneshot(req)
}

/// A connection over its address's cap: answered 429 if the socket takes the few bytes at once (a fresh
/// socket does), then closed. No task waits on it, so refusing stays cheap however many arrive.
fn refuse(stream: TcpStream, peer: SocketAddr, max: usize) {
    tracing::debug!(%peer, max, "refused a connection over the per-address cap");
    let _ = stream.try_write(&connections::too_many_connections(max));
}

/// An accept that failed: a connection reset before it was accepted is nothing; anything else (no file
/// descriptors left) is logged, and the loop waits a moment for connections to close before trying again.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        tracing::error!(error = %e, "accepting a connection failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, routing::get};

    #[tokio::test]
    async fn handlers_can_extract_the_address_the_connection_came_from() {
        let app = axum::Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let peer: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        let req = Request::get("/peer").body(Body::empty()).unwrap();
        let resp = with_peer(&app, peer, req).await.unwrap();
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(body, "127.0.0.2:40000");
    }
}
