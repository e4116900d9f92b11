//! The WebSocket transport: a sync's rounds over `GET /api/v1/sync/ws`, speaking automerge-repo's
//! protocol (`join`/`peer`, `sync`, `doc-unavailable`, `error`; CBOR frames, document ids in bs58check
//! form) as the JavaScript clients do, with the same device-bound access token in the `token` query
//! parameter.
//!
//! # Layout
//! - [`WsTransport`]: connects (refreshing the token once on a `401`), joins as this device, then carries
//!   each round of [`crate::plan`] as one `sync` frame per document followed by a *barrier*.
//! - The barrier: a `request` for a random document id, which the server answers `doc-unavailable`
//!   only after every earlier message of the connection (it works through a connection's messages in
//!   order, storing before it replies). The protocol has no acknowledgement of its own, and a message
//!   that needs no answer gets none; the barrier is what lets a round end the way an HTTP response does.
//! - Refusals: the server answers a refused change with `error "<rule>: … (document <id>)"` and closes
//!   the connection. The refused document is reported with its rule exactly as the batch endpoint
//!   reports it, and the rest of the round goes out again on a new connection.
//! - Bounds on what the server can make the handheld hold: one frame at most [`MAX_FRAME_BYTES`],
//!   at most [`MAX_DOCS`] documents, a bounded number of frames per round, and [`READ_TIMEOUT`] of
//!   silence at most.

use std::{
    collections::{HashMap, HashSet},
    net::TcpStream,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use fieldcheck_sync::{
    batch::{Bytes, DocError, DocMessage, DocResult, Pending, SyncRequest, SyncResponse, VERSION},
    repo::{self, ClientMessage, DocMessageKind, RepoDocId, ServerFrame},
};
use tungstenite::{
    Connector, HandshakeError, Message, WebSocket, client::IntoClientRequest, protocol::WebSocketConfig,
    stream::MaybeTlsStream,
};

use crate::client::{Client, ServerError};

/// The server refuses frames over 8 MiB + 64 KiB (a sync message of at most 8 MiB in its envelope);
/// the handheld takes no larger one from it.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024 + 64 * 1024;
/// Documents one connection syncs: the server's own limit per connection. An index that lists more is
/// refused before any of them is asked for (the batch transport has no such limit).
pub const MAX_DOCS: usize = 2_000;
/// Silence from the server longer than this ends the sync with an error (as the HTTP client's timeout).
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Frames the server may send in one round beyond two per message sent: live changes of documents the
/// connection already holds, and the protocol's gossip. More is not a sync, and ends it.
const SPARE_FRAMES_PER_ROUND: usize = 256;
/// The server's budget per connection (200 messages per second, 1,000 at once): the handheld paces
/// itself under it rather than being cut off.
const MESSAGES_PER_SECOND: f64 = 200.0;
const MESSAGE_BURST: f64 = 900.0;

/// The server's peer id until its `peer` message names it.
const SERVER_PEER_ID: &str = "fieldcheck-server";

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// What a sync over the WebSocket cost, for the report.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Stats {
    pub connections: u64,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

pub struct WsTransport {
    /// `ws(s)://host[:port]/api/v1/sync/ws`, without the token.
    url: String,
    device_id: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    socket: Option<Socket>,
    /// The server's peer id, from its `peer` message.
    server_peer: String,
    /// Documents the server holds a conversation about on this connection: it may send their live
    /// changes at any time.
    opened: HashSet<RepoDocId>,
    budget: Budget,
    pub stats: Stats,
}

/// How a round on one connection ended.
enum RoundEnd {
    Done,
    /// The server refused the message at this position of the round and closed the connection.
    Refused(usize),
}

impl WsTransport {
    /// A transport for the server at `base` (`http://` → `ws://`, `https://` → `wss://`, trusting the
    /// system's CAs and `private_ca` as the HTTP client does). Nothing is connected yet.
    pub fn new(base: &str, device_id: &str, private_ca: Option<&str>) -> Result<WsTransport> {
        let (url, tls) = match base.split_once("://") {
            Some(("http", rest)) => (format!("ws://{rest}/api/v1/sync/ws"), None),
            Some(("https", rest)) => (format!("wss://{rest}/api/v1/sync/ws"), Some(tls_config(private_ca)?)),
            _ => bail!("the server address {base:?} is neither http:// nor https://"),
        };
        Ok(WsTransport {
            url,
            device_id: device_id.to_owned(),
            tls,
            socket: None,
            server_peer: SERVER_PEER_ID.to_owned(),
            opened: HashSet::new(),
            budget: Budget::new(),
            stats: Stats::default(),
        })
    }

    /// One round's messages and the server's answers, as [`crate::plan::settle`] takes them.
    pub fn send(
        &mut self,
        client: &mut Client,
        request: &SyncRequest,
        index_doc: &str,
    ) -> Result<SyncResponse> {
        let new = request
            .messages
            .iter()
            .filter(|m| RepoDocId::from_hex(&m.doc).is_none_or(|id| !self.opened.contains(&id)))
            .count();
        anyhow::ensure!(
            new + self.opened.len() <= MAX_DOCS,
            "one WebSocket connection syncs at most {MAX_DOCS} documents; use `--transport batch`"
        );
        let mut results = Vec::new();
        let mut queue: &[DocMessage] = &request.messages;
        while !queue.is_empty() {
            if self.socket.is_none() {
                self.connect(client, None)?;
            }
            match self.round(queue, &mut results)? {
                RoundEnd::Done => break,
                RoundEnd::Refused(at) => {
                    // The server has closed this connection; the messages after the refused one were
                    // never read. They go out again on a new one, which starts every conversation afresh.
                    self.drop_connection();
                    queue = &queue[at + 1..];
                }
            }
        }
        Ok(SyncResponse { v: VERSION, index_doc: index_doc.to_owned(), results })
    }

    /// Tells the server what this device still holds unsent: the `pending` counts of a `join`
    /// (fieldcheck's peer metadata), on a connection of its own that ends once the server stored them.
    pub fn report_pending(&mut self, client: &mut Client, pending: Pending) -> Result<()> {
        self.finish();
        self.connect(client, Some(pending))?;
        // The server stores the counts before it reads the next message: the barrier's answer says done.
        let barrier = self.send_barrier()?;
        self.read_until_barrier(barrier, SPARE_FRAMES_PER_ROUND, |_, _| Ok(None))?;
        self.finish();
        Ok(())
    }

    /// Says `leave` and closes the connection, if one is open.
    pub fn finish(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            let _ = socket
                .send(Message::Binary(repo::encode_client(&ClientMessage::Leave, &self.server_peer).into()));
            let _ = socket.close(None);
            // Read to the server's close (bounded by the read timeout) so it sees a clean end.
            while socket.read().is_ok() {}
        }
        self.opened.clear();
    }

    /// Drops the connection without a word (it failed): the next round connects afresh.
    pub fn abandon(&mut self) {
        self.drop_connection();
    }

    fn drop_connection(&mut self) {
        self.socket = None;
        self.opened.clear();
    }

    /// Connects and joins; a `401` at the upgrade refreshes the token once, as every HTTP request does.
    fn connect(&mut self, client: &mut Client, pending: Option<Pending>) -> Result<()> {
        let mut refreshed = false;
        let mut attempt = 0;
        let socket = loop {
            attempt += 1;
            let token = client.access_token.clone().context("not logged in: run `handheld login`")?;
            match self.dial(&token) {
                Ok(socket) => break socket,
                Err(Dial::Refused(e)) if e.status == 401 && !refreshed && client.refresh_token.is_some() => {
                    refreshed = true;
                    client.refresh().context("refreshing the login for the sync connection")?;
                }
                Err(Dial::Refused(e)) => return Err(e.into()),
                Err(Dial::Failed(e)) if attempt < client.attempts => {
                    eprintln!("network error ({e:#}); retrying");
                    client.retries += 1;
                    std::thread::sleep(Duration::from_millis((200u64 << attempt.min(6)).min(10_000)));
                }
                Err(Dial::Failed(e)) => return Err(e.context(format!("connecting to {}", self.url))),
            }
        };
        self.stats.connections += 1;
        self.socket = Some(socket);
        let join = ClientMessage::Join {
            sender_id: self.device_id.clone(),
            versions: vec![repo::PROTOCOL_VERSION.to_owned()],
            pending,
        };
        self.write(repo::encode_client(&join, &self.server_peer))?;
        self.flush()?;
        loop {
            match self.read_frame()? {
                ServerFrame::Peer { sender_id, .. } => {
                    self.server_peer = sender_id;
                    return Ok(());
                }
                ServerFrame::Error { message } => {
                    self.drop_connection();
                    let r = repo::refusal(&message);
                    return Err(ServerError { status: 101, code: r.code, message: r.message }.into());
                }
                ServerFrame::Ignored => {}
                other => bail!("the server answered `join` with {other:?}, not `peer`"),
            }
        }
    }

    fn dial(&self, token: &str) -> Result<Socket, Dial> {
        // The token goes in the query, as browsers must send it (they cannot set headers on a WebSocket).
        let url = format!("{}?token={}", self.url, query_escape(token));
        let request = url.as_str().into_client_request().map_err(|e| Dial::Failed(e.into()))?;
        let uri = request.uri().clone();
        let host = uri.host().ok_or_else(|| Dial::Failed(anyhow!("{} names no host", self.url)))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let stream = TcpStream::connect((host, port)).map_err(|e| Dial::Failed(e.into()))?;
        stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(|e| Dial::Failed(e.into()))?;
        stream.set_write_timeout(Some(READ_TIMEOUT)).map_err(|e| Dial::Failed(e.into()))?;
        stream.set_nodelay(true).map_err(|e| Dial::Failed(e.into()))?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let connector = match &self.tls {
            Some(tls) => Connector::Rustls(tls.clone()),
            None => Connector::Plain,
        };
        match tungstenite::client_tls_with_config(request, stream, Some(config), Some(connector)) {
            Ok((socket, _)) => Ok(socket),
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let status = response.status().as_u16();
                let body: serde_json::Value = response
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(serde_json::Value::Null);
                Err(Dial::Refused(ServerError {
                    status,
                    code: body["code"].as_str().unwrap_or("unknown").to_owned(),
                    message: body["message"].as_str().unwrap_or("no message").to_owned(),
                }))
            }
            Err(HandshakeError::Failure(e)) => Err(Dial::Failed(e.into())),
            Err(HandshakeError::Interrupted(_)) => {
                Err(Dial::Failed(anyhow!("the WebSocket handshake stalled")))
            }
        }
    }

    /// Sends `queue` on the open connection, then the barrier, and takes every answer until the barrier's.
    fn round(&mut self, queue: &[DocMessage], results: &mut Vec<DocResult>) -> Result<RoundEnd> {
        let mut position: HashMap<RepoDocId, usize> = HashMap::with_capacity(queue.len());
        for (i, m) in queue.iter().enumerate() {
            let id = self.write_sync(m)?;
            position.insert(id, i);
            self.opened.insert(id);
        }
        let barrier = self.send_barrier()?;
        let limit = queue.len() * 2 + self.opened.len() + SPARE_FRAMES_PER_ROUND;
        let opened = self.opened.clone();
        let refused = self.read_until_barrier(barrier, limit, |frame, results_out| {
            Ok(match frame {
                ServerFrame::Sync { document_id, data } if opened.contains(&document_id) => {
                    results_out.push(DocResult {
                        doc: document_id.to_hex(),
                        data: Some(Bytes(data)),
                        error: None,
                        accepted: 0,
                    });
                    None
                }
                // A document we never mentioned on this connection: not ours to hold.
                ServerFrame::Sync { .. } => None,
                ServerFrame::DocUnavailable { document_id } => {
                    if position.contains_key(&document_id) {
                        results_out.push(refused_result(
                            &document_id,
                            "doc_unavailable",
                            "the server has no such document for you (unknown, or not assigned to you)",
                        ));
                    }
                    None
                }
                ServerFrame::Error { message } => {
                    let r = repo::refusal(&message);
                    match r.document_id.and_then(|id| position.get(&id).map(|&at| (id, at))) {
                        Some((id, at)) => {
                            results_out.push(refused_result(&id, &r.code, &r.message));
                            Some(at)
                        }
                        None => {
                            return Err(ServerError { status: 101, code: r.code, message: r.message }.into());
                        }
                    }
                }
                ServerFrame::Peer { .. } | ServerFrame::Ignored => None,
            })
        });
        let (answers, refused_at) = match refused {
            Ok(outcome) => outcome,
            Err(e) => {
                self.drop_connection();
                return Err(e);
            }
        };
        results.extend(answers);
        // Every message before the barrier (or before the refused one) was stored before its answer:
        // its changes count as accepted, as the batch endpoint counts them.
        let processed = refused_at.unwrap_or(queue.len());
        for m in &queue[..processed] {
            let changes = automerge::sync::Message::decode(&m.data.0).map_or(0, |m| m.changes.len());
            if changes > 0 && !results.iter().any(|r| r.doc == m.doc && r.error.is_some()) {
                results.push(DocResult { doc: m.doc.clone(), data: None, error: None, accepted: changes });
            }
        }
        Ok(match refused_at {
            Some(at) => RoundEnd::Refused(at),
            None => RoundEnd::Done,
        })
    }

    /// Waits up to `wait` for the server's next message about a document this connection holds: a change
    /// someone else stored (`handheld watch`). `Ok(None)`: nothing came. A refusal or the server ending
    /// the connection is an error; the caller connects again.
    pub fn next_live(&mut self, wait: Duration) -> Result<Option<(String, Vec<u8>)>> {
        self.set_read_timeout(wait.max(Duration::from_millis(1)))?;
        let frame = self.read_frame_or_quiet();
        self.set_read_timeout(READ_TIMEOUT)?;
        match frame {
            Ok(Some(ServerFrame::Sync { document_id, data })) if self.opened.contains(&document_id) => {
                Ok(Some((document_id.to_hex(), data)))
            }
            Ok(Some(ServerFrame::Error { message })) => {
                self.drop_connection();
                let r = repo::refusal(&message);
                Err(ServerError { status: 101, code: r.code, message: r.message }.into())
            }
            // Gossip, or a document this connection never opened: nothing of ours.
            Ok(_) => Ok(None),
            Err(e) => {
                self.drop_connection();
                Err(e)
            }
        }
    }

    /// Sends replies to live messages (no barrier: nothing waits for an answer).
    pub fn send_live(&mut self, messages: &[DocMessage]) -> Result<()> {
        for m in messages {
            self.write_sync(m)?;
        }
        self.flush()
    }

    /// Queues `m` as a `sync` frame; answers its document's automerge-repo id.
    fn write_sync(&mut self, m: &DocMessage) -> Result<RepoDocId> {
        let id = RepoDocId::from_hex(&m.doc)
            .with_context(|| format!("document {} has no automerge-repo id (32 hex digits)", m.doc))?;
        let frame = ClientMessage::Doc {
            kind: DocMessageKind::Sync,
            sender_id: self.device_id.clone(),
            document_id: id,
            data: m.data.0.clone(),
        };
        self.write(repo::encode_client(&frame, &self.server_peer))?;
        Ok(id)
    }

    /// A ping, so that a connection a network dropped silently is found out (its write fails).
    pub fn ping(&mut self) -> Result<()> {
        let socket = self.socket.as_mut().context("no sync connection")?;
        socket.send(Message::Ping(Vec::new().into())).context("the sync connection is gone")
    }

    /// Whether a connection is open (none before the first round, and after the server ended one).
    pub fn is_connected(&self) -> bool {
        self.socket.is_some()
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> Result<()> {
        let socket = self.socket.as_mut().context("no sync connection")?;
        let tcp = match socket.get_mut() {
            MaybeTlsStream::Plain(tcp) => tcp,
            MaybeTlsStream::Rustls(tls) => &mut tls.sock,
            _ => bail!("an unexpected kind of connection"),
        };
        tcp.set_read_timeout(Some(timeout)).context("setting the connection's read timeout")
    }

    /// A `request` for a document nobody has: the server answers `doc-unavailable` in turn.
    fn send_barrier(&mut self) -> Result<RepoDocId> {
        let id = RepoDocId::from_hex(&automerge::ActorId::random().to_hex_string())
            .context("a random document id")?;
        let mut empty = automerge::AutoCommit::new();
        let data = automerge::sync::SyncDoc::generate_sync_message(
            &empty.sync(),
            &mut automerge::sync::State::new(),
        )
        .map(automerge::sync::Message::encode)
        .unwrap_or_default();
        let frame = ClientMessage::Doc {
            kind: DocMessageKind::Request,
            sender_id: self.device_id.clone(),
            document_id: id,
            data,
        };
        self.write(repo::encode_client(&frame, &self.server_peer))?;
        self.flush()?;
        Ok(id)
    }

    /// Reads frames until the server answers the barrier (or `on_frame` says a message was refused),
    /// at most `limit` frames. Answers what `on_frame` collected, and the refused position if any.
    fn read_until_barrier(
        &mut self,
        barrier: RepoDocId,
        limit: usize,
        mut on_frame: impl FnMut(ServerFrame, &mut Vec<DocResult>) -> Result<Option<usize>>,
    ) -> Result<(Vec<DocResult>, Option<usize>)> {
        let mut collected = Vec::new();
        for _ in 0..limit {
            match self.read_frame()? {
                ServerFrame::DocUnavailable { document_id } if document_id == barrier => {
                    return Ok((collected, None));
                }
                frame => {
                    if let Some(at) = on_frame(frame, &mut collected)? {
                        return Ok((collected, Some(at)));
                    }
                }
            }
        }
        bail!("the server sent more than {limit} messages in one round; the sync stopped")
    }

    fn write(&mut self, frame: Vec<u8>) -> Result<()> {
        self.budget.wait();
        let socket = self.socket.as_mut().context("no sync connection")?;
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += frame.len() as u64;
        // Queued, not flushed: a round's frames leave together.
        socket.write(Message::Binary(frame.into())).context("sending on the sync connection")
    }

    fn flush(&mut self) -> Result<()> {
        self.socket.as_mut().context("no sync connection")?.flush().context("sending on the sync connection")
    }

    /// The next protocol message; pings are answered by tungstenite itself.
    fn read_frame(&mut self) -> Result<ServerFrame> {
        self.read_frame_or_quiet()?.ok_or_else(|| {
            anyhow!("the server said nothing for {} s; the sync stopped", READ_TIMEOUT.as_secs())
        })
    }

    /// The next protocol message, or `None` when the connection stayed quiet for its read timeout (a
    /// frame half read by then stays buffered for the next call).
    fn read_frame_or_quiet(&mut self) -> Result<Option<ServerFrame>> {
        let socket = self.socket.as_mut().context("no sync connection")?;
        loop {
            let message = match socket.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(io))
                    if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return Ok(None);
                }
                Err(tungstenite::Error::Capacity(c)) => bail!("the server sent a frame over the limit ({c})"),
                Err(e) => bail!("the sync connection failed: {e}"),
            };
            match message {
                Message::Binary(bytes) => {
                    self.stats.frames_received += 1;
                    self.stats.bytes_received += bytes.len() as u64;
                    return repo::decode_server(&bytes).context("the server's sync message").map(Some);
                }
                Message::Close(frame) => bail!(
                    "the server closed the sync connection{}",
                    frame.map(|f| format!(": {}", f.reason)).unwrap_or_default()
                ),
                Message::Text(_) => bail!("the server sent text; the protocol is CBOR in binary frames"),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }
}

impl Drop for WsTransport {
    fn drop(&mut self) {
        self.finish();
    }
}

enum Dial {
    /// The server answered the upgrade with an error (`401`, `403`, …) in its one error shape.
    Refused(ServerError),
    Failed(anyhow::Error),
}

fn refused_result(id: &RepoDocId, code: &str, message: &str) -> DocResult {
    DocResult {
        doc: id.to_hex(),
        data: None,
        error: Some(DocError { code: code.to_owned(), message: message.to_owned() }),
        accepted: 0,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The system's CAs, plus `private_ca`'s certificates (PEM) when the site runs its own CA.
fn tls_config(private_ca: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as the HTTP client skips it.
        let _ = roots.add(cert);
    }
    if let Some(pem) = private_ca {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.context("the private CA file")?).context("the private CA's certificate")?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A token bucket under the server's message budget.
struct Budget {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new() -> Self {
        Self { tokens: MESSAGE_BURST, at: Instant::now() }
    }

    /// Takes one message's token, waiting for it when a large sync has spent the burst.
    fn wait(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * MESSAGES_PER_SECOND)
            .min(MESSAGE_BURST);
        self.at = now;
        if self.tokens < 1.0 {
            std::thread::sleep(Duration::from_secs_f64((1.0 - self.tokens) / MESSAGES_PER_SECOND));
            self.tokens = 1.0;
            self.at = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_escaped_for_the_query_string() {
        assert_eq!(query_escape("ab.C-9_~"), "ab.C-9_~");
        assert_eq!(query_escape("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }

    #[test]
    fn http_becomes_ws_and_https_wss_and_anything_else_is_refused() {
        let plain = WsTransport::new("http://127.0.0.1:8080", "d", None).unwrap();
        assert_eq!(plain.url, "ws://127.0.0.1:8080/api/v1/sync/ws");
        assert!(plain.tls.is_none());
        let tls = WsTransport::new("https://customs.example", "d", None).unwrap();
        assert_eq!(tls.url, "wss://customs.example/api/v1/sync/ws");
        assert!(tls.tls.is_some());
        assert!(WsTransport::new("ftp://x", "d", None).is_err());
    }
}
