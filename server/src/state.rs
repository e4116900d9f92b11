//! What every handler can reach.

use std::sync::Arc;

use crate::{auth::keys::JwtKeys, clock::Clock, config::Settings, db::Db, ops::metrics::Metrics};

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub keys: Arc<JwtKeys>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
