//! The live automerge-repo connection of each device (`ws.rs`), held in `AppState` so that freezing or
//! re-registering a device disconnects it at once. Apart from the endpoint so that the state does not
//! import the endpoint, which takes the state.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::oneshot;

/// Why a connection ends: sent as the protocol's `error` message, then as the close frame.
#[derive(Debug, Clone)]
pub struct Ending {
    /// Stable code: a validation rule (`server_owned_path`, …) or the endpoint's own
    /// (`join_sender_mismatch`, `too_many_messages`, `replaced`, `device_status`, …).
    pub code: String,
    pub message: String,
}

impl Ending {
    pub(super) fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into() }
    }
}

/// The live connection of each device, so that one device has one conversation at a time and can
/// be cut off at once.
#[derive(Default)]
pub struct LivePeers {
    peers: Mutex<HashMap<String, (u64, oneshot::Sender<Ending>)>>,
    next: AtomicU64,
}

impl LivePeers {
    /// Makes this connection the device's live one, ending the one before (a handheld that lost its
    /// network reconnects before the server noticed the old socket is dead: the newest wins).
    pub(super) fn register(&self, device_id: &str) -> (u64, oneshot::Receiver<Ending>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let old = self.lock().insert(device_id.to_owned(), (id, tx));
        if let Some((_, old)) = old {
            let _ = old.send(Ending::new("replaced", "a newer connection of this device took over"));
        }
        (id, rx)
    }

    pub(super) fn unregister(&self, device_id: &str, id: u64) {
        let mut peers = self.lock();
        if peers.get(device_id).is_some_and(|(live, _)| *live == id) {
            peers.remove(device_id);
        }
    }

    /// Ends the device's live connection, if it has one.
    pub fn disconnect(&self, device_id: &str, code: &str, message: &str) {
        if let Some((_, tx)) = self.lock().remove(device_id) {
            let _ = tx.send(Ending::new(code, message));
        }
    }

    /// How many devices are connected.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, oneshot::Sender<Ending>)>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_connection_of_a_device_replaces_the_older_one() {
        let peers = LivePeers::default();
        let (first, mut first_ended) = peers.register("device-1");
        let (second, mut second_ended) = peers.register("device-1");
        assert_eq!(first_ended.try_recv().unwrap().code, "replaced");
        assert!(second_ended.try_recv().is_err(), "the newer connection stays");
        // The older one going away later must not unregister the newer.
        peers.unregister("device-1", first);
        assert_eq!(peers.len(), 1);
        peers.unregister("device-1", second);
        assert!(peers.is_empty());
    }

    #[test]
    fn disconnecting_a_device_ends_its_connection_and_no_other() {
        let peers = LivePeers::default();
        let (_, mut mine) = peers.register("device-1");
        let (_, mut theirs) = peers.register("device-2");
        peers.disconnect("device-1", "device_status", "this device is lost");
        let ending = mine.try_recv().unwrap();
        assert_eq!((ending.code.as_str(), ending.message.as_str()), ("device_status", "this device is lost"));
        assert!(theirs.try_recv().is_err());
        peers.disconnect("device-3", "device_status", "no such connection is fine");
    }
}
