//! The SPS outbox (`sps_outbox`, its SQL in `store.rs`): what is to be delivered and how it stands, the
//! sender a deployment plugs in, and the bell that wakes the delivery task (`sps::deliver`) after a commit. Apart from the
//! message itself so that `AppState` holds the outbox without importing the delivery task, which takes
//! the state.

use std::{path::PathBuf, sync::Arc};

use serde::Serialize;

use crate::domain::time::rfc3339;

/// Where an SPS message stands: `pending`, `delivered` or `failed`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    /// The certificate status the message carries: `issued`, `revoked` or `replaced`.
    pub status: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// One message handed to a sender: the hub envelope's facts and the XML.
pub struct Envelope<'a> {
    pub outbox_id: i64,
    pub number: &'a str,
    pub to_country: &'a str,
    pub certificate_type: &'a str,
    pub status: &'a str,
    pub xml: &'a [u8],
}

/// Delivers SPS messages somewhere: a hub, a queue, a directory. Blocking; called off the executor.
pub trait SpsSender: Send + Sync {
    fn send(&self, envelope: &Envelope<'_>) -> Result<(), String>;
}

/// Writes each message as `<dir>/<number>-<outbox id>-<status>.xml` (temporary file, then rename, so a
/// reader of the directory never sees half a message).
pub struct DirectorySender {
    pub dir: PathBuf,
}

impl SpsSender for DirectorySender {
    fn send(&self, e: &Envelope<'_>) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|err| format!("creating {}: {err}", self.dir.display()))?;
        let name = format!("{}-{}-{}.xml", e.number, e.outbox_id, e.status);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, e.xml).map_err(|err| format!("writing {}: {err}", tmp.display()))?;
        std::fs::rename(&tmp, self.dir.join(&name)).map_err(|err| format!("renaming {name}: {err}"))
    }
}

/// The outbox's sender and the bell that wakes the delivery task after a commit.
pub struct Outbox {
    pub sender: Box<dyn SpsSender>,
    pub bell: tokio::sync::Notify,
}

impl Outbox {
    pub fn new(sender: Box<dyn SpsSender>) -> Arc<Outbox> {
        Arc::new(Outbox { sender, bell: tokio::sync::Notify::new() })
    }

    /// Call after a commit that enqueued messages.
    pub fn ring(&self) {
        self.bell.notify_one();
    }
}

pub use super::store::{attempted, due, enqueue, latest};
