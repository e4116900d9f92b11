//! What every handler can reach.

use std::sync::Arc;

use crate::{
    auth::{keys::JwtKeys, password::Passwords},
    certificates::{keys::CertificateKey, outbox::Outbox},
    clock::Clock,
    config::Settings,
    db::Db,
    messages::signing::ReceiptKey,
    monitoring::hub::Hub,
    ops::metrics::Metrics,
    photos::store::PhotoFiles,
};

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub keys: Arc<JwtKeys>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Password hashing, bounded in concurrency and memory; every argon2 run of a request goes through it.
    pub passwords: Arc<Passwords>,
    /// Bumped after every commit that wrote receipts; long-polling readers wait on it.
    pub receipts: Arc<tokio::sync::watch::Sender<u64>>,
    /// The photo folders under the data dir and the locks of resumable uploads.
    pub photos: Arc<PhotoFiles>,
    /// The live event broadcast and stream tokens (`monitoring::events`).
    pub events: Arc<Hub>,
    /// The fair, bounded line for batch syncs (`storage.max_syncs_in_flight`, `max_sync_wait_ms`).
    pub sync_admission: Arc<crate::records::admission::Admission>,
    /// The sync engine: per-document locks and the cache of loaded documents (`records::engine`).
    pub sync_engine: Arc<crate::records::engine::Engine>,
    /// The live automerge-repo WebSocket connection of each device.
    pub sync_peers: Arc<crate::records::peers::LivePeers>,
    /// Signs issued certificates; its public half is served at `/.well-known/certificate-keys.json`.
    pub certificate_key: Arc<CertificateKey>,
    /// The SPS message outbox: its sender, and the bell rung after commits that enqueued messages.
    pub sps: Arc<Outbox>,
    /// Customs' receipt-signing key: signed receipts, published at `/api/v1/receipts/jwks`.
    pub receipt_key: Arc<ReceiptKey>,
}

impl AppState {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// What the sync engine needs of the state for one round.
    pub fn sync_env(&self) -> crate::records::engine::Env<'_> {
        crate::records::engine::Env { db: &self.db, now: self.now_ms(), receipts: &self.receipts }
    }

    /// Wakes long-polling receipt readers; call after the writing transaction committed.
    pub fn receipts_changed(&self) {
        self.receipts.send_modify(|v| *v = v.wrapping_add(1));
    }
}
