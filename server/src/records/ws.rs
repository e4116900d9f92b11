//! `GET /api/v1/sync/ws`: the automerge-repo WebSocket endpoint. An unmodified
//! `@automerge/automerge-repo` client with the WebSocket adapter syncs the officer's assignment index
//! and records here, through the same engine as the batch endpoint (`records::engine`: authorization,
//! validation, storage, projection; then the workflow), one round per message.
//!
//! # Layout
//! - [`connect`]: the upgrade. Browsers cannot set headers on a WebSocket, so the access token of a
//!   device-bound login comes in the `token` query parameter (the router's trace span records the path
//!   only, never the query).
//! - [`LivePeers`] (in `peers.rs`): one live connection per device; a newer one replaces the older, and a device that
//!   is frozen, lost or registered again is disconnected at once.
//! - `Connection`: one device's conversation — the join handshake, a [`SyncSession`] per document in
//!   memory, the live fan-out of changes committed by anyone else, and the bounds on what a client may
//!   cost (frame size, messages per second, documents per connection).
//!
//! A refused change is answered with the protocol's `error` message naming the rule, then the
//! connection is closed (code 1008, the rule as reason): automerge-repo never resends a message the
//! other side ignored, so carrying on would leave the officer's edit silently pending.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    response::Response,
};
use fieldcheck_sync::{
    SyncSession,
    repo::{self, ClientMessage, DocMessageKind, RepoDocId, ServerMessage},
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast::error::RecvError, oneshot};

use super::{
    error::RecordsError,
    peers::Ending,
    store::{self, DocMeta},
};
use crate::{
    auth::{Caller, caller::authenticate_token, store::session_status},
    db::StoreError,
    domain::{AccountStatus, Role, UserStatus},
    error::{ApiError, ApiQuery, ErrorBody},
    state::AppState,
};

/// The server's peer id in the protocol.
pub const SERVER_PEER_ID: &str = "fieldcheck-server";
/// One frame carries one sync message; the sync layer refuses messages over 8 MiB, so a frame may be
/// a little larger (the CBOR envelope) and no more.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024 + 64 * 1024;
/// Messages a connection may send per second on average, and in one burst. A handheld syncing a few
/// hundred records at reconnect sends about two messages per record.
pub const MESSAGES_PER_SECOND: f64 = 200.0;
pub const MESSAGE_BURST: f64 = 1_000.0;
/// Documents one connection may hold a conversation about: the index and every assigned record
/// fit with room to spare; past it the client is told to reconnect with fewer.
pub const MAX_DOCS_PER_CONNECTION: usize = 2_000;
/// A client that connects and never joins is dropped after this long.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a connection re-reads its login session: a logout or an ended account closes the socket
/// within this time (device status changes and claims close it at once through [`LivePeers`]).
const SESSION_CHECK: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WsParams {
    /// The access token of a device-bound login (`POST /api/v1/auth/login` with `device_id`).
    pub token: String,
}

/// Upgrades to the automerge-repo protocol after checking the token (see docs/sync-protocol.md).
#[utoipa::path(get, path = "/api/v1/sync/ws", tag = "sync", params(WsParams),
    responses(
        (status = 101, description = "switching to the automerge-repo WebSocket protocol"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn connect(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WsParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let caller = authenticate_token(&state, &params.token).await?;
    caller.require_role(&[Role::Officer])?;
    let device_id = caller.device_id.clone().ok_or_else(|| {
        ApiError::forbidden(
            "sync needs a device-bound login: log in with the `device_id` of your registered handheld",
        )
        .with_details(json!({"required": "device_id"}))
    })?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::bad_request(
            "not_a_websocket",
            "this endpoint speaks automerge-repo over a WebSocket: connect with a WebSocket client",
        )
    })?;
    Ok(upgrade.max_message_size(MAX_FRAME_BYTES).max_frame_size(MAX_FRAME_BYTES).on_upgrade(
        move |socket| async move {
            let mut connection = Connection::new(state, caller, device_id);
            connection.run(socket).await;
        },
    ))
}

/// A token bucket: `MESSAGES_PER_SECOND` on average, `MESSAGE_BURST` at once.
struct Budget {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new() -> Self {
        Self { tokens: MESSAGE_BURST, at: Instant::now() }
    }

    fn spend(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * MESSAGES_PER_SECOND)
            .min(MESSAGE_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A document the client is syncing on this connection.
struct Held {
    meta: DocMeta,
    session: SyncSession,
    /// Announcements still to come of changes this connection stored itself: its reply already carried
    /// them, so each is skipped once. Skipping another writer's announcement instead is harmless: the
    /// next one generates from the stored document as it then stands, theirs included.
    own_writes: u32,
}

struct Connection {
    state: AppState,
    caller: Caller,
    device_id: String,
    docs: HashMap<RepoDocId, Held>,
    budget: Budget,
}

/// What ends the message loop: a reason for the client, or nothing to say (it left).
type Step = Result<(), Option<Ending>>;

impl Connection {
    fn new(state: AppState, caller: Caller, device_id: String) -> Self {
        Self { state, caller, device_id, docs: HashMap::new(), budget: Budget::new() }
    }

    async fn run(&mut self, mut socket: WebSocket) {
        let ending = match self.join(&mut socket).await {
            Ok(()) => {
                let (id, ended) = self.state.sync_peers.register(&self.device_id);
                let ending = self.converse(&mut socket, ended).await;
                self.state.sync_peers.unregister(&self.device_id, id);
                ending
            }
            Err(ending) => ending,
        };
        if let Some(ending) = ending {
            tracing::info!(device = %self.device_id, code = %ending.code, "sync connection ended: {}", ending.message);
            let error = repo::encode(&ServerMessage::Error {
                sender_id: SERVER_PEER_ID,
                target_id: &self.device_id,
                message: &format!("{}: {}", ending.code, ending.message),
            });
            let _ = socket.send(Message::Binary(error.into())).await;
            let reason = ending.code.chars().take(100).collect::<String>();
            let _ = socket.send(Message::Close(Some(CloseFrame { code: 1008, reason: reason.into() }))).await;
        }
    }

    /// The handshake: the first message must be a `join` whose sender is the device of the login.
    async fn join(&mut self, socket: &mut WebSocket) -> Step {
        let first = tokio::time::timeout(JOIN_TIMEOUT, next_frame(socket))
            .await
            .map_err(|_| Some(Ending::new("join_timeout", "send `join` first")))??;
        let ClientMessage::Join { sender_id, versions, pending } = first else {
            return Err(Some(Ending::new("join_expected", "the first message must be `join`")));
        };
        if sender_id != self.device_id {
            return Err(Some(Ending::new(
                "join_sender_mismatch",
                format!(
                    "join as the device you logged in with: set the Repo's peerId to {:?}",
                    self.device_id
                ),
            )));
        }
        if !versions.iter().any(|v| v == repo::PROTOCOL_VERSION) {
            return Err(Some(Ending::new(
                "unsupported_protocol_version",
                format!("this server speaks protocol version {}", repo::PROTOCOL_VERSION),
            )));
        }
        // The handshake reads only: automerge-repo's adapter gives up waiting for `peer` after a second,
        // and the single writer may be busy with other devices' messages for longer than that.
        let storage_id = match self.state.db.read(store::stored_server_actor).await.map_err(internal)? {
            Some(actor) => actor,
            None => self
                .state
                .db
                .write(|tx| Ok::<_, StoreError>(store::server_actor(tx)?.to_hex_string()))
                .await
                .map_err(internal)?,
        };
        let peer = repo::encode(&ServerMessage::Peer {
            sender_id: SERVER_PEER_ID,
            target_id: &self.device_id,
            storage_id: &storage_id,
        });
        send(socket, peer).await?;
        let (now, device_id) = (self.state.now_ms(), self.device_id.clone());
        self.state
            .db
            .write(move |tx| -> Result<(), StoreError> {
                crate::devices::seen(tx, &device_id, now)?;
                // Only a client that says so (peer metadata `pending`); otherwise the figure stays unknown.
                if let Some(pending) = pending {
                    crate::devices::pending_reported(tx, &device_id, pending, now)?;
                }
                Ok(())
            })
            .await
            .map_err(internal)?;
        Ok(())
    }

    /// Messages in, changes out, until either side ends it.
    async fn converse(
        &mut self,
        socket: &mut WebSocket,
        mut ended: oneshot::Receiver<Ending>,
    ) -> Option<Ending> {
        let mut changes = self.state.db.doc_changes();
        let mut check = tokio::time::interval(SESSION_CHECK);
        check.tick().await;
        loop {
            let step = tokio::select! {
                frame = next_frame(socket) => match frame {
                    Ok(message) => self.on_message(socket, message).await,
                    Err(ending) => Err(ending),
                },
                changed = changes.recv() => {
                    let mut ids = HashSet::new();
                    let mut everything = false;
                    let mut next = changed;
                    loop {
                        match next {
                            Ok(id) => { ids.insert(id); }
                            Err(RecvError::Lagged(_)) => everything = true,
                            Err(RecvError::Closed) => break,
                        }
                        next = match changes.try_recv() {
                            Ok(id) => Ok(id),
                            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                            Err(_) => break,
                        };
                    }
                    self.fan_out(socket, everything, &ids).await
                }
                ending = &mut ended => Err(Some(ending.unwrap_or_else(|_| Ending::new("replaced", "ended")))),
                _ = check.tick() => self.check_session().await,
            };
            if let Err(ending) = step {
                return ending;
            }
        }
    }

    async fn on_message(&mut self, socket: &mut WebSocket, message: ClientMessage) -> Step {
        if !self.budget.spend() {
            return Err(Some(Ending::new(
                "too_many_messages",
                format!("more than {MESSAGES_PER_SECOND} messages per second; slow down and reconnect"),
            )));
        }
        match message {
            ClientMessage::Join { .. } => Err(Some(Ending::new("already_joined", "`join` is sent once"))),
            ClientMessage::Leave => Err(None),
            ClientMessage::Ephemeral | ClientMessage::RemoteHeads | ClientMessage::DocUnavailable { .. } => {
                Ok(())
            }
            ClientMessage::Doc { kind, sender_id, document_id, data } => {
                if sender_id != self.device_id {
                    return Err(Some(Ending::new(
                        "sender_mismatch",
                        "every message's senderId is your device id",
                    )));
                }
                self.on_sync(socket, kind, document_id, data).await
            }
        }
    }

    async fn on_sync(
        &mut self,
        socket: &mut WebSocket,
        kind: DocMessageKind,
        id: RepoDocId,
        data: Vec<u8>,
    ) -> Step {
        let Some(held) = self.docs.remove(&id) else {
            return self.open(socket, kind, id, data).await;
        };
        let Held { meta, session, own_writes } = held;
        let input = super::engine::Input { doc: meta.id.clone(), data, session: Some(session) };
        let outcome = self
            .state
            .sync_engine
            .sync(self.state.sync_env(), &self.caller, &self.device_id, vec![input], false)
            .await
            .map_err(internal)?;
        let Some(output) = outcome.results.into_iter().next() else {
            return Err(internal("the engine answered nothing"));
        };
        let session = output.session;
        let outcome = output.result;
        match outcome {
            Ok((reply, accepted)) => {
                let own_writes = own_writes + u32::from(accepted > 0);
                self.docs.insert(id, Held { meta, session, own_writes });
                if let Some(reply) = reply {
                    self.send_sync(socket, id, &reply).await?;
                }
                Ok(())
            }
            // Whatever the rule (unassigned since the conversation began included), the officer must
            // see that the edit was refused: the server's copy and this session are unchanged.
            Err(error) => Err(Some(Ending::new(&error.code, format!("{} (document {id})", error.message)))),
        }
    }

    /// The first message about a document on this connection: known and the caller's, or unavailable.
    async fn open(
        &mut self,
        socket: &mut WebSocket,
        kind: DocMessageKind,
        id: RepoDocId,
        data: Vec<u8>,
    ) -> Step {
        if self.docs.len() >= MAX_DOCS_PER_CONNECTION {
            return Err(Some(Ending::new(
                "too_many_documents",
                format!("one connection syncs at most {MAX_DOCS_PER_CONNECTION} documents"),
            )));
        }
        let caller = self.caller.clone();
        let hex_id = id.to_hex();
        let meta = self
            .state
            .db
            .read(move |c| -> Result<_, RecordsError> {
                Ok(match store::meta(c, &hex_id)? {
                    Some(meta) if super::may_sync(c, &caller, &meta)? => Some(meta),
                    _ => None,
                })
            })
            .await
            .map_err(internal)?;
        let Some(meta) = meta else {
            // Unknown and not the caller's look the same: existence does not leak. A `sync` about a
            // document the client made itself is answered the same way: the server keeps only its own.
            return self.unavailable(socket, id).await;
        };
        // Each connection starts its conversations afresh: a JavaScript client keeps no sync state
        // between connections, and the opening exchange costs one round trip per document.
        self.docs.insert(id, Held { meta, session: SyncSession::new(), own_writes: 0 });
        Box::pin(self.on_sync(socket, kind, id, data)).await
    }

    async fn unavailable(&mut self, socket: &mut WebSocket, id: RepoDocId) -> Step {
        let message = repo::encode(&ServerMessage::DocUnavailable {
            sender_id: SERVER_PEER_ID,
            target_id: &self.device_id,
            document_id: id,
        });
        send(socket, message).await
    }

    async fn send_sync(&self, socket: &mut WebSocket, id: RepoDocId, data: &[u8]) -> Step {
        let message = repo::encode(&ServerMessage::Sync {
            sender_id: SERVER_PEER_ID,
            target_id: &self.device_id,
            document_id: id,
            data,
        });
        send(socket, message).await
    }

    /// Tells the client what changed in the documents it holds, whoever changed them.
    async fn fan_out(
        &mut self,
        socket: &mut WebSocket,
        everything: bool,
        changed: &HashSet<Arc<str>>,
    ) -> Step {
        let ids: Vec<RepoDocId> = if everything {
            self.docs.keys().copied().collect()
        } else {
            let mut ids = Vec::new();
            for id in changed.iter().filter_map(|hex_id| RepoDocId::from_hex(hex_id)) {
                let Some(held) = self.docs.get_mut(&id) else { continue };
                if held.own_writes > 0 {
                    held.own_writes -= 1;
                } else {
                    ids.push(id);
                }
            }
            ids
        };
        for id in ids {
            let Some(Held { meta, session, own_writes }) = self.docs.remove(&id) else { continue };
            let (session, message) = self
                .state
                .sync_engine
                .outgoing(&self.state.db, meta.clone(), session)
                .await
                .map_err(internal)?;
            self.docs.insert(id, Held { meta, session, own_writes });
            if let Some(message) = message {
                self.send_sync(socket, id, &message).await?;
            }
        }
        Ok(())
    }

    /// A logout, an expired session or an ended account closes the connection.
    async fn check_session(&mut self) -> Step {
        let (sid, now) = (self.caller.session_id.clone(), self.state.now_ms());
        let status = self.state.db.read(move |c| session_status(c, &sid)).await.map_err(internal)?;
        let live = status.is_some_and(|s| {
            s.revoked_at.is_none()
                && s.expires_at > now
                && s.user_status == AccountStatus::Active
                && !s.must_change_password
                && s.user_valid_until.is_none_or(|until| until > now)
                && s.device_status.is_none_or(|d| d == UserStatus::Active)
        });
        if live {
            Ok(())
        } else {
            Err(Some(Ending::new("session_ended", "this login session has ended; log in again")))
        }
    }
}

/// The next protocol message; pings and pongs are answered by the WebSocket layer itself.
async fn next_frame(socket: &mut WebSocket) -> Result<ClientMessage, Option<Ending>> {
    loop {
        match socket.recv().await {
            None | Some(Ok(Message::Close(_))) => return Err(None),
            Some(Err(e)) => {
                // Oversized frames end here too (`max_message_size`); the socket is unusable after.
                tracing::debug!(error = %e, "sync connection failed");
                return Err(None);
            }
            Some(Ok(Message::Binary(bytes))) => {
                return repo::decode(&bytes).map_err(|e| Some(Ending::new("invalid_message", e.to_string())));
            }
            Some(Ok(Message::Text(_))) => {
                return Err(Some(Ending::new("invalid_message", "messages are CBOR in binary frames")));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
        }
    }
}

async fn send(socket: &mut WebSocket, bytes: Vec<u8>) -> Step {
    socket.send(Message::Binary(bytes.into())).await.map_err(|_| None)
}

/// An infrastructure failure: logged here, the client only learns that the server failed. The
/// in-memory sessions may be ahead of what was stored, so the connection ends.
fn internal(e: impl std::fmt::Debug) -> Option<Ending> {
    tracing::error!(error = ?e, "sync connection failed on the server");
    Some(Ending::new("internal_error", "the server failed; reconnect to continue"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_of_messages_and_then_no_more_at_once() {
        let mut budget = Budget::new();
        let burst = (0..MESSAGE_BURST as usize).filter(|_| budget.spend()).count();
        assert_eq!(burst, MESSAGE_BURST as usize);
        // Refill is 200 per second: the few microseconds since cannot have earned a whole burst back.
        let more = (0..MESSAGE_BURST as usize).filter(|_| budget.spend()).count();
        assert!(more < MESSAGE_BURST as usize / 2, "{more} more messages allowed");
    }
}
