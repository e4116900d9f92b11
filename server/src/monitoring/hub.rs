//! The live broadcast of stored events and the short-lived stream tokens, held in `AppState`. Apart
//! from the stream (`events.rs`) so that the state does not import the stream, which takes the state.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::error::MonitoringError;
use crate::{auth::identity::Caller, domain::time::rfc3339};

/// One stored event as a subscriber receives it (the SSE `data:` line; the SSE `id:` is `id`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StreamEvent {
    /// The stored event id (the receipt id); send the last one back as `Last-Event-ID`.
    pub id: i64,
    /// `application`, `instruction` or `booking`.
    pub subject: String,
    pub subject_id: i64,
    /// The instruction concerned, for instruction and booking events.
    pub instruction_id: Option<i64>,
    pub inspection_no: Option<String>,
    /// What happened: the receipt kind (`assigned`, `result_approved`, `booking_confirmed`, …).
    pub kind: String,
    /// The subject's state after it.
    pub state: String,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// The unit the subject belongs to (an instruction's or application's district) and its site: the
    /// scope check is the supervisor rule, district or site in the subscriber's subtree.
    #[serde(skip)]
    pub unit_id: Option<i64>,
    #[serde(skip)]
    pub site_id: Option<i64>,
}

impl StreamEvent {
    /// In a subscriber's scope: its district or its site is one of `units` (the subtree), the rule
    /// `db::scope::instruction_in_subtree` applies to every other read.
    pub fn visible_to(&self, units: &std::collections::HashSet<i64>) -> bool {
        [self.unit_id, self.site_id].into_iter().flatten().any(|u| units.contains(&u))
    }
}

/// Stream tokens live at most this many at once; issuing more first drops the expired ones.
const MAX_STREAM_TOKENS: usize = 10_000;
/// When a client refused a stream token may ask again (the `Retry-After` it is sent).
const STREAM_TOKEN_RETRY_SECS: u64 = 60;

/// The broadcast of stored events and the short-lived stream tokens, shared by all handlers.
pub struct Hub {
    /// Sent to by `events::pump` only.
    pub(super) live: broadcast::Sender<Arc<StreamEvent>>,
    /// SHA-256 of a token → who it stands for, until when. Only hashes are kept, so a memory dump does
    /// not hand out live tokens; they are never logged (the trace layer logs paths without queries).
    tokens: Mutex<HashMap<[u8; 32], (Caller, i64)>>,
}

impl Hub {
    pub fn new(buffer: usize) -> Hub {
        Hub { live: broadcast::channel(buffer.max(16)).0, tokens: Mutex::new(HashMap::new()) }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StreamEvent>> {
        self.live.subscribe()
    }

    /// Live subscribers now (a gauge for operators and the benchmark).
    pub fn subscribers(&self) -> usize {
        self.live.receiver_count()
    }

    /// A new stream token for `caller`, valid until `expires_at`. (The token stands for the session the
    /// auth middleware established, so it keeps the whole [`Caller`], which `redeem` gives back.)
    pub fn issue_token(&self, caller: Caller, now: i64, expires_at: i64) -> Result<String, MonitoringError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(MonitoringError::Randomness)?;
        let token = hex::encode(bytes);
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= MAX_STREAM_TOKENS {
            tokens.retain(|_, (_, until)| *until > now);
        }
        if tokens.len() >= MAX_STREAM_TOKENS {
            return Err(MonitoringError::TooManyStreamTokens { retry_after_secs: STREAM_TOKEN_RETRY_SECS });
        }
        tokens.insert(Sha256::digest(token.as_bytes()).into(), (caller, expires_at));
        Ok(token)
    }

    /// Who a stream token stands for, if it is known and not expired. A token may be used again until
    /// it expires: `EventSource` reconnects with the same URL.
    pub fn redeem(&self, token: &str, now: i64) -> Option<Caller> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.get(&key).filter(|(_, until)| *until > now).map(|(c, _)| c.clone())
    }
}
